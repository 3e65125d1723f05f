//! The server side of SMTP as a state machine: bytes and answers in,
//! [`Output`]s out.
//!
//! The shell (the daemon's front process, or `sendmail -bs`) feeds what the
//! client sent to [`Session::receive`], drains [`Session::poll_output`], and
//! answers each [`Question`] with [`Session::answer`]. The session owns the
//! protocol: command syntax, sequencing (503s), PrivacyOptions, PIPELINING
//! flush points and synchronisation, the DATA rules, and the STARTTLS reset.
//! It owns no policy (who may relay, who exists), no clock and no socket.
//!
//! Replies are collected and sent as one write when the session runs out
//! of input or stops to wait: RFC 2920 §3.1 lets a server buffer replies as
//! long as it flushes whenever its input buffer is empty.

mod attack;
mod commands;
pub mod config;
mod greet_pause;
pub mod help;
mod info;
pub mod io;
mod replies;
mod secure;
mod throttle;
mod transaction;

use std::collections::VecDeque;
use std::time::Duration;

use crate::data::DataReceiver;
use crate::limits;
use crate::line::{InputBuffer, NextLine};
use crate::reply::Reply;
use crate::tls_info::TlsInfo;

pub use config::ServerConfig;
pub use help::HelpText;
pub use io::{Answer, Envelope, Event, Output, Question, VerifiedAddress};
pub use replies::{etrn_group_started, etrn_node_started, etrn_started, etrn_unknown_group};

use transaction::{Transaction, Waiting};

/// Misuse of the session by its shell (a bug in the caller, not the client).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// `answer` without an outstanding question, or the wrong kind of answer.
    #[error("answer does not match the outstanding question")]
    UnexpectedAnswer,
    /// `tls_started`/`tls_failed` when no STARTTLS was accepted.
    #[error("no TLS handshake was requested")]
    NoHandshakePending,
    /// Plaintext arrived between `220 Ready to start TLS` and the end of the
    /// handshake; it was discarded, and the connection must be closed.
    #[error("plaintext received during the TLS handshake")]
    PlaintextDuringHandshake,
}

/// What the session is reading.
#[derive(Debug)]
enum Mode {
    /// The greeting is held (greet_pause); input is kept for later.
    GreetPause,
    /// Command lines.
    Commands,
    /// Message text after 354.
    Data(DataReceiver),
    /// Nothing: 220 for STARTTLS went out, the shell is doing the handshake.
    /// Counts the plaintext bytes that arrived meanwhile.
    AwaitTls { stray: usize },
    /// A line answering a 334 AUTH challenge.
    AuthResponse,
    /// The session is over.
    Closed,
}

/// The client's HELO or EHLO.
#[derive(Clone, Debug)]
struct Greeted {
    name: String,
    extended: bool,
}

/// One SMTP server session.
#[derive(Debug)]
pub struct Session {
    cfg: ServerConfig,
    input: InputBuffer,
    outputs: VecDeque<Output>,
    unsent: Vec<u8>,
    mode: Mode,
    greeted: Option<Greeted>,
    tx: Option<Transaction>,
    waiting: Option<Waiting>,
    tls: Option<TlsInfo>,
    authenticated: Option<String>,
    verbose: bool,
    bad_commands: u32,
    /// HELO, VRFY, ETRN and NOOP commands so far, for the slowdown.
    repetitions: attack::Repetitions,
    /// Failed AUTH attempts so far.
    auth_failures: u32,
    /// Refused RCPTs so far (sendmail's n_badrcpts), for BadRcptThrottle.
    bad_rcpts: u32,
    /// The RCPT flood was logged (once per session, as sendmail).
    flood_logged: bool,
    /// sendmail's "null server": the client spoke before the greeting,
    /// or the access map refused it at connect, so every command but
    /// QUIT, HELO, EHLO, NOOP and RSET gets this reply.
    null_server: Option<Reply>,
}

impl Session {
    /// Starts a session; the greeting is the first output, or, with a
    /// greet pause, [`Output::GreetPause`] (then [`Session::greet`]).
    pub fn new(cfg: ServerConfig) -> Self {
        let mut session = Self {
            input: InputBuffer::default(),
            outputs: VecDeque::new(),
            unsent: Vec::new(),
            mode: Mode::Commands,
            greeted: None,
            tx: None,
            waiting: None,
            tls: None,
            authenticated: None,
            verbose: false,
            bad_commands: 0,
            repetitions: attack::Repetitions::default(),
            auth_failures: 0,
            bad_rcpts: 0,
            flood_logged: false,
            null_server: None,
            cfg,
        };
        session.null_server = session.cfg.connect_refusal.clone();
        if session.cfg.greet_pause.is_zero() {
            session.reply(replies::greeting(
                session.cfg.greeting_code,
                &session.cfg.greeting,
            ));
            session.flush();
        } else {
            session.mode = Mode::GreetPause;
            let pause = session.cfg.greet_pause;
            session.outputs.push_back(Output::GreetPause(pause));
        }
        session
    }

    /// Feeds bytes received from the client.
    pub fn receive(&mut self, bytes: &[u8]) {
        match &mut self.mode {
            Mode::Closed => {}
            // The client must wait for the handshake; anything it sends in
            // plaintext now is either a bug or an injection attempt.
            Mode::AwaitTls { stray } => *stray += bytes.len(),
            // Read before the greeting: answered once `greet` has said
            // whether the client talked first.
            Mode::GreetPause => self.input.extend(bytes),
            _ => {
                self.input.extend(bytes);
                self.drive();
            }
        }
    }

    /// The next thing to do, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// Answers the outstanding question.
    pub fn answer(&mut self, answer: Answer) -> Result<(), SessionError> {
        let waiting = self.waiting.take().ok_or(SessionError::UnexpectedAnswer)?;
        self.resume(waiting, answer)?;
        self.drive();
        Ok(())
    }

    /// The TLS handshake succeeded: forget everything learnt in plaintext
    /// (RFC 3207 §4.2) and wait for a new EHLO.
    pub fn tls_started(&mut self, info: TlsInfo) -> Result<(), SessionError> {
        let Mode::AwaitTls { stray } = self.mode else {
            return Err(SessionError::NoHandshakePending);
        };
        if stray > 0 {
            self.close();
            return Err(SessionError::PlaintextDuringHandshake);
        }
        self.tls = Some(info);
        self.greeted = None;
        self.repetitions.forget_hellos();
        self.tx = None;
        self.authenticated = None;
        self.verbose = false;
        self.mode = Mode::Commands;
        self.drive();
        Ok(())
    }

    /// The TLS handshake failed: sendmail drops the connection.
    pub fn tls_failed(&mut self) -> Result<(), SessionError> {
        if !matches!(self.mode, Mode::AwaitTls { .. }) {
            return Err(SessionError::NoHandshakePending);
        }
        self.close();
        Ok(())
    }

    /// The client stayed silent longer than [`Session::current_timeout`].
    pub fn timed_out(&mut self) {
        if matches!(self.mode, Mode::Closed) {
            return;
        }
        if matches!(self.mode, Mode::AwaitTls { .. }) {
            // The handshake never finished: a plaintext 421 now would
            // land in the middle of it. Closed as a failed handshake is.
            self.event(Event::Timeout);
            self.close();
            return;
        }
        self.event(Event::Timeout);
        let reply = replies::timeout(&self.cfg.hostname, &self.cfg.client);
        self.reply(reply);
        if matches!(self.mode, Mode::Data(_)) {
            self.outputs.push_back(Output::AbortMessage);
        }
        self.close();
    }

    /// How long the client may stay silent now (Timeout.datablock inside a
    /// message, Timeout.command otherwise).
    pub fn current_timeout(&self) -> Duration {
        match self.mode {
            Mode::Data(_) => self.cfg.datablock_timeout,
            _ => self.cfg.command_timeout,
        }
    }

    /// True once the session has ended.
    pub fn is_closed(&self) -> bool {
        matches!(self.mode, Mode::Closed)
    }

    /// True when a question is waiting for its answer.
    pub fn is_waiting(&self) -> bool {
        self.waiting.is_some()
    }

    /// The TLS macros, once STARTTLS completed.
    pub fn tls(&self) -> Option<&TlsInfo> {
        self.tls.as_ref()
    }

    /// The HELO/EHLO name, if any.
    pub fn helo_name(&self) -> Option<&str> {
        self.greeted.as_ref().map(|g| g.name.as_str())
    }

    /// The AUTH identity, once the client authenticated.
    pub fn auth_identity(&self) -> Option<&str> {
        self.authenticated.as_deref()
    }

    /// The current transaction's X-Authentication-Warning texts
    /// (authwarnings), known from MAIL on.
    pub fn auth_warnings(&self) -> &[String] {
        self.tx
            .as_ref()
            .map_or(&[], |tx| tx.auth_warnings.as_slice())
    }

    /// True after VERB.
    pub fn is_verbose(&self) -> bool {
        self.verbose
    }

    /// sendmail's `$r` for the Received: header.
    pub fn protocol(&self) -> &'static str {
        match (
            &self.greeted,
            self.tls.is_some(),
            self.authenticated.is_some(),
        ) {
            (Some(g), false, false) if !g.extended => "SMTP",
            (_, false, false) => "ESMTP",
            (_, true, false) => "ESMTPS",
            (_, false, true) => "ESMTPA",
            (_, true, true) => "ESMTPSA",
        }
    }

    /// Reads input until it runs out, a question is asked or the session
    /// closes, then flushes the collected replies.
    fn drive(&mut self) {
        while self.waiting.is_none() {
            let progressed = match self.mode {
                Mode::Commands => self.next_command(limits::MAX_BUFFERED_LINE),
                Mode::AuthResponse => self.next_command(limits::AUTH_LINE),
                Mode::Data(_) => self.read_data(),
                Mode::GreetPause | Mode::AwaitTls { .. } | Mode::Closed => false,
            };
            if !progressed {
                break;
            }
        }
        self.flush();
    }

    /// Handles one line if a whole one is there; false if not.
    fn next_command(&mut self, max_buffered: usize) -> bool {
        match self.input.next_line(max_buffered) {
            NextLine::Line(line) => {
                if matches!(self.mode, Mode::AuthResponse) {
                    self.auth_response(line);
                } else {
                    self.command(line);
                }
                true
            }
            NextLine::Incomplete => false,
            NextLine::TooLong => {
                self.event(Event::CommandTooLong);
                let reply = replies::command_too_long(&self.cfg.hostname, &self.cfg.client);
                self.reply(reply);
                self.close();
                false
            }
        }
    }

    /// Passes waiting message text on; false when it needs more input.
    fn read_data(&mut self) -> bool {
        let Mode::Data(rx) = &mut self.mode else {
            return false;
        };
        if self.input.is_empty() {
            return false;
        }
        let mut text = Vec::new();
        let fed = rx.feed(self.input.pending(), &mut text);
        self.input.consume(fed.consumed);
        if !text.is_empty() {
            self.outputs.push_back(Output::MessageData(text));
        }
        if fed.done {
            let summary = rx.summary();
            self.mode = Mode::Commands;
            self.end_of_data(summary);
        }
        true
    }

    /// Queues a reply for the next flush.
    fn reply(&mut self, reply: Reply) {
        reply.write_to(&mut self.unsent);
    }

    fn event(&mut self, event: Event) {
        self.outputs.push_back(Output::Event(event));
    }

    /// Sends what is collected, then has the shell wait `delay`.
    fn pause(&mut self, delay: Duration) {
        if !delay.is_zero() {
            self.flush();
            self.outputs.push_back(Output::Pause(delay));
        }
    }

    fn ask(&mut self, question: Question, waiting: Waiting) {
        self.outputs.push_back(Output::Ask(question));
        self.waiting = Some(waiting);
    }

    /// Sends the collected replies, if any.
    fn flush(&mut self) {
        if !self.unsent.is_empty() {
            let bytes = std::mem::take(&mut self.unsent);
            self.outputs.push_back(Output::Send(bytes));
        }
    }

    /// Sends what is collected, then asks the shell to close.
    fn close(&mut self) {
        self.flush();
        self.input.discard();
        self.waiting = None;
        self.mode = Mode::Closed;
        self.outputs.push_back(Output::Close);
    }
}
