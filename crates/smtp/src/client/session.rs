//! [`ClientSession`]: one outbound SMTP session delivering one message.
//!
//! Owns: the order of commands, what each reply means for each recipient,
//! STARTTLS sequencing and its response-injection defence. Does not own:
//! sockets, timers (the shell reads [`ClientSession::phase`] and calls
//! [`ClientSession::connection_lost`] on timeout), TLS, routing, retries.
//!
//! Flow: greeting 220 → EHLO (5xx → HELO) → STARTTLS when offered, allowed and
//! not yet encrypted → handshake by the shell → EHLO again with the
//! extensions forgotten → MAIL, RCPT…, DATA (one write with PIPELINING,
//! RFC 2920; else one command per reply) → body by the shell → final reply →
//! QUIT (the MAIL/RCPT/DATA part lives in `transaction.rs`). `Done` is
//! emitted right after QUIT is queued: nothing the 221 could say changes a
//! recipient's result, so the shell may close after writing it.
//!
//! LMTP (RFC 2033, `ClientConfig::protocol`): the same flow with LHLO for
//! EHLO (and no HELO fallback: a refused LHLO ends the session as a
//! refused greeting does), and after the final dot one reply per accepted
//! recipient, in RCPT order, each resolving its own recipient; the
//! transaction is over after the last one. A refused RCPT is answered
//! then, as in SMTP, and gets no reply after the dot.
//!
//! Connection reuse (`ClientConfig::keep_open`): a transaction that got
//! its final reply leaves the session idle instead of quitting, with
//! `Done` emitted as usual; the next message's envelope starts a new
//! transaction on the same connection (no RSET is needed after a final
//! reply, RFC 5321 §4.1.1.4), and `quit_idle` ends it. Any other ending
//! (a refused MAIL, no recipient accepted, a failure) still sends QUIT,
//! so an idle session is always in the server's initial state.
//!
//! Decisions:
//! - A reply that arrives before the command it would answer was written is
//!   a protocol error (the client-side twin of RFC 2920's sync points). In
//!   particular, bytes buffered behind `220` to STARTTLS are a response
//!   injection (CVE-2011-0411's twin, Exim CVE-2021-38371): the session fails
//!   and `StartTls` is never emitted. After the handshake the reader is
//!   replaced, so no pre-TLS byte can be read inside TLS.
//! - Protocol errors (malformed reply, unexpected code, the above) end the
//!   session without QUIT; unresolved recipients get the synthetic
//!   `451 4.5.0 SMTP protocol error: …` (TempFail).
//! - `421` at any point means the server is closing (RFC 5321 §3.8): it
//!   becomes every unresolved recipient's reply and no QUIT is sent.
//! - Connection lost: `421 4.4.2 Connection lost`; TLS handshake failure:
//!   `454 4.7.0 TLS handshake failed`. Both TempFail, no QUIT.
//! - STARTTLS refused (454/5xx): go on in clear text (opportunistic TLS).
//! - SIZE offered with a fixed limit below `size_hint`: every recipient gets
//!   `552 5.3.4 …` without MAIL being sent, as sendmail does.
//! - With PIPELINING, DATA is already sent when we learn that no RCPT was
//!   accepted. A 354 then (broken server) is a protocol error and the session
//!   ends without sending anything: the server is reading body text, so even
//!   QUIT would become message content, and closing mid-DATA makes it drop
//!   the transaction. The recipients keep their RCPT replies.
//! - Server bytes that arrive while the body is being sent are held until
//!   `body_sent`, so a shell that reads the final reply before telling us the
//!   body is out still works.

use super::commands;
use super::envelope::{ClientConfig, Envelope, EnvelopeError, Protocol, StartTlsPolicy};
use super::extensions::Extensions;
use super::outcome::{
    ClientOutput, Outcome, Phase, RecipientResult, RecipientStatus, TranscriptLine,
};
use super::reply_reader::{ReplyReader, ServerReply, MAX_REPLY_BYTES};
use super::transaction::{Expect, Rcpt};
use crate::reply::EnhancedCode;
use std::collections::VecDeque;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum State {
    Greeting,
    Ehlo,
    Helo,
    StartTls,
    TlsHandshake,
    /// Waiting for the shell's verdict on the connection (`CheckTls`).
    TlsCheck,
    /// MAIL/RCPT/DATA replies outstanding, listed in `expect`.
    Transaction,
    Body,
    DataFinal,
    /// A transaction is over and the connection is kept for the next.
    Idle,
    Quit,
    Done,
}

/// The delivery-side SMTP state machine. Feed it with
/// [`receive`](Self::receive) and the other inputs; drain
/// [`poll_output`](Self::poll_output) after each.
#[derive(Debug)]
pub struct ClientSession {
    pub(super) config: ClientConfig,
    pub(super) envelope: Envelope,
    pub(super) reader: ReplyReader,
    pub(super) state: State,
    pub(super) extensions: Option<Extensions>,
    pub(super) tls: bool,
    pub(super) pipelined: bool,
    pub(super) expect: VecDeque<Expect>,
    pub(super) rcpts: Vec<Rcpt>,
    /// For each recipient, the command whose reply resolved it, when a
    /// command did (for a bounce's transcript: `>>> RCPT To:<…>`).
    pub(super) resolved_by: Vec<Option<String>>,
    pub(super) output: VecDeque<ClientOutput>,
    pub(super) protocol_error: Option<String>,
    pub(super) done_emitted: bool,
}

impl ClientSession {
    /// A session waiting for the greeting. Refuses an envelope or HELO name
    /// that could break a command line.
    pub fn new(config: ClientConfig, envelope: Envelope) -> Result<Self, EnvelopeError> {
        config.validate()?;
        envelope.validate()?;
        Ok(Self {
            tls: config.already_tls,
            rcpts: vec![Rcpt::Pending; envelope.recipients.len()],
            resolved_by: vec![None; envelope.recipients.len()],
            config,
            envelope,
            reader: ReplyReader::new(),
            state: State::Greeting,
            extensions: None,
            pipelined: false,
            expect: VecDeque::new(),
            output: VecDeque::new(),
            protocol_error: None,
            done_emitted: false,
        })
    }

    /// The next action for the shell.
    pub fn poll_output(&mut self) -> Option<ClientOutput> {
        self.output.pop_front()
    }

    /// What the session is waiting for.
    pub fn phase(&self) -> Phase {
        match self.state {
            State::Greeting => Phase::Greeting,
            State::Ehlo | State::Helo => Phase::Helo,
            State::StartTls => Phase::StartTls,
            State::TlsHandshake | State::TlsCheck => Phase::TlsHandshake,
            State::Transaction => match self.expect.front() {
                Some(Expect::Rcpt(_)) => Phase::Rcpt,
                Some(Expect::Data) => Phase::DataInit,
                Some(Expect::Mail) | None => Phase::Mail,
            },
            State::Body => Phase::DataBlock,
            State::DataFinal => Phase::DataFinal,
            State::Quit => Phase::Quit,
            State::Idle | State::Done => Phase::Done,
        }
    }

    /// Bytes read from the server (clear text, or decrypted after STARTTLS).
    pub fn receive(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        match self.state {
            State::Done => {}
            // Nothing is outstanding: bytes now answer no command, and the
            // connection can carry no other message.
            State::Idle => self.state = State::Done,
            // The shell owns the socket for the handshake; clear text handed
            // to us now could only be an injected response.
            State::TlsHandshake => self.fail_protocol("clear text received during TLS handshake"),
            State::Body => {
                self.reader.feed(bytes);
                if self.reader.buffered_len() > MAX_REPLY_BYTES {
                    self.fail_protocol("server flooded the connection during DATA");
                }
            }
            _ => {
                self.reader.feed(bytes);
                self.process();
            }
        }
    }

    /// The TLS handshake succeeded: start over with EHLO (RFC 3207 §4.2).
    pub fn tls_started(&mut self) {
        if self.state != State::TlsHandshake {
            debug_assert!(false, "tls_started without StartTls");
            return;
        }
        self.tls = true;
        self.extensions = None;
        // A fresh reader: not one byte read before the handshake survives.
        self.reader = ReplyReader::new();
        self.state = State::Ehlo;
        self.write(vec![self.hello_command()]);
    }

    /// The shell's verdict after `CheckTls`: `None` lets the transaction
    /// start; a refusal (code, enhanced code, text) becomes every
    /// recipient's reply and the session ends with QUIT.
    pub fn tls_checked(&mut self, refusal: Option<(u16, EnhancedCode, &str)>) {
        if self.state != State::TlsCheck {
            debug_assert!(false, "tls_checked without CheckTls");
            return;
        }
        match refusal {
            None => self.start_transaction(),
            Some((code, enhanced, text)) => {
                let reply = ServerReply::synthetic(code, enhanced, text);
                self.resolve_unresolved(&reply);
                self.quit();
            }
        }
    }

    /// The TLS handshake failed: every recipient is deferred.
    pub fn tls_failed(&mut self) {
        if self.state != State::TlsHandshake {
            debug_assert!(false, "tls_failed without StartTls");
            return;
        }
        let reply = ServerReply::synthetic(454, EnhancedCode::new(4, 7, 0), "TLS handshake failed");
        self.resolve_unresolved(&reply);
        self.end();
    }

    /// The body and its terminator have been written.
    pub fn body_sent(&mut self) {
        if self.state != State::Body {
            debug_assert!(false, "body_sent without SendBody");
            return;
        }
        self.transcript(TranscriptLine::Sent(".".into()));
        self.state = State::DataFinal;
        self.process();
    }

    /// True after a transaction on a `keep_open` session: the connection
    /// may carry another message.
    pub fn is_idle(&self) -> bool {
        self.state == State::Idle
    }

    /// Starts the next message's transaction on an idle session. The
    /// envelope is checked as [`ClientSession::new`] checks it; `Done`
    /// follows for its recipients as for the first.
    pub fn next_transaction(&mut self, envelope: Envelope) -> Result<(), EnvelopeError> {
        if self.state != State::Idle {
            return Err(EnvelopeError::NotIdle);
        }
        envelope.validate()?;
        self.rcpts = vec![Rcpt::Pending; envelope.recipients.len()];
        self.resolved_by = vec![None; envelope.recipients.len()];
        self.envelope = envelope;
        self.protocol_error = None;
        self.done_emitted = false;
        self.start_transaction();
        Ok(())
    }

    /// Ends an idle session: QUIT is queued; no `Done` follows (its
    /// transaction had one).
    pub fn quit_idle(&mut self) {
        if self.state == State::Idle {
            self.quit();
        }
    }

    /// The peer closed, an I/O error occurred or a timeout expired.
    pub fn connection_lost(&mut self) {
        match self.state {
            State::Done => {}
            State::Idle => self.state = State::Done,
            State::Quit => self.state = State::Done,
            _ => {
                let reply =
                    ServerReply::synthetic(421, EnhancedCode::new(4, 4, 2), "Connection lost");
                self.resolve_unresolved(&reply);
                self.end();
            }
        }
    }

    fn process(&mut self) {
        while matches!(
            self.state,
            State::Greeting
                | State::Ehlo
                | State::Helo
                | State::StartTls
                | State::Transaction
                | State::DataFinal
                | State::Quit
        ) {
            match self.reader.next_reply() {
                Ok(Some(reply)) => {
                    for line in reply.wire_lines() {
                        self.transcript(TranscriptLine::Received(line));
                    }
                    self.on_reply(reply);
                }
                Ok(None) => break,
                Err(_) if self.state == State::Quit => self.state = State::Done,
                Err(e) => self.fail_protocol(&format!("malformed reply: {e}")),
            }
        }
    }

    fn on_reply(&mut self, reply: ServerReply) {
        if self.state == State::Quit {
            self.state = State::Done;
            return;
        }
        if reply.code == 421 {
            self.resolve_unresolved(&reply);
            self.end();
            return;
        }
        match self.state {
            State::Greeting if reply.code == 220 => {
                self.state = State::Ehlo;
                self.send(vec![self.hello_command()]);
            }
            State::Ehlo if reply.is_positive() => {
                self.extensions = Some(Extensions::from_ehlo(&reply));
                self.after_hello();
            }
            // sendmail falls back to HELO on 5xx only; 4xx defers. LMTP
            // has no HELO: a refused LHLO fails like a refused greeting.
            State::Ehlo if reply.is_permanent() && self.config.protocol == Protocol::Smtp => {
                self.state = State::Helo;
                self.send(vec![commands::helo(&self.config.helo_name)]);
            }
            State::Helo if reply.is_positive() => {
                self.extensions = None;
                self.after_hello();
            }
            State::StartTls if reply.code == 220 => {
                // At this point there must not be any pending server bytes.
                if self.reader.has_buffered() {
                    self.fail_protocol("data after 220 to STARTTLS (response injection)");
                } else {
                    self.state = State::TlsHandshake;
                    self.output.push_back(ClientOutput::StartTls);
                }
            }
            State::StartTls if reply.is_failure() => self.hello_done(false),
            State::Transaction => self.on_transaction_reply(reply),
            State::DataFinal if reply.is_positive() || reply.is_failure() => {
                match self.config.protocol {
                    // sendmail's transcripts name the DATA command for the
                    // reply to the message's end too.
                    Protocol::Smtp => {
                        self.resolve_unresolved_by(&reply, "DATA");
                        self.transaction_over();
                    }
                    Protocol::Lmtp => self.on_lmtp_data_reply(reply),
                }
            }
            State::Greeting | State::Ehlo | State::Helo if reply.is_failure() => {
                self.resolve_unresolved(&reply);
                self.quit();
            }
            _ => self.fail_protocol(&format!("unexpected reply {}", reply.code)),
        }
    }

    /// EHLO, or LHLO for LMTP.
    fn hello_command(&self) -> String {
        match self.config.protocol {
            Protocol::Smtp => commands::ehlo(&self.config.helo_name),
            Protocol::Lmtp => commands::lhlo(&self.config.helo_name),
        }
    }

    /// RFC 2033 §4.2: after the final dot an LMTP server replies once for
    /// each recipient whose RCPT it accepted, in RCPT order; each reply
    /// decides that recipient alone (one delivered, the next over quota).
    /// The transaction is over with the last of them.
    fn on_lmtp_data_reply(&mut self, reply: ServerReply) {
        if let Some(i) = self.rcpts.iter().position(|r| matches!(r, Rcpt::Accepted)) {
            self.rcpts[i] = Rcpt::Resolved(reply);
            self.resolved_by[i] = Some("DATA".into());
        }
        if !self.rcpts.iter().any(|r| matches!(r, Rcpt::Accepted)) {
            self.transaction_over();
        }
    }

    /// Every recipient has its final reply: stay for the next message
    /// (`keep_open`) or QUIT. A server that has already said more than
    /// it was asked (an LMTP server answering more often than it
    /// accepted recipients) is out of step and gets QUIT.
    fn transaction_over(&mut self) {
        if self.config.keep_open && !self.reader.has_buffered() {
            self.state = State::Idle;
            self.emit_done();
        } else {
            self.quit();
        }
    }

    fn after_hello(&mut self) {
        let offered = self.extensions.as_ref().is_some_and(|e| e.starttls);
        if offered && self.config.starttls == StartTlsPolicy::Opportunistic && !self.tls {
            self.state = State::StartTls;
            self.send(vec!["STARTTLS".into()]);
        } else {
            self.hello_done(offered);
        }
    }

    /// No more hellos: the shell may judge the connection, then mail.
    fn hello_done(&mut self, starttls_offered: bool) {
        if self.config.check_tls {
            self.state = State::TlsCheck;
            self.output
                .push_back(ClientOutput::CheckTls { starttls_offered });
        } else {
            self.start_transaction();
        }
    }

    /// True (and the session failed) if server bytes are waiting: they were
    /// received before our next command or action, so cannot answer it.
    pub(super) fn unsolicited(&mut self) -> bool {
        if self.reader.has_buffered() {
            self.fail_protocol("reply received before its command was sent");
            return true;
        }
        false
    }

    /// Writes commands after the sync check.
    pub(super) fn send(&mut self, cmds: Vec<String>) {
        if !self.unsolicited() {
            self.write(cmds);
        }
    }

    pub(super) fn write(&mut self, cmds: Vec<String>) {
        let mut wire = Vec::new();
        for cmd in cmds {
            debug_assert!(!cmd.contains(['\r', '\n', '\0']), "validated envelope");
            wire.extend_from_slice(cmd.as_bytes());
            wire.extend_from_slice(b"\r\n");
            self.transcript(TranscriptLine::Sent(cmd));
        }
        self.output.push_back(ClientOutput::Send(wire));
    }

    fn transcript(&mut self, line: TranscriptLine) {
        self.output.push_back(ClientOutput::Transcript(line));
    }

    pub(super) fn resolve_unresolved(&mut self, reply: &ServerReply) {
        for r in &mut self.rcpts {
            if !matches!(r, Rcpt::Resolved(_)) {
                *r = Rcpt::Resolved(reply.clone());
            }
        }
    }

    /// As [`Self::resolve_unresolved`], naming the command `reply` answered.
    pub(super) fn resolve_unresolved_by(&mut self, reply: &ServerReply, command: &str) {
        for (r, by) in self.rcpts.iter_mut().zip(&mut self.resolved_by) {
            if !matches!(r, Rcpt::Resolved(_)) {
                *r = Rcpt::Resolved(reply.clone());
                *by = Some(command.to_string());
            }
        }
    }

    pub(super) fn fail_protocol(&mut self, what: &str) {
        if self.done_emitted {
            return;
        }
        self.protocol_error.get_or_insert_with(|| what.to_string());
        let text = format!("SMTP protocol error: {what}");
        let reply = ServerReply::synthetic(451, EnhancedCode::new(4, 5, 0), &text);
        self.resolve_unresolved(&reply);
        self.end();
    }

    /// QUIT, then `Done`.
    pub(super) fn quit(&mut self) {
        self.write(vec!["QUIT".into()]);
        self.state = State::Quit;
        self.emit_done();
    }

    /// `Done` without QUIT.
    pub(super) fn end(&mut self) {
        self.state = State::Done;
        self.emit_done();
    }

    fn emit_done(&mut self) {
        if self.done_emitted {
            return;
        }
        self.done_emitted = true;
        let recipients = self
            .envelope
            .recipients
            .iter()
            .zip(&self.rcpts)
            .zip(&self.resolved_by)
            .map(|((r, state), by)| {
                let reply = match state {
                    Rcpt::Resolved(reply) => reply.clone(),
                    // Every path resolves all recipients first; defer if not.
                    _ => ServerReply::synthetic(451, EnhancedCode::new(4, 3, 0), "Unresolved"),
                };
                RecipientResult {
                    address: r.address.clone(),
                    status: RecipientStatus::from_code(reply.code),
                    reply,
                    command: by.clone(),
                }
            })
            .collect();
        self.output.push_back(ClientOutput::Done(Outcome {
            recipients,
            extensions: self.extensions.clone(),
            tls: self.tls,
            protocol_error: self.protocol_error.clone(),
        }));
    }
}
