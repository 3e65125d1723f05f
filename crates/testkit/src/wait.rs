//! Bounded polling, for the few conditions that offer no event to wait on.
//!
//! Prefer a `Condvar` or a channel: everything the kit produces itself (sink
//! messages, daemon log lines) is awaited that way. What is left has no
//! event std can wait on without a signal handler or inotify: a daemon's
//! port starting to accept, a file appearing in a maildir, a child process
//! exiting. For those we poll with a short exponential backoff, and always
//! up to a deadline.

use std::thread;
use std::time::{Duration, Instant};

/// First pause between tries: short, because the awaited thing is usually
/// milliseconds away.
const FIRST_PAUSE: Duration = Duration::from_millis(1);
/// Longest pause: keeps the reaction time of a slow wait under 50 ms.
const MAX_PAUSE: Duration = Duration::from_millis(50);

/// Exponential backoff up to a deadline.
#[derive(Debug)]
pub(crate) struct Backoff {
    deadline: Instant,
    pause: Duration,
}

impl Backoff {
    pub(crate) fn new(timeout: Duration) -> Self {
        Self {
            deadline: Instant::now() + timeout,
            pause: FIRST_PAUSE,
        }
    }

    /// Sleeps before the next try; `false` once the deadline has passed.
    pub(crate) fn pause(&mut self) -> bool {
        let now = Instant::now();
        if now >= self.deadline {
            return false;
        }
        // Polling is the documented exception (see the module docs): there
        // is no event for the condition being awaited.
        thread::sleep(self.pause.min(self.deadline - now));
        self.pause = (self.pause * 2).min(MAX_PAUSE);
        true
    }
}

/// Calls `check` until it returns `Some`, pausing 1 ms, 2 ms, … up to 50 ms
/// between calls; `None` if `timeout` passes first. `check` runs at least
/// once and once more at the deadline.
///
/// Use it only where no event exists (see the module docs), and turn `None`
/// into a panic that says what was awaited and what was seen.
pub fn poll_until<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let mut backoff = Backoff::new(timeout);
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if !backoff.pause() {
            return check();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_the_first_success() {
        let mut calls = 0;
        let got = poll_until(Duration::from_secs(5), || {
            calls += 1;
            (calls == 3).then_some(calls)
        });
        assert_eq!(got, Some(3));
    }

    #[test]
    fn gives_up_at_the_deadline() {
        let start = Instant::now();
        assert_eq!(poll_until(Duration::from_millis(20), || None::<()>), None);
        assert!(start.elapsed() >= Duration::from_millis(20));
    }
}
