//! Forking and supervising: a front per connection, and the queue runner /
//! delivery client pair, restarted together with back-off when either dies
//! (they share a channel, so one cannot outlive the other usefully).

use std::io::Write;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use nix::sys::signal::{self, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use postern_ipc::{MasterQueueChannel, MasterToQueue, PROTOCOL_VERSION};

use super::{directories, Master, MasterError};
use crate::privsep::{self, Forked, Identity};
use crate::{delivery, front, log, queue_runner};

/// The queue runner and delivery client.
#[derive(Default)]
pub struct Workers {
    /// master's channel to the queue runner, while it runs.
    pub queue: Option<MasterQueueChannel>,
    queue_pid: Option<Pid>,
    delivery_pid: Option<Pid>,
    /// When to start a new pair after a failure.
    pub restart_at: Option<Instant>,
    backoff: Duration,
    started: Option<Instant>,
    stopping: bool,
    /// Fronts forked while no queue runner could take them (restart,
    /// reload): handed over as soon as the next one starts.
    waiting_fronts: Vec<(u64, UnixStream)>,
}

/// Fronts that may wait for a queue runner; past this the oldest are let
/// go (their sessions answer 451 when they need the queue).
const MAX_WAITING_FRONTS: usize = 1024;

impl Workers {
    /// True when neither worker runs.
    pub fn all_gone(&self) -> bool {
        self.queue_pid.is_none() && self.delivery_pid.is_none()
    }

    /// The workers' pids.
    pub fn pids(&self) -> Vec<Pid> {
        self.queue_pid
            .into_iter()
            .chain(self.delivery_pid)
            .collect()
    }

    /// Asks the pair to finish and exit (SIGTERM drain, SIGHUP reload).
    pub fn stop(&mut self) {
        self.stopping = true;
        if let Some(channel) = self.queue.as_mut() {
            if channel.send(&MasterToQueue::Shutdown, &[]).is_err() {
                for pid in self.queue_pid.iter().chain(self.delivery_pid.iter()) {
                    let _ = signal::kill(*pid, Signal::SIGTERM);
                }
            }
        }
    }

    /// True when a restart is due now.
    pub fn restart_due(&mut self) -> bool {
        match self.restart_at {
            Some(at) if Instant::now() >= at && self.all_gone() => {
                self.restart_at = None;
                true
            }
            _ => false,
        }
    }
}

/// Closes every descriptor except stdio and `keep`: a child must not hold
/// the listeners, the other children's channels or master's poller.
fn close_other_fds(keep: &[RawFd]) {
    let fds: Vec<RawFd> = match std::fs::read_dir("/proc/self/fd") {
        Ok(dir) => dir
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect(),
        // No /proc: every number up to the descriptor limit.
        Err(_) => {
            let (soft, _) =
                nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
                    .unwrap_or((65536, 65536));
            (3..soft.min(1 << 20) as RawFd).collect()
        }
    };
    for fd in fds.into_iter().filter(|fd| *fd > 2 && !keep.contains(fd)) {
        let _ = nix::unistd::close(fd);
    }
}

/// In a fresh child: name it for ps and /proc (`posternd-front`, …), die
/// with master, close what it must not hold, log under the new pid.
fn child_setup(role: &str, log_level: u32, log_stderr: bool, keep: &[RawFd]) {
    privsep::reset_signal_handlers();
    if let Ok(name) = std::ffi::CString::new(format!("posternd-{role}")) {
        let _ = nix::sys::prctl::set_name(&name);
    }
    close_other_fds(keep);
    log::init(log_level, log_stderr);
}

/// Drops privileges, then asks to die with master. The order matters: the
/// kernel clears the parent-death signal when the uid changes.
fn drop_or_exit(
    role: &str,
    who: &Identity,
    jail: Option<&std::path::Path>,
    master: Pid,
) -> privsep::Dropped {
    let dropped = match privsep::drop_privileges(role, who, jail) {
        Ok(dropped) => dropped,
        Err(e) => {
            log::crit(&format!("{role}: cannot drop privileges: {e}"));
            std::process::exit(1);
        }
    };
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGTERM);
    if nix::unistd::getppid() != master {
        // master died before we asked: nobody will reap or supervise us.
        std::process::exit(0);
    }
    dropped
}

impl Master {
    /// Starts the queue runner and the delivery client.
    pub(super) fn start_workers(&mut self) -> Result<(), MasterError> {
        let (master_end, queue_end) = UnixStream::pair()?;
        let (queue_delivery, delivery_end) = UnixStream::pair()?;
        let level = self.settings.config.log_level;
        let master = nix::unistd::getpid();
        let queue_pid = match privsep::fork()? {
            Forked::Child => {
                child_setup(
                    "queue",
                    level,
                    self.log_stderr,
                    &[queue_end.as_raw_fd(), queue_delivery.as_raw_fd()],
                );
                let dropped = drop_or_exit("queue runner", &self.users.queue_owner, None, master);
                let code = queue_runner::run(
                    dropped,
                    self.settings.clone(),
                    postern_ipc::queue_master_channel(queue_end),
                    postern_ipc::queue_delivery_channel(queue_delivery),
                );
                std::process::exit(code);
            }
            Forked::Parent(pid) => pid,
        };
        let delivery_pid = match privsep::fork()? {
            Forked::Child => {
                child_setup("deliv", level, self.log_stderr, &[delivery_end.as_raw_fd()]);
                let dropped = drop_or_exit("delivery client", &self.users.run_as, None, master);
                let code = delivery::run(
                    dropped,
                    self.settings.clone(),
                    postern_ipc::delivery_channel(delivery_end),
                );
                std::process::exit(code);
            }
            Forked::Parent(pid) => pid,
        };
        drop((queue_end, queue_delivery, delivery_end));
        let mut channel = postern_ipc::master_queue_channel(master_end);
        channel
            .send(
                &MasterToQueue::Hello {
                    version: PROTOCOL_VERSION,
                },
                &[],
            )
            .map_err(|e| MasterError::Setup(e.to_string()))?;
        let w = &mut self.workers;
        w.queue = Some(channel);
        w.queue_pid = Some(queue_pid);
        w.delivery_pid = Some(delivery_pid);
        w.started = Some(Instant::now());
        w.stopping = false;
        log::info(
            11,
            &format!(
                "started queue runner (pid {queue_pid}) and delivery client (pid {delivery_pid})"
            ),
        );
        self.register_queue_channel()?;
        for (connection, stream) in std::mem::take(&mut self.workers.waiting_fronts) {
            self.hand_front(connection, stream);
        }
        Ok(())
    }

    /// Gives a front's channel to the queue runner, or keeps it until one
    /// that is not stopping runs.
    fn hand_front(&mut self, connection: u64, queue_end: UnixStream) {
        let w = &mut self.workers;
        if let (Some(queue), false) = (w.queue.as_mut(), w.stopping) {
            let sent = queue.send(
                &MasterToQueue::NewFront { connection },
                &[queue_end.as_fd()],
            );
            if sent.is_ok() {
                return;
            }
        }
        if w.waiting_fronts.len() >= MAX_WAITING_FRONTS {
            w.waiting_fronts.remove(0);
        }
        w.waiting_fronts.push((connection, queue_end));
    }

    /// Accepts what is waiting on listener `i` and forks a front for each.
    pub(super) fn accept(&mut self, i: usize) {
        loop {
            if self.draining.is_some() || !self.throttle.has_room() {
                return;
            }
            let (stream, peer) = match self.listeners.accept(i) {
                None => return,
                Some(Ok(accepted)) => accepted,
                // The connection died before we took it: take the next.
                Some(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionAborted => continue,
                Some(Err(e)) => {
                    log::err(&format!("accept: {e}"));
                    return;
                }
            };
            self.throttle.count();
            self.connections += 1;
            let max = self.settings.config.max_daemon_children as usize;
            if max > 0 && self.fronts.len() >= max {
                refuse(stream, &self.settings.hostname, &peer, self.fronts.len());
                continue;
            }
            if let Err(e) = self.fork_front(stream, peer, i) {
                log::err(&format!("cannot start a front for {peer}: {e}"));
            }
        }
    }

    fn fork_front(
        &mut self,
        stream: mio::net::TcpStream,
        peer: SocketAddr,
        listener: usize,
    ) -> Result<(), MasterError> {
        let stream: std::net::TcpStream =
            std::net::TcpStream::from(std::os::fd::OwnedFd::from(stream));
        stream.set_nonblocking(false)?;
        let (queue_end, front_end) = UnixStream::pair()?;
        let connection = self.connections;
        // Read before the jail hides /etc/localtime.
        let utc_offset = chrono::Local::now().offset().local_minus_utc();
        let master = nix::unistd::getpid();
        match privsep::fork()? {
            Forked::Child => {
                child_setup(
                    "front",
                    self.settings.config.log_level,
                    self.log_stderr,
                    &[stream.as_raw_fd(), front_end.as_raw_fd()],
                );
                let jail = privsep::privileged().then(directories::jail_dir);
                let dropped = drop_or_exit("front", &self.users.run_as, jail.as_deref(), master);
                let conn = front::Connection {
                    peer,
                    client: front::client_name(&peer),
                    daemon_name: self.listeners.name(listener).to_string(),
                    utc_offset,
                };
                let code = front::run(
                    dropped,
                    &self.settings,
                    stream,
                    conn,
                    postern_ipc::front_channel(front_end),
                );
                std::process::exit(code);
            }
            Forked::Parent(pid) => {
                drop(front_end);
                drop(stream);
                self.fronts.insert(pid, connection);
                log::info(
                    12,
                    &format!("connect from {} (pid {pid})", front::client_name(&peer)),
                );
                self.hand_front(connection, queue_end);
                Ok(())
            }
        }
    }

    /// Collects exited children; a dead worker brings the pair down and
    /// schedules a restart with back-off.
    pub(super) fn reap(&mut self) {
        loop {
            let status = match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(status) => status,
            };
            let Some(pid) = status.pid() else { return };
            if self.fronts.remove(&pid).is_some() {
                if let WaitStatus::Signaled(_, sig, _) = status {
                    log::warning(4, &format!("front (pid {pid}) killed by {sig:?}"));
                }
                continue;
            }
            let w = &mut self.workers;
            let role = if w.queue_pid == Some(pid) {
                w.queue_pid = None;
                w.queue = None;
                "queue runner"
            } else if w.delivery_pid == Some(pid) {
                w.delivery_pid = None;
                "delivery client"
            } else {
                continue;
            };
            // Its partner cannot work alone: stop it too.
            for other in w.pids() {
                let _ = signal::kill(other, Signal::SIGTERM);
            }
            if w.stopping {
                log::info(11, &format!("{role} (pid {pid}) exited"));
                if w.all_gone() && self.draining.is_none() {
                    w.restart_at = Some(Instant::now());
                    w.backoff = Duration::ZERO;
                }
                continue;
            }
            // Back-off: 1 s, doubling to a minute; a pair that ran a
            // minute counts as healthy again.
            let healthy = w
                .started
                .is_some_and(|s| s.elapsed() > Duration::from_secs(60));
            w.backoff = if healthy || w.backoff.is_zero() {
                Duration::from_secs(1)
            } else {
                (w.backoff * 2).min(Duration::from_secs(60))
            };
            w.restart_at = Some(Instant::now() + w.backoff);
            log::err(&format!(
                "{role} (pid {pid}) died ({status:?}); restarting in {}s",
                w.backoff.as_secs()
            ));
        }
    }
}

/// MaxDaemonChildren reached: say so and hang up.
fn refuse(stream: mio::net::TcpStream, hostname: &str, peer: &SocketAddr, children: usize) {
    let mut stream = std::net::TcpStream::from(std::os::fd::OwnedFd::from(stream));
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    let _ = write!(
        stream,
        "421 4.3.2 {hostname} Too many connections, try again later\r\n"
    );
    log::notice(
        14,
        &format!(
            "rejecting connection from {}: {children} children, MaxDaemonChildren reached",
            front::client_name(peer)
        ),
    );
}
