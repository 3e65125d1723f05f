//! The one place where privileges change, and where processes are forked.
//!
//! [`drop_privileges`] is Postern's `chroot_uid()`: it takes a role's user
//! and jail and performs, in order, chroot (while still root), setgroups,
//! setresgid, setresuid, then clears every capability set, sets
//! `PR_SET_NO_NEW_PRIVS`, and finally *checks* that `setuid(0)` fails. It
//! returns a [`Dropped`] that nothing else can build, and every role's main
//! takes one, so "this code runs after the process irrevocably dropped its
//! privileges" is checked by the compiler.
//!
//! Started by an ordinary user, nothing can change: every role runs as that
//! user, says so once, and behaves the same in every other way.
//!
//! `fork` is unsafe in a multi-threaded process (only the calling thread
//! survives, holding whatever locks the others held). The master is
//! single-threaded by design (one mio loop, no thread pools), which is what
//! makes the fork below sound.
#![allow(unsafe_code)]

use std::path::Path;

use caps::CapSet;
use nix::unistd::{self, ForkResult, Gid, Uid, User};

use crate::log;

/// A user a role runs as, resolved while /etc/passwd is still readable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The user name.
    pub name: String,
    /// Its uid.
    pub uid: Uid,
    /// Its primary group (or the group named after `:`).
    pub gid: Gid,
}

/// Why privileges could not be dropped; the process must not go on.
#[derive(Debug, thiserror::Error)]
pub enum PrivsepError {
    /// The user does not exist.
    #[error("unknown user \"{0}\"")]
    UnknownUser(String),
    /// The group does not exist.
    #[error("unknown group \"{0}\"")]
    UnknownGroup(String),
    /// A system call failed.
    #[error("{call} failed: {errno}")]
    Call {
        /// Which call.
        call: &'static str,
        /// Its error.
        errno: nix::Error,
    },
    /// A capability call failed.
    #[error("clearing capabilities failed: {0}")]
    Caps(String),
    /// `setuid(0)` still worked after the drop.
    #[error("setuid(0) succeeded after dropping privileges")]
    RegainedRoot,
}

fn call(call: &'static str) -> impl Fn(nix::Error) -> PrivsepError {
    move |errno| PrivsepError::Call { call, errno }
}

/// Resolves `user` or `user:group` (RunAsUser's syntax).
pub fn lookup(spec: &str) -> Result<Identity, PrivsepError> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let pw = User::from_name(user)
        .map_err(call("getpwnam"))?
        .ok_or_else(|| PrivsepError::UnknownUser(user.to_string()))?;
    let gid = match group {
        Some(g) => {
            nix::unistd::Group::from_name(g)
                .map_err(call("getgrnam"))?
                .ok_or_else(|| PrivsepError::UnknownGroup(g.to_string()))?
                .gid
        }
        None => pw.gid,
    };
    Ok(Identity {
        name: pw.name,
        uid: pw.uid,
        gid,
    })
}

/// True when this process can change users (it runs as root).
pub fn privileged() -> bool {
    Uid::effective().is_root()
}

/// Proof that the calling process has dropped its privileges for good
/// (or never had any). Only [`drop_privileges`] makes one.
#[derive(Debug)]
pub struct Dropped {
    /// Who the process runs as now.
    pub uid: Uid,
    _private: (),
}

/// Drops to `who`, jailed in `jail` when given. Without root, checks that
/// nothing privileged is left and says once that no uid change happens.
pub fn drop_privileges(
    role: &str,
    who: &Identity,
    jail: Option<&Path>,
) -> Result<Dropped, PrivsepError> {
    if !privileged() {
        log::info(
            11,
            &format!("{role}: not started as root: running as uid {} without privilege separation by uid", Uid::current()),
        );
        return Ok(Dropped {
            uid: Uid::current(),
            _private: (),
        });
    }
    if let Some(jail) = jail {
        unistd::chroot(jail).map_err(call("chroot"))?;
        unistd::chdir("/").map_err(call("chdir"))?;
    }
    // The bounding set can only shrink while we still hold CAP_SETPCAP.
    caps::clear(None, CapSet::Bounding).map_err(|e| PrivsepError::Caps(e.to_string()))?;
    unistd::setgroups(&[who.gid]).map_err(call("setgroups"))?;
    unistd::setresgid(who.gid, who.gid, who.gid).map_err(call("setresgid"))?;
    unistd::setresuid(who.uid, who.uid, who.uid).map_err(call("setresuid"))?;
    for set in [
        CapSet::Effective,
        CapSet::Permitted,
        CapSet::Inheritable,
        CapSet::Ambient,
    ] {
        caps::clear(None, set).map_err(|e| PrivsepError::Caps(e.to_string()))?;
    }
    nix::sys::prctl::set_no_new_privs().map_err(call("prctl(PR_SET_NO_NEW_PRIVS)"))?;
    if who.uid.is_root() || unistd::setuid(Uid::from_raw(0)).is_ok() {
        return Err(PrivsepError::RegainedRoot);
    }
    Ok(Dropped {
        uid: who.uid,
        _private: (),
    })
}

/// In a child: master's signal handlers write to master's self-pipe, whose
/// descriptor number the child may reuse for something else. Back to the
/// default dispositions before anything else happens.
pub fn reset_signal_handlers() {
    use nix::sys::signal::{signal, SigHandler, Signal};
    for sig in [
        Signal::SIGCHLD,
        Signal::SIGHUP,
        Signal::SIGTERM,
        Signal::SIGINT,
    ] {
        // SAFETY: installing SIG_DFL runs no code of ours in signal
        // context; it only undoes master's handlers.
        let _ = unsafe { signal(sig, SigHandler::SigDfl) };
    }
}

/// A `Dropped` for unit tests, which run unprivileged in the test harness.
#[cfg(test)]
pub fn unprivileged_for_tests() -> Dropped {
    Dropped {
        uid: Uid::current(),
        _private: (),
    }
}

/// Which side of a fork we are on.
pub enum Forked {
    /// The parent, with the child's pid.
    Parent(nix::unistd::Pid),
    /// The child.
    Child,
}

/// Forks the (single-threaded) master.
pub fn fork() -> Result<Forked, PrivsepError> {
    // SAFETY: the master runs one thread only (see the module doc), so the
    // child cannot inherit a lock held by a thread that does not exist in it.
    match unsafe { unistd::fork() }.map_err(call("fork"))? {
        ForkResult::Parent { child } => Ok(Forked::Parent(child)),
        ForkResult::Child => Ok(Forked::Child),
    }
}
