//! What a server session asks of its shell, and what the shell answers.
//!
//! The session never does I/O: it tells the shell to send bytes, to append
//! message text to the message file, to start TLS or to close, and it asks
//! questions whose answers come from elsewhere (policy, the queue runner).
//! While a question is outstanding the session reads no further input,
//! which gives pipelining its back-pressure for free (OpenSMTPD's
//! check/proceed seam).

use crate::address::{Mailbox, ReversePath};
use crate::params::{BodyType, MailParams, RcptParams};
use crate::reply::Reply;
use crate::tls_info::TlsInfo;

/// The next thing the shell must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Write these bytes to the client (replies, possibly several).
    Send(Vec<u8>),
    /// Answer this with [`Session::answer`](super::Session::answer).
    Ask(Question),
    /// Append these bytes to the message being received.
    MessageData(Vec<u8>),
    /// Throw the message being received away (it was refused).
    AbortMessage,
    /// Perform the TLS handshake now, then call `tls_started` or `tls_failed`.
    StartTls,
    /// Something worth logging.
    Event(Event),
    /// Wait this long before going on (the session's slowdowns against
    /// address harvesting and recipient floods, as sendmail sleeps: the
    /// replies before this were already sent).
    Pause(std::time::Duration),
    /// Hold the greeting (`FEATURE(greet_pause)`): wait up to this long
    /// for the client to send anything, without reading it, then call
    /// [`Session::greet`](super::Session::greet) with how long into the
    /// wait it spoke, if it did.
    GreetPause(std::time::Duration),
    /// Close the connection once everything before this was sent.
    Close,
}

/// A question the session cannot answer itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Question {
    /// May this sender send? `Accept` gives sendmail's `Sender ok`.
    Sender {
        /// MAIL FROM's path.
        path: ReversePath,
        /// Its parameters.
        params: MailParams,
    },
    /// May mail go to this recipient? `Accept` gives `Recipient ok`.
    Recipient {
        /// RCPT TO's path.
        path: Mailbox,
        /// Its parameters.
        params: RcptParams,
    },
    /// HELO or EHLO with a valid name (asked when `ask_hello` is set: the
    /// mail filters see it). `Accept` greets; a 4xx or 5xx `Reply`
    /// greets too, then answers every later command but QUIT, HELO,
    /// EHLO, NOOP and RSET (sendmail's null server, as after a mail
    /// filter refused HELO); a 421 is sent at once and closes.
    Hello {
        /// The name the client gave.
        name: String,
        /// EHLO rather than HELO.
        extended: bool,
    },
    /// A command the session does not know, as the client sent it (asked
    /// when `ask_unknown` is set: the mail filters see it). `Accept`
    /// gives the usual `500 5.5.1 Command unrecognized`; a 4xx or 5xx
    /// `Reply` is sent instead. Either counts as a bad command.
    Unknown(String),
    /// VRFY: who is this? Answer with `Addresses` or `Reply`.
    Vrfy(String),
    /// EXPN: what does this list expand to? Answer with `Addresses` or `Reply`.
    Expn(String),
    /// ETRN: start a queue run for this node, `@domain` or `#queue`.
    /// Answer with `Reply`.
    Etrn(String),
    /// DATA: open a message file. `Accept` sends the 354.
    OpenMessage,
    /// The message ended cleanly: make it durable. Answer with `Queued`
    /// only once it is (DESIGN §3), or `Reply` to refuse it.
    Commit(Box<Envelope>),
    /// AUTH: start this mechanism.
    Auth {
        /// The mechanism, upper case.
        mechanism: String,
        /// The initial response, when the client gave one (`=` is empty).
        initial_response: Option<String>,
    },
    /// The client's reply to a 334 challenge.
    AuthResponse(String),
    /// Which SASL mechanisms may be offered (asked once, at the first
    /// EHLO or AUTH, when `auth_from_shell` is set). Answer with
    /// `AuthMechanisms`.
    AuthMechanisms,
}

/// One address in a VRFY or EXPN answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedAddress {
    /// The full name (GECOS), if known.
    pub full_name: Option<String>,
    /// `user@host`, without angle brackets.
    pub address: String,
}

/// The shell's answer to the outstanding question.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Yes: the session sends its usual positive reply.
    Accept,
    /// Send this reply instead (a refusal, or the whole answer for ETRN).
    Reply(Reply),
    /// VRFY/EXPN result; `definitive` VRFY answers get 250, others 252
    /// (sendmail's M_VRFY250 mailer flag).
    Addresses {
        /// The addresses, one reply line each.
        addresses: Vec<VerifiedAddress>,
        /// The mailer vouches for the address.
        definitive: bool,
    },
    /// The message is durable under this queue ID.
    Queued {
        /// The queue ID for `250 2.0.0 <id> Message accepted for delivery`.
        queue_id: crate::QueueId,
    },
    /// AUTH: send `334 <challenge>` (already base64) and wait for a response.
    AuthChallenge(String),
    /// AUTH failed (wrong credentials): send this reply (`535 5.7.8 …`).
    /// The session counts failures, answers each later than the last, and
    /// closes at `auth_max_failures`.
    AuthFailed(Reply),
    /// The mechanisms to offer, and those of them that wait for STARTTLS.
    AuthMechanisms {
        /// Offered, in order; empty: no AUTH.
        offered: Vec<String>,
        /// Plain-text ones, under AuthOptions `p`.
        tls_only: Vec<String>,
    },
    /// AUTH succeeded for this identity.
    AuthSuccess {
        /// The authenticated identity (sendmail's `{auth_authen}`).
        identity: String,
    },
}

/// A finished, clean message transaction, handed over for commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// The HELO/EHLO name, if the client gave one.
    pub helo: Option<String>,
    /// `SMTP`, `ESMTP`, `ESMTPS`, `ESMTPA` or `ESMTPSA` (for Received:).
    pub protocol: &'static str,
    /// MAIL FROM.
    pub reverse_path: ReversePath,
    /// MAIL FROM's parameters.
    pub mail_params: MailParams,
    /// Accepted recipients, in order.
    pub recipients: Vec<(Mailbox, RcptParams)>,
    /// Octets received.
    pub size: u64,
    /// Declared body type.
    pub body: Option<BodyType>,
    /// `X-Authentication-Warning:` texts to add (authwarnings).
    pub auth_warnings: Vec<String>,
    /// The TLS macros, when the message came over TLS.
    pub tls: Option<TlsInfo>,
    /// The AUTH identity, when the client authenticated.
    pub authenticated: Option<String>,
}

/// Something the shell should log, in sendmail's words where it has them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A command as received (LogLevel 15: `<-- <cmd>`).
    Command(String),
    /// VRFY/EXPN/ETRN refused by PrivacyOptions: `<client>: VRFY <arg> [rejected]`.
    Refused {
        /// The verb as the client wrote it, upper case.
        verb: &'static str,
        /// The argument.
        arg: String,
    },
    /// VRFY or EXPN about to be answered (sendmail's LogLevel 6 line
    /// `<client>: VRFY <arg>`).
    Verify {
        /// `VRFY` or `EXPN`.
        verb: &'static str,
        /// The argument, as the client wrote it.
        arg: String,
    },
    /// The client repeats a command past sendmail's limit, and its
    /// replies slow down from now on: `<client>: possible SMTP attack:
    /// command=VRFY, count=6`.
    PossibleAttack {
        /// The command that reached the limit (`VRFY`, `EXPN`).
        command: &'static str,
        /// How many such commands so far.
        count: u32,
    },
    /// ETRN accepted for an answer from the queue (sendmail's LogLevel 6
    /// line `<client>: ETRN <arg>`).
    Etrn {
        /// The argument, as the client wrote it.
        arg: String,
    },
    /// A command the client must not pipeline behind had input queued
    /// behind it: `rejecting <phase> from <client> due to traffic before response`.
    PipeliningViolation {
        /// `commands after EHLO`, `DATA`, …
        phase: &'static str,
    },
    /// Plaintext queued behind STARTTLS was thrown away (CVE-2011-0411).
    DiscardedAfterStartTls {
        /// How many bytes.
        bytes: usize,
    },
    /// A message was refused for its line ends or NULs (SMTP smuggling).
    BadLineEnds {
        /// The reply that was sent.
        reply: String,
    },
    /// The session ended on too many bad commands.
    TooManyBadCommands,
    /// AuthMaxFailures failed AUTH attempts: the session was closed.
    TooManyAuthFailures {
        /// Failed attempts.
        failures: u32,
    },
    /// A line longer than any command could be.
    CommandTooLong,
    /// The client was silent past the timeout.
    Timeout,
    /// The client spoke before the greeting (greet_pause): the greeting
    /// became `554` and commands are refused (sendmail's `rejecting
    /// commands from <host> [<ip>] due to pre-greeting traffic after N
    /// seconds`).
    PreGreetingTraffic {
        /// How long into the pause the first bytes came.
        after: std::time::Duration,
    },
    /// BadRcptThrottle was reached: from now on each RCPT waits a second
    /// (sendmail's `<client>: Possible SMTP RCPT flood, throttling.`,
    /// once per session).
    RcptFlood,
    /// The message was larger than MaxMessageSize (sendmail's `message
    /// size (N) exceeds maximum (M)`).
    MessageTooBig {
        /// Octets received.
        size: u64,
        /// MaxMessageSize.
        max: u64,
    },
}
