//! The daemon's stderr (and stdout) as lines a test can wait for.
//!
//! Reader threads push each line and notify a `Condvar`; waiters scan from
//! an index, so "the next line saying X" is a wait with a deadline, never a
//! sleep. When every stream has reached EOF the log is closed, and a wait
//! for a line that never came fails at once instead of at its deadline.

use std::io::{BufRead, BufReader, Read};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
pub(crate) struct Log {
    state: Mutex<LogState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct LogState {
    lines: Vec<String>,
    /// Streams not yet at EOF.
    open: usize,
}

impl Log {
    fn lock(&self) -> MutexGuard<'_, LogState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts a thread that copies `stream` into the log line by line,
    /// each line prefixed with `prefix`.
    pub(crate) fn follow(
        self: &Arc<Self>,
        stream: impl Read + Send + 'static,
        prefix: &'static str,
    ) -> JoinHandle<()> {
        self.lock().open += 1;
        let log = Arc::clone(self);
        thread::Builder::new()
            .name(format!("daemon-log{prefix}"))
            .spawn(move || {
                let mut reader = BufReader::new(stream);
                let mut raw = Vec::new();
                // An I/O error ends the stream like EOF does.
                while reader.read_until(b'\n', &mut raw).unwrap_or(0) > 0 {
                    let text = String::from_utf8_lossy(&raw);
                    let line = format!("{prefix}{}", text.trim_end_matches(['\r', '\n']));
                    log.lock().lines.push(line);
                    log.changed.notify_all();
                    raw.clear();
                }
                log.lock().open -= 1;
                log.changed.notify_all();
            })
            .expect("spawn daemon log reader")
    }

    pub(crate) fn lines(&self) -> Vec<String> {
        self.lock().lines.clone()
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().lines.len()
    }

    /// The first line at index `from` or later containing `needle`, or why
    /// there is none.
    pub(crate) fn wait_for(
        &self,
        from: usize,
        needle: &str,
        timeout: Duration,
    ) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        let mut st = self.lock();
        loop {
            if let Some(line) = st.lines.iter().skip(from).find(|l| l.contains(needle)) {
                return Ok(line.clone());
            }
            if st.open == 0 {
                return Err("the log was closed (the daemon has exited)".to_string());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(format!("waited {timeout:?}"));
            }
            st = self
                .changed
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Waits until every stream is at EOF; `false` on timeout.
    pub(crate) fn wait_closed(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut st = self.lock();
        while st.open > 0 {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            st = self
                .changed
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }

    /// The whole log, indented, for panic messages.
    pub(crate) fn dump(&self) -> String {
        let lines = self.lines();
        if lines.is_empty() {
            return "  (the daemon logged nothing)".to_string();
        }
        lines
            .iter()
            .map(|l| format!("  | {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}
