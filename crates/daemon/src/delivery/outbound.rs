//! One outbound SMTP connection: the socket shell around a sans-IO
//! [`ClientSession`](postern_smtp::client::ClientSession).
//!
//! Owns: the non-blocking connect, reading server bytes into the session,
//! acting on its outputs (commands and the body go to the write buffer),
//! the per-phase deadline (sendmail's `Timeout.*`) and the reason a
//! connection was lost. Does not own: the poll loop or registration
//! (`mod.rs`), the SMTP rules (the session), the body encoding and write
//! buffer (`body.rs`), the wording of results (`results.rs`).
//!
//! States: `Connecting` (wait writable, then `take_error`/`peer_addr`) →
//! `Open` (the session runs) → `Closing` (the session is done; QUIT is
//! still being written) → `Closed`. Any failure (refused, reset, EOF,
//! timeout, a read error on the message file) calls
//! `ClientSession::connection_lost`, whose `Done` defers every recipient
//! still open; the synthetic `421 4.4.2 Connection lost` is then replaced
//! by the real reason.
//!
//! Memory per connection is bounded: the body is read in 64 KiB chunks and
//! only while less than 256 KiB wait to be written (`body.rs`).
//!
//! Security posture: runs as RunAsUser; the peer is untrusted and reaches
//! us only through the session's bounded reply reader. The message is read
//! only through the descriptor the queue runner passed, with `read_at`.

use std::io::{self, Read};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::Interest;
use postern_config::Timeouts;
use postern_ipc::RecipientReport;
use postern_smtp::client::{ClientOutput, Outcome, Phase};

use super::body::{BodyStream, OutBuf};
use super::job::SessionPlan;
use super::results::{self, describe, phase_name, Destination};
use crate::log;

/// Used for `Timeout.connect` 0 ("the system's default") and any other
/// zero timeout: never wait for ever.
const FALLBACK_TIMEOUT: Duration = Duration::from_secs(5 * 60);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Connecting,
    Open,
    Closing,
    Closed,
}

/// One connection and its session.
pub struct Outbound {
    plan: SessionPlan,
    timeouts: Timeouts,
    stream: Option<TcpStream>,
    state: State,
    out: OutBuf,
    body: Option<BodyStream>,
    phase: Phase,
    deadline: Instant,
    /// The reply that replaces the synthetic "Connection lost".
    lost: Option<String>,
    results: Option<Vec<(usize, RecipientReport)>>,
}

impl Outbound {
    /// Starts connecting. A connect that fails at once leaves the
    /// connection closed with its results ready.
    pub fn start(plan: SessionPlan, timeouts: &Timeouts, now: Instant) -> Outbound {
        let connect = non_zero(timeouts.connect);
        let mut conn = Outbound {
            stream: None,
            state: State::Connecting,
            out: OutBuf::default(),
            body: None,
            phase: plan.session.phase(),
            deadline: now + connect,
            lost: None,
            results: None,
            timeouts: timeouts.clone(),
            plan,
        };
        match TcpStream::connect(conn.plan.addr) {
            Ok(stream) => conn.stream = Some(stream),
            Err(e) => conn.connect_failed(&e),
        }
        conn
    }

    /// The socket, for (re)registration; `None` when connect failed at once.
    pub fn stream_mut(&mut self) -> Option<&mut TcpStream> {
        self.stream.as_mut()
    }

    /// The readiness to wait for; `None` once closed.
    pub fn interest(&self) -> Option<Interest> {
        match self.state {
            State::Closed => None,
            State::Connecting => Some(Interest::READABLE | Interest::WRITABLE),
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

    /// The results, once (job recipient index, report).
    pub fn take_results(&mut self) -> Option<Vec<(usize, RecipientReport)>> {
        self.results.take()
    }

    /// The socket is ready (either way; both are tried).
    pub fn on_ready(&mut self, now: Instant) {
        if self.state == State::Connecting && !self.check_connected(now) {
            return;
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
        let relay = self.plan.relay.clone();
        let qid = self.plan.queue_id.clone();
        match self.state {
            State::Connecting => {
                log::info(3, &format!("{qid}: {relay}: Connection timed out"));
                self.lost = Some(format!("421 4.4.1 Connection timed out with {relay}"));
            }
            State::Closing => {}
            _ if self.phase == Phase::DataBlock => {
                log::info(3, &format!("{qid}: timeout writing message to {relay}"));
                self.lost = Some(format!("421 4.4.2 timeout writing message to {relay}"));
            }
            _ => {
                let during = phase_name(self.phase);
                log::info(
                    3,
                    &format!("{qid}: timeout waiting for input from {relay} during {during}"),
                );
                self.lost = Some(format!(
                    "421 4.4.2 timeout waiting for input from {relay} during {during}"
                ));
            }
        }
        self.session_lost();
        self.close();
    }

    /// Connecting: true once connected (the session then starts).
    fn check_connected(&mut self, now: Instant) -> bool {
        let Some(stream) = self.stream.as_ref() else {
            return false;
        };
        match stream.take_error() {
            Ok(Some(e)) | Err(e) => {
                self.connect_failed(&e);
                return false;
            }
            Ok(None) => {}
        }
        match stream.peer_addr() {
            Ok(_) => {}
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
        let relay = &self.plan.relay;
        let why = describe(e);
        log::info(3, &format!("{}: {relay}: {why}", self.plan.queue_id));
        self.lost = Some(format!("421 4.4.1 {why} by {relay}"));
        self.session_lost();
        self.close();
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
                    self.close();
                    return Ok(());
                }
                Ok(0) => return Err(format!("Connection closed by {}", self.plan.relay)),
                Ok(n) => self.plan.session.receive(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) if self.state == State::Closing => {
                    self.close();
                    return Ok(());
                }
                Err(e) => return Err(format!("{} with {}", describe(&e), self.plan.relay)),
            }
        }
    }

    /// Acts on the session's outputs, streams the body and writes, until
    /// the socket blocks or nothing is left to do.
    fn pump(&mut self, now: Instant) {
        loop {
            self.drain_outputs(now);
            if matches!(self.state, State::Closed) {
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
            if self.state == State::Closing && !blocked {
                // QUIT is out; the 221 changes nothing.
                return self.close();
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

    fn drain_outputs(&mut self, now: Instant) {
        while let Some(output) = self.plan.session.poll_output() {
            match output {
                ClientOutput::Send(bytes) => self.out.push(&bytes),
                ClientOutput::SendBody => self.body = Some(BodyStream::new()),
                ClientOutput::Transcript(line) => {
                    if log::enabled(15) {
                        log::info(
                            15,
                            &format!("{}: {}: {line}", self.plan.queue_id, self.plan.relay),
                        );
                    }
                }
                // Never reached with StartTlsPolicy::Never (see job.rs);
                // the TLS layer will hand the socket to the handshake here.
                ClientOutput::StartTls => {
                    debug_assert!(false, "StartTls with policy Never");
                    self.lost = Some("454 4.7.0 TLS not available".into());
                    self.plan.session.connection_lost();
                }
                ClientOutput::Done(outcome) => self.finish(outcome),
            }
        }
        let phase = self.plan.session.phase();
        if phase != self.phase && self.state == State::Open {
            self.phase = phase;
            self.deadline = now + self.timeout(phase);
        }
    }

    /// Records the outcome and starts closing (QUIT may still be queued).
    fn finish(&mut self, outcome: Outcome) {
        let to = Destination {
            indices: &self.plan.indices,
            relay: &self.plan.relay,
            mailer: &self.plan.mailer,
        };
        self.results = Some(results::reports(outcome, &to, self.lost.as_deref()));
        if self.body.take().is_some_and(|b| !b.is_finished()) {
            // Ended mid-body: what is buffered is message text, and the
            // server must see the connection drop, not a partial message.
            self.out.clear();
        }
        if self.state != State::Closed {
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
            Err(e) => return Err(format!("{} with {}", describe(&e), self.plan.relay)),
        }
        Ok(self.out.pending() > 0)
    }

    /// The connection broke (`why`, for the reply and the log).
    fn lose(&mut self, why: String) {
        // What was read just before may have ended the session (a final
        // reply, then the server hung up without waiting for QUIT).
        self.drain_outputs(Instant::now());
        if self.state == State::Closing {
            return self.close();
        }
        log::info(
            3,
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
