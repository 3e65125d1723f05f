//! Every message that crosses a process boundary, one enum per channel
//! direction (OpenSMTPD's `imsg_type`, typed). Nothing else defines wire
//! types. Each channel starts with `Hello { version }` in both directions;
//! a peer with another [`PROTOCOL_VERSION`] is disconnected.
//!
//! Strings here come from the network through an unprivileged process: the
//! receiver validates them before it writes them anywhere.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use postern_smtp::params::{BodyType, DeliverBy, Notify, Orcpt, Ret};
use postern_smtp::QueueId;

use crate::Sysexit;

/// Bumped whenever a message below changes shape.
pub const PROTOCOL_VERSION: u32 = 15;

/// front → queue runner (socketpair made by master, one per connection).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FrontToQueue {
    /// First frame: the sender's protocol version.
    Hello {
        /// [`PROTOCOL_VERSION`] of the sender.
        version: u32,
    },
    /// DATA was accepted: create a message file and pass its descriptor.
    OpenMessage,
    /// The message is complete in the file: make it durable, then answer.
    Commit {
        /// The id `Opened` gave.
        queue_id: QueueId,
        /// The envelope to record.
        envelope: Box<MessageEnvelope>,
    },
    /// The message was refused or the client went away: drop the file.
    Abort {
        /// The id `Opened` gave.
        queue_id: QueueId,
    },
    /// ETRN: run the queue for this node, `@domain` or `#queue`.
    Etrn {
        /// The ETRN argument.
        argument: String,
    },
    /// RCPT to a local domain: does this local user exist? (The front is
    /// jailed where no user database can be read.)
    LocalUser {
        /// The local part, as the client wrote it.
        name: String,
    },
    /// VRFY or EXPN: who is this, or what does this list expand to? The
    /// queue runner applies PrivacyOptions itself (novrfy, noexpn, and
    /// restrictexpand, under which a front, whose client is never
    /// trusted, sees only an alias's first level). Answered with
    /// `Verified`, or `Refused` (`550 5.1.1 <x>... User unknown`).
    Verify {
        /// The argument as the client wrote it (one address, or several
        /// separated by commas).
        argument: String,
        /// EXPN (expand aliases); false for VRFY (an alias is shown as
        /// itself, never expanded).
        expand: bool,
    },
    /// AUTH: start an exchange with the authentication backend (any
    /// earlier unfinished one is forgotten). Answered with
    /// `AuthChallenge`, `AuthSuccess`, `AuthFailed` or `Refused`.
    Auth {
        /// The mechanism, upper case, one the Hello offered.
        mechanism: String,
        /// The initial response (base64) as the client sent it; `""` for
        /// `=`.
        initial_response: Option<String>,
        /// The session is under TLS (the front's claim: it decides
        /// nothing but whether plain-text mechanisms may be used, which
        /// the front enforces itself).
        tls: bool,
    },
    /// The client's (base64) answer to an `AuthChallenge`.
    AuthResponse {
        /// The line as the client sent it.
        response: String,
    },
    /// MAIL FROM was accepted: a transaction is in progress until its
    /// Commit or Abort. No answer. A queue runner that is shutting down
    /// (a reload) keeps such a front, and lets it send its message, for a
    /// grace period, rather than failing the transaction at DATA.
    Transaction,
}

/// queue runner → front.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueueToFront {
    /// First frame: the sender's protocol version, and the SASL
    /// mechanisms the session may offer (AuthMechanisms and the backend
    /// agree on them).
    Hello {
        /// [`PROTOCOL_VERSION`] of the sender.
        version: u32,
        /// Mechanisms to offer, in order; empty: no AUTH.
        auth_mechanisms: Vec<AuthMechanism>,
    },
    /// AUTH goes on: send `334 <challenge>` (base64).
    AuthChallenge {
        /// The challenge, base64.
        challenge: String,
    },
    /// AUTH succeeded: the queue runner now holds this front's client as
    /// authenticated (it relays, and its messages say so).
    AuthSuccess {
        /// The authenticated identity.
        user: String,
    },
    /// AUTH failed: wrong credentials (`535 5.7.8`).
    AuthFailed,
    /// A message file exists; its descriptor (write-only) travels with this frame.
    Opened {
        /// The new queue id.
        queue_id: QueueId,
    },
    /// The message is durable: the front may say 250.
    Committed {
        /// The queue id.
        queue_id: QueueId,
    },
    /// No: send this SMTP reply instead (`452 4.4.5 …`, `451 4.3.0 …`).
    Refused {
        /// Three-digit code.
        code: u16,
        /// Enhanced status code, `x.y.z`.
        enhanced: String,
        /// Reply text.
        text: String,
    },
    /// ETRN done: a queue run was started for this many messages.
    EtrnStarted {
        /// Messages scheduled.
        messages: u32,
    },
    /// The answer to `LocalUser`.
    LocalUser {
        /// True when mail for the name can be delivered here.
        known: bool,
    },
    /// The answer to `Verify`: one reply line per address.
    Verified {
        /// The addresses, in order.
        addresses: Vec<VerifiedAddress>,
        /// Every address is delivered here (sendmail's M_VRFY250 mailer
        /// flag, which its local, file and program mailers have): VRFY
        /// answers 250; otherwise 252.
        definitive: bool,
    },
}

/// A SASL mechanism a front may offer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthMechanism {
    /// The name, upper case (`PLAIN`).
    pub name: String,
    /// It sends the password in clear: under AuthOptions `p`, only
    /// after STARTTLS.
    pub plaintext: bool,
}

/// One address of a VRFY or EXPN answer, as sendmail's printvrfyaddr
/// writes it: `Full Name <address>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedAddress {
    /// The first field of the user's GECOS, for a local user that has one.
    pub full_name: Option<String>,
    /// `user@$j`, a remote address, a file's path, `|command` or
    /// `:include:/path`; without angle brackets.
    pub address: String,
}

/// master → queue runner.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MasterToQueue {
    /// First frame: the sender's protocol version.
    Hello {
        /// [`PROTOCOL_VERSION`] of the sender.
        version: u32,
    },
    /// A front was started; the queue runner's end of its channel travels
    /// with this frame. What the queue runner records about the client
    /// comes from here (master's `accept`), never from the front.
    NewFront {
        /// master's number for the connection, for logs.
        connection: u64,
        /// The client's address, as `accept` returned it.
        peer: SocketAddr,
        /// The listener's `Name=` (`MTA`, `MSA`).
        daemon: String,
    },
    /// Run every queued message now.
    RunQueue,
    /// Finish what is in progress and exit.
    Shutdown,
    /// A control request master has authorised; `Submit` carries the
    /// message descriptor.
    Control {
        /// master's number for the request, echoed in the reply.
        id: u64,
        /// Who asked.
        caller: Caller,
        /// What they asked.
        request: ControlRequest,
    },
}

/// queue runner → master.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueueToMaster {
    /// First frame: the sender's protocol version.
    Hello {
        /// [`PROTOCOL_VERSION`] of the sender.
        version: u32,
    },
    /// Startup recovery finished; the queue runner serves fronts now.
    Ready {
        /// Committed messages found in the spool.
        queued: u32,
    },
    /// The answer to a `Control` request.
    ControlReply {
        /// The request's number.
        id: u64,
        /// The answer, passed on to the tool.
        reply: ControlReply,
    },
}

/// queue runner → delivery client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueueToDelivery {
    /// First frame: the sender's protocol version.
    Hello {
        /// [`PROTOCOL_VERSION`] of the sender.
        version: u32,
    },
    /// Deliver this message; its data file (read-only) travels with the frame.
    Deliver(DeliveryJob),
    /// A queue run was asked for (`runq`, `ETRN`, SIGHUP's run): forget
    /// which servers were found unreachable, so that the messages now due
    /// are tried on them again at once (a client saying ETRN has just come
    /// up), as each of sendmail's queue runs starts without the last one's
    /// connection failures.
    ReleaseHeld,
    /// Finish the sessions in progress and exit.
    Shutdown,
}

/// delivery client → queue runner.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeliveryToQueue {
    /// First frame: the sender's protocol version.
    Hello {
        /// [`PROTOCOL_VERSION`] of the sender.
        version: u32,
    },
    /// The outcome of one job, every recipient accounted for.
    Done(DeliveryReport),
}

/// master → front factory (a socketpair made when master starts the
/// factory, on the factory's descriptor 3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MasterToFactory {
    /// First frame: the sender's protocol version.
    Hello {
        /// [`PROTOCOL_VERSION`] of the sender.
        version: u32,
    },
    /// Fork a front for this connection. Two descriptors travel with the
    /// frame: the client's socket, then the front's end of its channel to
    /// the queue runner.
    Accepted(AcceptedConnection),
    /// Fork no more fronts; exit once the last front this factory forked
    /// has exited (a newer factory serves new connections).
    Retire,
}

/// A connection master accepted, for a front to serve.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptedConnection {
    /// master's number for the connection.
    pub connection: u64,
    /// The client's address, as `accept` returned it.
    pub peer: SocketAddr,
    /// The listener's `Name=` (`MTA`, `MSA`).
    pub daemon: String,
    /// Local time's offset from UTC in seconds, for the greeting's and
    /// the Received: header's dates (fronts cannot read /etc/localtime).
    pub utc_offset: i32,
}

/// front factory → master.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FactoryToMaster {
    /// First frame: the sender's protocol version; the factory is ready
    /// to fork fronts.
    Hello {
        /// [`PROTOCOL_VERSION`] of the sender.
        version: u32,
    },
    /// A front serves this connection.
    Started {
        /// master's number for the connection.
        connection: u64,
        /// The front's pid.
        pid: i32,
    },
    /// No front could be forked for this connection (the client was
    /// dropped).
    NotStarted {
        /// master's number for the connection.
        connection: u64,
        /// Why.
        reason: String,
    },
    /// A front exited.
    Exited {
        /// master's number for the connection.
        connection: u64,
        /// The front's pid.
        pid: i32,
        /// It was killed by a signal that means a crash (SIGSEGV, SIGBUS,
        /// SIGILL, SIGFPE, SIGABRT, SIGSYS): master replaces the factory,
        /// so the next front has a fresh address-space layout.
        crashed: bool,
        /// How it ended, for the log (`exit 0`, `signal SIGSEGV`).
        status: String,
    },
}

/// The envelope of a received message, as the front saw it. Who the
/// client is (its address, the listener) is not in it: the queue runner
/// has that from master. The HELO name and protocol are the client's
/// claims, recorded as such.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageEnvelope {
    /// HELO/EHLO name.
    pub helo: Option<String>,
    /// `SMTP`, `ESMTP`, `ESMTPS`, …
    pub protocol: String,
    /// Reverse path without brackets; empty for `<>`.
    pub sender: String,
    /// DSN ENVID.
    pub envid: Option<String>,
    /// DSN RET.
    pub ret: Option<Ret>,
    /// BODY.
    pub body: Option<BodyType>,
    /// DELIVERBY.
    pub deliver_by: Option<DeliverBy>,
    /// The Message-ID header, for the `msgid=` of the log line.
    pub message_id: Option<String>,
    /// Accepted recipients.
    pub recipients: Vec<EnvelopeRecipient>,
    /// A mail filter quarantined the message, for this reason: it is
    /// queued held (`postern queue release` lets it go).
    pub quarantine: Option<String>,
    /// A mail filter discarded the message: accepted, logged, dropped.
    pub discard: bool,
}

/// One recipient of an envelope or a job.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeRecipient {
    /// The address, without brackets.
    pub address: String,
    /// DSN NOTIFY.
    pub notify: Option<Notify>,
    /// DSN ORCPT, decoded.
    pub orcpt: Option<Orcpt>,
    /// In a delivery job only: the recipient is a file or program target
    /// of an alias (`address` is the path, or `|command`), delivered with
    /// the controlling user's rights. The queue runner never takes this
    /// from a front or a submission (it builds control files from the
    /// address and DSN fields alone).
    pub target: Option<LocalTarget>,
}

/// A file or program target and its controlling user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LocalTarget {
    /// Append to the file named by the address.
    File {
        /// The controlling user's uid (never 0).
        uid: u32,
        /// Its gid.
        gid: u32,
    },
    /// Pipe to the command the address names after `|`.
    Program {
        /// The controlling user's uid (never 0).
        uid: u32,
        /// Its gid.
        gid: u32,
    },
}

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
