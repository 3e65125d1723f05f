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
//!
//! The policy is installed in two layers, because installing a filter
//! costs the kernel time in proportion to its length and every front
//! installs one (7% of all time in a profile of the connection loop with
//! the whole policy in each front). The front factory installs the outer
//! layer on itself once, at start: the front's policy, except that what
//! the factory does (fork and reap fronts, wait on master's channel, make
//! each front's socket to the key holder) and what a front does between
//! its fork and its own layer (drop to FrontUser, set its limits, connect
//! to its mail filters, install that layer) is allowed. Each front then
//! installs the inner layer: for just those calls, what the front's
//! policy says; anything else it allows, and the outer layer decides. The
//! kernel runs both and keeps the stricter answer, so a front is held to
//! exactly its policy (a test compares the two layers with the whole
//! policy, call by call), and the factory itself can no longer open a
//! file, execute a program or signal a process.
#![deny(unsafe_code)]

use nix::libc;
use seccompiler::BpfProgram;

use super::bpf::{self, Condition, Verdict};

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

/// Calls the front factory makes, and a front makes before its own layer
/// is installed, allowed with any arguments by the factory's layer.
const FACTORY_ALLOWED: &[libc::c_long] = &[
    // Forking fronts (glibc's fork is clone) and reaping them.
    libc::SYS_clone,
    libc::SYS_set_robust_list,
    libc::SYS_wait4,
    // Waiting on master's channel (mio); a socket to the key holder for
    // each front, made blocking.
    libc::SYS_epoll_pwait,
    libc::SYS_socketpair,
    libc::SYS_ioctl,
    // A front dropping to FrontUser: descriptors, identity, capabilities,
    // limits, no new privileges, its own layer.
    libc::SYS_close_range,
    libc::SYS_dup3,
    libc::SYS_setgroups,
    libc::SYS_setresgid,
    libc::SYS_setresuid,
    // Tried once the uid has changed: the kernel, not this filter, must
    // refuse it.
    libc::SYS_setuid,
    // Clearing capabilities, setting limits, no new privileges (prctl),
    // then the front's own layer.
    libc::SYS_capget,
    libc::SYS_capset,
    libc::SYS_prctl,
    libc::SYS_prlimit64,
    libc::SYS_seccomp,
    // A front connecting to its mail filters (a unix socket by its
    // directory, opened before the chroot).
    libc::SYS_socket,
    libc::SYS_connect,
    libc::SYS_fchdir,
    libc::SYS_chdir,
];

#[cfg(target_arch = "x86_64")]
const FACTORY_ALLOWED_ARCH: &[libc::c_long] = &[libc::SYS_epoll_wait, libc::SYS_dup2];
#[cfg(not(target_arch = "x86_64"))]
const FACTORY_ALLOWED_ARCH: &[libc::c_long] = &[];

/// `arg` has no PROT_EXEC bit.
fn not_executable(arg: u8) -> Vec<Vec<Condition>> {
    vec![vec![Condition::Low32 {
        arg,
        mask: libc::PROT_EXEC as u32,
        value: 0,
    }]]
}

/// Argument `arg` (an int) equals `value`.
fn equals(arg: u8, value: i32) -> Condition {
    Condition::Low32 {
        arg,
        mask: u32::MAX,
        value: value as u32,
    }
}

/// `fcntl` that reads, or sets close-on-exec, or duplicates with it.
fn fcntl_rules() -> Vec<Vec<Condition>> {
    [
        libc::F_GETFD,
        libc::F_SETFD,
        libc::F_GETFL,
        libc::F_DUPFD_CLOEXEC,
    ]
    .into_iter()
    .map(|cmd| vec![equals(1, cmd)])
    .collect()
}

/// `setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO or SO_SNDTIMEO, …)`.
fn setsockopt_rules() -> Vec<Vec<Condition>> {
    [libc::SO_RCVTIMEO, libc::SO_SNDTIMEO]
        .into_iter()
        .map(|opt| vec![equals(1, libc::SOL_SOCKET), equals(2, opt)])
        .collect()
}

/// `sendto` on a connected socket: no destination address.
fn sendto_rules() -> Vec<Vec<Condition>> {
    vec![vec![Condition::Full64 { arg: 4, value: 0 }]]
}

/// One layer of the policy, a seccomp program compiled once (in the front
/// factory): [`factory_filter`], installed by the factory on itself, or
/// [`front_filter`], installed on top of it by every front as the last
/// step of dropping its privileges.
pub struct SyscallFilter {
    program: BpfProgram,
}

impl SyscallFilter {
    /// Installs the program (which forbids `seccomp` and `prctl` from then
    /// on).
    pub fn install(&self) -> Result<(), String> {
        seccompiler::apply_filter(&self.program).map_err(|e| e.to_string())
    }
}

// `linux/audit.h`: the machine (EM_X86_64 62, EM_AARCH64 183), 64-bit,
// little-endian.
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: Option<u32> = Some(0xc000_003e);
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: Option<u32> = Some(0xc000_00b7);
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const AUDIT_ARCH: Option<u32> = None;

fn number(n: libc::c_long) -> u32 {
    u32::try_from(n).expect("a system call number")
}

/// The front's whole policy: every call it names, with its verdict; any
/// other call kills. [`REFUSED`] calls fail with EPERM, [`ALLOWED`] ones
/// are made, some only with the arguments a session uses.
fn front_policy() -> Vec<(u32, Verdict)> {
    let mut calls: Vec<(u32, Verdict)> = ALLOWED
        .iter()
        .chain(ALLOWED_ARCH)
        .map(|&n| (number(n), Verdict::Allow))
        .collect();
    calls.extend(
        REFUSED
            .iter()
            .chain(REFUSED_ARCH)
            .map(|&n| (number(n), Verdict::Errno(libc::EPERM as u32))),
    );
    for (n, rules) in [
        (libc::SYS_mmap, not_executable(2)),
        (libc::SYS_mprotect, not_executable(2)),
        (libc::SYS_fcntl, fcntl_rules()),
        (libc::SYS_setsockopt, setsockopt_rules()),
        (libc::SYS_sendto, sendto_rules()),
    ] {
        calls.push((number(n), Verdict::AllowIf(rules)));
    }
    calls
}

/// The outer layer's calls: the front's policy, but [`FACTORY_ALLOWED`]
/// allowed; any other call kills.
fn factory_policy() -> Vec<(u32, Verdict)> {
    let allowed: Vec<u32> = FACTORY_ALLOWED
        .iter()
        .chain(FACTORY_ALLOWED_ARCH)
        .map(|&n| number(n))
        .collect();
    let mut calls = front_policy();
    calls.retain(|(n, _)| !allowed.contains(n));
    calls.extend(allowed.into_iter().map(|n| (n, Verdict::Allow)));
    calls
}

/// The inner layer's calls: where the outer layer says other than the
/// front's policy, what the policy says (killing what it does not name);
/// any other call is left to the outer layer.
fn front_layer() -> Vec<(u32, Verdict)> {
    let front = front_policy();
    factory_policy()
        .into_iter()
        .filter(|call| !front.contains(call))
        .map(|(n, _)| {
            let verdict = front.iter().find(|(f, _)| *f == n).map(|(_, v)| v.clone());
            (n, verdict.unwrap_or(Verdict::Kill))
        })
        .collect()
}

fn audit_arch() -> Result<u32, String> {
    AUDIT_ARCH.ok_or_else(|| format!("no seccomp support for {}", std::env::consts::ARCH))
}

/// Compiles the front factory's layer for this machine's architecture.
pub fn factory_filter() -> Result<SyscallFilter, String> {
    Ok(SyscallFilter {
        program: bpf::compile(audit_arch()?, &factory_policy(), &Verdict::Kill),
    })
}

/// Compiles a front's layer, which holds a front to its policy only on
/// top of [`factory_filter`].
pub fn front_filter() -> Result<SyscallFilter, String> {
    Ok(SyscallFilter {
        program: bpf::compile(audit_arch()?, &front_layer(), &Verdict::Allow),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::privsep::bpf::tests::{run, Call};

    /// What the kernel answers when both programs are installed, `inner`
    /// last: the most restrictive action, and among equal actions the
    /// latest filter's (`kernel/seccomp.c`, `seccomp_run_filters`).
    fn layered(outer: u32, inner: u32) -> u32 {
        let action = |ret: u32| (ret & libc::SECCOMP_RET_ACTION_FULL) as i32;
        if action(outer) < action(inner) {
            outer
        } else {
            inner
        }
    }

    fn on_this_arch(nr: u32, args: [u64; 6]) -> Call {
        Call {
            arch: AUDIT_ARCH.unwrap(),
            nr,
            args,
        }
    }

    /// A front's verdict on a call: both layers.
    fn verdict(nr: libc::c_long, args: [u64; 6]) -> u32 {
        let call = on_this_arch(nr as u32, args);
        let outer = run(&factory_filter().unwrap().program, call);
        layered(outer, run(&front_filter().unwrap().program, call))
    }

    #[test]
    fn the_program_says_what_the_lists_say() {
        let listed: Vec<u32> = front_policy().iter().map(|(n, _)| *n).collect();
        for &n in ALLOWED.iter().chain(ALLOWED_ARCH) {
            assert_eq!(verdict(n, [0; 6]), libc::SECCOMP_RET_ALLOW, "{n}");
        }
        for &n in REFUSED.iter().chain(REFUSED_ARCH) {
            assert_eq!(
                verdict(n, [0; 6]),
                libc::SECCOMP_RET_ERRNO | libc::EPERM as u32,
                "{n}"
            );
        }
        // Anything else kills: every number up to 1000 not listed.
        for n in (0..1000u32).filter(|n| !listed.contains(n)) {
            assert_eq!(
                verdict(n.into(), [0; 6]),
                libc::SECCOMP_RET_KILL_PROCESS,
                "{n}"
            );
        }
    }

    #[test]
    fn the_two_layers_are_the_whole_policy() {
        let whole = bpf::compile(AUDIT_ARCH.unwrap(), &front_policy(), &Verdict::Kill);
        let (outer, inner) = (factory_filter().unwrap(), front_filter().unwrap());
        // The values the argument rules test, and others beside them.
        let firsts = [
            0,
            1,
            libc::F_GETFD,
            libc::F_SETFD,
            libc::F_GETFL,
            libc::F_SETFL,
            libc::F_DUPFD_CLOEXEC,
            libc::F_SETOWN,
            libc::SOL_SOCKET,
            libc::IPPROTO_TCP,
        ];
        let seconds = [
            0,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::PROT_READ | libc::PROT_EXEC,
            libc::SO_RCVTIMEO,
            libc::SO_SNDTIMEO,
            libc::SO_REUSEADDR,
            libc::O_ASYNC,
        ];
        let fifths: [u64; 3] = [0, 16, 1 << 40];
        let numbers = (0..1000u32).chain(0x4000_0000..0x4000_0200);
        for nr in numbers {
            for first in firsts {
                for second in seconds {
                    for fifth in fifths {
                        let args = [3, first as u64, second as u64, 0, fifth, 0];
                        let call = on_this_arch(nr, args);
                        let want = run(&whole, call);
                        let got = layered(run(&outer.program, call), run(&inner.program, call));
                        assert_eq!(got, want, "call {nr} with {args:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn the_front_layer_is_short_and_the_factory_keeps_its_limits() {
        // Short, so installing it after every fork is cheap.
        let inner = front_filter().unwrap();
        assert!(inner.program.len() < 100, "{}", inner.program.len());
        let outer = factory_filter().unwrap();
        assert!(outer.program.len() < 400, "{}", outer.program.len());
        // The factory may fork, but not execute, open, signal or trace,
        // nor map executable memory.
        let call = |nr: libc::c_long, args| run(&outer.program, on_this_arch(nr as u32, args));
        let eperm = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
        assert_eq!(call(libc::SYS_clone, [0; 6]), libc::SECCOMP_RET_ALLOW);
        for refused in [
            libc::SYS_execve,
            libc::SYS_openat,
            libc::SYS_kill,
            libc::SYS_ptrace,
        ] {
            assert_eq!(call(refused, [0; 6]), eperm, "{refused}");
        }
        let exec = (libc::PROT_READ | libc::PROT_EXEC) as u64;
        assert_eq!(
            call(libc::SYS_mprotect, [0, 4096, exec, 0, 0, 0]),
            libc::SECCOMP_RET_KILL_PROCESS
        );
        assert_eq!(
            call(libc::SYS_mount, [0; 6]),
            libc::SECCOMP_RET_KILL_PROCESS
        );
    }

    #[test]
    fn arguments_are_checked_where_the_lists_say() {
        let exec = libc::PROT_READ | libc::PROT_EXEC;
        let rw = libc::PROT_READ | libc::PROT_WRITE;
        let kill = libc::SECCOMP_RET_KILL_PROCESS;
        let allow = libc::SECCOMP_RET_ALLOW;
        assert_eq!(
            verdict(libc::SYS_mmap, [0, 4096, rw as u64, 0, 0, 0]),
            allow
        );
        assert_eq!(
            verdict(libc::SYS_mmap, [0, 4096, exec as u64, 0, 0, 0]),
            kill
        );
        assert_eq!(
            verdict(libc::SYS_mprotect, [0, 4096, exec as u64, 0, 0, 0]),
            kill
        );
        let fcntl = |cmd: i32| verdict(libc::SYS_fcntl, [3, cmd as u64, 0, 0, 0, 0]);
        assert_eq!(fcntl(libc::F_GETFL), allow);
        assert_eq!(fcntl(libc::F_SETFL), kill);
        assert_eq!(fcntl(libc::F_SETOWN), kill);
        let sockopt = |level: i32, opt: i32| {
            verdict(libc::SYS_setsockopt, [3, level as u64, opt as u64, 0, 0, 0])
        };
        assert_eq!(sockopt(libc::SOL_SOCKET, libc::SO_RCVTIMEO), allow);
        assert_eq!(sockopt(libc::SOL_SOCKET, libc::SO_SNDTIMEO), allow);
        assert_eq!(sockopt(libc::SOL_SOCKET, libc::SO_REUSEADDR), kill);
        assert_eq!(sockopt(libc::IPPROTO_TCP, libc::SO_RCVTIMEO), kill);
        assert_eq!(verdict(libc::SYS_sendto, [3, 0, 10, 0, 0, 0]), allow);
        assert_eq!(
            verdict(libc::SYS_sendto, [3, 0, 10, 0, 0x7fff_0000, 16]),
            kill
        );
    }
}
