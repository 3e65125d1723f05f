//! The delivery client's jobs and reports (queue runner ↔ delivery
//! client).

use serde::{Deserialize, Serialize};

use postern_smtp::params::{DeliverBy, Ret};
use postern_smtp::QueueId;

use super::EnvelopeRecipient;

/// One delivery attempt for some recipients of one message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryJob {
    /// The queue runner's number for this job.
    pub job: u64,
    /// The message.
    pub queue_id: QueueId,
    /// Reverse path without brackets; empty for `<>`.
    pub sender: String,
    /// The recipients to try now.
    pub recipients: Vec<EnvelopeRecipient>,
    /// DSN ENVID.
    pub envid: Option<String>,
    /// DSN RET.
    pub ret: Option<Ret>,
    /// The body is 8-bit (BODY=8BITMIME).
    pub eight_bit: bool,
    /// Octets in the data file.
    pub size: u64,
    /// When the message arrived (unix seconds): DELIVERBY counts from it.
    pub arrival: u64,
    /// DELIVERBY as the sender asked it (the by-time from `arrival`).
    pub deliver_by: Option<DeliverBy>,
    /// Collect the SMTP transcript for `sendmail -v`.
    pub verbose: bool,
    /// Relay every recipient to this address (Postern's own MTA
    /// listener, for a local submission its mail filters must see),
    /// whatever its domain.
    pub through: Option<std::net::SocketAddr>,
}

/// What happened to a recipient.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecipientStatus {
    /// Delivered (2xx, or written to the mailbox).
    Sent,
    /// Try again later (4xx, connection trouble).
    TempFail,
    /// Give up (5xx).
    PermFail,
}

/// The result for one recipient.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientReport {
    /// The recipient address.
    pub address: String,
    /// The outcome.
    pub status: RecipientStatus,
    /// The reply that decided it, `250 2.0.0 …`, or a local reason.
    pub reply: String,
    /// Where it went, sendmail's `relay=` (`mx.example. [192.0.2.2]`).
    pub relay: String,
    /// sendmail's `mailer=` (`esmtp`, `relay`, `local`).
    pub mailer: String,
    /// The reply is the server's; false when it is Postern's own account
    /// of what happened (connection refused, a timeout, a routing error),
    /// which sendmail shows without a reply code (`Deferred: Connection
    /// refused by [127.0.0.1]`) and without `reply=`.
    pub peer: bool,
    /// The next hop offered DSN, so the recipient's NOTIFY, ORCPT, RET
    /// and ENVID went on with it and reporting success is its job; false
    /// for a next hop without DSN (a success is then `Action: relayed`),
    /// local deliveries and routing errors.
    pub dsn_passed_on: bool,
    /// The command the server's reply answered (`RCPT To:<a@b>`), for a
    /// bounce's transcript; `None` when the reply is Postern's own.
    pub command: Option<String>,
    /// A local user's `.forward` sent the message on to these (the queue
    /// runner adds them as recipients); empty otherwise.
    pub forwarded: Vec<crate::Forward>,
}

impl RecipientReport {
    /// Delivered (or tried) over SMTP, as opposed to the local mailer or a
    /// routing error; such a recipient's fate is in the session's
    /// `sendmail -v` dialogue.
    pub fn mailer_speaks_smtp(&self) -> bool {
        !matches!(self.mailer.as_str(), "local" | "error" | "")
    }
}

/// The outcome of one job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryReport {
    /// The job number.
    pub job: u64,
    /// The message.
    pub queue_id: QueueId,
    /// One report per recipient of the job.
    pub recipients: Vec<RecipientReport>,
    /// The SMTP dialogue, when the job asked for it (`sendmail -v`).
    pub transcript: Vec<String>,
}
