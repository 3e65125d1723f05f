//! One outbound SMTP or LMTP connection: the socket shell around a
//! sans-IO [`ClientSession`](postern_smtp::client::ClientSession), over
//! TCP or, for an LMTP server on this host, a Unix socket (`socket.rs`).
//!
//! Owns: the non-blocking connect, reading server bytes into the session,
//! acting on its outputs (commands and the body go to the write buffer),
//! the per-phase deadline (sendmail's `Timeout.*`) and the reason a
//! connection was lost. Does not own: the poll loop or registration
//! (`mod.rs`), the SMTP rules (the session), the body encoding and write
//! buffer (`body.rs`), the wording of results (`results.rs`).
//!
//! States: `Connecting` (wait writable, then `take_error`/`peer_addr`) →
//! `Open` (the session runs) → [`Handshake`](State::Handshake) (STARTTLS,
//! then `Open` again over TLS) → `Closing` (the session is done; QUIT is
//! still being written) → `Closed`. Any failure (refused, reset, EOF,
//! timeout, a read error on the message file) calls
//! `ClientSession::connection_lost`, whose `Done` defers every recipient
//! still open; the synthetic `421 4.4.2 Connection lost` is then replaced
//! by the real reason.
//!
//! STARTTLS (opportunistic; REFERENCE §1.11, §4.1, §4.5): on
//! `ClientOutput::StartTls` the plain socket is moved into a
//! `TlsStream` and the handshake is driven on readiness under
//! `Timeout.starttls`; afterwards every read and write goes through TLS.
//! Bytes read in clear text only ever reach the session (which refuses any
//! behind the `220`); the handshake reads the socket itself, so none of
//! them can reach TLS, and nothing read under TLS is mixed with them. The
//! server's certificate is reported (`verify=`); it is enforced only where
//! the access map's `TLS_Srv:` asks (`tls_policy.rs`): the session then
//! stops after the hello and the connection is checked before MAIL, and a
//! connection that falls short (no STARTTLS offered, an unverified or
//! misnamed certificate, too few bits) defers or fails every recipient
//! with sendmail's reply. A failed handshake (error or timeout) is logged;
//! with `TLSFallbacktoClear` (and no requirement) the connection is dropped
//! and the loop at once starts the same delivery again without STARTTLS
//! ([`Outbound::take_retry`]), otherwise every recipient is deferred
//! (`454 4.7.0 TLS handshake failed`).
//!
//! Memory per connection is bounded: the body is read in 64 KiB chunks and
//! only while less than 256 KiB wait to be written (`body.rs`).
//!
//! Security posture: runs as RunAsUser; the peer is untrusted and reaches
//! us only through the session's bounded reply reader. The message is read
//! only through the descriptor the queue runner passed, with `read_at`.

use std::io::{self, Read};
use std::time::{Duration, Instant};

use mio::Interest;
use postern_config::Timeouts;
use postern_ipc::RecipientReport;
use postern_smtp::client::{ClientOutput, Outcome, Phase, TranscriptLine};
use postern_smtp::TlsInfo;
use postern_tls::{Handshake, MaybeTls, TlsError};

use super::body::{BodyStream, OutBuf};
use super::destination::{Candidate, Endpoint};
use super::job::SessionPlan;
use super::results::{self, describe, phase_name, Destination};
use super::tls_policy::{self, Achieved};
use crate::log::{self, Priority};

mod idle;
mod socket;
mod starttls;

pub use socket::Socket;

/// Used for `Timeout.connect` 0 ("the system's default") and any other
/// zero timeout: never wait for ever.
const FALLBACK_TIMEOUT: Duration = Duration::from_secs(5 * 60);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Connecting,
    Open,
    /// The TLS handshake after `220` to STARTTLS; the session waits.
    Handshake,
    Closing,
    /// A transaction is over and the connection waits, registered for
    /// reading only, for the next message to the same server.
    Idle,
    Closed,
}

/// The connection's byte stream: the socket, or TLS over it (handshaking
/// while the state is [`State::Handshake`], then carrying the session).
type Transport = MaybeTls<Socket>;

/// One connection and its session.
pub struct Outbound {
    plan: SessionPlan,
    timeouts: Timeouts,
    stream: Option<Transport>,
    /// What the handshake waits for, in [`State::Handshake`].
    tls_want: Interest,
    /// The same delivery without STARTTLS, after a failed handshake
    /// (`TLSFallbacktoClear`), for the loop to start.
    retry: Option<SessionPlan>,
    state: State,
    out: OutBuf,
    body: Option<BodyStream>,
    phase: Phase,
    deadline: Instant,
    /// The reply that replaces the synthetic "Connection lost".
    lost: Option<String>,
    results: Option<Vec<(usize, RecipientReport)>>,
    /// The dialogue, kept when the plan is verbose (`sendmail -v`).
    transcript: Vec<String>,
    /// `>>> QUIT`, held back until the results are written before it, as
    /// sendmail -v shows them.
    quit_line: Option<String>,
    /// What the TLS handshake achieved, when a requirement is to be
    /// checked.
    achieved: Option<Achieved>,
    /// MAIL went out: from here on a failure is this server's answer
    /// about the message, not a reason to try the next server.
    mail_sent: bool,
    /// How long to wait, idle, for the next message.
    idle: Duration,
    /// When it last became idle (while it is).
    idle_since: Option<Instant>,
    /// Why the server could not be reached at all (refused, timed out):
    /// the loop holds the whole destination back for a while.
    unreachable: Option<String>,
}

/// What a connection must match to carry a plan: the server, the mailer,
/// the name it was reached by (TLS and the access map saw that name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReuseKey {
    addr: Endpoint,
    mailer: String,
    host: String,
}

impl ReuseKey {
    /// The key of the connection `plan` would open.
    pub fn of(plan: &SessionPlan) -> ReuseKey {
        ReuseKey {
            addr: plan.addr.clone(),
            mailer: plan.mailer.clone(),
            host: plan.host.clone(),
        }
    }
}

impl Outbound {
    /// Starts connecting. A connect that fails at once leaves the
    /// connection closed with its results ready.
    /// `idle` is how long the connection may wait for another message
    /// after its own (`ConnectionCacheTimeout`).
    pub fn start(plan: SessionPlan, timeouts: &Timeouts, idle: Duration, now: Instant) -> Outbound {
        let connect = non_zero(timeouts.connect);
        let mut conn = Outbound {
            stream: None,
            tls_want: Interest::READABLE,
            retry: None,
            state: State::Connecting,
            out: OutBuf::default(),
            body: None,
            phase: plan.session.phase(),
            deadline: now + connect,
            lost: None,
            results: None,
            transcript: Vec::new(),
            quit_line: None,
            achieved: None,
            mail_sent: false,
            unreachable: None,
            timeouts: timeouts.clone(),
            idle,
            idle_since: None,
            plan,
        };
        if conn.plan.verbose {
            // sendmail -v's first line for a connection; the port only
            // when it is not SMTP's (a socket has none).
            let port = match conn.plan.addr.tcp().map(|a| a.port()) {
                Some(25) | None => String::new(),
                Some(port) => format!(" port {port}"),
            };
            let line = format!(
                "{}... Connecting to {}{port} via {}...",
                conn.plan.addresses.join(","),
                conn.plan.host,
                conn.plan.mailer
            );
            conn.transcript.push(line);
        }
        match Socket::connect(&conn.plan.addr) {
            Ok(stream) => conn.stream = Some(Transport::Plain(stream)),
            Err(e) => conn.connect_failed(&e),
        }
        conn
    }

    /// The socket, for (re)registration; `None` when connect failed at once.
    pub fn stream_mut(&mut self) -> Option<&mut Socket> {
        self.stream.as_mut().and_then(Transport::transport_mut)
    }

    /// The server this connection goes to.
    pub fn addr(&self) -> &Endpoint {
        &self.plan.addr
    }

    /// The reason the server could not be reached (refused, timed out),
    /// once closed.
    pub fn unreachable(&self) -> Option<&str> {
        self.unreachable.as_deref()
    }

    /// The readiness to wait for; `None` once closed.
    pub fn interest(&self) -> Option<Interest> {
        match self.state {
            State::Closed => None,
            State::Idle => Some(Interest::READABLE),
            State::Connecting => Some(Interest::READABLE | Interest::WRITABLE),
            State::Handshake => Some(self.tls_want),
            _ if self.out.pending() > 0 => Some(Interest::READABLE | Interest::WRITABLE),
            _ => Some(Interest::READABLE),
        }
    }

    /// When [`Outbound::on_timeout`] must be called; `None` once closed.
    pub fn deadline(&self) -> Option<Instant> {
        (self.state != State::Closed).then_some(self.deadline)
    }

    /// True once the socket is gone.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// The loop's key for the job.
    pub fn job_key(&self) -> u64 {
        self.plan.job_key
    }

    /// The results, once (job recipient index, report). For `sendmail
    /// -v` only once the connection is closed, so that the dialogue
    /// reported with them has the answer to QUIT.
    pub fn take_results(&mut self) -> Option<Vec<(usize, RecipientReport)>> {
        if (self.plan.verbose || self.may_fall_back()) && self.state != State::Closed {
            return None;
        }
        self.results.take()
    }

    /// The dialogue so far (empty unless the plan is verbose).
    pub fn take_transcript(&mut self) -> Vec<String> {
        std::mem::take(&mut self.transcript)
    }

    /// The delivery to start again at once without STARTTLS, once: set
    /// when the handshake failed under `TLSFallbacktoClear`. This
    /// connection is then closed without results; the retry reports for
    /// its recipients.
    pub fn take_retry(&mut self) -> Option<SessionPlan> {
        self.retry.take()
    }

    /// The same recipients for the next server, once this one is closed
    /// without having taken a transaction: it refused or dropped the
    /// connection, timed out, or did not greet or hello (RFC 5321 §5.1:
    /// the next address, then the next MX). This connection's results are
    /// dropped; the next server's stand for them. `None` when there is no
    /// next server or this one got as far as MAIL.
    pub fn take_fallback(&mut self) -> Option<(Vec<usize>, String, Vec<Candidate>)> {
        if self.state != State::Closed || !self.may_fall_back() || self.results.is_none() {
            return None;
        }
        self.results = None;
        log::info(
            log::Level::Failure,
            &format!(
                "{}: {} unusable, trying the next server",
                self.plan.queue_id, self.plan.relay
            ),
        );
        Some((
            self.plan.indices.clone(),
            self.plan.mailer.clone(),
            std::mem::take(&mut self.plan.fallback),
        ))
    }

    /// Nothing was delivered here and another server is left to try.
    fn may_fall_back(&self) -> bool {
        !self.mail_sent
            && !self.plan.fallback.is_empty()
            && self.retry.is_none()
            && self.results.as_ref().is_none_or(|results| {
                results
                    .iter()
                    .all(|(_, r)| r.status != postern_ipc::RecipientStatus::Sent)
            })
    }

    /// The socket is ready (either way; both are tried).
    pub fn on_ready(&mut self, now: Instant) {
        if self.state == State::Idle {
            // The server hung up or spoke out of turn: not reusable.
            if !self.still_open() {
                self.plan.session.connection_lost();
                self.close();
            }
            return;
        }
        if self.state == State::Connecting && !self.check_connected(now) {
            return;
        }
        if self.state == State::Handshake {
            self.handshake(now);
            if self.state != State::Open {
                return;
            }
            // Done: read what TLS may hold already, then send EHLO.
        }
        if let Err(why) = self.read() {
            return self.lose(why);
        }
        self.pump(now);
    }

    /// The deadline passed (the loop checks `deadline()` first).
    pub fn on_timeout(&mut self, now: Instant) {
        if now < self.deadline || self.state == State::Closed {
            return;
        }
        // The host as sendmail names it in these texts: `[127.0.0.1]`.
        let host = self.plan.host.clone();
        let qid = self.plan.queue_id.clone();
        match self.state {
            State::Idle => return self.retire(now),
            State::Connecting => {
                self.makeconnection_failed("Connection timed out");
                let reply = format!("421 4.4.1 Connection timed out with {host}");
                self.unreachable = Some(reply.clone());
                self.lost = Some(reply);
            }
            State::Handshake => return self.handshake_failed("timeout"),
            State::Closing => {}
            _ if self.phase == Phase::DataBlock => {
                log::info(
                    log::Level::Failure,
                    &format!("{qid}: timeout writing message to {host}"),
                );
                self.lost = Some(format!("421 4.4.2 timeout writing message to {host}"));
            }
            _ => {
                let during = phase_name(self.phase);
                log::info(
                    log::Level::Failure,
                    &format!("{qid}: timeout waiting for input from {host} during {during}"),
                );
                self.lost = Some(format!(
                    "421 4.4.2 timeout waiting for input from {host} during {during}"
                ));
            }
        }
        self.session_lost();
        self.close();
    }

    /// Connecting: true once connected (the session then starts).
    fn check_connected(&mut self, now: Instant) -> bool {
        let Some(stream) = self.stream.as_mut().and_then(Transport::transport_mut) else {
            return false;
        };
        match stream.take_error() {
            Ok(Some(e)) | Err(e) => {
                self.connect_failed(&e);
                return false;
            }
            Ok(None) => {}
        }
        match stream.check_connected() {
            Ok(()) => {}
            // Not yet: a spurious wake-up.
            Err(e) if e.kind() == io::ErrorKind::NotConnected => return false,
            Err(e) => {
                self.connect_failed(&e);
                return false;
            }
        }
        self.state = State::Open;
        self.phase = self.plan.session.phase();
        self.deadline = now + self.timeout(self.phase);
        true
    }

    fn connect_failed(&mut self, e: &io::Error) {
        let why = format!("{} by {}", describe(e), self.plan.host);
        self.makeconnection_failed(&why);
        self.unreachable = Some(format!("421 4.4.1 {why}"));
        self.lost = Some(format!("421 4.4.1 {why}"));
        self.session_lost();
        self.close();
    }

    /// sendmail's `makeconnection (<relay>.<port> (<family>)) failed:
    /// <why>` (LogLevel 14; at 9 the `to=` line says it).
    fn makeconnection_failed(&self, why: &str) {
        let (port, family) = match &self.plan.addr {
            Endpoint::Tcp(addr) => (addr.port(), if addr.is_ipv4() { 2 } else { 10 }),
            Endpoint::Unix(_) => (0, 1),
        };
        log::info(
            log::Level::Diagnostic,
            &format!(
                "{}: makeconnection ({}.{port} ({family})) failed: {why}",
                self.plan.queue_id, self.plan.relay,
            ),
        );
    }

    /// Reads what the server sent, into the session. `Err` is the reason
    /// the connection is lost.
    fn read(&mut self) -> Result<(), String> {
        let mut buf = [0u8; 16 << 10];
        loop {
            let Some(stream) = self.stream.as_mut() else {
                return Ok(());
            };
            match stream.read(&mut buf) {
                Ok(0) if self.state == State::Closing => {
                    self.close_gracefully();
                    return Ok(());
                }
                Ok(0) => return Err(format!("Connection closed by {}", self.plan.host)),
                Ok(n) => self.plan.session.receive(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) if self.state == State::Closing => {
                    self.close();
                    return Ok(());
                }
                Err(e) => return Err(format!("{} with {}", describe(&e), self.plan.host)),
            }
        }
    }

    /// Acts on the session's outputs, streams the body and writes, until
    /// the socket blocks or nothing is left to do.
    fn pump(&mut self, now: Instant) {
        loop {
            if self.drain_outputs(now) {
                return self.start_tls(now);
            }
            if matches!(self.state, State::Closed | State::Handshake) {
                return;
            }
            let data = &self.plan.data;
            if let Err(e) = self
                .body
                .as_mut()
                .map_or(Ok(()), |b| b.top_up(data, &mut self.out))
            {
                let why = format!("Error reading message: {e}");
                log::err(&format!("{}: {why}", self.plan.queue_id));
                self.lost = Some(format!("451 4.3.0 {why}"));
                self.session_lost();
                return self.close();
            }
            let blocked = match self.flush(now) {
                Ok(blocked) => blocked,
                Err(why) => return self.lose(why),
            };
            if self.state == State::Closing && !blocked && self.plan.session.phase() == Phase::Done
            {
                // QUIT is out and answered (RFC 5321 §4.1.1.10: the client
                // waits for the reply before it closes).
                return self.close_gracefully();
            }
            let body_done = self.body.as_ref().is_some_and(BodyStream::is_finished);
            if body_done && !blocked {
                // The terminating dot is on the wire: the final reply may come.
                self.body = None;
                self.plan.session.body_sent();
                continue;
            }
            if blocked || self.body.is_none() {
                return;
            }
        }
    }

    /// Acts on the session's outputs; true when the session asks for the
    /// TLS handshake now (the caller starts it, or treats the connection
    /// as lost).
    fn drain_outputs(&mut self, now: Instant) -> bool {
        let mut start_tls = false;
        while let Some(output) = self.plan.session.poll_output() {
            match output {
                ClientOutput::Send(bytes) => {
                    self.mail_sent |= bytes
                        .get(..5)
                        .is_some_and(|b| b.eq_ignore_ascii_case(b"MAIL "));
                    self.out.push(&bytes);
                }
                ClientOutput::SendBody => self.body = Some(BodyStream::new()),
                ClientOutput::Transcript(line) => {
                    if self.plan.verbose && self.transcript.len() < 1000 {
                        if matches!(&line, TranscriptLine::Sent(cmd) if cmd == "QUIT") {
                            self.quit_line = Some(line.to_string());
                        } else {
                            self.transcript.push(line.to_string());
                        }
                    }
                    if log::enabled(log::Level::Commands) {
                        log::info(
                            log::Level::Commands,
                            &format!("{}: {}: {line}", self.plan.queue_id, self.plan.host),
                        );
                    }
                }
                // Nothing follows until the handshake is over, unless the
                // session failed on clear text read behind the 220 (a
                // `Done` then follows, and the phase is no longer the
                // handshake's).
                ClientOutput::StartTls => start_tls = true,
                ClientOutput::CheckTls { .. } => self.check_tls(),
                ClientOutput::Done(outcome) => self.finish(outcome),
            }
        }
        let phase = self.plan.session.phase();
        if phase != self.phase && self.state == State::Open {
            self.phase = phase;
            self.deadline = now + self.timeout(phase);
        }
        start_tls && phase == Phase::TlsHandshake && self.state == State::Open
    }

    /// Records the outcome and starts closing (QUIT may still be queued).
    fn finish(&mut self, outcome: Outcome) {
        let to = Destination {
            indices: &self.plan.indices,
            addresses: &self.plan.addresses,
            relay: &self.plan.relay,
            mailer: &self.plan.mailer,
        };
        let results = results::reports(outcome, &to, self.lost.as_deref());
        if self.plan.verbose {
            // sendmail -v: each recipient's fate, then the goodbye.
            for (_, r) in &results {
                self.transcript.push(results::verbose_line(r));
            }
            if let Some(quit) = self.quit_line.take() {
                self.transcript
                    .push(format!("Closing connection to {}", self.plan.host));
                self.transcript.push(quit);
            }
        }
        self.results = Some(results);
        if self.body.take().is_some_and(|b| !b.is_finished()) {
            // Ended mid-body: what is buffered is message text, and the
            // server must see the connection drop, not a partial message.
            self.out.clear();
        }
        if self.state != State::Closed && self.plan.session.is_idle() {
            let now = Instant::now();
            self.state = State::Idle;
            self.idle_since = Some(now);
            self.deadline = now + non_zero(self.idle);
        } else if self.state != State::Closed {
            self.state = State::Closing;
            self.deadline = Instant::now() + self.timeout(Phase::Quit);
        }
    }

    /// Writes until the socket blocks; `Ok(true)` when bytes remain.
    fn flush(&mut self, now: Instant) -> Result<bool, String> {
        let Some(stream) = self.stream.as_mut() else {
            return Ok(false);
        };
        match self.out.write_to(stream) {
            // Timeout.datablock bounds each write, not the whole body.
            Ok(n) if n > 0 && self.phase == Phase::DataBlock => {
                self.deadline = now + self.timeout(Phase::DataBlock);
            }
            Ok(_) => {}
            Err(e) => return Err(format!("{} with {}", describe(&e), self.plan.host)),
        }
        Ok(self.out.pending() > 0)
    }

    /// The connection broke (`why`, for the reply and the log).
    fn lose(&mut self, why: String) {
        // What was read just before may have ended the session (a final
        // reply, then the server hung up without waiting for QUIT). A
        // STARTTLS asked for now is not started: the connection is gone.
        self.drain_outputs(Instant::now());
        if self.state == State::Closing {
            return self.close();
        }
        log::info(
            log::Level::Failure,
            &format!(
                "{}: {why} during {}",
                self.plan.queue_id,
                phase_name(self.phase)
            ),
        );
        self.lost = Some(format!("421 4.4.2 {why}"));
        self.session_lost();
        self.close();
    }

    /// Tells the session and collects its `Done`.
    fn session_lost(&mut self) {
        self.plan.session.connection_lost();
        while let Some(output) = self.plan.session.poll_output() {
            if let ClientOutput::Done(outcome) = output {
                self.finish(outcome);
            }
        }
    }

    /// The session ended normally: under TLS, send close_notify (best
    /// effort), then close.
    fn close_gracefully(&mut self) {
        if let Some(stream) = self.stream.as_mut().and_then(Transport::tls_mut) {
            stream.shutdown();
        }
        self.close();
    }

    /// Closed for good; the loop deregisters and drops the socket.
    fn close(&mut self) {
        self.state = State::Closed;
        self.out.clear();
        self.body = None;
    }

    fn timeout(&self, phase: Phase) -> Duration {
        let t = &self.timeouts;
        non_zero(match phase {
            Phase::Greeting => t.initial,
            Phase::Helo => t.helo,
            Phase::StartTls => t.misc,
            Phase::TlsHandshake => t.starttls,
            Phase::Mail => t.mail,
            Phase::Rcpt => t.rcpt,
            Phase::DataInit => t.datainit,
            Phase::DataBlock => t.datablock,
            Phase::DataFinal => t.datafinal,
            Phase::Quit | Phase::Done => t.quit,
        })
    }
}

fn non_zero(d: Duration) -> Duration {
    if d.is_zero() {
        FALLBACK_TIMEOUT
    } else {
        d
    }
}
