//! master's side of the key holder (`crate::key_holder`): started before
//! anything that does handshakes, so that a key that does not work stops
//! the start with the holder's sentence naming the file; asked for a
//! socketpair per requester (the delivery client) and per registrar (each
//! front factory, which makes one per front); replaced on SIGHUP (the old
//! one finishes its requesters' handshakes and exits) and restarted when
//! it dies, with the factory and the workers after it, since their sockets
//! went with it.
//!
//! master itself never reads a key file: its contexts are built with
//! `Keys::AskHolder`, so no process forked from it can inherit a key.

use std::ffi::CString;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use postern_ipc::{
    KeyHolderControl, KeyHolderReport, KeyRegistrarChannel, Requester, PROTOCOL_VERSION,
};

use super::MasterError;
use crate::log;
use crate::privsep::{self, Forked};
use crate::settings::Settings;

/// How long a new holder may take to load and test its keys.
const START_TIME: Duration = Duration::from_secs(30);
/// How long master waits on a registration (the holder reads them at
/// once; a holder that does not is treated as gone).
const SEND_TIME: Duration = Duration::from_secs(5);

/// A running key holder.
pub struct Running {
    pid: Pid,
    channel: KeyRegistrarChannel,
}

/// Every key holder master knows of.
#[derive(Default)]
pub struct KeyHolders {
    current: Option<Running>,
    /// Replaced ones, finishing their requesters' handshakes.
    old: Vec<Pid>,
    /// When to start one after the current one died.
    pub restart_at: Option<Instant>,
    backoff: Duration,
}

/// True when the configuration names a private key (a server or client
/// certificate): only then is there a key holder.
pub fn wanted(settings: &Settings) -> bool {
    let tls = &settings.config.tls;
    tls.server_key_file.is_some() || tls.client_key_file.is_some()
}

/// Starts a key holder and waits until it has loaded and tested every key
/// (`Ok(None)` when the configuration names none). Its failure is the
/// start's: the holder's sentence names the file.
pub fn start(
    settings: &Settings,
    config_path: &Path,
    log_stderr: bool,
) -> Result<Option<Running>, MasterError> {
    if !wanted(settings) {
        return Ok(None);
    }
    let (ours, theirs) = UnixStream::pair()?;
    let mut args = vec![
        CString::new("posternd").expect("no NUL"),
        CString::new("--key-holder").expect("no NUL"),
        CString::new("-C").expect("no NUL"),
        CString::new(config_path.as_os_str().as_encoded_bytes())
            .map_err(|_| MasterError::Setup("configuration path with a NUL".into()))?,
    ];
    if log_stderr {
        args.push(CString::new("--log-stderr").expect("no NUL"));
    }
    let pid = match privsep::fork()? {
        Forked::Child => {
            privsep::reset_signal_handlers();
            let e = privsep::exec_role(&[&theirs], &args);
            log::crit(&format!("cannot start the key holder: {e}"));
            std::process::exit(1);
        }
        Forked::Parent(pid) => pid,
    };
    drop(theirs);
    ours.set_read_timeout(Some(START_TIME))?;
    ours.set_write_timeout(Some(SEND_TIME))?;
    let mut channel = postern_ipc::key_registrar_channel(ours);
    let hello = KeyHolderControl::Hello {
        version: PROTOCOL_VERSION,
    };
    let ready = channel
        .send(&hello, &[])
        .ok()
        .and_then(|()| channel.recv().ok());
    let failure = match ready {
        Some((KeyHolderReport::Ready { keys }, _)) => {
            let _ = channel.stream().set_read_timeout(None);
            log::info(
                log::Level::EndOfJob,
                &format!("started key holder (pid {pid}): {}", keys.join(", ")),
            );
            return Ok(Some(Running { pid, channel }));
        }
        Some((KeyHolderReport::Failed { reason }, _)) => reason,
        None => "the key holder did not start".to_string(),
    };
    let _ = signal::kill(pid, Signal::SIGTERM);
    let _ = nix::sys::wait::waitpid(pid, None);
    Err(MasterError::Setup(failure))
}

impl KeyHolders {
    /// Makes `running` the current holder; the previous one (a reload)
    /// finishes what its requesters ask and exits when they are gone.
    pub fn replace(&mut self, running: Option<Running>) {
        if let Some(previous) = std::mem::replace(&mut self.current, running) {
            // Dropping its channel is what tells it.
            self.old.push(previous.pid);
        }
    }

    /// A socket to the current holder for a new requester, or `None`
    /// when there is no holder (no key configured, or it is restarting).
    pub fn requester(&mut self, role: Requester) -> Option<UnixStream> {
        self.hand_over(KeyHolderControl::Requester(role))
    }

    /// A socket to the current holder for a front factory, which makes a
    /// requester per front over it.
    pub fn registrar(&mut self) -> Option<UnixStream> {
        self.hand_over(KeyHolderControl::Registrar)
    }

    fn hand_over(&mut self, what: KeyHolderControl) -> Option<UnixStream> {
        let running = self.current.as_mut()?;
        let (ours, theirs) = match UnixStream::pair() {
            Ok(pair) => pair,
            Err(e) => {
                log::err(&format!("key holder: socket pair: {e}"));
                return None;
            }
        };
        match running.channel.send(&what, &[theirs.as_fd()]) {
            Ok(()) => Some(ours),
            Err(e) => {
                log::err(&format!("key holder (pid {}): {e}", running.pid));
                None
            }
        }
    }

    /// Every holder's pid.
    pub fn pids(&self) -> Vec<Pid> {
        self.current
            .iter()
            .map(|r| r.pid)
            .chain(self.old.iter().copied())
            .collect()
    }

    /// Tells every holder to finish (SIGTERM drain).
    pub fn retire_all(&mut self) {
        self.replace(None);
        self.restart_at = None;
    }

    /// A child exited: `Some(true)` if it was the current holder (which
    /// must be restarted), `Some(false)` if an old one, `None` if no
    /// holder.
    pub fn exited(&mut self, pid: Pid, status: &str) -> Option<bool> {
        if let Some(i) = self.old.iter().position(|p| *p == pid) {
            self.old.swap_remove(i);
            log::info(
                log::Level::EndOfJob,
                &format!("key holder (pid {pid}) exited"),
            );
            return Some(false);
        }
        if self.current.as_ref().is_some_and(|r| r.pid == pid) {
            self.current = None;
            self.backoff = super::next_backoff(self.backoff);
            self.restart_at = Some(Instant::now() + self.backoff);
            log::err(&format!(
                "key holder (pid {pid}) died ({status}); restarting in {}s",
                self.backoff.as_secs()
            ));
            return Some(true);
        }
        None
    }
}
