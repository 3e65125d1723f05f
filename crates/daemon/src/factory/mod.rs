//! The front factory: exec'ed by master at start (and again after a
//! reload or a crashed front), it forks one front per connection master
//! hands it.
//!
//! Why a process of its own: a front forked from master would inherit
//! master's heap (queue listings, whatever the control
//! socket last carried) and master's address-space layout, the same in
//! every front. The factory is a fresh image that reads nothing but its
//! configuration and master's channel, so fronts inherit nothing worth
//! stealing: the server's TLS context holds certificates and key objects
//! made from their public keys only; each front gets a socket to the key
//! holder (made here, one per front) for its handshake's signature. When
//! a front crashes (a signal such as SIGSEGV or SIGSYS), master replaces
//! the factory at once, so a crash-and-retry attack never meets the same
//! layout (stack canary, library addresses) twice.
//!
//! Its main is a checklist: take the channel on descriptor 3 (and the
//! key holder's on 4, when a certificate is configured), read the
//! configuration (server TLS only), open the log, resolve FrontUser,
//! compile the fronts' seccomp filter, open the jail, confine itself
//! (chroot into the jail, only CAP_SETUID and CAP_SETGID kept), warm
//! OpenSSL up with one handshake (its signature asked of the holder),
//! install the outer layer of the fronts' seccomp policy on itself, say
//! Hello, then serve: fork a front per `Accepted` (with a new socket to
//! the holder), report `Started`, reap fronts and report `Exited`, stop
//! forking on `Retire` or SIGTERM and exit once the last front is gone.
//!
//! Security posture: root with two capabilities, in an empty read-only
//! chroot, no new privileges, not dumpable, and under a seccomp filter
//! that allows what a front may do plus forking and jailing fronts (no
//! open, execve, kill or ptrace). It never reads a byte from
//! the network; master and the key holder, its only peers, are trusted. Fronts die with it
//! (their parent-death signal), and it dies with master.

use std::collections::HashMap;
use std::net::TcpStream;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use postern_ipc::{
    AcceptedConnection, ChannelError, FactoryChannel, FactoryToMaster, KeyHolderControl,
    KeyRegistrarChannel, MasterToFactory, Requester, PROTOCOL_VERSION,
};
use signal_hook::consts::{SIGCHLD, SIGTERM};
use signal_hook_mio::v1_0::Signals;

use crate::key_holder::HolderSigner;
use crate::privsep;
use crate::settings::{Settings, TlsSides};
use crate::{front, log, policy};

mod check;
mod huge_text;
mod jail;

pub use check::check_front_jail;
use jail::FrontJail;

const CHANNEL: Token = Token(0);
const SIGNALS: Token = Token(1);

/// Runs the front factory (posternd `--front-factory`); returns the exit
/// code.
pub fn main(config_path: &Path, log_stderr: bool) -> i32 {
    let channel = match privsep::inherited_channel(privsep::FIRST_CHANNEL_FD) {
        Ok(channel) => channel,
        Err(e) => {
            eprintln!("posternd --front-factory: {e}");
            return 2;
        }
    };
    // master passes a channel to the key holder on the next descriptor
    // when there is one (a configured certificate); else it is closed.
    let keys = privsep::inherited_channel(privsep::FIRST_CHANNEL_FD + 1)
        .ok()
        .map(postern_ipc::key_registrar_channel);
    let settings = match Settings::load_with(config_path, TlsSides::ServerOnly) {
        Ok(settings) => settings,
        Err(errors) => {
            eprintln!("{errors}");
            return i32::from(postern_ipc::Sysexit::Config.code());
        }
    };
    if let Ok(name) = std::ffi::CString::new("posternd-forker") {
        let _ = nix::sys::prctl::set_name(&name);
    }
    crate::title::set("front factory");
    log::init(settings.config.log_level, log_stderr);
    match start(settings, channel, keys, log_stderr) {
        Ok(mut factory) => factory.serve(),
        Err(e) => {
            log::crit(&format!("front factory: {e}"));
            1
        }
    }
}

/// Does once, before any fork, what every front would otherwise do after
/// its own: the standard library's and the memchr crate's CPU feature
/// detection (the string searches of the SMTP parser ask for it; 1% of
/// all time in a profile of the connection loop, in the fronts), standard
/// output's set-up, and OpenSSL's preparations for a first handshake. A
/// failed warm-up costs only speed, so it is logged and the factory goes
/// on.
fn warm_up_for_fronts(settings: &Settings, keys: Option<&mut KeyRegistrarChannel>) {
    #[cfg(target_arch = "x86_64")]
    {
        let _ = std::arch::is_x86_feature_detected!("avx2");
    }
    // The memchr crate picks its routines on first use, each searcher
    // storing its choice in a static: a store in every front, and a page
    // of the program's data copied for it, unless done here.
    let _ = memchr::memchr(b'\n', b"warm-up");
    let _ = memchr::memchr2(b'\r', b'\n', b"warm-up");
    let _ = memchr::memmem::find(b"warm-up", b"up");
    // Standard output is set up on first use, which is a front's exit
    // (it flushes it): allocated here, once.
    let _ = std::io::stdout();
    if let (Some(server), Some(keys)) = (&settings.tls.server, keys) {
        // The warm-up's one signature, asked of the key holder over a
        // socket of the factory's own, closed again before any fork.
        let Some(socket) = requester_socket(keys, Requester::Factory) else {
            return;
        };
        HolderSigner::install(socket);
        let warmed = server.warm_up();
        postern_tls::set_process_signer(None);
        if let Err(e) = warmed {
            log::warning(
                log::Level::Serious,
                &format!("front factory: TLS warm-up failed: {e}"),
            );
        }
    }
}

/// A socketpair to the key holder for a new requester: the holder's end
/// registered over `keys`, ours returned, configured for
/// [`HolderSigner::install`].
fn requester_socket(keys: &mut KeyRegistrarChannel, role: Requester) -> Option<UnixStream> {
    let pair = UnixStream::pair().and_then(|(ours, theirs)| {
        HolderSigner::configure(&ours)?;
        keys.send(&KeyHolderControl::Requester(role), &[theirs.as_fd()])
            .map_err(std::io::Error::other)?;
        Ok(ours)
    });
    match pair {
        Ok(ours) => Some(ours),
        Err(e) => {
            log::err(&format!("front factory: key holder: {e}"));
            None
        }
    }
}

/// The factory's state.
struct Factory {
    settings: Settings,
    /// The channel to the key holder (when a certificate is configured).
    keys: Option<KeyRegistrarChannel>,
    jail: FrontJail,
    channel: FactoryChannel,
    poll: Poll,
    signals: Signals,
    /// Live fronts: pid → connection.
    fronts: HashMap<Pid, u64>,
    retiring: bool,
}

fn start(
    settings: Settings,
    channel: UnixStream,
    mut keys: Option<KeyRegistrarChannel>,
    log_stderr: bool,
) -> Result<Factory, String> {
    if let Some(keys) = &keys {
        // Blocking, with a bound: the holder reads registrations at once.
        let stream = keys.stream();
        stream.set_nonblocking(false).map_err(|e| e.to_string())?;
        stream
            .set_write_timeout(Some(Duration::from_secs(5)))
            .map_err(|e| e.to_string())?;
    }
    // Before the chroot (which hides /proc) and the seccomp layer (which
    // forbids executable mappings).
    let huge = huge_text::move_to_huge_pages();
    log::info(
        log::Level::EndOfJob,
        &format!(
            "front factory: {} MB of posternd's image on huge pages",
            huge >> 20
        ),
    );
    let jail = FrontJail::prepare(&settings, log_stderr)?;
    warm_up_for_fronts(&settings, keys.as_mut());
    let poll = Poll::new().map_err(|e| e.to_string())?;
    channel.set_nonblocking(true).map_err(|e| e.to_string())?;
    poll.registry()
        .register(
            &mut SourceFd(&channel.as_raw_fd()),
            CHANNEL,
            Interest::READABLE | Interest::WRITABLE,
        )
        .map_err(|e| e.to_string())?;
    let mut signals = Signals::new([SIGCHLD, SIGTERM]).map_err(|e| e.to_string())?;
    poll.registry()
        .register(&mut signals, SIGNALS, Interest::READABLE)
        .map_err(|e| e.to_string())?;
    privsep::trim_heap();
    // Everything is open: from here on the factory makes only the calls a
    // front may, and those forking and jailing fronts takes.
    jail.confine_calls()?;
    let mut channel = postern_ipc::factory_channel(channel);
    channel
        .send(
            &FactoryToMaster::Hello {
                version: PROTOCOL_VERSION,
            },
            &[],
        )
        .map_err(|e| e.to_string())?;
    log::info(
        log::Level::EndOfJob,
        &format!(
            "front factory ready: fronts run as {}",
            jail.front_user.name
        ),
    );
    Ok(Factory {
        settings,
        keys,
        jail,
        channel,
        poll,
        signals,
        fronts: HashMap::new(),
        retiring: false,
    })
}

impl Factory {
    fn serve(&mut self) -> i32 {
        let mut events = Events::with_capacity(64);
        loop {
            if self.retiring && self.fronts.is_empty() {
                // Every Exited report must reach master before we go.
                let _ = self.channel.stream().set_nonblocking(false);
                let _ = self.channel.flush();
                return 0;
            }
            if let Err(e) = self.poll.poll(&mut events, Some(Duration::from_secs(60))) {
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                log::crit(&format!("front factory: poll: {e}"));
                return 1;
            }
            for event in events.iter() {
                match event.token() {
                    CHANNEL => {
                        if let Err(code) = self.master_ready() {
                            return code;
                        }
                    }
                    _ => self.signalled(),
                }
            }
        }
    }

    /// Frames from master; `Err` ends the factory.
    fn master_ready(&mut self) -> Result<(), i32> {
        // Reports that did not fit the socket go out as it drains.
        if let Err(e) = self.channel.flush() {
            log::err(&format!("front factory: master channel: {e}"));
            return Err(1);
        }
        loop {
            match self.channel.try_recv() {
                Ok(None) => return Ok(()),
                Ok(Some((MasterToFactory::Hello { version }, _)))
                    if version == PROTOCOL_VERSION => {}
                Ok(Some((MasterToFactory::Hello { version }, _))) => {
                    log::crit(&format!("front factory: master speaks protocol {version}"));
                    return Err(1);
                }
                Ok(Some((MasterToFactory::Accepted(accepted), fds))) => {
                    self.fork_front(accepted, fds);
                    // While connections keep coming this loop does not
                    // return to poll, where SIGCHLD is seen: fronts that
                    // ended must be reaped (and reported) meanwhile, or
                    // master counts them against MaxDaemonChildren.
                    self.reap();
                }
                Ok(Some((MasterToFactory::Retire, _))) => self.retiring = true,
                // master is gone: fronts follow us (parent-death signal).
                Err(ChannelError::Closed) => return Err(0),
                Err(e) => {
                    log::err(&format!("front factory: master channel: {e}"));
                    return Err(1);
                }
            }
        }
    }

    fn signalled(&mut self) {
        let pending: Vec<i32> = self.signals.pending().collect();
        for signal in pending {
            if signal == SIGTERM {
                self.retiring = true;
            }
        }
        self.reap();
    }

    fn report(&mut self, msg: FactoryToMaster) {
        // Failing to tell master means master is gone; we will hear that
        // on the channel.
        let _ = self.channel.send(&msg, &[]);
    }

    fn fork_front(&mut self, accepted: AcceptedConnection, mut fds: Vec<OwnedFd>) {
        let connection = accepted.connection;
        if self.retiring || fds.len() != 2 {
            let reason = if self.retiring {
                "factory retiring"
            } else {
                "descriptors missing"
            };
            return self.report(FactoryToMaster::NotStarted {
                connection,
                reason: reason.into(),
            });
        }
        let queue_end = UnixStream::from(fds.pop().expect("two descriptors"));
        let client = TcpStream::from(fds.pop().expect("two descriptors"));
        // master accepted it non-blocking; the front reads and writes with
        // blocking calls and timeouts.
        if let Err(e) = client.set_nonblocking(false) {
            return self.report(FactoryToMaster::NotStarted {
                connection,
                reason: format!("client socket: {e}"),
            });
        }
        // The front's socket to the key holder, for its STARTTLS.
        let keys = match (&self.settings.tls.server, self.keys.as_mut()) {
            (Some(_), Some(registrar)) => requester_socket(registrar, Requester::Front),
            _ => None,
        };
        let factory = nix::unistd::getpid();
        match privsep::fork() {
            Ok(privsep::Forked::Child) => {
                let code = self.run_front(accepted, client, queue_end, keys, factory);
                privsep::exit_front(code);
            }
            Ok(privsep::Forked::Parent(pid)) => {
                self.fronts.insert(pid, connection);
                self.report(FactoryToMaster::Started {
                    connection,
                    pid: pid.as_raw(),
                });
            }
            Err(e) => {
                // Out of processes or memory: the client hears so, rather
                // than a silent close.
                let reply = policy::no_session_reply(&self.settings.hostname);
                let _ = std::io::Write::write_all(&mut &client, format!("{reply}\r\n").as_bytes());
                self.report(FactoryToMaster::NotStarted {
                    connection,
                    reason: e.to_string(),
                })
            }
        }
    }

    /// In the forked child: close what the factory holds, drop to
    /// FrontUser inside the jail, run the session.
    fn run_front(
        &self,
        accepted: AcceptedConnection,
        client: TcpStream,
        queue_end: UnixStream,
        keys: Option<UnixStream>,
        factory: Pid,
    ) -> i32 {
        let mut keep = vec![client.as_raw_fd(), queue_end.as_raw_fd()];
        keep.extend(keys.as_ref().map(AsRawFd::as_raw_fd));
        crate::title::set(&format!(
            "front for {}",
            policy::client_name(&accepted.peer)
        ));
        let (dropped, filters) = match self.jail.enter(factory, &keep) {
            Ok(entered) => entered,
            Err(e) => {
                log::crit(&format!("front: cannot drop privileges: {e}"));
                return 1;
            }
        };
        if let Some(keys) = keys {
            HolderSigner::install(keys);
        }
        let conn = front::Connection {
            client: policy::client_name(&accepted.peer),
            peer: accepted.peer,
            daemon_name: accepted.daemon,
            utc_offset: accepted.utc_offset,
        };
        front::run(
            dropped,
            &self.settings,
            client,
            conn,
            postern_ipc::front_channel(queue_end),
            filters,
        )
    }

    /// Collects exited fronts and tells master.
    fn reap(&mut self) {
        loop {
            let status = match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(status) => status,
            };
            let Some(pid) = status.pid() else { return };
            let Some(connection) = self.fronts.remove(&pid) else {
                continue;
            };
            let (crashed, described) = describe(&status);
            self.report(FactoryToMaster::Exited {
                connection,
                pid: pid.as_raw(),
                crashed,
                status: described,
            });
        }
    }
}

/// Whether an exit means a crash, and how to say it.
fn describe(status: &WaitStatus) -> (bool, String) {
    match status {
        WaitStatus::Exited(_, code) => (false, format!("exit {code}")),
        WaitStatus::Signaled(_, signal, _) => {
            let crashed = matches!(
                signal,
                Signal::SIGSEGV
                    | Signal::SIGBUS
                    | Signal::SIGILL
                    | Signal::SIGFPE
                    | Signal::SIGABRT
                    | Signal::SIGSYS
            );
            (crashed, format!("signal {}", signal.as_str()))
        }
        other => (false, format!("{other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crashes_are_told_from_exits() {
        let pid = Pid::from_raw(1);
        assert_eq!(
            describe(&WaitStatus::Exited(pid, 0)),
            (false, "exit 0".to_string())
        );
        assert_eq!(
            describe(&WaitStatus::Signaled(pid, Signal::SIGSYS, false)),
            (true, "signal SIGSYS".to_string())
        );
        assert_eq!(
            describe(&WaitStatus::Signaled(pid, Signal::SIGTERM, false)),
            (false, "signal SIGTERM".to_string())
        );
    }
}
