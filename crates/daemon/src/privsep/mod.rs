//! The one place where privileges change, and where processes are forked,
//! exec'ed and confined.
//!
//! [`drop_privileges`] is Postern's `chroot_uid()`: it takes a role's user
//! and [`Jail`] and performs, in order: chroot into the jail's open
//! directory (while still root), setgroups, setresgid, setresuid, clearing
//! every capability set, `PR_SET_NO_NEW_PRIVS`, `PR_SET_DUMPABLE 0`, the
//! jail's resource limits, a check that `setuid(0)` fails, the
//! parent-death signal, and last the jail's seccomp filter. It returns a
//! [`Dropped`] that nothing else can build, and every role's main takes
//! one, so "this code runs after the process irrevocably dropped its
//! privileges" is checked by the compiler.
//!
//! Started by an ordinary user, the uid cannot change and there is no
//! chroot: every role runs as that user and says so once; everything else
//! (no new privileges, not dumpable, limits, seccomp) still applies.
//!
//! `fork` is unsafe in a multi-threaded process (only the calling thread
//! survives, holding whatever locks the others held). Master and the front
//! factory are single-threaded by design (one mio loop, no thread pools),
//! which is what makes the forks below sound.
//!
//! The front factory and the key holder are exec'ed rather than only
//! forked ([`exec_role`]): fronts are forked from the factory's fresh
//! image, never from master's, so they inherit neither master's heap
//! (queue listings, control requests) nor its address-space layout, and
//! the keys are read in an image no other role shares.
#![allow(unsafe_code)]

mod bpf;
mod syscalls;

pub use syscalls::{factory_filter, front_filter, SyscallFilter};

use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use caps::{CapSet, Capability, CapsHashSet};
use nix::sys::resource::{setrlimit, Resource};
use nix::sys::signal::Signal;
use nix::unistd::{self, ForkResult, Gid, Pid, Uid, User};

use crate::log;

/// The descriptor an exec'ed role (front factory, key holder) finds its
/// channel to master on; a second channel (the factory's to the key
/// holder) follows on 4.
pub const FIRST_CHANNEL_FD: RawFd = 3;

/// A user a role runs as, resolved while /etc/passwd is still readable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The user name.
    pub name: String,
    /// Its uid.
    pub uid: Uid,
    /// Its primary group (or the group named after `:`).
    pub gid: Gid,
    /// Supplementary groups kept after the change: none, but FrontUser's
    /// own (from /etc/group) when a front must reach a mail filter's
    /// socket through group permissions, as Postfix's `postfix` user is
    /// put in group `opendkim`.
    pub groups: Vec<Gid>,
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
    #[error("capabilities: {0}")]
    Caps(String),
    /// `setuid(0)` still worked after the drop.
    #[error("setuid(0) succeeded after dropping privileges")]
    RegainedRoot,
    /// The parent died before the child could ask to die with it.
    #[error("the parent process is gone")]
    Orphaned,
    /// The seccomp filter could not be built or installed.
    #[error("seccomp: {0}")]
    Seccomp(String),
}

fn call(call: &'static str) -> impl Fn(nix::Error) -> PrivsepError {
    move |errno| PrivsepError::Call { call, errno }
}

fn caps_error(e: caps::errors::CapsError) -> PrivsepError {
    PrivsepError::Caps(e.to_string())
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
        groups: Vec::new(),
    })
}

/// `who` with the supplementary groups /etc/group gives its user.
pub fn with_supplementary_groups(mut who: Identity) -> Result<Identity, PrivsepError> {
    let name = std::ffi::CString::new(who.name.clone())
        .map_err(|_| PrivsepError::UnknownUser(who.name.clone()))?;
    let groups = nix::unistd::getgrouplist(&name, who.gid).map_err(call("getgrouplist"))?;
    who.groups = groups.into_iter().filter(|g| *g != who.gid).collect();
    Ok(who)
}

/// The invoking user, for a daemon started without root.
pub fn current_identity() -> Identity {
    let uid = Uid::current();
    let name = User::from_uid(uid)
        .ok()
        .flatten()
        .map_or_else(|| uid.to_string(), |u| u.name);
    Identity {
        name,
        uid,
        gid: Gid::current(),
        groups: Vec::new(),
    }
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

/// What confines a role besides its uid.
#[derive(Default)]
pub struct Jail<'a> {
    /// As root: make this open directory the root (an open descriptor, not
    /// a path, so nothing can be swapped in between check and use).
    pub root: Option<BorrowedFd<'a>>,
    /// Resource limits (soft and hard), set once the uid has changed.
    pub limits: &'a [(Resource, u64)],
    /// Die with this parent (the kernel forgets the parent-death signal
    /// when the uid changes, so it is set after the change), and give up
    /// if it is already gone.
    pub parent: Option<Pid>,
    /// Run as the new user, limits set, just before the seccomp filter:
    /// the last moment a socket can be made (a front's mail filters).
    pub before_filter: Option<&'a dyn Fn()>,
    /// A seccomp filter, installed last.
    pub syscalls: Option<&'a SyscallFilter>,
    /// The bounding set is empty already (a front: the factory emptied
    /// its own before forking), so the 41 calls that would read and clear
    /// it one capability at a time are skipped.
    pub bounding_set_empty: bool,
}

/// Drops to `who`, confined by `jail`. Without root, checks that nothing
/// privileged is left and says once that no uid change happens.
pub fn drop_privileges(
    role: &str,
    who: &Identity,
    jail: &Jail<'_>,
) -> Result<Dropped, PrivsepError> {
    let privileged = privileged();
    if privileged {
        if let Some(root) = jail.root {
            unistd::fchdir(root).map_err(call("fchdir"))?;
            unistd::chroot(".").map_err(call("chroot"))?;
            unistd::chdir("/").map_err(call("chdir"))?;
        }
        // The bounding set can only shrink while we still hold CAP_SETPCAP
        // (the front factory already emptied it).
        if !jail.bounding_set_empty {
            caps::clear(None, CapSet::Bounding).map_err(caps_error)?;
        }
        let groups: Vec<Gid> = std::iter::once(who.gid)
            .chain(who.groups.iter().copied())
            .collect();
        unistd::setgroups(&groups).map_err(call("setgroups"))?;
        unistd::setresgid(who.gid, who.gid, who.gid).map_err(call("setresgid"))?;
        unistd::setresuid(who.uid, who.uid, who.uid).map_err(call("setresuid"))?;
        for set in [
            CapSet::Effective,
            CapSet::Permitted,
            CapSet::Inheritable,
            CapSet::Ambient,
        ] {
            caps::clear(None, set).map_err(caps_error)?;
        }
    } else {
        log::info(
            log::Level::EndOfJob,
            &format!(
                "{role}: not started as root: running as uid {} without privilege separation by uid",
                Uid::current()
            ),
        );
    }
    nix::sys::prctl::set_no_new_privs().map_err(call("prctl(PR_SET_NO_NEW_PRIVS)"))?;
    // After the uid change, which resets it to fs.suid_dumpable: no core
    // dump, no ptrace and no /proc/<pid>/mem for processes of the same uid.
    nix::sys::prctl::set_dumpable(false).map_err(call("prctl(PR_SET_DUMPABLE)"))?;
    for (resource, value) in jail.limits {
        // Only ever lowered: a smaller limit set from outside (systemd's
        // LimitAS=, an administrator's ulimit) stays, where raising the
        // soft limit to ours would fail and leave the role unstarted.
        let value = match nix::sys::resource::getrlimit(*resource) {
            Ok((_, hard)) => (*value).min(hard),
            Err(_) => *value,
        };
        setrlimit(*resource, value, value).map_err(call("setrlimit"))?;
    }
    if privileged && (who.uid.is_root() || unistd::setuid(Uid::from_raw(0)).is_ok()) {
        return Err(PrivsepError::RegainedRoot);
    }
    if let Some(parent) = jail.parent {
        nix::sys::prctl::set_pdeathsig(Signal::SIGTERM).map_err(call("prctl(PR_SET_PDEATHSIG)"))?;
        if unistd::getppid() != parent {
            return Err(PrivsepError::Orphaned);
        }
    }
    let uid = Uid::current();
    if let Some(before) = jail.before_filter {
        before();
    }
    if let Some(filter) = jail.syscalls {
        filter.install().map_err(PrivsepError::Seccomp)?;
    }
    Ok(Dropped { uid, _private: () })
}

/// The front factory's own confinement, as root: chrooted into `root`, no
/// capability left but CAP_SETUID and CAP_SETGID (what forking a front
/// and dropping it to FrontUser takes), an empty bounding set, no new
/// privileges, not dumpable. Without root: no new privileges and not
/// dumpable only.
pub fn confine_front_factory(root: Option<BorrowedFd<'_>>) -> Result<(), PrivsepError> {
    if privileged() {
        if let Some(root) = root {
            unistd::fchdir(root).map_err(call("fchdir"))?;
            unistd::chroot(".").map_err(call("chroot"))?;
            unistd::chdir("/").map_err(call("chdir"))?;
        }
        caps::clear(None, CapSet::Bounding).map_err(caps_error)?;
        let keep: CapsHashSet = [Capability::CAP_SETUID, Capability::CAP_SETGID]
            .into_iter()
            .collect();
        caps::clear(None, CapSet::Ambient).map_err(caps_error)?;
        caps::clear(None, CapSet::Inheritable).map_err(caps_error)?;
        caps::set(None, CapSet::Effective, &keep).map_err(caps_error)?;
        caps::set(None, CapSet::Permitted, &keep).map_err(caps_error)?;
    }
    nix::sys::prctl::set_no_new_privs().map_err(call("prctl(PR_SET_NO_NEW_PRIVS)"))?;
    nix::sys::prctl::set_dumpable(false).map_err(call("prctl(PR_SET_DUMPABLE)"))?;
    Ok(())
}

/// Opens the jail directory for [`Jail::root`]: a real directory (not a
/// symlink), owned by root, mode 0555 and empty, checked on the open
/// descriptor.
pub fn open_jail(path: &Path) -> Result<OwnedFd, String> {
    use nix::fcntl::{open, OFlag};
    use nix::sys::stat::{fstat, Mode, SFlag};
    let fd = open(
        path,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let st = fstat(&fd).map_err(|e| format!("{}: {e}", path.display()))?;
    let mode = SFlag::from_bits_truncate(st.st_mode);
    if !mode.contains(SFlag::S_IFDIR) || st.st_uid != 0 || st.st_mode & 0o7777 != 0o555 {
        return Err(format!(
            "{} must be a directory owned by root with mode 0555",
            path.display()
        ));
    }
    let listing = nix::unistd::dup(&fd).map_err(|e| format!("{}: {e}", path.display()))?;
    let entries = nix::dir::Dir::from_fd(listing)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .iter()
        .filter_map(Result::ok)
        .filter(|e| ![&b"."[..], b".."].contains(&e.file_name().to_bytes()))
        .count();
    if entries > 0 {
        return Err(format!("{} must be empty", path.display()));
    }
    Ok(fd)
}

/// In a child: master's signal handlers write to master's self-pipe, whose
/// descriptor number the child may reuse for something else. Back to the
/// default dispositions before anything else happens.
pub fn reset_signal_handlers() {
    use nix::sys::signal::{signal, SigHandler};
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

/// Points standard input, output and error at `fd` (/dev/null, for a
/// front: the streams it inherited are shared with the whole process tree,
/// and a front must not be able to write into or shut down the journal's).
pub fn redirect_stdio(fd: BorrowedFd<'_>) -> Result<(), PrivsepError> {
    for target in 0..=2 {
        // SAFETY: standard I/O descriptors are not owned by any object of
        // this program; replacing them pulls nothing from under an owner.
        let replaced = unsafe { unistd::dup2_raw(fd, target) }.map_err(call("dup2"))?;
        // Descriptors 0–2 stay open for the life of the process.
        std::mem::forget(replaced);
    }
    Ok(())
}

/// Ignores SIGXFSZ, so that a write past RLIMIT_FSIZE fails with EFBIG
/// instead of killing the process.
pub fn ignore_file_size_signal() {
    use nix::sys::signal::{signal, SigHandler};
    // SAFETY: SIG_IGN runs no code of ours.
    let _ = unsafe { signal(Signal::SIGXFSZ, SigHandler::SigIgn) };
}

/// Closes every descriptor above standard error except `keep`, with
/// `close_range(2)` (no /proc needed, which a chrooted process lacks).
pub fn close_fds_except(keep: &[RawFd]) {
    let mut keep: Vec<RawFd> = keep.iter().copied().filter(|fd| *fd > 2).collect();
    keep.sort_unstable();
    let mut first: u32 = 3;
    for fd in keep {
        let fd = fd as u32;
        if fd > first {
            close_range(first, fd - 1);
        }
        first = first.max(fd + 1);
    }
    close_range(first, u32::MAX);
}

fn close_range(first: u32, last: u32) {
    // SAFETY: close_range only closes descriptors. The callers own what it
    // closes: a freshly forked child that will never use the objects of
    // its parent holding those descriptors, and exits without dropping
    // them (std::process::exit).
    let _ = unsafe { nix::libc::close_range(first, last, 0) };
}

/// Ends a front whose session is over: everything it opened has been
/// dropped by then, and log lines are written as they are made, so there
/// is nothing left to flush but standard output and error. `_exit` skips
/// the exit handlers: OpenSSL's would free every structure inherited from
/// the factory, writing to (and so copying) pages the front never touched,
/// for a process whose pages are about to be dropped whole. In the
/// connection-loop profile, exit handlers and the copies they caused were
/// several per cent of all CPU time.
pub fn exit_front(code: i32) -> ! {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: _exit ends the process at once; no Rust object outlives it.
    unsafe { nix::libc::_exit(code) }
}

/// Gives the pages of the heap that hold no allocation back to the
/// kernel: a fork then has fewer pages to share, and a child's first
/// write to one is a fresh zeroed page rather than a copy of ours.
pub fn trim_heap() {
    // SAFETY: malloc_trim only releases memory the allocator holds free.
    #[cfg(target_env = "gnu")]
    unsafe {
        nix::libc::malloc_trim(0);
    }
}

/// Which side of a fork we are on.
pub enum Forked {
    /// The parent, with the child's pid.
    Parent(Pid),
    /// The child.
    Child,
}

/// Forks the (single-threaded) calling process: master or the front factory.
pub fn fork() -> Result<Forked, PrivsepError> {
    // SAFETY: master and the front factory run one thread only (see the
    // module doc), so the child cannot inherit a lock held by a thread
    // that does not exist in it.
    match unsafe { unistd::fork() }.map_err(call("fork"))? {
        ForkResult::Parent { child } => Ok(Forked::Parent(child)),
        ForkResult::Child => Ok(Forked::Child),
    }
}

/// In a child forked by master: replaces the process with a fresh image of
/// posternd in another role (the front factory, the key holder), its
/// channels on descriptors [`FIRST_CHANNEL_FD`], 4, … in the order given
/// and every other descriptor above standard error closed. Returns only
/// on failure.
pub fn exec_role(channels: &[&UnixStream], args: &[CString]) -> PrivsepError {
    // First out of the way (a channel may sit on another's target number),
    // then into place.
    let mut moved = Vec::with_capacity(channels.len());
    for channel in channels {
        match nix::fcntl::fcntl(channel.as_fd(), nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(64)) {
            // SAFETY: F_DUPFD_CLOEXEC returned a new descriptor we own.
            Ok(fd) => moved.push(unsafe { OwnedFd::from_raw_fd(fd) }),
            Err(errno) => {
                return PrivsepError::Call {
                    call: "fcntl",
                    errno,
                }
            }
        }
    }
    for (i, fd) in moved.iter().enumerate() {
        let target = FIRST_CHANNEL_FD + i as RawFd;
        // SAFETY: in this child, the descriptors from 3 up belong to
        // nothing we will use again (everything above them is closed
        // next), so replacing one cannot pull it from under its owner.
        match unsafe { unistd::dup2_raw(fd, target) } {
            // Kept open for the new image: never closed by us.
            Ok(copy) => std::mem::forget(copy),
            Err(errno) => {
                return PrivsepError::Call {
                    call: "dup2",
                    errno,
                }
            }
        }
        // SAFETY: `target` is open (just made) while this borrow is used.
        let copy = unsafe { BorrowedFd::borrow_raw(target) };
        // dup2 leaves the copy inheritable; said again to be sure.
        if let Err(errno) = nix::fcntl::fcntl(
            copy,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
        ) {
            return PrivsepError::Call {
                call: "fcntl",
                errno,
            };
        }
    }
    close_range(
        (FIRST_CHANNEL_FD + channels.len() as RawFd) as u32,
        u32::MAX,
    );
    // The kernel keeps the parent-death signal across exec: the role dies
    // with master (and the factory's fronts with it).
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGTERM);
    let exe = CString::new("/proc/self/exe").expect("no NUL");
    let Err(errno) = unistd::execv(&exe, args);
    PrivsepError::Call {
        call: "execv",
        errno,
    }
}

/// In an exec'ed role: the channel master left on descriptor `fd` (see
/// [`exec_role`]), checked to be a socket.
pub fn inherited_channel(fd: RawFd) -> Result<UnixStream, String> {
    use nix::sys::stat::{fstat, SFlag};
    // SAFETY: only looked at, and only while this function runs.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let st = fstat(borrowed).map_err(|e| format!("descriptor {fd}: {e} (started by hand?)"))?;
    if !SFlag::from_bits_truncate(st.st_mode).contains(SFlag::S_IFSOCK) {
        return Err(format!(
            "descriptor {fd} is not master's socket (started by hand?)"
        ));
    }
    // SAFETY: master exec'ed us with its channel on this descriptor, which
    // nothing else in this fresh process owns; it was checked to be a
    // socket above.
    let stream = unsafe { UnixStream::from_raw_fd(fd) };
    let _ = nix::fcntl::fcntl(
        stream.as_fd(),
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    );
    Ok(stream)
}

/// Maps one anonymous page readable, writable and executable and unmaps
/// it again: what `posternd --check-front-jail` tries inside the jail,
/// where the filter must kill the process instead.
pub fn map_executable_page() -> Result<(), nix::Error> {
    use nix::sys::mman::{mmap_anonymous, munmap, MapFlags, ProtFlags};
    let len = std::num::NonZeroUsize::new(4096).expect("non-zero");
    // SAFETY: a fresh private anonymous mapping aliases nothing; it is
    // unmapped at once and never read, written or run.
    unsafe {
        let page = mmap_anonymous(
            None,
            len,
            ProtFlags::PROT_READ | ProtFlags::PROT_WRITE | ProtFlags::PROT_EXEC,
            MapFlags::MAP_PRIVATE,
        )?;
        munmap(page, len.get())
    }
}

/// Master adopts the fronts of a front factory that died, so it can reap
/// them (and drain them on SIGTERM) itself.
pub fn become_subreaper() {
    let _ = nix::sys::prctl::set_child_subreaper(true);
}

/// A `Dropped` for unit tests, which run unprivileged in the test harness.
#[cfg(test)]
pub fn unprivileged_for_tests() -> Dropped {
    Dropped {
        uid: Uid::current(),
        _private: (),
    }
}

/// The descriptors a local delivery agent is exec'ed with, in order from
/// descriptor 3: the report socket, the message, the job's pipe.
pub struct AgentDescriptors {
    /// Where the agent reports (the delivery client's socket).
    pub report: OwnedFd,
    /// The message, read-only.
    pub message: OwnedFd,
}

/// Master: forks and execs `posternd --local-delivery` with `fds` on
/// descriptors 3 and 4 and a pipe holding `job` (an encoded frame) on 5;
/// every other descriptor above standard error is closed. Root stays root
/// across the exec: the agent drops to the mailbox's owner itself, once
/// it has made what only root can make. Returns the agent's pid.
pub fn spawn_local_agent(fds: AgentDescriptors, job: &[u8]) -> Result<Pid, PrivsepError> {
    use std::io::Write;
    let (job_read, job_write) = unistd::pipe().map_err(call("pipe"))?;
    match fork()? {
        Forked::Child => {
            reset_signal_handlers();
            // Each lands on its number even when the numbers overlap: all
            // are first moved above the range, then into it.
            let high: Vec<OwnedFd> = [fds.report, fds.message, job_read]
                .into_iter()
                .map(|fd| {
                    nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(10))
                        // SAFETY: F_DUPFD returned a new descriptor we own.
                        .map(|n| unsafe { OwnedFd::from_raw_fd(n) })
                })
                .collect::<Result<_, _>>()
                .unwrap_or_else(|_| std::process::exit(71));
            for (target, fd) in (3..).zip(&high) {
                // SAFETY: in this child, descriptors 3 to 5 belong to
                // nothing used again (everything above is closed next).
                match unsafe { unistd::dup2_raw(fd, target) } {
                    Ok(placed) => std::mem::forget(placed),
                    Err(_) => std::process::exit(71),
                }
            }
            close_range(6, u32::MAX);
            let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGTERM);
            let exe = CString::new("/proc/self/exe").expect("no NUL");
            let args = [
                CString::new("posternd").expect("no NUL"),
                CString::new("--local-delivery").expect("no NUL"),
            ];
            let _ = unistd::execv(&exe, &args);
            std::process::exit(71);
        }
        Forked::Parent(pid) => {
            drop(job_read);
            drop(fds);
            // A job is a few hundred bytes, far below a pipe's buffer, and
            // the agent reads it at once: this write does not wait.
            let mut pipe = std::fs::File::from(job_write);
            pipe.write_all(job)
                .map_err(|e| call("write")(nix::Error::from_raw(e.raw_os_error().unwrap_or(0))))?;
            Ok(pid)
        }
    }
}

/// The local delivery agent: becomes the mailbox's owner for good, with
/// `groups` as its supplementary groups (the mail spool's group, for a
/// dot-lock), no capability, no new privileges, not dumpable. Without
/// root the uid stays the invoking user's, silently (an agent per
/// delivery would say it every time).
pub fn become_mailbox_owner(uid: Uid, gid: Gid, groups: &[Gid]) -> Result<(), PrivsepError> {
    if privileged() {
        caps::clear(None, CapSet::Bounding).map_err(caps_error)?;
        let mut all = vec![gid];
        all.extend(groups.iter().filter(|g| **g != gid));
        unistd::setgroups(&all).map_err(call("setgroups"))?;
        unistd::setresgid(gid, gid, gid).map_err(call("setresgid"))?;
        unistd::setresuid(uid, uid, uid).map_err(call("setresuid"))?;
        for set in [
            CapSet::Effective,
            CapSet::Permitted,
            CapSet::Inheritable,
            CapSet::Ambient,
        ] {
            caps::clear(None, set).map_err(caps_error)?;
        }
        if uid.is_root() || unistd::setuid(Uid::from_raw(0)).is_ok() {
            return Err(PrivsepError::RegainedRoot);
        }
    }
    nix::sys::prctl::set_no_new_privs().map_err(call("prctl(PR_SET_NO_NEW_PRIVS)"))?;
    nix::sys::prctl::set_dumpable(false).map_err(call("prctl(PR_SET_DUMPABLE)"))?;
    Ok(())
}

/// In the exec'ed local delivery agent: the descriptors master left on 3
/// to 5 (see [`spawn_local_agent`]), each checked to be what it should:
/// the report socket, the message (a regular file), the job's pipe.
pub fn inherited_agent_fds() -> Result<(UnixStream, std::fs::File, std::fs::File), String> {
    use nix::sys::stat::{fstat, SFlag};
    let check = |fd: RawFd, kind: SFlag, what: &str| -> Result<OwnedFd, String> {
        // SAFETY: only looked at while this closure runs.
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        let st = fstat(borrowed).map_err(|e| format!("descriptor {fd}: {e} (started by hand?)"))?;
        if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != kind {
            return Err(format!("descriptor {fd} is not {what} (started by hand?)"));
        }
        // SAFETY: master exec'ed us with this descriptor open, nothing
        // else in this fresh process owns it, and it is what it should be.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        let _ = nix::fcntl::fcntl(
            &owned,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        );
        Ok(owned)
    };
    let report = check(3, SFlag::S_IFSOCK, "the report socket")?;
    let message = check(4, SFlag::S_IFREG, "the message")?;
    let job = check(5, SFlag::S_IFIFO, "the job's pipe")?;
    Ok((UnixStream::from(report), message.into(), job.into()))
}
