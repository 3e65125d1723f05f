//! Sans-IO SMTP for Postern: bytes in, replies and events out.
//!
//! This crate is the protocol and nothing else. It has no sockets, no
//! clocks, no files, no TLS and no threads; the daemon's processes and the
//! `sendmail -bs` command wrap it in whatever I/O they have. That one
//! decision is what lets every rule of the protocol (the 503s, the
//! PrivacyOptions replies, the end-of-data rule that stops SMTP smuggling,
//! the plaintext discarded at STARTTLS) be tested byte for byte in memory,
//! with transcripts a reviewer can read, and fuzzed without a network.
//!
//! - [`server::Session`]: the server side, fed with what the client sent;
//!   it asks its shell questions ([`server::Question`]) for everything that
//!   is policy rather than protocol.
//! - [`client`]: the delivery side, fed with what the server replied.
//! - Building blocks shared by both: [`command`] (the command table),
//!   [`address`] (RFC 5321 paths), [`params`] (ESMTP parameters),
//!   [`data`] (DATA framing), [`reply`] (replies with enhanced status
//!   codes), [`privacy`] (sendmail's PrivacyOptions), [`xtext`], [`date`]
//!   (RFC 5322 dates), [`queue_id`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod address;
pub mod client;
pub mod command;
pub mod data;
pub mod date;
pub mod etrn;
pub mod limits;
pub mod line;
pub mod params;
pub mod privacy;
pub mod queue_id;
pub mod reply;
pub mod server;
pub mod tls_info;
pub mod xtext;

pub use privacy::PrivacyFlags;
pub use queue_id::QueueId;
pub use reply::{EnhancedCode, Reply};
pub use tls_info::{TlsInfo, Verify};
