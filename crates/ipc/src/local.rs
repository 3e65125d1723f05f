//! Local delivery as the mailbox's owner (DESIGN §1): the delivery client
//! asks master for a local delivery agent; master, the one process that
//! can change uid, resolves the user, forks and execs
//! `posternd --local-delivery`, which takes the user's uid and writes the
//! mailbox; the agent reports straight back to the delivery client on a
//! socket the delivery client made and sent along.
//!
//! | step | frame | descriptors |
//! | --- | --- | --- |
//! | delivery client → master | [`DeliveryToMaster::Local`] | the message (read-only), the agent's end of the report socket |
//! | master → agent (a pipe, the agent's fd 5) | [`AgentJob`] | — (the message is the agent's fd 4, the report socket its fd 3) |
//! | agent → delivery client | [`AgentReport`] | — |
//!
//! What the delivery client says is only a request: master decides whose
//! uid and which mailbox from its own password database and settings.

use serde::{Deserialize, Serialize};

use crate::{LocalTarget, RecipientStatus};
use postern_smtp::QueueId;

/// Frame limit between master and the delivery client, and for an
/// agent's job and report.
pub const LOCAL_LIMIT: usize = 1 << 20;

/// delivery client → master.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeliveryToMaster {
    /// First frame: the sender's protocol version.
    Hello {
        /// [`crate::PROTOCOL_VERSION`] of the sender.
        version: u32,
    },
    /// Start an agent for one user's recipients of one message. Two
    /// descriptors travel with the frame: the message (read-only), then
    /// the socket the agent reports on.
    Local(LocalRequest),
}

/// master → delivery client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MasterToDelivery {
    /// First frame: the sender's protocol version.
    Hello {
        /// [`crate::PROTOCOL_VERSION`] of the sender.
        version: u32,
    },
}

/// What the delivery client asks for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalRequest {
    /// The message, for the log.
    pub queue_id: QueueId,
    /// The local user (a name that passed the routing checks); for a file
    /// or program target, its address (`/path` or `|command`).
    pub user: String,
    /// A file or program target an alias named, with the user it runs as
    /// (master checks the aliases say so before it runs anything).
    pub target: Option<LocalTarget>,
    /// The envelope sender (empty for `<>`), for `Return-Path:` and the
    /// mbox `From ` line.
    pub sender: String,
    /// The recipient addresses this delivery settles.
    pub recipients: Vec<String>,
    /// The committed length of the message: all that is read.
    pub size: u64,
}

/// Where the agent writes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MailboxTarget {
    /// `<dir>/<user>/Maildir/`.
    Maildir {
        /// MailboxDirectory.
        dir: std::path::PathBuf,
    },
    /// `<dir>/<user>`, an mbox file.
    Mbox {
        /// MailboxDirectory (`/var/mail` for sendmail's place).
        dir: std::path::PathBuf,
    },
    /// `<home>/Maildir/`.
    HomeMaildir,
    /// A file an alias names: appended to in mbox format.
    File {
        /// The file.
        path: std::path::PathBuf,
    },
    /// A program an alias names: run with `/bin/sh -c`, the message on
    /// its standard input.
    Program {
        /// The command, without its `|`.
        command: String,
    },
}

/// master → agent: everything the agent acts on, decided by master.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentJob {
    /// The message, for the log.
    pub queue_id: QueueId,
    /// The mailbox's name (the user name; `postmaster` or `root` too).
    pub mailbox: String,
    /// The uid to write as.
    pub uid: u32,
    /// The primary gid to write as.
    pub gid: u32,
    /// Supplementary groups (the mail spool's group for dot-locking).
    pub groups: Vec<u32>,
    /// The user's home directory (for [`MailboxTarget::HomeMaildir`]).
    pub home: std::path::PathBuf,
    /// Where.
    pub target: MailboxTarget,
    /// The envelope sender, empty for `<>`.
    pub sender: String,
    /// The recipients the delivery settles.
    pub recipients: Vec<String>,
    /// The committed length of the message.
    pub size: u64,
    /// `$j`, for Maildir file names.
    pub hostname: String,
    /// Read the owner's `~/.forward` first (a mailbox of a user of its
    /// own, never a file or program, never root's or postmaster's).
    pub read_forward: bool,
}

/// Where a user's `.forward` sends a message instead (or as well).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Forward {
    /// An address, expanded as any recipient is.
    Address(String),
    /// A file, written as the user.
    File {
        /// The file.
        path: std::path::PathBuf,
        /// The user's uid.
        uid: u32,
        /// The user's gid.
        gid: u32,
    },
    /// A program, run as the user.
    Program {
        /// The command, without its `|`.
        command: String,
        /// The user's uid.
        uid: u32,
        /// The user's gid.
        gid: u32,
    },
}

/// agent → delivery client: one outcome for the whole delivery (one
/// mailbox written once), applied to every recipient of the request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentReport {
    /// Sent, deferred or failed.
    pub status: RecipientStatus,
    /// The reply for the log and the DSN (`250 2.0.0 Delivered`,
    /// `452 4.2.2 Mailbox full`).
    pub reply: String,
    /// With `Sent`: what the user's `.forward` sends the message on to
    /// (the queue adds these recipients); empty when it was delivered.
    pub forwarded: Vec<Forward>,
}

impl AgentReport {
    /// An outcome without forwarding.
    pub fn new(status: RecipientStatus, reply: impl Into<String>) -> Self {
        Self {
            status,
            reply: reply.into(),
            forwarded: Vec::new(),
        }
    }
}
