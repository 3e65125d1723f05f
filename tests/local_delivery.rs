//! Local mail written by its owner: the mailbox, its owner and mode as
//! `stat` shows them, its content as a mail reader's parser (Python's
//! `mailbox`) reads it, and a full disk that defers and loses nothing.
//! Real users, made by the test (`useradd -m`); root only, as CI runs.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{mailq, WAIT};
use postern_testkit::{
    ensure_mail_user, ensure_test_users, poll_until, running_as_root, smtp_send, uid_of,
    wait_for_maildir, Daemon, DaemonBuilder, RUN_AS_USER,
};

/// A daemon for `mx.test` with `extra` lines.
fn daemon(extra: &[&str]) -> Daemon {
    ensure_test_users();
    let mut builder = DaemonBuilder::new(postern_testkit::binary("posternd"))
        .table("local-host-names", "mx.test\n")
        .config_line("O LogLevel=14")
        .config_line("O MinQueueAge=1s");
    for line in extra {
        builder = builder.config_line(line);
    }
    builder.start()
}

fn send(daemon: &Daemon, to: &str, body: &str) {
    smtp_send(
        daemon.smtp_addr(),
        "sender@example.net",
        &[to],
        format!("Subject: for {to}\r\n\r\n{body}").as_bytes(),
    )
    .unwrap();
}

/// The messages of the mbox at `path` as Python's `mailbox.mbox` reads
/// them: `From ` line (without its date), then the message.
fn mbox_messages(path: &Path) -> Vec<(String, String)> {
    const READ: &str = r#"
import mailbox, sys
for m in mailbox.mbox(sys.argv[1], create=False):
    sys.stdout.write(" ".join(m.get_from().split()[:1]) + "\0" + m.as_string() + "\0")
"#;
    let out = Command::new("python3")
        .args(["-c", READ])
        .arg(path)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let parts: Vec<&str> = text.split('\0').collect();
    parts
        .chunks(2)
        .filter(|c| c.len() == 2)
        .map(|c| (c[0].to_string(), c[1].to_string()))
        .collect()
}

fn wait_for_mbox(path: &Path, n: usize) -> Vec<(String, String)> {
    poll_until(WAIT, || {
        let messages = if path.exists() {
            mbox_messages(path)
        } else {
            Vec::new()
        };
        (messages.len() >= n).then_some(messages)
    })
    .unwrap_or_else(|| panic!("{} did not get {n} message(s)", path.display()))
}

fn skip_unless_root() -> bool {
    if !running_as_root() {
        eprintln!("skipped: delivering as another user takes root (CI runs as root)");
        return true;
    }
    false
}

#[test]
fn an_mbox_is_written_as_its_owner_and_read_back_by_a_mail_reader() {
    if skip_unless_root() {
        return;
    }
    let (uid, _) = ensure_mail_user("pmbox");
    let d = daemon(&["O LocalMailbox=mbox"]);
    send(&d, "pmbox@mx.test", "first\r\nFrom the start of a line\r\n");
    send(&d, "pmbox@mx.test", "second\r\n");
    let path = d.mail_dir().join("pmbox");
    let messages = wait_for_mbox(&path, 2);
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o7777), (uid, 0o600));
    assert_eq!(messages.len(), 2);
    for (from, text) in &messages {
        assert_eq!(from, "sender@example.net");
        assert!(
            text.starts_with("Return-Path: <sender@example.net>\n"),
            "{text}"
        );
    }
    // A body line that would start a message is escaped, the rest as sent.
    assert!(
        messages[0]
            .1
            .contains("\n\nfirst\n>From the start of a line\n"),
        "{}",
        messages[0].1
    );
    assert!(messages[1].1.ends_with("\n\nsecond\n"), "{}", messages[1].1);
    // The agent ran as the user: master says so at LogLevel 14.
    d.wait_for_log("local delivery agent (pid ", WAIT);
    assert!(d
        .log_lines()
        .iter()
        .any(|l| l.contains(&format!("for pmbox as uid {uid}"))));
    assert!(!d.mail_dir().join("pmbox.lock").exists());
}

#[test]
fn a_maildir_belongs_to_its_owner_and_roots_to_run_as_user() {
    if skip_unless_root() {
        return;
    }
    let (uid, _) = ensure_mail_user("pmdir");
    let d = daemon(&[]);
    send(&d, "pmdir@mx.test", "to a user\r\n");
    send(&d, "root@mx.test", "to root\r\n");
    let mine = d.mail_dir().join("pmdir/Maildir");
    let got = wait_for_maildir(&mine, 1, WAIT);
    assert!(String::from_utf8_lossy(&got[0]).ends_with("\n\nto a user\n"));
    for path in [
        d.mail_dir().join("pmdir"),
        mine.join("new"),
        std::fs::read_dir(mine.join("new"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path(),
    ] {
        assert_eq!(
            std::fs::metadata(&path).unwrap().uid(),
            uid,
            "{}",
            path.display()
        );
    }
    let mode = std::fs::metadata(d.mail_dir().join("pmdir"))
        .unwrap()
        .mode()
        & 0o7777;
    assert_eq!(mode, 0o700);
    // root's mail is never written as root: as RunAsUser, sendmail's
    // DefaultUser.
    let roots = d.mail_dir().join("root/Maildir");
    wait_for_maildir(&roots, 1, WAIT);
    assert_eq!(
        std::fs::metadata(roots.join("new")).unwrap().uid(),
        uid_of(RUN_AS_USER)
    );
    // MailboxDirectory lets owners through and nobody list it.
    let dir = std::fs::metadata(d.mail_dir()).unwrap();
    assert_eq!((dir.uid(), dir.mode() & 0o7777), (0, 0o711));
}

#[test]
fn home_maildir_is_in_the_users_home() {
    if skip_unless_root() {
        return;
    }
    let (uid, home) = ensure_mail_user("phome");
    let maildir = home.join("Maildir");
    let _ = std::fs::remove_dir_all(&maildir);
    let d = daemon(&["O LocalMailbox=~/Maildir"]);
    send(&d, "phome@mx.test", "home\r\n");
    wait_for_maildir(&maildir, 1, WAIT);
    assert_eq!(std::fs::metadata(maildir.join("new")).unwrap().uid(), uid);
    assert!(!d.mail_dir().join("phome").exists());
    std::fs::remove_dir_all(&maildir).unwrap();
}

/// A small tmpfs mounted for the test's mailboxes, unmounted on drop.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(at: &Path, size: &str) -> SmallDisk {
        std::fs::create_dir_all(at).unwrap();
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0711"),
                "tmpfs",
            ])
            .arg(at)
            .status()
            .unwrap();
        assert!(status.success(), "mount tmpfs on {}", at.display());
        SmallDisk(at.to_path_buf())
    }

    fn grow(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_defers_with_452_and_loses_and_duplicates_nothing() {
    if skip_unless_root() {
        return;
    }
    let (uid, _) = ensure_mail_user("pfull");
    let scratch = tempfile::tempdir().unwrap();
    let disk = SmallDisk::mount(&scratch.path().join("mail"), "64k");
    let d = daemon(&[
        "O LocalMailbox=mbox",
        &format!("O MailboxDirectory={}", disk.0.display()),
    ]);
    let big = "x".repeat(200) + "\r\n";
    send(&d, "pfull@mx.test", &big.repeat(1000));
    let line = d.wait_for_log("to=<pfull@mx.test>", WAIT);
    assert!(
        line.contains("dsn=4.2.2") && line.contains("stat=Deferred: Mailbox full"),
        "{line}"
    );
    // Nothing half-written for a reader: the mbox is there, empty.
    let path = disk.0.join("pfull");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    assert_eq!(std::fs::metadata(&path).unwrap().uid(), uid);
    assert!(mailq(&d).contains("<pfull@mx.test>"), "{}", mailq(&d));
    // Room again: the next attempt delivers it, once.
    disk.grow("2m");
    let messages = wait_for_mbox(&path, 1);
    assert_eq!(messages.len(), 1);
    assert!(messages[0].1.contains(&"x".repeat(200)));
    poll_until(WAIT, || mailq(&d).contains("is empty").then_some(()))
        .unwrap_or_else(|| panic!("still queued: {}", mailq(&d)));
    assert_eq!(mbox_messages(&path).len(), 1);
    drop(d);
}

#[test]
fn an_agent_killed_mid_delivery_defers_and_the_message_arrives_once() {
    if skip_unless_root() {
        return;
    }
    ensure_mail_user("pkill");
    let scratch = tempfile::tempdir().unwrap();
    // A spool directory owners may make dot-locks in (as /var/mail).
    let mail = scratch.path().join("mail");
    std::fs::create_dir(&mail).unwrap();
    std::fs::set_permissions(&mail, std::os::unix::fs::PermissionsExt::from_mode(0o1777)).unwrap();
    let d = daemon(&[
        "O LocalMailbox=mbox",
        &format!("O MailboxDirectory={}", mail.display()),
    ]);
    // Someone holds the mailbox: the agent waits for the lock...
    let lock = mail.join("pkill.lock");
    std::fs::write(&lock, b"").unwrap();
    send(&d, "pkill@mx.test", "once\r\n");
    let line = d.wait_for_log("local delivery agent (pid ", WAIT);
    let pid: i32 = line
        .split("local delivery agent (pid ")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .and_then(|p| p.parse().ok())
        .unwrap();
    // ... and is killed there.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let deferred = d.wait_for_log("to=<pkill@mx.test>", WAIT);
    assert!(
        deferred.contains("stat=Deferred: Local delivery agent ended without a report"),
        "{deferred}"
    );
    std::fs::remove_file(&lock).unwrap();
    let path = mail.join("pkill");
    let messages = wait_for_mbox(&path, 1);
    poll_until(WAIT, || mailq(&d).contains("is empty").then_some(()))
        .unwrap_or_else(|| panic!("still queued: {}", mailq(&d)));
    assert_eq!(messages.len(), 1);
    assert_eq!(mbox_messages(&path).len(), 1);
}
