//! Privilege separation, checked on the live processes: as root (CI), each
//! role runs as its own user with no capabilities and no way back, none
//! can be dumped or traced by its own uid, the front factory keeps only
//! CAP_SETUID and CAP_SETGID in the jail, the front is jailed under a
//! seccomp filter and resource limits, and neither the front's user nor
//! the delivery client's can enter the spool; as an ordinary user,
//! everything runs as that user (with the same filter and limits) and the
//! daemon says so.

mod common;

use std::process::Command;

use common::{daemon_with_sink, role_pid, WAIT};
use postern_testkit::{
    proc_status_field, running_as_root, uid_of, Sink, SmtpConversation, FRONT_USER, QUEUE_OWNER,
    RUN_AS_USER,
};

/// The front's limits as /proc/<pid>/limits shows them (soft = hard).
fn limit(pid: u32, name: &str) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("no {name} in {text}"));
    let fields: Vec<&str> = line[name.len()..].split_whitespace().collect();
    assert_eq!(fields[0], fields[1], "{line}");
    fields[0].to_string()
}

/// Checks what applies to a front with or without root: seccomp (two
/// programs: the factory's layer, inherited, and the front's own on top),
/// no new privileges, limits.
fn assert_front_confined(front: u32) {
    assert_eq!(proc_status_field(front, "Seccomp").as_deref(), Some("2"));
    assert_eq!(
        proc_status_field(front, "Seccomp_filters").as_deref(),
        Some("2")
    );
    assert_eq!(proc_status_field(front, "NoNewPrivs").as_deref(), Some("1"));
    assert_eq!(limit(front, "Max processes"), "0");
    assert_eq!(limit(front, "Max open files"), "16");
    assert_eq!(
        limit(front, "Max address space"),
        (512u64 << 20).to_string()
    );
    assert_eq!(limit(front, "Max core file size"), "0");
}

/// Not dumpable: the private files under /proc/<pid> (`mem`, `environ`)
/// belong to root, whoever runs the process, so its own uid cannot read
/// them or trace it.
fn assert_not_dumpable(pid: u32) {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(format!("/proc/{pid}/mem")).unwrap();
    assert_eq!(meta.uid(), 0, "pid {pid} is dumpable");
}

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
    let factory = role_pid(&daemon, "forker");
    assert_front_confined(front);
    // The front is the factory's child, not master's.
    assert_eq!(proc_status_field(front, "PPid"), Some(factory.to_string()));
    // The factory is under the outer layer of the fronts' policy.
    assert_eq!(proc_status_field(factory, "Seccomp").as_deref(), Some("2"));
    assert_eq!(
        proc_status_field(factory, "Seccomp_filters").as_deref(),
        Some("1")
    );

    if !running_as_root() {
        let me = nix::unistd::Uid::current().as_raw();
        for pid in [front, queue, delivery, factory] {
            assert_eq!(proc_status_field(pid, "Uid"), Some(uid_line(me)));
        }
        daemon.wait_for_log("not started as root", WAIT);
        return;
    }

    for pid in [front, queue, delivery, factory, daemon.pid()] {
        assert_not_dumpable(pid);
    }
    // The factory: root in the jail with two capabilities, to fork fronts
    // and drop them to FrontUser.
    assert_eq!(proc_status_field(factory, "Uid"), Some(uid_line(0)));
    let setuid_setgid = (1u64 << 6) | (1u64 << 7);
    for set in ["CapEff", "CapPrm"] {
        assert_eq!(
            proc_status_field(factory, set),
            Some(format!("{setuid_setgid:016x}")),
            "{set}"
        );
    }
    assert_eq!(
        proc_status_field(factory, "CapBnd").as_deref(),
        Some("0000000000000000")
    );
    assert_eq!(
        std::fs::read_link(format!("/proc/{factory}/root")).unwrap(),
        std::path::Path::new("/run/postern/empty")
    );
    // The test kit runs posternd with --log-stderr, which may be a file:
    // 64 MiB then, nothing at all otherwise.
    assert_eq!(limit(front, "Max file size"), (64u64 << 20).to_string());

    let run_as = uid_of(RUN_AS_USER);
    let queue_owner = uid_of(QUEUE_OWNER);
    let front_user = uid_of(FRONT_USER);
    assert!(front_user != run_as && front_user != queue_owner);
    for (pid, uid) in [
        (front, front_user),
        (delivery, run_as),
        (queue, queue_owner),
    ] {
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

    // Neither FrontUser nor RunAsUser can enter the spool.
    let spool = daemon.spool_dir();
    for user in [RUN_AS_USER, FRONT_USER] {
        let out = Command::new("runuser")
            .args(["-u", user, "--", "ls", spool.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{user} listed the spool");
        assert!(String::from_utf8_lossy(&out.stderr).contains("Permission denied"));
    }
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
