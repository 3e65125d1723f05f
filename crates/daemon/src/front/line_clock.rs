//! How long the client may take over the line it is sending.
//!
//! The socket's timeout bounds each read, so a client sending a byte every
//! few seconds (slowloris) would never meet it. As sendmail does for a
//! command (its `sfgets` sets one alarm for the whole line) and Postfix's
//! `smtpd_per_record_deadline` does for every line, the timeout here runs
//! from the end of the client's last line (or our last reply, when the
//! client's turn began): the whole next line must arrive within it.
//! `Timeout.command` between commands, `Timeout.datablock` inside a
//! message, whatever the session says is current.

use std::time::{Duration, Instant};

/// When the client's current line began to be awaited.
pub struct LineClock {
    since: Instant,
}

impl LineClock {
    pub fn new() -> Self {
        Self {
            since: Instant::now(),
        }
    }

    /// Received bytes: a line end in them starts the next line's time.
    pub fn received(&mut self, bytes: &[u8]) {
        if memchr::memchr(b'\n', bytes).is_some() {
            self.since = Instant::now();
        }
    }

    /// We answered: the client's turn starts now.
    pub fn replied(&mut self) {
        self.since = Instant::now();
    }

    /// What is left of `timeout` for the current line; `None` once it has
    /// run out. A zero timeout is none at all, and stays zero.
    pub fn left(&self, timeout: Duration) -> Option<Duration> {
        if timeout.is_zero() {
            return Some(timeout);
        }
        let left = timeout.saturating_sub(self.since.elapsed());
        (!left.is_zero()).then_some(left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_end_restarts_the_clock_and_a_partial_line_does_not() {
        let mut clock = LineClock::new();
        let timeout = Duration::from_millis(300);
        std::thread::sleep(Duration::from_millis(200));
        clock.received(b"MAIL FROM:<a");
        assert!(clock.left(timeout).unwrap() <= Duration::from_millis(100));
        std::thread::sleep(Duration::from_millis(150));
        assert_eq!(clock.left(timeout), None, "the line took too long");
        clock.received(b"@b>\r\n");
        assert!(clock.left(timeout).unwrap() > Duration::from_millis(250));
    }

    #[test]
    fn a_reply_starts_the_clients_turn() {
        let mut clock = LineClock::new();
        std::thread::sleep(Duration::from_millis(50));
        clock.replied();
        assert!(clock.left(Duration::from_millis(60)).is_some());
    }
}
