//! Privilege separation, checked on the live processes: as root (CI), each
//! role runs as its own user with no capabilities and no way back, the
//! front is jailed, and neither the front's user nor the delivery client's
//! can enter the spool; as an ordinary user, everything runs as that user
//! and the daemon says so.

mod common;

use std::process::Command;

use common::{daemon_with_sink, role_pid, WAIT};
use postern_testkit::{
    proc_status_field, running_as_root, uid_of, Sink, SmtpConversation, QUEUE_OWNER, RUN_AS_USER,
};

fn uid_line(uid: u32) -> String {
    format!("{uid}\t{uid}\t{uid}\t{uid}")
}

#[test]
fn every_role_runs_with_the_least_privilege() {
    let sink = Sink::start();
    let daemon = daemon_with_sink(&sink, &[]);
    // A live front: connected and greeted, so it has dropped privileges.
    let mut client = SmtpConversation::connect(daemon.smtp_addr());
    client.read_reply();
    client.cmd("EHLO client.example", "250");
    let front = role_pid(&daemon, "front");
    let queue = role_pid(&daemon, "queue");
    let delivery = role_pid(&daemon, "deliv");

    if !running_as_root() {
        let me = nix::unistd::Uid::current().as_raw();
        for pid in [front, queue, delivery] {
            assert_eq!(proc_status_field(pid, "Uid"), Some(uid_line(me)));
        }
        daemon.wait_for_log("not started as root", WAIT);
        return;
    }

    let run_as = uid_of(RUN_AS_USER);
    let queue_owner = uid_of(QUEUE_OWNER);
    for (pid, uid) in [(front, run_as), (delivery, run_as), (queue, queue_owner)] {
        assert_eq!(
            proc_status_field(pid, "Uid"),
            Some(uid_line(uid)),
            "pid {pid}"
        );
        assert_eq!(
            proc_status_field(pid, "CapEff").as_deref(),
            Some("0000000000000000")
        );
        assert_eq!(
            proc_status_field(pid, "CapPrm").as_deref(),
            Some("0000000000000000")
        );
        assert_eq!(
            proc_status_field(pid, "CapBnd").as_deref(),
            Some("0000000000000000")
        );
        assert_eq!(proc_status_field(pid, "NoNewPrivs").as_deref(), Some("1"));
        let groups = proc_status_field(pid, "Groups").unwrap_or_default();
        assert!(
            !groups.split_whitespace().any(|g| g == "0"),
            "root's group kept: {groups}"
        );
    }
    // The front lives in an empty jail.
    let root = std::fs::read_link(format!("/proc/{front}/root")).unwrap();
    assert_eq!(root, std::path::Path::new("/run/postern/empty"));

    // RunAsUser cannot enter the spool, so neither front nor delivery can.
    let spool = daemon.spool_dir();
    let as_run_as = Command::new("runuser")
        .args(["-u", RUN_AS_USER, "--", "ls", spool.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        !as_run_as.status.success(),
        "{RUN_AS_USER} listed the spool"
    );
    assert!(String::from_utf8_lossy(&as_run_as.stderr).contains("Permission denied"));
    let as_owner = Command::new("runuser")
        .args(["-u", QUEUE_OWNER, "--", "ls", spool.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        as_owner.status.success(),
        "the queue owner must reach its spool"
    );

    // A root-only key, as the TLS recipe keeps it: RunAsUser cannot read
    // it, and inside the front's jail the path does not even exist.
    let key = daemon.state_dir().join("etc/key.pem");
    std::fs::write(&key, b"-----BEGIN PRIVATE KEY-----\n").unwrap();
    std::os::unix::fs::chown(&key, Some(0), Some(0)).unwrap();
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let out = Command::new("runuser")
        .args(["-u", RUN_AS_USER, "--", "cat", key.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success(), "{RUN_AS_USER} read a root-only key");
    let jailed =
        std::path::Path::new(&format!("/proc/{front}/root")).join(key.strip_prefix("/").unwrap());
    assert!(
        std::fs::metadata(jailed).is_err(),
        "the key is visible inside the jail"
    );
    client.cmd("QUIT", "221");
}
