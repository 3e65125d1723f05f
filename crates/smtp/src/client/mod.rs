//! The client side of SMTP, sans-IO: what Postern's delivery client speaks
//! to other mail servers.
//!
//! Owns: reading replies ([`ReplyReader`]), reading EHLO ([`Extensions`]),
//! encoding the DATA body ([`DotStuffer`]) and the session state machine
//! ([`ClientSession`]) that turns one envelope into per-recipient results
//! ([`Outcome`]), in SMTP or LMTP (RFC 2033, [`Protocol`]). Does not own: sockets, timers, TLS, DNS, routing or the
//! queue; the shell (one mio loop running many sessions) does those and
//! tells the session what happened.
//!
//! Shape (quinn-proto style): inputs are method calls (`receive`,
//! `tls_started`, `body_sent`, `connection_lost`, …); after each, the shell
//! drains `poll_output` and acts on every [`ClientOutput`] in order.
//!
//! Security posture: every server byte is untrusted. Replies are bounded and
//! strictly framed; nothing received before a command was sent is taken as
//! its answer (which is also the STARTTLS response-injection defence); no
//! command or body byte we send contains a bare CR or LF (REFERENCE §4.1,
//! §4.2).

mod commands;
mod dot_stuff;
mod envelope;
mod extensions;
mod outcome;
mod reply_reader;
mod session;
mod transaction;

pub use dot_stuff::DotStuffer;
pub use envelope::{ClientConfig, Envelope, EnvelopeError, Protocol, Recipient, StartTlsPolicy};
pub use extensions::Extensions;
pub use outcome::{ClientOutput, Outcome, Phase, RecipientResult, RecipientStatus, TranscriptLine};
pub use reply_reader::{
    ReplyError, ReplyReader, ServerReply, MAX_LINES, MAX_LINE_LEN, MAX_REPLY_BYTES,
};
pub use session::ClientSession;
