//! Running a Postern daemon binary for one test.
//!
//! [`DaemonBuilder`] writes an [`Instance`] (state dir, config, tables) and
//! starts `<binary> -C <state>/etc/postern.cf --log-stderr`. [`Daemon`]
//! waits until the SMTP port greets with `220 `, collects the log, and on
//! Drop stops the process by its PID (SIGTERM, then SIGKILL after the stop
//! timeout) and removes the state dir.
//!
//! Signalling by PID is safe here because the kit is the parent: until the
//! kit reaps the child, its PID cannot be reused. The daemon's own children
//! (front, queue runner) are recorded from /proc before the master is
//! signalled; any of them still running a few seconds after the master
//! exited is killed and fails the test, since the daemon must not leave
//! processes behind.

mod instance;
mod log;

pub use instance::{Instance, Listener};

use std::ffi::{OsStr, OsString};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::client::SmtpConversation;
use crate::procfs::{self, ProcStat};
use crate::wait::{poll_until, Backoff};
use instance::Plan;
use log::Log;

/// Builds a daemon instance: `DaemonBuilder::new(bin).config_line(..).start()`.
#[derive(Debug)]
pub struct DaemonBuilder {
    plan: Plan,
}

impl DaemonBuilder {
    /// A daemon from `binary`; tests pass `env!("CARGO_BIN_EXE_posternd")`.
    pub fn new(binary: impl AsRef<Path>) -> Self {
        Self {
            plan: Plan {
                binary: binary.as_ref().to_path_buf(),
                config_lines: Vec::new(),
                tables: Vec::new(),
                args: Vec::new(),
                envs: Vec::new(),
                launcher: None,
                ready_timeout: Duration::from_secs(10),
                stop_timeout: Duration::from_secs(10),
                children_grace: Duration::from_secs(5),
            },
        }
    }

    /// Adds a line to `etc/postern.cf` (either syntax).
    pub fn config_line(mut self, line: &str) -> Self {
        self.plan.config_lines.push(line.to_string());
        self
    }

    /// Writes `etc/<name>` (`mailertable`, `local-host-names` …).
    pub fn table(mut self, name: &str, contents: impl AsRef<[u8]>) -> Self {
        self.plan
            .tables
            .push((name.to_string(), contents.as_ref().to_vec()));
        self
    }

    /// Adds a command-line argument after `-C <cf> --log-stderr`.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.plan.args.push(arg.as_ref().to_os_string());
        self
    }

    /// Sets an environment variable for the daemon (which otherwise
    /// inherits the test's environment).
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.plan
            .envs
            .push((key.as_ref().to_os_string(), value.as_ref().to_os_string()));
        self
    }

    /// Starts the daemon through `program` with `args`, followed by the
    /// daemon's own command line: a launcher that sets something up for
    /// the daemon (a kernel setting that survives exec) and execs it, so
    /// that the daemon keeps the launcher's pid.
    pub fn launcher(mut self, program: impl AsRef<OsStr>, args: &[&str]) -> Self {
        self.plan.launcher = Some((
            program.as_ref().to_os_string(),
            args.iter().map(OsString::from).collect(),
        ));
        self
    }

    /// How long `start` waits for the `220 ` greeting (default 10 s).
    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.plan.ready_timeout = timeout;
        self
    }

    /// How long `stop` waits after SIGTERM before SIGKILL (default 10 s).
    pub fn stop_timeout(mut self, timeout: Duration) -> Self {
        self.plan.stop_timeout = timeout;
        self
    }

    /// How long the daemon's children get to exit after the master has,
    /// before they are killed and the test fails (default 5 s).
    pub fn children_grace(mut self, grace: Duration) -> Self {
        self.plan.children_grace = grace;
        self
    }

    /// Writes the state dir, configuration and tables without starting
    /// anything; [`Instance::start`] starts the daemon later.
    pub fn prepare(self) -> Instance {
        Instance::write(self.plan)
    }

    /// Writes the files and starts the daemon; returns once it greets.
    pub fn start(self) -> Daemon {
        self.prepare().start()
    }
}

impl Instance {
    /// Starts the daemon on this instance; returns once it greets.
    pub fn start(self) -> Daemon {
        let mut daemon = Daemon {
            instance: Some(self),
            child: None,
            pid: 0,
            last_status: None,
            log: Arc::new(Log::default()),
            run_start: 0,
            readers: Vec::new(),
            known_children: Vec::new(),
        };
        daemon.spawn();
        daemon
    }
}

/// A running daemon; stopped and its state dir removed when dropped.
#[derive(Debug)]
pub struct Daemon {
    /// `Some` until Drop; the state dir survives restarts.
    instance: Option<Instance>,
    /// `Some` while the process has not been reaped.
    child: Option<Child>,
    pid: u32,
    last_status: Option<ExitStatus>,
    log: Arc<Log>,
    /// Index of the current run's first log line.
    run_start: usize,
    readers: Vec<JoinHandle<()>>,
    /// The daemon's descendants seen so far in this run.
    known_children: Vec<ProcStat>,
}

impl Daemon {
    /// The instance's files and settings.
    pub fn instance(&self) -> &Instance {
        self.instance.as_ref().expect("instance lives until Drop")
    }

    /// Where SMTP tests connect (the first listener).
    pub fn smtp_addr(&self) -> SocketAddr {
        self.instance().smtp_addr()
    }

    /// The master's PID (of the last run, if stopped).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The state directory.
    pub fn state_dir(&self) -> &Path {
        self.instance().state_dir()
    }

    /// `<state>/spool`.
    pub fn spool_dir(&self) -> PathBuf {
        self.instance().spool_dir()
    }

    /// `<state>/mail`.
    pub fn mail_dir(&self) -> PathBuf {
        self.instance().mail_dir()
    }

    /// `<state>/etc/postern.cf`.
    pub fn config_path(&self) -> PathBuf {
        self.instance().config_path()
    }

    /// Whether the master process has not been reaped yet.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(None)) => true,
            Some(_) => {
                self.reap(None);
                false
            }
            None => false,
        }
    }

    /// The master's children (front, queue runner …), from /proc.
    pub fn children(&mut self) -> Vec<u32> {
        self.note_children();
        procfs::child_pids(self.pid)
    }

    /// Sends `signal` to the master; panics if it has already been reaped.
    pub fn kill(&mut self, signal: Signal) {
        assert!(
            self.child.is_some(),
            "posternd (pid {}) is not running; cannot send {signal}",
            self.pid
        );
        // Recorded now: once the master is gone its children are orphans
        // and /proc no longer links them to it.
        self.note_children();
        send(self.pid, signal);
    }

    /// Waits for the master to exit by itself (after [`kill`](Self::kill),
    /// say) and returns its status; panics with the log after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        if let Some(child) = self.child.as_mut() {
            // No event for a child's exit without a SIGCHLD handler: poll.
            match poll_until(timeout, || child.try_wait().ok().flatten()) {
                Some(status) => self.reap(Some(status)),
                None => panic!(
                    "posternd (pid {}) still running after {timeout:?}; log:\n{}",
                    self.pid,
                    self.log.dump()
                ),
            }
        }
        self.last_status.expect("a reaped daemon has a status")
    }

    /// Stops the daemon: SIGTERM, up to the stop timeout for it to exit,
    /// then SIGKILL. Returns the exit status; stopping a stopped daemon
    /// returns the old status.
    pub fn stop(&mut self) -> ExitStatus {
        let Some(child) = self.child.as_mut() else {
            return self.last_status.expect("a stopped daemon has a status");
        };
        if let Ok(Some(status)) = child.try_wait() {
            self.reap(Some(status));
            return status;
        }
        self.note_children();
        let pid = self.pid;
        send(pid, Signal::SIGTERM);
        let timeout = self.instance().stop_timeout;
        let child = self.child.as_mut().expect("checked above");
        // No event for a child's exit without a SIGCHLD handler: poll.
        let status = match poll_until(timeout, || child.try_wait().ok().flatten()) {
            Some(status) => status,
            None => {
                eprintln!("posternd (pid {pid}) ignored SIGTERM for {timeout:?}; sending SIGKILL");
                send(pid, Signal::SIGKILL);
                child
                    .wait()
                    .unwrap_or_else(|e| panic!("waiting for posternd (pid {pid}): {e}"))
            }
        };
        self.reap(Some(status));
        status
    }

    /// Stops the daemon and starts it again on the same state dir; returns
    /// once it greets. Log waits then look only at the new run's lines.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// The first line of the current run's log containing `needle`; panics
    /// with the whole log after `timeout`, or as soon as the log closes.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> String {
        self.wait_for_log_since(self.run_start, needle, timeout)
    }

    /// Like [`wait_for_log`](Self::wait_for_log), looking only at lines
    /// from index `mark` on (see [`log_mark`](Self::log_mark)): "the next
    /// line saying X".
    pub fn wait_for_log_since(&self, mark: usize, needle: &str, timeout: Duration) -> String {
        self.log
            .wait_for(mark, needle, timeout)
            .unwrap_or_else(|why| {
                panic!(
                    "posternd (pid {}) logged no line containing {needle:?}: {why}; log:\n{}",
                    self.pid,
                    self.log.dump()
                )
            })
    }

    /// The number of log lines so far, to pass to `wait_for_log_since`.
    pub fn log_mark(&self) -> usize {
        self.log.len()
    }

    /// Every log line of every run; stdout lines are prefixed `stdout: `.
    pub fn log_lines(&self) -> Vec<String> {
        self.log.lines()
    }

    fn spawn(&mut self) {
        let inst = self.instance.as_ref().expect("instance lives until Drop");
        let mut command = match &inst.launcher {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(&inst.binary);
                command
            }
            None => Command::new(&inst.binary),
        };
        command
            .arg("-C")
            .arg(inst.config_path())
            .arg("--log-stderr")
            .args(&inst.args)
            .envs(inst.envs.iter().map(|(k, v)| (k, v)))
            // Stray relative paths land in the state dir, which is removed.
            .current_dir(inst.state_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", inst.binary.display()));
        self.pid = child.id();
        self.run_start = self.log.len();
        self.known_children.clear();
        // Both pipes are read, so the daemon never blocks on a full one.
        let stderr = child.stderr.take().expect("stderr is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        self.readers.push(self.log.follow(stderr, ""));
        self.readers.push(self.log.follow(stdout, "stdout: "));
        self.child = Some(child);
        self.wait_ready();
    }

    /// Polls the SMTP port until it greets with `220 `: the daemon has no
    /// readiness event a test can wait on, and a greeting is the one proof
    /// that the whole chain (master, front) serves. The probe connection
    /// is visible to the daemon (and in its log) as a client that QUITs.
    fn wait_ready(&mut self) {
        let inst = self.instance.as_ref().expect("instance lives until Drop");
        let (addr, timeout, binary) = (inst.smtp_addr(), inst.ready_timeout, inst.binary.clone());
        let started = Instant::now();
        let mut backoff = Backoff::new(timeout);
        loop {
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                self.reap(Some(status));
                panic!(
                    "{} (pid {}) exited during startup with {status}; log:\n{}",
                    binary.display(),
                    self.pid,
                    self.log.dump()
                );
            }
            let last_error = match probe(addr, timeout.saturating_sub(started.elapsed())) {
                Ok(()) => return,
                Err(Probe::NotYet(why)) => why,
                Err(Probe::Refused(greeting)) => panic!(
                    "posternd (pid {}) greeted {addr} with {greeting:?}, not 220; log:\n{}",
                    self.pid,
                    self.log.dump()
                ),
            };
            if !backoff.pause() {
                panic!(
                    "posternd (pid {}) did not greet on {addr} within {timeout:?} ({last_error}); log:\n{}",
                    self.pid,
                    self.log.dump()
                );
            }
        }
    }

    /// Records the current descendants of the master.
    fn note_children(&mut self) {
        if self.child.is_none() {
            return;
        }
        for p in procfs::descendants(self.pid) {
            // A process is its PID and start time: its state letter
            // changes (`S`, `R`) between two looks.
            let same = |k: &ProcStat| k.pid == p.pid && k.start_time == p.start_time;
            if !self.known_children.iter().any(same) {
                self.known_children.push(p);
            }
        }
    }

    /// The master has exited: record its status, make sure its children
    /// follow, and collect the rest of its log.
    fn reap(&mut self, status: Option<ExitStatus>) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let status = status.unwrap_or_else(|| {
            child
                .wait()
                .unwrap_or_else(|e| panic!("waiting for posternd (pid {}): {e}", self.pid))
        });
        self.last_status = Some(status);

        let grace = self.instance().children_grace;
        let known = std::mem::take(&mut self.known_children);
        let stragglers = poll_until(grace, || {
            let alive: Vec<ProcStat> = known
                .iter()
                .copied()
                .filter(ProcStat::still_running)
                .collect();
            alive.is_empty().then_some(())
        })
        .map_or_else(
            || {
                known
                    .iter()
                    .copied()
                    .filter(ProcStat::still_running)
                    .collect()
            },
            |()| Vec::new(),
        );
        for p in &stragglers {
            send(p.pid, Signal::SIGKILL);
        }

        // Children holding the pipes keep the log open; with them gone it
        // closes. If it does not, leave the reader threads be rather than
        // hang the test on a process we do not know.
        if self.log.wait_closed(grace) {
            for reader in self.readers.drain(..) {
                let _ = reader.join();
            }
        } else {
            eprintln!(
                "posternd (pid {}): its stdout/stderr are still open after it exited",
                self.pid
            );
            self.readers.clear();
        }

        if !stragglers.is_empty() && !thread::panicking() {
            let pids: Vec<u32> = stragglers.iter().map(|p| p.pid).collect();
            panic!(
                "posternd (pid {}) exited with {status} but left processes running {grace:?} later: {pids:?} (now killed); log:\n{}",
                self.pid,
                self.log.dump()
            );
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.stop();
        }
        if let Some(instance) = self.instance.take() {
            instance.remove();
        }
    }
}

/// Sends `signal` to `pid`. ESRCH is fine: the process exited on its own.
fn send(pid: u32, signal: Signal) {
    let raw = i32::try_from(pid).expect("PIDs fit in i32");
    match kill(Pid::from_raw(raw), signal) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
        Err(e) => panic!("kill({pid}, {signal}): {e}"),
    }
}

enum Probe {
    /// Not listening, or not greeting yet: try again.
    NotYet(String),
    /// Greeted with something other than 220.
    Refused(String),
}

fn probe(addr: SocketAddr, time_left: Duration) -> Result<(), Probe> {
    let wait = time_left.clamp(Duration::from_millis(100), Duration::from_secs(5));
    let stream = TcpStream::connect_timeout(&addr, wait)
        .map_err(|e| Probe::NotYet(format!("connect: {e}")))?;
    let mut conversation = SmtpConversation::from_stream(stream, wait)
        .map_err(|e| Probe::NotYet(format!("socket setup: {e}")))?;
    let greeting = conversation
        .try_read_reply()
        .map_err(|e| Probe::NotYet(format!("greeting: {e}")))?;
    let last = greeting.lines().last().unwrap_or("");
    // A 554 greeting (a mail filter refusing every connection) or a mail
    // filter's 421 shutdown in its place is served by a running front too.
    let served = last.starts_with("220 ")
        || (last.starts_with("554 ") && last.contains(" ESMTP "))
        || (last.starts_with("421 4.7.0 ") && last.ends_with(" closing connection"));
    if !served {
        return Err(Probe::Refused(greeting));
    }
    // Courtesy only; readiness is proven.
    let _ = conversation.try_send_raw(b"QUIT\r\n");
    let _ = conversation.try_read_reply();
    Ok(())
}
