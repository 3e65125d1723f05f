//! Postern's queue: the spool under `QueueDirectory` and everything written
//! in it.
//!
//! Only the queue runner (unprivileged, the sole owner of the spool) links
//! this crate; no other process touches the spool, so nothing here locks
//! files against other writers. What the crate guarantees is durability:
//! [`Spool::commit`] returns only once a message is on stable storage, and a
//! crash at any instant leaves each message either uncommitted (the client
//! never saw `250`, [`Spool::recover`] sweeps the debris) or complete.
//!
//! - [`id`]: sendmail-like queue IDs, safe as file names, sortable by time.
//! - [`control`]: the control file (`qf`), a versioned line-oriented text
//!   format that `cat` can read, with a strict parser.
//! - [`spool`]: the directory layout, the commit protocol and recovery.
//! - [`received`]: the `Received:` header in sendmail's `cfhead.m4` layout.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod control;
mod control_parse;
pub mod id;
pub mod message_id;
pub mod received;
pub mod spool;

pub use control::{
    ControlFile, DsnDue, Generated, LocalTarget, ParseError, RecipientEntry, RecipientState,
    TargetKind,
};
pub use id::{QueueId, QueueIdGenerator};
pub use message_id::message_id;
pub use postern_smtp::params::{BodyType, DeliverBy, Ret};
pub use received::{received_header, ReceivedInfo, TlsLine};
pub use spool::{Pending, Recovery, Spool, SyncMethod};

/// Errors of reading a message back from the spool.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The file system failed (including "no such message": `NotFound`).
    #[error("queue I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The control file does not parse.
    #[error("control file {0}")]
    Parse(#[from] ParseError),
    /// The control file parses but cannot belong to this message.
    #[error("corrupt queue file {id}: {reason}")]
    Corrupt {
        /// The message the file was read for.
        id: QueueId,
        /// What is wrong with it.
        reason: String,
    },
}
