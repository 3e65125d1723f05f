//! The front's system-call allow-list, as a seccomp-bpf program.
//!
//! A front, once it has dropped its privileges, only talks: it reads and
//! writes the client's socket (and TLS on it), its channel to the queue
//! runner and the pipe its message goes into, logs through the syslog
//! socket it inherited, allocates memory and reads the clock. That is the
//! whole list below. What it must never do is answered without killing
//! it, so that a library that tries (opening a file, say) fails the way a
//! chroot would make it fail: opening files, making or connecting sockets,
//! signalling any process, tracing, forking or executing. Anything else is
//! outside the list and kills the process (SIGSYS); the front factory logs
//! that as a crash and is replaced, so the next front has a fresh layout.
//!
//! Memory may be mapped or reprotected readable and writable, never
//! executable: code injected into a front cannot be made runnable. Some
//! calls are allowed only with the arguments a session uses: `fcntl` to
//! read flags (never to set O_ASYNC or a signal owner, which would let a
//! front signal others through its socket), `setsockopt` for the socket
//! timeouts only, `sendto` only without a destination address.
#![deny(unsafe_code)]

use std::collections::BTreeMap;

use nix::libc;
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule,
};

/// Calls a session makes, allowed with any arguments.
const ALLOWED: &[libc::c_long] = &[
    // The client socket, the queue channel, the message pipe, syslog.
    libc::SYS_read,
    libc::SYS_write,
    libc::SYS_readv,
    libc::SYS_writev,
    libc::SYS_recvfrom,
    libc::SYS_recvmsg,
    libc::SYS_sendmsg,
    libc::SYS_close,
    libc::SYS_getsockopt,
    libc::SYS_getsockname,
    libc::SYS_getpeername,
    libc::SYS_fstat,
    libc::SYS_newfstatat,
    libc::SYS_statx,
    libc::SYS_lseek,
    libc::SYS_ppoll,
    // Memory (mmap and mprotect separately, below).
    libc::SYS_brk,
    libc::SYS_munmap,
    libc::SYS_mremap,
    libc::SYS_madvise,
    libc::SYS_futex,
    // Time, randomness (OpenSSL's DRBG), identity (OpenSSL's fork check).
    libc::SYS_clock_gettime,
    libc::SYS_clock_getres,
    libc::SYS_gettimeofday,
    libc::SYS_clock_nanosleep,
    libc::SYS_nanosleep,
    libc::SYS_getrandom,
    libc::SYS_getpid,
    libc::SYS_gettid,
    libc::SYS_getppid,
    libc::SYS_getuid,
    libc::SYS_geteuid,
    libc::SYS_getgid,
    libc::SYS_getegid,
    libc::SYS_sched_yield,
    // glibc's qsort asks for the memory size (OpenSSL sorts its stacks).
    libc::SYS_sysinfo,
    // Signals and leaving.
    libc::SYS_rt_sigreturn,
    libc::SYS_rt_sigprocmask,
    libc::SYS_rt_sigaction,
    libc::SYS_sigaltstack,
    libc::SYS_restart_syscall,
    libc::SYS_exit,
    libc::SYS_exit_group,
];

/// Allowed on x86_64 only (the generic syscall table of aarch64 lacks
/// them).
#[cfg(target_arch = "x86_64")]
const ALLOWED_ARCH: &[libc::c_long] = &[libc::SYS_poll, libc::SYS_time];
#[cfg(not(target_arch = "x86_64"))]
const ALLOWED_ARCH: &[libc::c_long] = &[];

/// Calls a front must never make, answered with EPERM.
const REFUSED: &[libc::c_long] = &[
    libc::SYS_openat,
    libc::SYS_openat2,
    libc::SYS_open_by_handle_at,
    libc::SYS_socket,
    libc::SYS_socketpair,
    libc::SYS_connect,
    libc::SYS_bind,
    libc::SYS_listen,
    libc::SYS_accept,
    libc::SYS_accept4,
    libc::SYS_kill,
    libc::SYS_tkill,
    libc::SYS_tgkill,
    libc::SYS_pidfd_open,
    libc::SYS_pidfd_send_signal,
    libc::SYS_pidfd_getfd,
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_clone,
    libc::SYS_clone3,
    libc::SYS_execve,
    libc::SYS_execveat,
    libc::SYS_ioctl,
    // A front never shuts down a socket it shares (syslog, standard I/O).
    libc::SYS_shutdown,
    // A panic's backtrace looks for the executable: let it fail.
    libc::SYS_readlinkat,
    libc::SYS_getcwd,
    libc::SYS_setuid,
    libc::SYS_setgid,
    libc::SYS_setresuid,
    libc::SYS_setresgid,
];

#[cfg(target_arch = "x86_64")]
const REFUSED_ARCH: &[libc::c_long] = &[
    libc::SYS_open,
    libc::SYS_creat,
    libc::SYS_fork,
    libc::SYS_vfork,
    libc::SYS_readlink,
];
#[cfg(not(target_arch = "x86_64"))]
const REFUSED_ARCH: &[libc::c_long] = &[];

/// `arg` has no PROT_EXEC bit.
fn not_executable(arg: u8) -> Result<SeccompRule, seccompiler::BackendError> {
    SeccompRule::new(vec![SeccompCondition::new(
        arg,
        SeccompCmpArgLen::Dword,
        SeccompCmpOp::MaskedEq(libc::PROT_EXEC as u64),
        0,
    )?])
}

/// Argument `arg` equals `value`.
fn equals(arg: u8, value: u64) -> Result<SeccompCondition, seccompiler::BackendError> {
    SeccompCondition::new(arg, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, value)
}

/// `fcntl` that reads, or sets close-on-exec, or duplicates with it.
fn fcntl_rules() -> Result<Vec<SeccompRule>, seccompiler::BackendError> {
    [
        libc::F_GETFD,
        libc::F_SETFD,
        libc::F_GETFL,
        libc::F_DUPFD_CLOEXEC,
    ]
    .into_iter()
    .map(|cmd| SeccompRule::new(vec![equals(1, cmd as u64)?]))
    .collect()
}

/// `setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO or SO_SNDTIMEO, …)`.
fn setsockopt_rules() -> Result<Vec<SeccompRule>, seccompiler::BackendError> {
    [libc::SO_RCVTIMEO, libc::SO_SNDTIMEO]
        .into_iter()
        .map(|opt| {
            SeccompRule::new(vec![
                equals(1, libc::SOL_SOCKET as u64)?,
                equals(2, opt as u64)?,
            ])
        })
        .collect()
}

/// `sendto` on a connected socket: no destination address.
fn sendto_rules() -> Result<Vec<SeccompRule>, seccompiler::BackendError> {
    Ok(vec![SeccompRule::new(vec![SeccompCondition::new(
        4,
        SeccompCmpArgLen::Qword,
        SeccompCmpOp::Eq,
        0,
    )?])?])
}

/// The front's filter: two seccomp programs, compiled once (in the front
/// factory) and installed by every front as the last step of dropping its
/// privileges.
///
/// With several filters installed the kernel takes the strictest verdict,
/// so the refusals are one program (EPERM for [`REFUSED`], anything else
/// allowed) and the allow-list another (the allowed and the refused calls
/// allowed, anything else kills): a refused call ends as EPERM, a call on
/// neither list as SIGSYS.
pub struct SyscallFilter {
    refusals: BpfProgram,
    allow_list: BpfProgram,
}

impl SyscallFilter {
    /// Installs both programs, the refusals first: installing the
    /// allow-list takes `prctl` and `seccomp`, which it then forbids.
    pub fn install(&self) -> Result<(), String> {
        seccompiler::apply_filter(&self.refusals).map_err(|e| e.to_string())?;
        seccompiler::apply_filter(&self.allow_list).map_err(|e| e.to_string())
    }
}

/// Compiles the front's filter for this machine's architecture.
pub fn front_filter() -> Result<SyscallFilter, String> {
    let arch = std::env::consts::ARCH
        .try_into()
        .map_err(|e| format!("no seccomp support for {}: {e:?}", std::env::consts::ARCH))?;
    let build = || -> Result<SyscallFilter, seccompiler::BackendError> {
        let refused = || REFUSED.iter().chain(REFUSED_ARCH).map(|&n| (n, Vec::new()));
        let mut allowed: BTreeMap<i64, Vec<SeccompRule>> = ALLOWED
            .iter()
            .chain(ALLOWED_ARCH)
            .map(|&n| (n, Vec::new()))
            .chain(refused())
            .collect();
        allowed.insert(libc::SYS_mmap, vec![not_executable(2)?]);
        allowed.insert(libc::SYS_mprotect, vec![not_executable(2)?]);
        allowed.insert(libc::SYS_fcntl, fcntl_rules()?);
        allowed.insert(libc::SYS_setsockopt, setsockopt_rules()?);
        allowed.insert(libc::SYS_sendto, sendto_rules()?);
        let allow_list = SeccompFilter::new(
            allowed,
            SeccompAction::KillProcess,
            SeccompAction::Allow,
            arch,
        )?;
        let refusals = SeccompFilter::new(
            refused().collect(),
            SeccompAction::Allow,
            SeccompAction::Errno(libc::EPERM as u32),
            arch,
        )?;
        Ok(SyscallFilter {
            refusals: refusals.try_into()?,
            allow_list: allow_list.try_into()?,
        })
    };
    build().map_err(|e| e.to_string())
}
