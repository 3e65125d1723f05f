//! The front factories master runs: the current one, which gets every new
//! connection; at most one starting (after a reload or a crash), which
//! becomes current when it says Hello; and retired ones, which fork
//! nothing more and exit when their last front has.
//!
//! A factory is started by fork + exec of posternd itself
//! (`--front-factory`), so it shares nothing with master's memory. It is
//! replaced:
//! - after SIGHUP (it reads the new configuration as it starts);
//! - at once when one of its fronts crashes, so that no two attempts of a
//!   crash-and-retry attack meet the same address-space layout;
//! - when it dies, after a back-off (1 s doubling to a minute).

use std::collections::HashMap;
use std::ffi::CString;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Interest, Token};
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use postern_ipc::{
    AcceptedConnection, ChannelError, FactoryToMaster, MasterFactoryChannel, MasterToFactory,
    PROTOCOL_VERSION,
};

use super::{Master, MasterError};
use crate::privsep::{self, Forked};
use crate::{log, policy};

/// Factories get tokens from here on (above listeners and control).
pub const FIRST_FACTORY: usize = 1 << 40;

/// How long a new factory may take to say Hello.
const FACTORY_START_TIME: Duration = Duration::from_secs(10);

/// One factory process.
struct Factory {
    pid: Pid,
    channel: MasterFactoryChannel,
    ready: bool,
    retiring: bool,
}

/// Every factory master knows of.
#[derive(Default)]
pub struct Factories {
    procs: HashMap<Token, Factory>,
    current: Option<Token>,
    starting: Option<(Token, Instant)>,
    next: usize,
    /// When to start a factory after one died.
    pub restart_at: Option<Instant>,
    backoff: Duration,
}

impl Factories {
    /// The factory new connections go to. None while a replacement is
    /// starting (after a reload, connections wait in the backlog for the
    /// factory that has the new configuration; if it fails to start, the
    /// old one serves again).
    pub fn current(&self) -> Option<Token> {
        if self.starting.is_some() {
            return None;
        }
        self.current
            .filter(|t| self.procs.get(t).is_some_and(|f| f.ready && !f.retiring))
    }

    /// True when no factory process is left.
    pub fn is_empty(&self) -> bool {
        self.procs.is_empty()
    }

    /// Every factory's pid.
    pub fn pids(&self) -> Vec<Pid> {
        self.procs.values().map(|f| f.pid).collect()
    }

    /// The token of the factory with this pid.
    fn token_of(&self, pid: Pid) -> Option<Token> {
        self.procs
            .iter()
            .find(|(_, f)| f.pid == pid)
            .map(|(t, _)| *t)
    }

    /// True when a factory is on its way (starting, or a restart is due).
    fn pending(&self) -> bool {
        self.starting.is_some() || self.restart_at.is_some()
    }

    fn retire(&mut self, token: Token) {
        if let Some(f) = self.procs.get_mut(&token) {
            if !f.retiring {
                f.retiring = true;
                let _ = f.channel.send(&MasterToFactory::Retire, &[]);
            }
        }
        if self.current == Some(token) {
            self.current = None;
        }
    }

    /// Asks every factory to finish (SIGTERM drain).
    pub fn retire_all(&mut self) {
        let tokens: Vec<Token> = self.procs.keys().copied().collect();
        for token in tokens {
            self.retire(token);
        }
        self.starting = None;
        self.restart_at = None;
    }
}

impl Master {
    /// Starts a new front factory; it becomes current when it says Hello.
    pub(super) fn start_factory(&mut self) -> Result<(), MasterError> {
        let (ours, theirs) = UnixStream::pair()?;
        let mut args = vec![
            CString::new("posternd").expect("no NUL"),
            CString::new("--front-factory").expect("no NUL"),
            CString::new("-C").expect("no NUL"),
            CString::new(self.config_path.as_os_str().as_encoded_bytes())
                .map_err(|_| MasterError::Setup("configuration path with a NUL".into()))?,
        ];
        if self.log_stderr {
            args.push(CString::new("--log-stderr").expect("no NUL"));
        }
        // Its channel to the key holder, on its descriptor 4, over which
        // it hands the holder a socket per front.
        let keys = self.keys.registrar();
        let pid = match privsep::fork()? {
            Forked::Child => {
                privsep::reset_signal_handlers();
                let mut channels = vec![&theirs];
                channels.extend(keys.as_ref());
                let e = privsep::exec_role(&channels, &args);
                log::crit(&format!("cannot start the front factory: {e}"));
                std::process::exit(1);
            }
            Forked::Parent(pid) => pid,
        };
        drop((theirs, keys));
        ours.set_nonblocking(true)?;
        let token = Token(FIRST_FACTORY + self.factories.next);
        self.factories.next += 1;
        let mut channel = postern_ipc::master_factory_channel(ours);
        // Writable too: frames that did not fit the socket (a burst of
        // connections) are flushed when it drains.
        self.poll.registry().register(
            &mut SourceFd(&channel.as_raw_fd()),
            token,
            Interest::READABLE | Interest::WRITABLE,
        )?;
        channel
            .send(
                &MasterToFactory::Hello {
                    version: PROTOCOL_VERSION,
                },
                &[],
            )
            .map_err(|e| MasterError::Setup(e.to_string()))?;
        // A factory still starting is replaced by this one.
        if let Some((old, _)) = self.factories.starting.take() {
            self.factories.retire(old);
        }
        self.factories.procs.insert(
            token,
            Factory {
                pid,
                channel,
                ready: false,
                retiring: false,
            },
        );
        self.factories.starting = Some((token, Instant::now()));
        log::info(
            log::Level::EndOfJob,
            &format!("started front factory (pid {pid})"),
        );
        Ok(())
    }

    /// Starts a factory, or schedules another try when that fails.
    pub(super) fn replace_factory(&mut self) {
        if let Err(e) = self.start_factory() {
            log::err(&format!("cannot start a front factory: {e}"));
            self.schedule_factory_restart();
        }
    }

    fn schedule_factory_restart(&mut self) {
        let f = &mut self.factories;
        f.backoff = super::next_backoff(f.backoff);
        f.restart_at = Some(Instant::now() + f.backoff);
    }

    /// Starts a factory if a restart is due; kills one that takes too long
    /// to start (connections wait for it).
    pub(super) fn factory_tick(&mut self) {
        if let Some((token, since)) = self.factories.starting {
            if since.elapsed() > FACTORY_START_TIME {
                if let Some(f) = self.factories.procs.get(&token) {
                    log::err(&format!(
                        "front factory (pid {}) did not start within {}s",
                        f.pid,
                        FACTORY_START_TIME.as_secs()
                    ));
                    let _ = signal::kill(f.pid, Signal::SIGKILL);
                }
            }
        }
        if self
            .factories
            .restart_at
            .is_some_and(|at| Instant::now() >= at)
        {
            self.factories.restart_at = None;
            self.replace_factory();
        }
    }

    /// Hands an accepted connection to the current factory, with the
    /// front's end of a new queue-runner channel; gives the queue runner
    /// the other end with what master knows of the client.
    pub(super) fn hand_to_factory(
        &mut self,
        stream: &mio::net::TcpStream,
        peer: SocketAddr,
        daemon: String,
    ) -> Result<(), MasterError> {
        let Some(token) = self.factories.current() else {
            return Err(MasterError::Setup("no front factory".into()));
        };
        let (queue_end, front_end) = UnixStream::pair()?;
        self.connections += 1;
        let connection = self.connections;
        let accepted = AcceptedConnection {
            connection,
            peer,
            daemon: daemon.clone(),
            // Read here: fronts cannot read /etc/localtime in their jail.
            utc_offset: chrono::Local::now().offset().local_minus_utc(),
        };
        let factory = self
            .factories
            .procs
            .get_mut(&token)
            .expect("current factory exists");
        // Logged before the factory hears of it: the front's own lines
        // (a filter's, at LogLevel 11 and up) must come after this one.
        log::info(
            log::Level::Connection,
            &format!(
                "connect from {} (connection {connection})",
                policy::client_name(&peer)
            ),
        );
        let sent = factory.channel.send(
            &MasterToFactory::Accepted(accepted),
            &[stream.as_fd(), front_end.as_fd()],
        );
        if let Err(e) = sent {
            // The factory is broken: the next one serves.
            let pid = factory.pid;
            let _ = signal::kill(pid, Signal::SIGTERM);
            self.factories.retire(token);
            if !self.factories.pending() {
                self.replace_factory();
            }
            return Err(MasterError::Setup(format!(
                "front factory (pid {pid}): {e}"
            )));
        }
        drop(front_end);
        self.fronts.add(connection, peer.ip(), token);
        self.hand_front(connection, peer, daemon, queue_end);
        Ok(())
    }

    /// What a factory says.
    pub(super) fn factory_ready(&mut self, token: Token) {
        let mut became_ready = false;
        loop {
            let Some(factory) = self.factories.procs.get_mut(&token) else {
                return;
            };
            let _ = factory.channel.flush();
            let msg = match factory.channel.try_recv() {
                Ok(Some((msg, _))) => msg,
                Ok(None) => break,
                Err(e) => {
                    // Exiting: its exit is handled when reaped. Broken (it
                    // sent what it must not): it is stopped and replaced.
                    let _ = self
                        .poll
                        .registry()
                        .deregister(&mut SourceFd(&factory.channel.as_raw_fd()));
                    if !matches!(e, ChannelError::Closed) {
                        let pid = factory.pid;
                        log::err(&format!("front factory (pid {pid}): {e}; replacing it"));
                        let _ = signal::kill(pid, Signal::SIGTERM);
                        let was_current = self.factories.current == Some(token);
                        self.factories.retire(token);
                        if was_current && !self.factories.pending() {
                            self.replace_factory();
                        }
                    }
                    break;
                }
            };
            match msg {
                FactoryToMaster::Hello { version } if version == PROTOCOL_VERSION => {
                    factory.ready = true;
                    became_ready = true;
                }
                FactoryToMaster::Hello { version } => {
                    log::crit(&format!(
                        "front factory (pid {}) speaks protocol {version}",
                        factory.pid
                    ));
                    let _ = signal::kill(factory.pid, Signal::SIGTERM);
                }
                FactoryToMaster::Started { connection, pid } => {
                    self.fronts.started(connection, Pid::from_raw(pid));
                }
                FactoryToMaster::NotStarted { connection, reason } => {
                    self.fronts.remove(connection);
                    log::err(&format!("no front for connection {connection}: {reason}"));
                }
                FactoryToMaster::Exited {
                    connection,
                    pid,
                    crashed,
                    status,
                } => self.front_exited(token, connection, pid, crashed, &status),
            }
        }
        // The factory's queue has room again: take what waits in the backlog.
        if self.accept_paused && self.fronts.unstarted() < super::children::HANDOVER_WINDOW / 2 {
            self.accept_paused = false;
            self.accept_all();
        }
        if became_ready && self.factories.starting.is_some_and(|(t, _)| t == token) {
            self.factories.starting = None;
            self.factories.backoff = Duration::ZERO;
            if let Some(old) = self.factories.current.replace(token) {
                self.factories.retire(old);
            }
            // Connections waited in the backlog while no factory served.
            self.accept_all();
        }
    }

    fn front_exited(
        &mut self,
        factory: Token,
        connection: u64,
        pid: i32,
        crashed: bool,
        status: &str,
    ) {
        let front = self.fronts.remove(connection);
        if !crashed {
            return;
        }
        let client = front.map_or_else(String::new, |f| format!(" for {}", f.ip));
        log::err(&format!(
            "front (pid {pid}){client} crashed ({status}): replacing the front factory"
        ));
        if self.factories.current == Some(factory) && self.draining.is_none() {
            // No front from this image again: the next connection waits
            // in the backlog until the new factory serves it.
            self.factories.retire(factory);
            if !self.factories.pending() {
                self.replace_factory();
            }
        }
    }

    /// A reaped pid that was a factory: forget it, and start another if it
    /// was the one serving (or about to).
    pub(super) fn factory_exited(&mut self, pid: Pid, status: &str) -> bool {
        let Some(token) = self.factories.token_of(pid) else {
            return false;
        };
        // Its last reports may still be in the socket: they say which
        // fronts started and which exited.
        self.factory_ready(token);
        let factory = self.factories.procs.remove(&token).expect("token found");
        let _ = self
            .poll
            .registry()
            .deregister(&mut SourceFd(&factory.channel.as_raw_fd()));
        self.fronts.forget_unstarted(token);
        self.fronts.forget_gone(token);
        let was_starting = self.factories.starting.is_some_and(|(t, _)| t == token);
        let was_needed = self.factories.current == Some(token) || was_starting;
        if self.factories.current == Some(token) {
            self.factories.current = None;
        }
        if was_starting {
            self.factories.starting = None;
        }
        if factory.retiring {
            log::info(
                log::Level::EndOfJob,
                &format!("front factory (pid {pid}) exited"),
            );
        } else if was_needed && self.draining.is_none() {
            log::err(&format!("front factory (pid {pid}) died ({status})"));
            if self.factories.current.is_none() && !self.factories.pending() {
                self.schedule_factory_restart();
            }
        }
        // A replacement that died before serving: the old factory (if any)
        // serves again, and what waited in the backlog is taken.
        self.accept_all();
        true
    }
}
