//! `Daemon` against the kit's fake daemon (src/bin/testkit-fake-posternd.rs):
//! the real posternd lives in a crate the kit may not depend on.

use std::fs;
use std::time::Duration;

use postern_testkit::{child_pids, proc_status_field, DaemonBuilder, Signal, SmtpConversation};

const FAKE: &str = env!("CARGO_BIN_EXE_testkit-fake-posternd");
const WAIT: Duration = Duration::from_secs(10);

#[test]
fn prepare_writes_the_layout() {
    let instance = DaemonBuilder::new(FAKE)
        .config_line("O PrivacyOptions=goaway")
        .table("mailertable", "sink.test smtp:[127.0.0.1]:2525\n")
        .table("local-host-names", "mx.test\n")
        .prepare();
    let state = instance.state_dir().to_path_buf();
    assert!(state.join("etc").is_dir());
    // The daemon makes its own spool and mailbox directories.
    assert!(!state.join("spool").exists() && !state.join("mail").exists());
    assert_eq!(instance.config_path(), state.join("etc/postern.cf"));
    let text = instance.config_text();
    let port = instance.smtp_addr().port();
    for line in [
        format!("O QueueDirectory={}/spool", state.display()),
        format!("O MailboxDirectory={}/mail", state.display()),
        format!("O DaemonPortOptions=Port={port}, Addr=127.0.0.1, Name=MTA"),
        "Dj mx.test".to_string(),
        "O PrivacyOptions=goaway".to_string(),
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line:?} missing from:\n{text}"
        );
    }
    assert_eq!(
        fs::read_to_string(state.join("etc/mailertable")).unwrap(),
        "sink.test smtp:[127.0.0.1]:2525\n"
    );
    assert_eq!(instance.listener_addr("mta"), instance.smtp_addr());
    drop(instance);
    assert!(!state.exists(), "the state dir is removed on drop");
}

#[test]
fn start_talk_restart_stop() {
    let mut daemon = DaemonBuilder::new(FAKE)
        .env("FAKE_POSTERND_CHILD", "1")
        .start();
    let state = daemon.state_dir().to_path_buf();
    daemon.wait_for_log("ready on 127.0.0.1", WAIT);
    daemon.wait_for_log("stdout: fake-posternd: stdout is collected", WAIT);

    let mut c = SmtpConversation::connect(daemon.smtp_addr());
    assert_eq!(c.read_reply(), "220 mx.test ESMTP fake");
    c.cmd("EHLO me", "250");
    let mark = daemon.log_mark();
    c.cmd("QUIT", "221");
    daemon.wait_for_log_since(mark, "command QUIT", WAIT);

    let first = daemon.pid();
    let children = daemon.children();
    assert_eq!(children.len(), 1, "{children:?}");
    assert_eq!(child_pids(first), children);
    assert_eq!(
        proc_status_field(first, "PPid"),
        Some(std::process::id().to_string())
    );

    fs::create_dir_all(daemon.spool_dir()).unwrap();
    fs::write(daemon.spool_dir().join("kept"), b"x").unwrap();
    daemon.restart();
    assert_ne!(daemon.pid(), first);
    assert!(
        daemon.spool_dir().join("kept").exists(),
        "state survives a restart"
    );
    // The new run's "ready" line, not the old one.
    let ready = daemon.wait_for_log("ready on", WAIT);
    assert_eq!(
        daemon.log_lines().iter().filter(|l| **l == ready).count(),
        2
    );

    let status = daemon.stop();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(15)
    );
    assert!(!daemon.is_running());
    drop(daemon);
    assert!(!state.exists());
}

#[test]
fn children_left_behind_are_killed_and_fail_the_test() {
    let mut daemon = DaemonBuilder::new(FAKE)
        .env("FAKE_POSTERND_CHILD", "stubborn")
        .children_grace(Duration::from_millis(200))
        .start();
    daemon.wait_for_log("fake-posternd: child", WAIT);
    let children = daemon.children();
    assert_eq!(children.len(), 1);
    let stop = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| daemon.stop()));
    let message = *stop.unwrap_err().downcast::<String>().unwrap();
    assert!(
        message.contains(&format!("left processes running 200ms later: {children:?}")),
        "{message}"
    );
    // Killed, and reaped by whoever inherited it (at worst a zombie).
    let gone = postern_testkit::poll_until(WAIT, || {
        let state = fs::read_to_string(format!("/proc/{}/stat", children[0])).unwrap_or_default();
        (state.is_empty() || state.contains(") Z ")).then_some(())
    });
    assert!(gone.is_some(), "child {} still running", children[0]);
}

#[test]
fn kill_and_wait_exit() {
    let mut daemon = DaemonBuilder::new(FAKE).start();
    daemon.kill(Signal::SIGKILL);
    let status = daemon.wait_exit(WAIT);
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
    assert_eq!(daemon.stop(), status, "stopping a dead daemon is a no-op");
}

#[test]
#[should_panic(expected = "exited during startup with exit status: 3")]
fn early_exit_fails_start_with_the_log() {
    DaemonBuilder::new(FAKE)
        .env("FAKE_POSTERND_EXIT", "3")
        .start();
}

#[test]
#[should_panic(expected = "logged no line containing \"never\"")]
fn wait_for_log_fails_with_the_log() {
    let daemon = DaemonBuilder::new(FAKE).start();
    daemon.wait_for_log("never", Duration::from_millis(50));
}
