//! master: the root process. It never parses SMTP and never reads a message.
//!
//! Its main is a checklist: resolve the users, prepare the directories,
//! start the key holder (and wait until every key is loaded and tested),
//! bind the listeners, start the queue runner, the delivery client and
//! the front factory, then loop: accept each connection and hand it to the
//! front factory (within MaxDaemonChildren and the per-client limits),
//! supervise children (restarting the queue runner/delivery client pair
//! and the factory with back-off, and the factory at once after a crashed
//! front), reload on SIGHUP, drain and stop on SIGTERM.

mod admission;
pub mod check;
mod children;
mod control;
mod directories;
mod factories;
mod fronts;
mod key_holder;
mod listeners;
mod local_agents;

pub use directories::jail_dir;

use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use nix::sys::signal::{self, Signal};
use signal_hook::consts::{SIGCHLD, SIGHUP, SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;

use crate::log;
use crate::privsep::{self, Identity};
use crate::settings::Settings;

const SIGNALS: Token = Token(0);
const QUEUE: Token = Token(1);
const CONTROL: Token = Token(2);
const DELIVERY: Token = Token(3);
/// Listeners get tokens from here on.
const FIRST_LISTENER: usize = 10;

/// How long fronts may take to finish after SIGTERM.
const DRAIN_TIME: Duration = Duration::from_secs(10);

/// Why master could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum MasterError {
    /// A system call or file operation failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Users or privileges.
    #[error("{0}")]
    Privsep(#[from] privsep::PrivsepError),
    /// Anything else worth a sentence.
    #[error("{0}")]
    Setup(String),
}

/// The users the roles run as.
#[derive(Clone, Debug)]
pub struct Users {
    /// The delivery client (RunAsUser).
    pub run_as: Identity,
    /// The queue runner (QueueOwner).
    pub queue_owner: Identity,
}

/// master's state.
pub struct Master {
    settings: Settings,
    config_path: PathBuf,
    log_stderr: bool,
    users: Users,
    poll: Poll,
    listeners: listeners::Listeners,
    workers: children::Workers,
    factories: factories::Factories,
    fronts: fronts::Fronts,
    /// The key holder (none when no key is configured).
    keys: key_holder::KeyHolders,
    connections: u64,
    throttle: listeners::Throttle,
    rates: admission::ConnectionRates,
    draining: Option<Instant>,
    control: Option<control::ControlSocket>,
    /// When to try `accept` again after it failed for want of descriptors
    /// or memory.
    accept_retry_at: Option<Instant>,
    /// Since when `accept` has been failing that way (logged once).
    accept_failing_since: Option<Instant>,
    /// `accept` stopped because the factory's queue was full
    /// ([`children::HANDOVER_WINDOW`]); it resumes as the factory reports
    /// fronts started.
    accept_paused: bool,
}

/// The next wait before restarting a role that died: 1 s, doubling to a
/// minute.
fn next_backoff(current: Duration) -> Duration {
    if current.is_zero() {
        Duration::from_secs(1)
    } else {
        (current * 2).min(Duration::from_secs(60))
    }
}

/// The wait before trying `accept` again after EMFILE and its kind.
const ACCEPT_RETRY: Duration = Duration::from_millis(250);

/// Runs master until SIGTERM.
pub fn run(settings: Settings, config_path: PathBuf, log_stderr: bool) -> Result<(), MasterError> {
    let users = resolve_users(&settings)?;
    directories::prepare(&settings, &users)?;
    // Before anything that does handshakes exists: a key that does not
    // work stops the start here.
    let holder = key_holder::start(&settings, &config_path, log_stderr)?;
    // Fronts whose factory dies become master's children, to be reaped.
    privsep::become_subreaper();
    // Master's own memory (queue listings, control requests) must not be
    // readable by a process of the same uid, nor dumped.
    let _ = nix::sys::prctl::set_dumpable(false);
    let poll = Poll::new()?;
    let listeners = listeners::Listeners::bind(&settings, &poll, FIRST_LISTENER)?;
    let control = control::ControlSocket::bind(&settings.config.control_socket, &poll, CONTROL)?;
    let mut signals = Signals::new([SIGCHLD, SIGHUP, SIGTERM, SIGINT])?;
    poll.registry()
        .register(&mut signals, SIGNALS, Interest::READABLE)?;
    let mut master = Master {
        throttle: listeners::Throttle::new(settings.config.connection_rate_throttle),
        rates: admission::ConnectionRates::new(settings.config.connection_rate_window),
        settings,
        config_path,
        log_stderr,
        users,
        poll,
        listeners,
        workers: children::Workers::default(),
        factories: factories::Factories::default(),
        fronts: fronts::Fronts::default(),
        keys: key_holder::KeyHolders::default(),
        connections: 0,
        draining: None,
        accept_retry_at: None,
        accept_failing_since: None,
        accept_paused: false,
        control: Some(control),
    };
    master.keys.replace(holder);
    if master.settings.tls.server.is_none() {
        // sendmail's hint for "why is STARTTLS not offered?" (LogLevel 13).
        log::info(
            log::Level::BadPermission,
            "STARTTLS: ServerCertFile missing: STARTTLS not offered",
        );
    }
    master.start_workers()?;
    master.start_factory()?;
    master.show_title();
    // systemd (Type=notify): ready once the listeners are bound; the first
    // connections wait in the backlog until the factory says Hello.
    notify(&[sd_notify::NotifyState::Ready]);
    log::info(
        log::Level::Serious,
        &format!(
            "starting daemon (Postern {}): SMTP+queueing on {}",
            env!("CARGO_PKG_VERSION"),
            master.listeners.describe()
        ),
    );
    master.serve(&mut signals)
}

/// Tells systemd, when it started us with NOTIFY_SOCKET, how we are doing.
fn notify(states: &[sd_notify::NotifyState]) {
    let _ = sd_notify::notify(states);
}

/// RunAsUser, QueueOwner and FrontUser as root; the invoking user
/// otherwise.
fn resolve_users(settings: &Settings) -> Result<Users, MasterError> {
    if !privsep::privileged() {
        let identity = privsep::current_identity();
        log::info(
            log::Level::Serious,
            &format!(
                "not started as root: every process runs as {} (uid {})",
                identity.name, identity.uid
            ),
        );
        return Ok(Users {
            run_as: identity.clone(),
            queue_owner: identity,
        });
    }
    let config = &settings.config;
    let lookup = |option: &str, spec: &str| {
        privsep::lookup(spec).map_err(|e| MasterError::Setup(format!("{option}: {e}")))
    };
    let run_as = lookup("RunAsUser", &config.run_as_user)?;
    let queue_owner = lookup("QueueOwner", &config.queue_owner)?;
    let front = lookup("FrontUser", &config.front_user)?;
    let named = [
        ("RunAsUser", &run_as),
        ("QueueOwner", &queue_owner),
        ("FrontUser", &front),
    ];
    for (option, who) in named {
        if who.uid.is_root() {
            return Err(MasterError::Setup(format!("{option} must not be root")));
        }
    }
    for (i, (a, who_a)) in named.iter().enumerate() {
        for (b, who_b) in &named[i + 1..] {
            if who_a.uid == who_b.uid {
                return Err(MasterError::Setup(format!(
                    "{a} ({}) and {b} ({}) must be different users: each role's uid keeps the others out of its way (a front must not open the spool or signal the delivery client)",
                    who_a.name, who_b.name
                )));
            }
        }
    }
    // The front factory resolves FrontUser itself; here it is only
    // checked, so that a bad value stops the start.
    Ok(Users {
        run_as,
        queue_owner,
    })
}

impl Master {
    /// `posternd: master, accepting connections on 127.0.0.1:25 (MTA)`.
    fn show_title(&self) {
        crate::title::set(&format!(
            "master, accepting connections on {}",
            self.listeners.describe()
        ));
    }

    fn serve(&mut self, signals: &mut Signals) -> Result<(), MasterError> {
        let mut events = Events::with_capacity(128);
        loop {
            let timeout = self.next_timeout();
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e.into());
            }
            for event in events.iter() {
                match event.token() {
                    SIGNALS => {
                        for sig in signals.pending() {
                            match sig {
                                SIGCHLD => self.reap(),
                                SIGHUP => self.reload(),
                                _ => self.begin_drain(),
                            }
                        }
                    }
                    QUEUE => self.queue_channel_ready(),
                    DELIVERY => self.delivery_channel_ready(),
                    CONTROL => self.control_accept(),
                    token if token.0 >= factories::FIRST_FACTORY => self.factory_ready(token),
                    token if token.0 >= control::FIRST_CONTROL => self.control_ready(token),
                    token => self.accept(token.0 - FIRST_LISTENER),
                }
            }
            self.reap();
            self.tick()?;
            if let Some(since) = self.draining {
                if self.fronts.is_empty() && self.workers.all_gone() && self.factories.is_empty() {
                    let _ = std::fs::remove_file(&self.settings.config.control_socket);
                    log::info(log::Level::Serious, "daemon stopped");
                    return Ok(());
                }
                if since.elapsed() > DRAIN_TIME * 2 {
                    self.kill_everything();
                }
            }
        }
    }

    fn next_timeout(&self) -> Option<Duration> {
        let mut t = Duration::from_secs(5);
        if self.throttle.is_blocked() || self.draining.is_some() {
            t = t.min(Duration::from_millis(200));
        }
        for at in [
            self.workers.restart_at,
            self.factories.restart_at,
            self.keys.restart_at,
            self.accept_retry_at,
        ]
        .into_iter()
        .flatten()
        {
            t = t.min(at.saturating_duration_since(Instant::now()));
        }
        Some(t)
    }

    /// Periodic work: restarting workers after back-off, resuming accepts
    /// after the rate throttle, killing fronts that outlive a drain.
    fn tick(&mut self) -> Result<(), MasterError> {
        self.control_tick();
        self.workers.kill_if_overdue();
        self.rates.tidy(Instant::now());
        if self.draining.is_none() {
            self.key_holder_tick();
            if self.workers.restart_due() {
                if let Err(e) = self.start_workers() {
                    // Out of processes or descriptors for now: try again.
                    log::err(&format!(
                        "cannot start the queue runner and delivery client: {e}"
                    ));
                    self.workers.restart_at = Some(Instant::now() + Duration::from_secs(5));
                }
            }
            self.factory_tick();
            let retry_due = self.accept_retry_at.is_some_and(|at| at <= Instant::now());
            if retry_due {
                self.accept_retry_at = None;
            }
            if self.throttle.unblock_if_due() || retry_due {
                self.accept_all();
            }
        } else if self.draining.is_some_and(|d| d.elapsed() > DRAIN_TIME) {
            for pid in self.fronts.pids() {
                let _ = signal::kill(pid, Signal::SIGTERM);
            }
        }
        Ok(())
    }

    fn reload(&mut self) {
        notify(&[sd_notify::NotifyState::Reloading]);
        let result = Settings::load(&self.config_path);
        notify(&[sd_notify::NotifyState::Ready]);
        // The users must still be distinct and exist: a front sharing the
        // queue runner's uid could signal it.
        let result = result.and_then(|settings| match resolve_users(&settings) {
            Ok(_) => Ok(settings),
            Err(e) => Err(postern_config::ConfigErrors(vec![
                postern_config::ConfigError::new(&settings.config.source, 0, e.to_string()),
            ])),
        });
        // A new key holder reads the keys the new configuration names; a
        // key that does not work leaves the old configuration in force.
        let result = result.and_then(|settings| {
            match key_holder::start(&settings, &self.config_path, self.log_stderr) {
                Ok(holder) => Ok((settings, holder)),
                Err(e) => Err(postern_config::ConfigErrors(vec![
                    postern_config::ConfigError::new(&settings.config.source, 0, e.to_string()),
                ])),
            }
        });
        // New listeners are bound before anything else changes: a port
        // that cannot be had leaves the old configuration in force.
        let result = result.and_then(|(settings, holder)| {
            match self
                .listeners
                .reconfigure(&settings, &self.poll, FIRST_LISTENER)
            {
                Ok(changed) => Ok((settings, holder, changed)),
                Err(e) => Err(postern_config::ConfigErrors(vec![
                    postern_config::ConfigError::new(&settings.config.source, 0, e.to_string()),
                ])),
            }
        });
        match result {
            Ok((settings, holder, listeners_changed)) => {
                self.keys.replace(holder);
                if listeners_changed {
                    self.show_title();
                    log::info(
                        log::Level::Serious,
                        &format!("SIGHUP: now listening on {}", self.listeners.describe()),
                    );
                }
                log::set_level(settings.config.log_level);
                self.throttle
                    .set_rate(settings.config.connection_rate_throttle);
                self.rates
                    .set_window(settings.config.connection_rate_window);
                self.settings = settings;
                log::info(
                    log::Level::Serious,
                    "restarting on SIGHUP: configuration reloaded",
                );
                // The queue runner and delivery client pick the new
                // configuration up by being restarted, fronts by being
                // forked from a new factory (which reads it as it starts;
                // the old one serves until the new one is ready).
                self.workers.stop();
                self.replace_factory();
            }
            Err(errors) => log::err(&format!("SIGHUP: configuration not reloaded: {errors}")),
        }
    }

    /// Restarts the key holder when it died and its back-off is over;
    /// the factory and the workers follow, since their sockets to the old
    /// one are dead.
    fn key_holder_tick(&mut self) {
        if self.keys.restart_at.is_none_or(|at| at > Instant::now()) {
            return;
        }
        self.keys.restart_at = None;
        match key_holder::start(&self.settings, &self.config_path, self.log_stderr) {
            Ok(holder) => {
                self.keys.replace(holder);
                self.workers.stop();
                self.replace_factory();
            }
            Err(e) => {
                log::err(&format!("cannot restart the key holder: {e}"));
                self.keys.restart_at = Some(Instant::now() + Duration::from_secs(60));
            }
        }
    }

    fn begin_drain(&mut self) {
        if self.draining.is_some() {
            return;
        }
        notify(&[sd_notify::NotifyState::Stopping]);
        self.draining = Some(Instant::now());
        crate::title::set("master, draining: no new connections");
        self.listeners.close(&self.poll);
        self.workers.stop();
        self.factories.retire_all();
        self.keys.retire_all();
        // Logged once the listeners are closed: who reads this line may
        // count on new connections being refused.
        log::info(log::Level::Serious, "stopping daemon: draining connections");
    }

    fn kill_everything(&mut self) {
        let pids = self
            .fronts
            .pids()
            .into_iter()
            .chain(self.workers.pids())
            .chain(self.factories.pids())
            .chain(self.keys.pids());
        for pid in pids {
            let _ = signal::kill(pid, Signal::SIGKILL);
        }
    }

    fn queue_channel_ready(&mut self) {
        let mut replies = Vec::new();
        if let Some(channel) = self.workers.queue.as_mut() {
            let _ = channel.flush();
            // A channel error means the queue runner is going away; its
            // exit is noticed (and handled) through SIGCHLD.
            while let Ok(Some((msg, _))) = channel.try_recv() {
                match msg {
                    postern_ipc::QueueToMaster::Ready { queued } => {
                        log::info(
                            log::Level::EndOfJob,
                            &format!("queue runner ready with {queued} messages"),
                        );
                    }
                    postern_ipc::QueueToMaster::ControlReply { id, reply } => {
                        replies.push((id, reply))
                    }
                    postern_ipc::QueueToMaster::Hello { .. } => {}
                }
            }
        }
        for (id, reply) in replies {
            self.control_reply(id, reply);
        }
    }

    fn register_delivery_channel(&mut self) -> std::io::Result<()> {
        if let Some(channel) = self.workers.delivery.as_ref() {
            channel.stream().set_nonblocking(true)?;
            self.poll.registry().register(
                &mut SourceFd(&channel.as_raw_fd()),
                DELIVERY,
                Interest::READABLE,
            )?;
        }
        Ok(())
    }

    fn register_queue_channel(&mut self) -> std::io::Result<()> {
        if let Some(channel) = self.workers.queue.as_ref() {
            channel.stream().set_nonblocking(true)?;
            self.poll.registry().register(
                &mut SourceFd(&channel.as_raw_fd()),
                QUEUE,
                Interest::READABLE | Interest::WRITABLE,
            )?;
        }
        Ok(())
    }
}
