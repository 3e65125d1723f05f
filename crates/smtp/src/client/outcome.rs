//! What a client session tells its shell: the next action ([`ClientOutput`]),
//! the phase it waits in ([`Phase`]) and, at the end, the [`Outcome`].
//!
//! Owns: these types and the mapping from reply codes to recipient status.
//! Does not own: deciding any of it (`session.rs`) or recording it (the queue).

use super::extensions::Extensions;
use super::reply_reader::ServerReply;
use std::fmt;

/// The next thing the shell must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientOutput {
    /// Write these bytes (one or more complete command lines) to the server.
    Send(Vec<u8>),
    /// Perform the TLS handshake on the socket now, then call
    /// [`tls_started`](super::ClientSession::tls_started) or
    /// [`tls_failed`](super::ClientSession::tls_failed). No byte read before
    /// this point may be given to the TLS layer.
    StartTls,
    /// Stream the message through a [`DotStuffer`](super::DotStuffer), write
    /// it, then call [`body_sent`](super::ClientSession::body_sent) before
    /// passing any later server bytes to the session.
    SendBody,
    /// The hello is done (in TLS, or without it) and the session waits
    /// for the shell's verdict on the connection before MAIL: call
    /// [`tls_checked`](super::ClientSession::tls_checked). Only with
    /// `ClientConfig::check_tls`.
    CheckTls {
        /// The server offered STARTTLS (and it was not refused or skipped).
        starttls_offered: bool,
    },
    /// A line for a `sendmail -v` style transcript.
    Transcript(TranscriptLine),
    /// The session is over. Any `Send` before this one (QUIT) must still be
    /// written; then the connection may be closed without waiting for 221.
    Done(Outcome),
}

/// One transcript line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TranscriptLine {
    /// A command we sent, without its line end (`.` for the end of DATA).
    Sent(String),
    /// A reply line as received, without its line end.
    Received(String),
}

/// As `sendmail -v` prints it: `>>> EHLO host`, server lines verbatim.
impl fmt::Display for TranscriptLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sent(cmd) => write!(f, ">>> {cmd}"),
            Self::Received(line) => f.write_str(line),
        }
    }
}

/// What the session waits for; the shell picks its timeout from this
/// (sendmail's `Timeout.*` option in brackets).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// The 220 greeting (`initial`).
    Greeting,
    /// The EHLO or HELO reply (`helo`).
    Helo,
    /// The reply to STARTTLS (`misc`).
    StartTls,
    /// The shell's TLS handshake (`starttls`).
    TlsHandshake,
    /// The reply to MAIL (`mail`).
    Mail,
    /// A reply to RCPT (`rcpt`).
    Rcpt,
    /// The reply to DATA (`datainit`).
    DataInit,
    /// The shell is writing the body (`datablock`).
    DataBlock,
    /// The reply to the final dot, or in LMTP the replies, one per
    /// accepted recipient (`datafinal`).
    DataFinal,
    /// QUIT was sent and `Done` emitted; a 221 may still arrive (`quit`).
    Quit,
    /// Nothing more will happen; close the connection.
    Done,
}

/// The result for one recipient, as the queue records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecipientStatus {
    /// The server accepted the message for this recipient (2xx after DATA).
    Delivered,
    /// Try again later (4xx, or anything that went wrong on the way).
    TempFail,
    /// Bounce (5xx).
    PermFail,
}

impl RecipientStatus {
    /// 2xx → delivered, 5xx → permanent, anything else → temporary.
    pub fn from_code(code: u16) -> Self {
        match code / 100 {
            2 => Self::Delivered,
            5 => Self::PermFail,
            _ => Self::TempFail,
        }
    }
}

/// One recipient's result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecipientResult {
    /// The address, as given in the envelope.
    pub address: String,
    /// The reply that decided it (real or synthetic).
    pub reply: ServerReply,
    /// What the queue should do.
    pub status: RecipientStatus,
    /// The command `reply` answered (`RCPT To:<a@b> NOTIFY=…`, a MAIL
    /// command, `DATA`), as sent; `None` for a reply Postern made itself
    /// or one to the greeting, EHLO or STARTTLS.
    pub command: Option<String>,
}

/// How the session ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// One result per envelope recipient, in envelope order.
    pub recipients: Vec<RecipientResult>,
    /// The extensions of the last successful EHLO (`None` after HELO or
    /// when no EHLO succeeded).
    pub extensions: Option<Extensions>,
    /// The transaction ran over TLS.
    pub tls: bool,
    /// Set when the server broke the protocol; every recipient still
    /// unresolved then got a temporary failure.
    pub protocol_error: Option<String>,
}
