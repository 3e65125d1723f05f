//! Logging: syslog (facility mail, sendmail's line formats) and, with
//! `--log-stderr`, standard error too, each line as `posternd[pid]: text`.
//!
//! Every process opens its own connection to `/dev/log` right after fork,
//! before it drops privileges or enters its jail, so that logging keeps
//! working where `/dev/log` cannot be reached. LogLevel decides what is
//! logged, with sendmail's meanings (REFERENCE §1.3): callers pass the
//! level a line needs.

use std::io::Write;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Mutex;

use syslog::{Facility, Formatter3164, Logger, LoggerBackend};

struct State {
    syslog: Option<Logger<LoggerBackend, Formatter3164>>,
    stderr: bool,
    level: u32,
    pid: u32,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);

/// The LogLevel a line needs, named after what sendmail logs at each level
/// (op.txt §4.8; REFERENCE §1.3), so that a reader sees why a line appears
/// at 9 and not at 12. A line is logged when LogLevel is at least its
/// level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// 1: serious failures and security problems (a front cut off for
    /// misbehaving); also the daemon starting and stopping, which sendmail
    /// logs at any LogLevel above 0.
    Serious = 1,
    /// 2: lost communications: a client that timed out or vanished.
    LostConnection = 2,
    /// 3: other serious failures: malformed addresses, connection
    /// timeouts, a delivery that could not be attempted.
    Failure = 3,
    /// 4: minor failures and refusals (sendmail's check_* rulesets),
    /// `Authentication-Warning:`, queue actions by an administrator.
    Refusal = 4,
    /// 5: message collection statistics: the `from=` line.
    Received = 5,
    /// 6: VRFY, EXPN and ETRN; `did not issue MAIL/EXPN/VRFY/ETRN`;
    /// STARTTLS errors; the reports returned to senders (`DSN:`, `sender
    /// notify:`, `postmaster notify:`, sendmail's `LogLevel > 5`).
    Query = 6,
    /// 7: delivery failures: a permanent `to=` line.
    DeliveryFailure = 7,
    /// 8: successful deliveries: `to=… stat=Sent`.
    Delivered = 8,
    /// 9: deferrals, the STARTTLS summary line, queue runs.
    Deferred = 9,
    /// 10: authentication: `AUTH=server, relay=…, authid=…` and AUTH
    /// failures (sendmail's `LogLevel > 9`).
    Authentication = 10,
    /// 11: end of job: Postern's processes starting and ending their work.
    EndOfJob = 11,
    /// 12: every SMTP connection; the peer's certificate subject.
    Connection = 12,
    /// 13: bad permissions and missing files (no ServerCertFile).
    BadPermission = 13,
    /// 14: refused connections and failed connection attempts
    /// (`makeconnection … failed`); STARTTLS debugging: the certificate
    /// chain, `start=ok`.
    Diagnostic = 14,
    /// 15: every SMTP command and reply.
    Commands = 15,
}

/// syslog priorities Postern uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Priority {
    /// LOG_CRIT.
    Crit,
    /// LOG_ERR.
    Err,
    /// LOG_WARNING.
    Warning,
    /// LOG_NOTICE.
    Notice,
    /// LOG_INFO.
    Info,
}

/// Opens the log for this process (again after each fork: the pid changed).
pub fn init(level: u32, stderr: bool) {
    let pid = std::process::id();
    let formatter = Formatter3164 {
        facility: Facility::LOG_MAIL,
        hostname: None,
        process: "posternd".into(),
        pid,
    };
    // No syslog daemon (a container, a test machine) is not an error:
    // the lines still go to standard error when asked for.
    let mut state = STATE.lock().unwrap_or_else(|e| e.into_inner());
    // After a fork the inherited logger's socket was closed with the other
    // inherited descriptors, and its number may be reused by the socket we
    // open next: dropping the old logger would close that one. Forget it.
    if let Some(inherited) = state.take() {
        std::mem::forget(inherited);
    }
    // POSTERN_SYSLOG_SOCKET points the log at another syslog socket than
    // /dev/log (the tests listen on one of their own).
    let syslog = match std::env::var_os("POSTERN_SYSLOG_SOCKET") {
        Some(path) => syslog::unix_custom(formatter, path).ok(),
        None => syslog::unix(formatter).ok(),
    };
    *state = Some(State {
        syslog,
        stderr,
        level,
        pid,
    });
}

/// In a front, forked from the front factory, which is chrooted where
/// /dev/log cannot be reached: keeps the inherited syslog socket and only
/// changes the pid the lines carry. (A datagram socket, which is what
/// syslog daemons offer, carries each line whole, so sharing it is safe.)
pub fn forked_keeping_socket() {
    let pid = std::process::id();
    if let Some(state) = STATE.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
        state.pid = pid;
        if let Some(syslog) = state.syslog.as_mut() {
            syslog.formatter.pid = pid;
        }
    }
}

/// The syslog socket's descriptor, which a forked child must keep open.
pub fn syslog_fd() -> Option<RawFd> {
    let guard = STATE.lock().unwrap_or_else(|e| e.into_inner());
    let syslog = guard.as_ref()?.syslog.as_ref()?;
    Some(match &syslog.backend {
        LoggerBackend::Unix(socket) => socket.as_raw_fd(),
        LoggerBackend::UnixStream(socket) => socket.get_ref().as_raw_fd(),
        LoggerBackend::Udp(socket, _) => socket.as_raw_fd(),
        LoggerBackend::Tcp(socket) => socket.get_ref().as_raw_fd(),
    })
}

/// Changes LogLevel (SIGHUP).
pub fn set_level(level: u32) {
    if let Some(state) = STATE.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
        state.level = level;
    }
}

/// True when LogLevel is at least `level`.
pub fn enabled(level: Level) -> bool {
    STATE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .is_some_and(|s| s.level >= level as u32)
}

/// Logs `text` when LogLevel is at least `level`.
pub fn log(priority: Priority, level: Level, text: &str) {
    log_at(priority, level as u32, text);
}

fn log_at(priority: Priority, level: u32, text: &str) {
    let mut guard = STATE.lock().unwrap_or_else(|e| e.into_inner());
    let Some(state) = guard.as_mut() else {
        return;
    };
    if state.level < level {
        return;
    }
    // A line never spans lines: whatever a peer put in it stays on one.
    let text: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if let Some(syslog) = state.syslog.as_mut() {
        let _ = match priority {
            Priority::Crit => syslog.crit(&text),
            Priority::Err => syslog.err(&text),
            Priority::Warning => syslog.warning(&text),
            Priority::Notice => syslog.notice(&text),
            Priority::Info => syslog.info(&text),
        };
    }
    if state.stderr {
        // One write per line (standard error is unbuffered: formatted
        // straight to it, a line took five), so that lines of processes
        // sharing the file never interleave.
        let line = format!("posternd[{}]: {text}\n", state.pid);
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
}

/// Logs at LOG_INFO when LogLevel ≥ `level`.
pub fn info(level: Level, text: &str) {
    log(Priority::Info, level, text);
}

/// Logs at LOG_NOTICE when LogLevel ≥ `level`.
pub fn notice(level: Level, text: &str) {
    log(Priority::Notice, level, text);
}

/// Logs at LOG_WARNING when LogLevel ≥ `level`.
pub fn warning(level: Level, text: &str) {
    log(Priority::Warning, level, text);
}

/// Logs at LOG_ERR; serious problems are logged at any LogLevel above 0.
pub fn err(text: &str) {
    log(Priority::Err, Level::Serious, text);
}

/// Logs at LOG_CRIT, at any LogLevel (even 0).
pub fn crit(text: &str) {
    log_at(Priority::Crit, 0, text);
}
