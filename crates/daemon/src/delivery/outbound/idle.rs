//! A connection kept open after its message, for the next one to the same
//! server (`ConnectionCacheSize`, `ConnectionCacheTimeout`): whether it
//! may carry a plan, carrying it, and ending it with QUIT.

use std::io;
use std::time::Instant;

use super::{Outbound, ReuseKey, State, Transport};
use crate::delivery::job::SessionPlan;
use crate::log;
use postern_smtp::client::Phase;

impl Outbound {
    /// Idle, with this key: it may carry the next plan with the same key.
    pub fn idle_with(&self, key: &ReuseKey) -> bool {
        self.state == State::Idle && ReuseKey::of(&self.plan) == *key
    }

    /// True while idle.
    pub fn is_idle(&self) -> bool {
        self.state == State::Idle
    }

    /// Since when it has waited for another message, while it does.
    pub fn idle_since(&self) -> Option<Instant> {
        self.idle_since.filter(|_| self.state == State::Idle)
    }

    /// Ends an idle connection with QUIT at `at` at the latest instead of
    /// at the end of its idle time (a connection kept beyond the cache's
    /// size for a burst: see `Delivery::trim_idle_connections`).
    pub fn retire_by(&mut self, at: Instant) {
        if self.state == State::Idle {
            self.deadline = self.deadline.min(at);
        }
    }

    /// Carries `plan` (same server, mailer and name) on this idle
    /// connection, after checking that the server has not hung up. `Err`
    /// gives the plan back: the connection is closed, open a new one.
    pub fn reuse(&mut self, plan: SessionPlan, now: Instant) -> Result<(), Box<SessionPlan>> {
        if self.state != State::Idle || !self.still_open() {
            self.close();
            return Err(Box::new(plan));
        }
        let envelope = plan.envelope.clone();
        let mut plan = plan;
        std::mem::swap(&mut plan.session, &mut self.plan.session);
        self.plan = plan;
        if self.plan.session.next_transaction(envelope).is_err() {
            // Checked when the plan's own session was made.
            self.close();
            return Ok(());
        }
        self.state = State::Open;
        self.results = None;
        self.lost = None;
        self.mail_sent = false;
        self.phase = self.plan.session.phase();
        self.deadline = now + self.timeout(self.phase);
        log::info(
            log::Level::Diagnostic,
            &format!(
                "{}: reusing the connection to {}",
                self.plan.queue_id, self.plan.relay
            ),
        );
        self.pump(now);
        Ok(())
    }

    /// An idle connection's server has neither closed it nor said
    /// anything (a 421 before closing): a non-blocking peek finds nothing.
    pub(super) fn still_open(&mut self) -> bool {
        let Some(stream) = self.stream.as_mut().and_then(Transport::transport_mut) else {
            return false;
        };
        let mut byte = [0u8; 1];
        matches!(stream.peek(&mut byte), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Ends an idle connection with QUIT (its time is up, or its slot is
    /// wanted for another server).
    pub fn retire(&mut self, now: Instant) {
        if self.state != State::Idle {
            return;
        }
        self.plan.session.quit_idle();
        self.state = State::Closing;
        self.deadline = now + self.timeout(Phase::Quit);
        self.pump(now);
    }
}
