//! The control socket: what `mailq`, `runq`, `sendmail` and `postern`
//! ask master, and its answers.

use serde::{Deserialize, Serialize};

use postern_smtp::params::{BodyType, Ret};
use postern_smtp::QueueId;

use super::{EnvelopeRecipient, QueueToFront};
use crate::Sysexit;

/// The first and only frame a command-line tool sends on the control
/// socket: what it wants, and the protocol it speaks. Who is asking is not
/// in it: master reads that from the socket (SO_PEERCRED).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlHello {
    /// [`PROTOCOL_VERSION`] of the tool.
    pub version: u32,
    /// The request.
    pub request: ControlRequest,
}

/// What `mailq`, `runq`, `sendmail` and `postern` ask master for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ControlRequest {
    /// `mailq`, `sendmail -bp`: list the queue (restrictmailq applies).
    ListQueue,
    /// `runq`, `sendmail -q`: run the queue now, or the messages a
    /// selector picks (restrictqrun applies).
    RunQueue {
        /// `-qI`, `-qR`, `-qS`: only matching messages.
        selector: Option<QueueSelector>,
    },
    /// `postern queue show|hold|release|delete|requeue <qid>`.
    Queue {
        /// What to do.
        action: QueueAction,
        /// The message.
        queue_id: QueueId,
    },
    /// `sendmail`: queue the message in the attached descriptor (a file
    /// the tool wrote it to, read from its start).
    Submit(Submission),
    /// `sendmail -bv`: how would these addresses be delivered?
    Verify {
        /// The addresses.
        addresses: Vec<String>,
    },
    /// `sendmail -bs`'s VRFY (`expand` false) or EXPN: answered as a
    /// front's is (`ControlReply::SmtpVerified`), with the caller's trust
    /// deciding what restrictexpand hides.
    SmtpVerify {
        /// The argument as the client wrote it.
        argument: String,
        /// EXPN.
        expand: bool,
    },
}

/// sendmail's `-q[!]I|R|S<substring>` selectors.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueSelector {
    /// Which field.
    pub field: SelectorField,
    /// The substring to look for (case-insensitive).
    pub substring: String,
    /// `!`: messages that do NOT match.
    pub negate: bool,
}

/// The field a selector looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SelectorField {
    /// `-qI`: the queue ID.
    QueueId,
    /// `-qR`: any recipient.
    Recipient,
    /// `-qS`: the sender.
    Sender,
}

/// Operations on one queued message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueueAction {
    /// Print its control file and headers.
    Show,
    /// Keep it in the queue without trying it.
    Hold,
    /// Undo `Hold` and try it now.
    Release,
    /// Remove it from the queue.
    Delete,
    /// Try every recipient not yet delivered again, failed ones included.
    Requeue,
}

/// A message submitted on the command line. The tool has done the header
/// work as the caller (`-t`, Bcc:, From:, Date:); the queue runner parses
/// no header of the message.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submission {
    /// `-f`: the envelope sender (else the caller's own address).
    pub sender: Option<String>,
    /// The recipients: the command line's, or with `-t` the headers',
    /// each with its DSN NOTIFY (`-N`, or RCPT TO's NOTIFY= and ORCPT=
    /// under `-bs`), as a front's envelope carries them.
    pub recipients: Vec<EnvelopeRecipient>,
    /// `-V` (or MAIL FROM's ENVID= under `-bs`): DSN ENVID, decoded.
    pub envid: Option<String>,
    /// `-R` (or RET=): DSN RET.
    pub ret: Option<Ret>,
    /// `-B` (or BODY=).
    pub body: Option<BodyType>,
    /// `-t`: the recipients came from the headers (sendmail's `Received:`
    /// then names none in its `for` clause).
    pub from_headers: bool,
    /// The message's Message-Id, as the tool found it (for the log line);
    /// `None` when it has none, and the queue runner adds sendmail's
    /// `<YYYYMMDDhhmm.queue-id@$j>`.
    pub message_id: Option<String>,
    /// `-v`: deliver now and answer with the delivery's transcript
    /// (master turns this off for untrusted callers under restrictexpand).
    pub verbose: bool,
    /// Submitted through `sendmail -bs`: the sender came from MAIL FROM,
    /// not from `-f`.
    pub smtp: bool,
    /// Under `-bs`: the HELO/EHLO name and the protocol (`SMTP`, `ESMTP`),
    /// for the `Received:` header, as sendmail records them.
    pub session: Option<SmtpSession>,
}

/// What a `sendmail -bs` session said of itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmtpSession {
    /// The HELO or EHLO argument, if one was given.
    pub helo: Option<String>,
    /// `SMTP` after HELO, `ESMTP` after EHLO.
    pub protocol: String,
}

/// master's answer on the control socket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ControlReply {
    /// The queue, for mailq.
    Queue {
        /// QueueDirectory, as mailq prints it.
        directory: String,
        /// The messages, oldest first.
        entries: Vec<QueueEntry>,
    },
    /// Refused by PrivacyOptions (restrictmailq, restrictqrun) or the
    /// caller's rights: print `message` and exit with `exit_code` (77).
    Refused {
        /// sendmail's text.
        message: String,
        /// sendmail's exit status (NoPerm).
        exit_code: Sysexit,
    },
    /// Done; `message` may be empty.
    Done {
        /// What to print.
        message: String,
    },
    /// The message is queued.
    Submitted {
        /// Its queue ID.
        queue_id: QueueId,
    },
    /// `sendmail -v`: the message was queued and tried at once; this is
    /// what happened, as sendmail -v prints it.
    Transcript {
        /// Its queue ID.
        queue_id: QueueId,
        /// The SMTP dialogue and one `<rcpt>... Sent (…)` line per recipient.
        lines: Vec<String>,
        /// What the tool exits with, as sendmail -v does: `Ok` when every
        /// recipient was delivered or queued, else by the failure
        /// (`NoUser` for an unknown user, `NoHost`, `Unavailable`).
        exit_code: Sysexit,
    },
    /// The answer to `SmtpVerify`: `Verified` or `Refused`, as a front
    /// gets it.
    SmtpVerified {
        /// The queue runner's answer.
        answer: QueueToFront,
    },
    /// `sendmail -bv`: one line per address, as sendmail prints them
    /// (`user... deliverable: mailer local, user user`, `x... User
    /// unknown`), on standard output; `exit_code` is `NoUser` when an
    /// address is not deliverable, as sendmail's.
    Verified {
        /// The lines.
        message: String,
        /// What the tool exits with.
        exit_code: Sysexit,
    },
    /// It could not be done: print `message`, exit with `exit_code`.
    Failed {
        /// What went wrong.
        message: String,
        /// sendmail's exit status (DataErr, NoInput, Unavailable,
        /// Software, TempFail …).
        exit_code: Sysexit,
    },
}

/// One message as mailq shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueEntry {
    /// Queue ID.
    pub queue_id: QueueId,
    /// Size of the data file.
    pub size: u64,
    /// When it was queued (unix seconds).
    pub created: u64,
    /// The sender, without brackets (empty for `<>`).
    pub sender: String,
    /// BODY= of the message, if given.
    pub body: Option<BodyType>,
    /// Held by `postern queue hold` or a mail filter's quarantine.
    pub held: bool,
    /// The filter's reason for a quarantine.
    pub quarantine: Option<String>,
    /// Being delivered right now (mailq's `*`).
    pub in_progress: bool,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// The recipients not yet delivered, with their last reply.
    pub recipients: Vec<QueueRecipient>,
}

/// A recipient in a mailq listing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueRecipient {
    /// The address.
    pub address: String,
    /// `pending`, `deferred` or `failed`.
    pub state: String,
    /// The last reply, if any attempt was made.
    pub last_reply: Option<String>,
}

/// Who is asking, as master established from SO_PEERCRED, and what master
/// already decided about them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    /// Peer uid.
    pub uid: u32,
    /// Peer gid.
    pub gid: u32,
    /// The uid's user name (or the number).
    pub user: String,
    /// root, the queue owner or TrustedUser: may set the sender with -f
    /// without an X-Authentication-Warning.
    pub trusted: bool,
}
