//! The README's start command works: `scripts/dev-start.sh` brings up an
//! instance that accepts a message and delivers it into a Maildir.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;

use common::WAIT;
use postern_testkit::{ensure_test_users, free_port, smtp_send, wait_for_maildir};

/// Stops the instance by its PID however the test ends.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.0.wait();
    }
}

#[test]
fn the_development_instance_starts_and_delivers() {
    ensure_test_users();
    let state = tempfile::tempdir().unwrap();
    let port = free_port();
    let script = postern_testkit::script("dev-start.sh");
    let child = Command::new("bash")
        .arg(script)
        .env("POSTERN_DEV_STATE", state.path().join("state"))
        .env("POSTERN_DEV_PORT", port.to_string())
        .env("POSTERN_BIN", postern_testkit::binary("posternd"))
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
    let started = loop {
        match rx.recv_timeout(WAIT) {
            Ok(line) if line.contains("starting daemon") => break line,
            Ok(_) => continue,
            Err(e) => panic!("the development instance did not start: {e}"),
        }
    };
    assert!(
        started.contains(&format!("127.0.0.1:{port} (MTA)")),
        "{started}"
    );
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    // Local mail is for users of this machine: the one running the test.
    let me = nix::unistd::User::from_uid(nix::unistd::Uid::current())
        .unwrap()
        .unwrap()
        .name;
    let reply = smtp_send(
        addr,
        "me@localhost",
        &[&format!("{me}@postern.test")],
        b"Subject: hi\r\n\r\nHello from Postern.\r\n",
    );
    let reply = reply.unwrap();
    assert!(reply.starts_with("250 2.0.0 "), "{reply}");
    let delivered = wait_for_maildir(
        &state.path().join(format!("state/mail/{me}/Maildir")),
        1,
        WAIT,
    );
    let text = String::from_utf8_lossy(&delivered[0]).into_owned();
    assert!(text.contains("Hello from Postern."), "{text}");
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
        assert!(state.path().join("state/certs").join(f).is_file(), "{f}");
    }
}
