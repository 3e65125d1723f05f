//! Accepting connections (within the limits `admission.rs` applies),
//! forking and supervising the queue runner / delivery client pair,
//! restarted together with back-off when either dies (they share a
//! channel, so one cannot outlive the other usefully), and reaping.

use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use nix::sys::signal::{self, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use postern_ipc::{MasterQueueChannel, MasterToQueue, PROTOCOL_VERSION};

use super::{Master, MasterError, ACCEPT_RETRY};
use crate::privsep::{self, Forked, Identity};
use crate::{delivery, log, policy, queue_runner};

/// Connections master hands the factory ahead of the fronts it has
/// reported started. The factory forks one front at a time; accepting
/// faster than that would only move a burst from the kernel's listen
/// queue (ListenQueueSize), where it costs nothing, into the factory's,
/// where every connection counts against MaxDaemonChildren: a burst of a
/// thousand clients, each gone a moment after its greeting, was mostly
/// refused with `421 4.3.2` so, although a few dozen fronts at most ran
/// at once. 32 keeps the factory busy between two of master's turns.
pub(super) const HANDOVER_WINDOW: usize = 32;

/// The queue runner and delivery client.
#[derive(Default)]
pub struct Workers {
    /// master's channel to the queue runner, while it runs.
    pub queue: Option<MasterQueueChannel>,
    /// The delivery client's channel to master (local delivery agents),
    /// while it runs.
    pub delivery: Option<postern_ipc::MasterDeliveryChannel>,
    /// The delivery client said Hello on it.
    pub delivery_hello: bool,
    queue_pid: Option<Pid>,
    delivery_pid: Option<Pid>,
    /// When to start a new pair after a failure.
    pub restart_at: Option<Instant>,
    backoff: Duration,
    started: Option<Instant>,
    stopping: bool,
    /// When `stop` was asked; a pair still running [`STOP_GRACE`] later
    /// is killed.
    stopping_since: Option<Instant>,
    /// Fronts started while no queue runner could take them (restart,
    /// reload): handed over as soon as the next one starts.
    waiting_fronts: Vec<WaitingFront>,
}

/// A front's channel waiting for a queue runner, with what master knows
/// of its client.
struct WaitingFront {
    connection: u64,
    peer: SocketAddr,
    daemon: String,
    queue_end: UnixStream,
}

/// How long the queue runner and delivery client may take to stop.
const STOP_GRACE: Duration = Duration::from_secs(60);

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
        self.stopping_since.get_or_insert_with(Instant::now);
        if let Some(channel) = self.queue.as_mut() {
            if channel.send(&MasterToQueue::Shutdown, &[]).is_err() {
                for pid in self.queue_pid.iter().chain(self.delivery_pid.iter()) {
                    let _ = signal::kill(*pid, Signal::SIGTERM);
                }
            }
        }
    }

    /// A pair asked to stop that has not within [`STOP_GRACE`] (the queue
    /// runner gives fronts 30 s) is killed, so nothing a front does can
    /// hold a reload up.
    pub fn kill_if_overdue(&mut self) {
        if self
            .stopping_since
            .is_some_and(|since| since.elapsed() > STOP_GRACE)
        {
            for pid in self.pids() {
                log::err(&format!(
                    "pid {pid} did not stop within {}s; killing it",
                    STOP_GRACE.as_secs()
                ));
                let _ = signal::kill(pid, Signal::SIGKILL);
            }
            self.stopping_since = None;
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

/// In a fresh child: name it for ps and /proc (`posternd-queue` as its
/// comm, `posternd: queue runner` as its title), close what it must not
/// hold, log under the new pid.
fn child_setup(role: &str, title: &str, log_level: u32, log_stderr: bool, keep: &[RawFd]) {
    privsep::reset_signal_handlers();
    if let Ok(name) = std::ffi::CString::new(format!("posternd-{role}")) {
        let _ = nix::sys::prctl::set_name(&name);
    }
    crate::title::set(title);
    privsep::close_fds_except(keep);
    log::init(log_level, log_stderr);
}

/// Drops privileges (dying with master from then on), or exits.
fn drop_or_exit(role: &str, who: &Identity, master: Pid) -> privsep::Dropped {
    let jail = privsep::Jail {
        parent: Some(master),
        ..privsep::Jail::default()
    };
    match privsep::drop_privileges(role, who, &jail) {
        Ok(dropped) => dropped,
        // master died before we asked: nobody will reap or supervise us.
        Err(privsep::PrivsepError::Orphaned) => std::process::exit(0),
        Err(e) => {
            log::crit(&format!("{role}: cannot drop privileges: {e}"));
            std::process::exit(1);
        }
    }
}

impl Master {
    /// Starts the queue runner and the delivery client.
    pub(super) fn start_workers(&mut self) -> Result<(), MasterError> {
        let (master_end, queue_end) = UnixStream::pair()?;
        let (queue_delivery, delivery_end) = UnixStream::pair()?;
        let (master_delivery, delivery_master) = UnixStream::pair()?;
        // The delivery client's socket to the key holder (for ClientCertFile).
        let delivery_keys = self.keys.requester(postern_ipc::Requester::DeliveryClient);
        let level = self.settings.config.log_level;
        let master = nix::unistd::getpid();
        let queue_pid = match privsep::fork()? {
            Forked::Child => {
                child_setup(
                    "queue",
                    "queue runner",
                    level,
                    self.log_stderr,
                    &[queue_end.as_raw_fd(), queue_delivery.as_raw_fd()],
                );
                let dropped = drop_or_exit("queue runner", &self.users.queue_owner, master);
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
                let mut keep = vec![delivery_end.as_raw_fd(), delivery_master.as_raw_fd()];
                keep.extend(delivery_keys.as_ref().map(AsRawFd::as_raw_fd));
                child_setup("deliv", "delivery client", level, self.log_stderr, &keep);
                let dropped = drop_or_exit("delivery client", &self.users.run_as, master);
                if let Some(keys) = delivery_keys {
                    match crate::key_holder::HolderSigner::configure(&keys) {
                        Ok(()) => crate::key_holder::HolderSigner::install(keys),
                        Err(e) => log::err(&format!("delivery client: key holder socket: {e}")),
                    }
                }
                let code = delivery::run(
                    dropped,
                    self.settings.clone(),
                    postern_ipc::delivery_channel(delivery_end),
                    postern_ipc::delivery_master_channel(delivery_master),
                );
                std::process::exit(code);
            }
            Forked::Parent(pid) => pid,
        };
        drop((queue_end, queue_delivery, delivery_end, delivery_master));
        drop(delivery_keys);
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
        w.delivery = Some(postern_ipc::master_delivery_channel(master_delivery));
        w.delivery_hello = false;
        w.queue_pid = Some(queue_pid);
        w.delivery_pid = Some(delivery_pid);
        w.started = Some(Instant::now());
        w.stopping = false;
        w.stopping_since = None;
        log::info(
            log::Level::EndOfJob,
            &format!(
                "started queue runner (pid {queue_pid}) and delivery client (pid {delivery_pid})"
            ),
        );
        self.register_queue_channel()?;
        self.register_delivery_channel()?;
        for waiting in std::mem::take(&mut self.workers.waiting_fronts) {
            self.hand_front(
                waiting.connection,
                waiting.peer,
                waiting.daemon,
                waiting.queue_end,
            );
        }
        Ok(())
    }

    /// Gives a front's channel to the queue runner, with what master knows
    /// of the client, or keeps it until one that is not stopping runs.
    pub(super) fn hand_front(
        &mut self,
        connection: u64,
        peer: SocketAddr,
        daemon: String,
        queue_end: UnixStream,
    ) {
        let w = &mut self.workers;
        if let (Some(queue), false) = (w.queue.as_mut(), w.stopping) {
            let msg = MasterToQueue::NewFront {
                connection,
                peer,
                daemon: daemon.clone(),
            };
            if queue.send(&msg, &[queue_end.as_fd()]).is_ok() {
                return;
            }
        }
        if w.waiting_fronts.len() >= MAX_WAITING_FRONTS {
            w.waiting_fronts.remove(0);
        }
        w.waiting_fronts.push(WaitingFront {
            connection,
            peer,
            daemon,
            queue_end,
        });
    }

    /// Accepts on every listener (when a factory becomes ready, or the
    /// rate throttle's second is over).
    pub(super) fn accept_all(&mut self) {
        for i in 0..self.listeners.len() {
            self.accept(i);
        }
    }

    /// Accepts what is waiting on listener `i` and hands each connection
    /// to the front factory. Without a factory ready, or with its queue
    /// full, connections wait in the listen backlog.
    pub(super) fn accept(&mut self, i: usize) {
        self.accept_paused = false;
        loop {
            if self.draining.is_some()
                || self.factories.current().is_none()
                || !self.throttle.has_room()
            {
                return;
            }
            if self.fronts.unstarted() >= HANDOVER_WINDOW {
                self.accept_paused = true;
                return;
            }
            let (stream, peer) = match self.listeners.accept(i) {
                None => return,
                Some(Ok(accepted)) => accepted,
                // The connection died before we took it: take the next.
                Some(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionAborted => continue,
                Some(Err(e)) => {
                    // Out of descriptors or memory: the connection stays
                    // in the backlog, and the listener, edge-triggered,
                    // will not wake us for it again; a timer does.
                    if self.accept_failing_since.is_none() {
                        log::err(&format!(
                            "accept: {e}; trying again every {} ms",
                            ACCEPT_RETRY.as_millis()
                        ));
                        self.accept_failing_since = Some(Instant::now());
                    }
                    self.accept_retry_at = Some(Instant::now() + ACCEPT_RETRY);
                    return;
                }
            };
            if let Some(since) = self.accept_failing_since.take() {
                log::notice(
                    log::Level::Serious,
                    &format!(
                        "accept: working again after {} ms",
                        since.elapsed().as_millis()
                    ),
                );
            }
            self.throttle.count();
            // An IPv4 client of a dual-stack listener is `::ffff:a.b.c.d`:
            // written as IPv4, it is the same client for limits, the relay
            // decision and the logs.
            let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
            if let Some(refusal) = self.over_a_limit(&peer) {
                super::admission::refuse(stream, &refusal);
                continue;
            }
            let daemon = self.listeners.name(i).to_string();
            if let Err(e) = self.hand_to_factory(&stream, peer, daemon) {
                log::err(&format!(
                    "cannot start a front for {}: {e}",
                    policy::client_name(&peer)
                ));
                super::admission::unavailable(stream, &self.settings.hostname);
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
            // A front whose factory died was reparented to master.
            if let Some(connection) = self.fronts.connection_of(pid) {
                self.fronts.remove(connection);
                continue;
            }
            if self.factory_exited(pid, &format!("{status:?}")) {
                continue;
            }
            if self.keys.exited(pid, &format!("{status:?}")).is_some() {
                continue;
            }
            let w = &mut self.workers;
            let role = if w.queue_pid == Some(pid) {
                w.queue_pid = None;
                w.queue = None;
                "queue runner"
            } else if w.delivery_pid == Some(pid) {
                w.delivery_pid = None;
                w.delivery = None;
                w.delivery_hello = false;
                "delivery client"
            } else {
                continue;
            };
            // Its partner cannot work alone: stop it too.
            for other in w.pids() {
                let _ = signal::kill(other, Signal::SIGTERM);
            }
            if w.stopping {
                log::info(log::Level::EndOfJob, &format!("{role} (pid {pid}) exited"));
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
            w.backoff = if healthy {
                Duration::from_secs(1)
            } else {
                super::next_backoff(w.backoff)
            };
            w.restart_at = Some(Instant::now() + w.backoff);
            log::err(&format!(
                "{role} (pid {pid}) died ({status:?}); restarting in {}s",
                w.backoff.as_secs()
            ));
        }
    }
}
