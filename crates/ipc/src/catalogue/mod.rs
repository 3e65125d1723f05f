//! Every message that crosses a process boundary, one enum per channel
//! direction (OpenSMTPD's `imsg_type`, typed). Nothing else defines wire
//! types. Each channel starts with `Hello { version }` in both directions;
//! a peer with another [`PROTOCOL_VERSION`] is disconnected.
//!
//! Strings here come from the network through an unprivileged process: the
//! receiver validates them before it writes them anywhere.
//!
//! This file has the channels between the daemon's processes and the
//! envelope a front commits; `delivery.rs` the delivery client's jobs and
//! reports; `control.rs` the control socket's requests and replies;
//! `keys.rs` the key holder's.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use postern_smtp::params::{BodyType, DeliverBy, Notify, Orcpt, Ret};
use postern_smtp::QueueId;

mod control;
mod delivery;
mod keys;

pub use control::*;
pub use delivery::*;
pub use keys::*;

/// Bumped whenever a message below changes shape.
pub const PROTOCOL_VERSION: u32 = 16;

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
