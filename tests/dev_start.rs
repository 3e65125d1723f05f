//! The README's start command works: `scripts/dev-start.sh` brings up an
//! instance that accepts a message and delivers it into a Maildir, and
//! its `sendmail`, `mailq`, `runq` and `newaliases` talk to that instance.
//! It works for root (privilege-separated for real) and for an ordinary
//! user who owns nothing but the directory it runs in: the newcomer the
//! README promises needs no root.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;

use common::WAIT;
use postern_testkit::{ensure_test_users, free_port, running_as_root, smtp_send, wait_for_maildir};

/// The ordinary user the unprivileged run uses when the tests run as root.
const NEWCOMER: &str = "posternnew";

/// Who runs the instance and its tools.
#[derive(Clone)]
struct RunAs {
    uid: u32,
    gid: u32,
    name: String,
}

impl RunAs {
    fn current() -> RunAs {
        let uid = nix::unistd::Uid::current();
        RunAs {
            uid: uid.as_raw(),
            gid: nix::unistd::Gid::current().as_raw(),
            name: nix::unistd::User::from_uid(uid).unwrap().unwrap().name,
        }
    }

    /// An ordinary (non-system) user, made if missing.
    fn newcomer() -> RunAs {
        if nix::unistd::User::from_name(NEWCOMER).unwrap().is_none() {
            let status = Command::new("useradd")
                .args(["--no-create-home", "--shell", "/bin/sh", NEWCOMER])
                .status()
                .expect("useradd");
            // Another test process may have made it meanwhile.
            assert!(
                status.success() || nix::unistd::User::from_name(NEWCOMER).unwrap().is_some(),
                "useradd {NEWCOMER}: {status}"
            );
        }
        let user = nix::unistd::User::from_name(NEWCOMER).unwrap().unwrap();
        assert!(!user.uid.is_root());
        RunAs {
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
            name: user.name,
        }
    }

    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new(program);
        if self.uid != nix::unistd::Uid::current().as_raw() {
            // std drops the supplementary groups when root changes uid.
            command.uid(self.uid).gid(self.gid);
        }
        command
            .env("HOME", "/nonexistent")
            .env("USER", &self.name)
            .env("LOGNAME", &self.name);
        command
    }
}

/// Stops the instance by its PID however the test ends.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.0.wait();
    }
}

/// A copy of what the script needs (itself, the certificate script, the
/// two binaries) in a directory `user` owns, so that nothing depends on
/// the user being able to reach the checkout.
fn sandbox(user: &RunAs) -> (tempfile::TempDir, PathBuf, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let scripts = dir.path().join("checkout/scripts");
    std::fs::create_dir_all(&scripts).unwrap();
    for name in ["dev-start.sh", "make-certs.sh"] {
        std::fs::copy(postern_testkit::script(name), scripts.join(name)).unwrap();
    }
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    for name in ["posternd", "postern"] {
        std::fs::copy(postern_testkit::binary(name), bin.join(name)).unwrap();
    }
    let chown = Command::new("chown")
        .args(["-R", &format!("{}:{}", user.uid, user.gid)])
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(chown.success());
    let state = dir.path().join("state");
    (dir, scripts.join("dev-start.sh"), bin, state)
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}stderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs one of the instance's tools as `user`.
fn tool(user: &RunAs, state: &Path, name: &str, args: &[&str], input: &[u8]) -> Output {
    let mut child = user
        .command(state.join("bin").join(name))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

fn start_and_deliver(user: RunAs) {
    let (dir, script, bin, state) = sandbox(&user);
    let port = free_port();
    let child = user
        .command("bash")
        .arg(&script)
        .env("POSTERN_DEV_STATE", &state)
        .env("POSTERN_DEV_PORT", port.to_string())
        .env("POSTERN_BIN", bin.join("posternd"))
        .env("POSTERN_CLI", bin.join("postern"))
        .env_remove("POSTERN_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Running(child);
    // The daemon logs its start on standard error; wait for that line.
    let (tx, rx) = mpsc::channel();
    let stderr = child.0.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let started = loop {
        match rx.recv_timeout(WAIT) {
            Ok(line) if line.contains("starting daemon") => break line,
            Ok(line) => seen.push(line),
            Err(e) => panic!(
                "the development instance did not start for {}: {e}\n{}",
                user.name,
                seen.join("\n")
            ),
        }
    };
    assert!(
        started.contains(&format!("127.0.0.1:{port} (MTA)")),
        "{started}"
    );

    // Local mail is for users of this machine: the one running it.
    let me = &user.name;
    let maildir = state.join(format!("mail/{me}/Maildir"));
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let reply = smtp_send(
        addr,
        "me@localhost",
        &[&format!("{me}@postern.test")],
        b"Subject: hi\r\n\r\nHello from Postern.\r\n",
    );
    let reply = reply.unwrap();
    assert!(reply.starts_with("250 2.0.0 "), "{reply}");
    let delivered = wait_for_maildir(&maildir, 1, WAIT);
    let text_of = |m: &[u8]| String::from_utf8_lossy(m).into_owned();
    assert!(text_of(&delivered[0]).contains("Hello from Postern."));

    // The instance's own tools, as the README prints them.
    let out = tool(
        &user,
        &state,
        "sendmail",
        &[&format!("{me}@postern.test")],
        b"Subject: tools\n\nHello from the dev sendmail.\n",
    );
    assert!(out.status.success(), "{}", text(&out));
    let delivered = wait_for_maildir(&maildir, 2, WAIT);
    assert!(delivered
        .iter()
        .any(|m| text_of(m).contains("Hello from the dev sendmail.")));
    // The Maildir has the message a moment before the queue lets it go.
    let listing = postern_testkit::poll_until(WAIT, || {
        let out = tool(&user, &state, "mailq", &[], b"");
        assert!(out.status.success(), "{}", text(&out));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        stdout.contains("Total requests: 0").then_some(stdout)
    });
    assert!(
        listing.is_some(),
        "the delivered message stays in the queue"
    );
    let out = tool(&user, &state, "runq", &[], b"");
    assert!(out.status.success(), "{}", text(&out));
    let out = tool(&user, &state, "newaliases", &[], b"");
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .starts_with(&format!("{}: ", state.join("aliases").display())),
        "{}",
        text(&out)
    );

    // SIGTERM stops it cleanly.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.0.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = child.0.wait().unwrap();
    assert!(status.success(), "{status:?}");
    // The certificate the recipe's defines point at was generated.
    for f in ["cacert.pem", "cert.pem", "key.pem"] {
        assert!(state.join("certs").join(f).is_file(), "{f}");
    }
    drop(dir);
}

/// As whoever runs the tests (root in CI: privilege separation for real).
#[test]
fn the_development_instance_starts_and_delivers() {
    ensure_test_users();
    start_and_deliver(RunAs::current());
}

/// As an ordinary user: no root, no system users, nothing outside its own
/// directory. Run as root, the test makes such a user and becomes it.
#[test]
fn the_development_instance_needs_no_root() {
    let user = if running_as_root() {
        RunAs::newcomer()
    } else {
        RunAs::current()
    };
    start_and_deliver(user);
}
