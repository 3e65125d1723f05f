//! `posternd --check-front-jail`: proves, on this machine and kernel, that
//! a front cannot do what a front taken over would try. It prepares the
//! jail exactly as the front factory does, forks a child that enters it
//! exactly as a front does, and has the child try: signalling itself and
//! a given process (the delivery client, say), making a socket, forking,
//! executing a program, opening a file. Each must be refused; further
//! children map executable memory, or set O_ASYNC on a socket (the way to
//! have the kernel signal someone else), and must be killed for it
//! (SIGSYS). The
//! report goes to standard output, one line per attempt (the children
//! write theirs into a pipe: a front may not write to a regular file); the
//! exit status is 0 only when everything was refused.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::Path;

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

use super::jail::FrontJail;
use crate::privsep::{self, Forked};
use crate::settings::{Settings, TlsSides};

/// One attempt's outcome, written to `out`; true when it was refused.
fn report(out: &mut File, what: &str, result: Result<(), Errno>) -> bool {
    let (refused, text) = match result {
        Ok(()) => (false, "ALLOWED".to_string()),
        Err(e) => (true, format!("refused ({e})")),
    };
    let _ = writeln!(out, "{what}: {text}");
    refused
}

/// Runs the check; returns the exit status.
pub fn check_front_jail(config: &Path, signal: Option<i32>) -> i32 {
    let settings = match Settings::load_with(config, TlsSides::ServerOnly) {
        Ok(settings) => settings,
        Err(errors) => {
            eprintln!("{errors}");
            return i32::from(postern_ipc::Sysexit::Config.code());
        }
    };
    let jail = match FrontJail::prepare(&settings, false) {
        Ok(jail) => jail,
        Err(e) => {
            eprintln!("posternd --check-front-jail: {e}");
            return 1;
        }
    };
    let me = nix::unistd::getpid();
    let (attempts, report_lines) = run_in_jail(&jail, me, |out| attempts(out, signal));
    print!("{report_lines}");
    let mut killed = true;
    // Outside the allow-list: the process is killed (SIGSYS).
    killed &= killed_for(&jail, me, "executable memory", || {
        let _ = privsep::map_executable_page();
    });
    // O_ASYNC would let a front's client make the kernel signal another
    // process (F_SETOWN): not an fcntl a front may make.
    killed &= killed_for(&jail, me, "set O_ASYNC on a socket", || {
        let _ = nix::fcntl::fcntl(
            std::io::stdin(),
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_ASYNC),
        );
    });
    let all_refused = matches!(attempts, Some(WaitStatus::Exited(_, 0)));
    if all_refused && killed {
        0
    } else {
        1
    }
}

/// Runs `attempt` in the jail; true (and says so) when the filter killed it.
fn killed_for(jail: &FrontJail, parent: Pid, what: &str, attempt: impl FnOnce()) -> bool {
    let (status, _) = run_in_jail(jail, parent, |_| {
        attempt();
        0
    });
    let killed = matches!(status, Some(WaitStatus::Signaled(_, Signal::SIGSYS, _)));
    println!(
        "{what}: {}",
        if killed { "killed (SIGSYS)" } else { "ALLOWED" }
    );
    killed
}

/// Forks a child that enters the jail and runs `body` with the write end
/// of a pipe; returns its wait status and what it wrote.
fn run_in_jail(
    jail: &FrontJail,
    parent: Pid,
    body: impl FnOnce(&mut File) -> i32,
) -> (Option<WaitStatus>, String) {
    let Ok((read, write)) = nix::unistd::pipe() else {
        return (None, String::new());
    };
    let (mut read, mut write) = (File::from(read), File::from(write));
    match privsep::fork() {
        Ok(Forked::Child) => {
            drop(read);
            // Both layers, as a front forked by the factory has them.
            let entered = jail
                .confine_calls()
                .map_err(|e| e.to_string())
                .and_then(|()| {
                    jail.enter(parent, &[write.as_raw_fd()])
                        .map(|(d, _)| d)
                        .map_err(|e| e.to_string())
                });
            let code = match entered {
                Ok(_dropped) => body(&mut write),
                Err(e) => {
                    let _ = writeln!(write, "entering the jail failed: {e}");
                    2
                }
            };
            std::process::exit(code);
        }
        Ok(Forked::Parent(pid)) => {
            drop(write);
            let mut text = String::new();
            let _ = read.read_to_string(&mut text);
            (waitpid(pid, None).ok(), text)
        }
        Err(e) => {
            eprintln!("posternd --check-front-jail: {e}");
            (None, String::new())
        }
    }
}

/// Inside the jail: every attempt must be refused. Exit status 0 if so.
fn attempts(out: &mut File, signal: Option<i32>) -> i32 {
    let mut refused = true;
    // The kernel always lets a process signal itself: only the filter
    // refuses this.
    refused &= report(
        out,
        "signal itself",
        kill(nix::unistd::getpid(), None::<Signal>),
    );
    if let Some(pid) = signal {
        refused &= report(
            out,
            &format!("signal pid {pid}"),
            kill(Pid::from_raw(pid), Signal::SIGTERM),
        );
    }
    refused &= report(
        out,
        "make a socket",
        nix::sys::socket::socket(
            nix::sys::socket::AddressFamily::Inet,
            nix::sys::socket::SockType::Stream,
            nix::sys::socket::SockFlag::empty(),
            None,
        )
        .map(drop),
    );
    refused &= report(
        out,
        "fork",
        match privsep::fork() {
            Ok(Forked::Child) => std::process::exit(0),
            Ok(Forked::Parent(_)) => Ok(()),
            Err(privsep::PrivsepError::Call { errno, .. }) => Err(errno),
            Err(_) => Err(Errno::EINVAL),
        },
    );
    refused &= report(
        out,
        "execute /bin/sh",
        nix::unistd::execv(c"/bin/sh", &[c"sh"]).map(drop),
    );
    for path in ["/etc/passwd", "/"] {
        refused &= report(
            out,
            &format!("open {path}"),
            std::fs::File::open(path)
                .map(drop)
                .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(0))),
        );
    }
    if refused {
        0
    } else {
        1
    }
}
