//! Aliases against the real daemon: nesting and an include delivered to
//! the right Maildirs, unknown names refused at RCPT while alias names are
//! accepted, a loop bounced with sendmail's reply, the start-up warning,
//! and a changed aliases file used without a restart.

mod common;

use common::WAIT;
use postern_testkit::{ensure_test_users, smtp_send, wait_for_maildir, DaemonBuilder, Sink};

fn daemon(sink: &Sink, aliases: &str) -> postern_testkit::Daemon {
    ensure_test_users();
    DaemonBuilder::new(postern_testkit::binary("posternd"))
        .table(
            "mailertable",
            format!("sink.test esmtp:[127.0.0.1]:{}\n", sink.addr().port()),
        )
        .table("local-host-names", "mx.test\n")
        .table("aliases", aliases)
        .config_line("O LogLevel=9")
        .config_line("O MinQueueAge=1s")
        .start()
}

/// An include file where sendmail's defaults allow one: not under /tmp
/// (world-writable), in a directory only its owner may write; removed
/// with the directory.
fn include_file(name: &str, text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = postern_testkit::safe_tempdir();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

#[test]
fn nested_aliases_and_an_include_reach_the_users_maildirs() {
    let sink = Sink::start();
    let (_dir, list) = include_file("team", "# the team\npostern, remote@sink.test\n");
    let d = daemon(
        &sink,
        &format!(
            "postmaster: root\nMAILER-DAEMON: postmaster\nstaff: admins, team\nadmins: root\nteam: :include:{}\nloop1: loop2\nloop2: loop1\n",
            list.display()
        ),
    );
    let reply = smtp_send(
        d.smtp_addr(),
        "a@sink.test",
        &["staff@mx.test"],
        b"Subject: to staff\r\n\r\nhello\r\n",
    )
    .unwrap();
    assert!(reply.starts_with("250 2.0.0 "), "{reply}");
    let root = wait_for_maildir(&d.mail_dir().join("root/Maildir"), 1, WAIT);
    assert!(String::from_utf8_lossy(&root[0]).contains("Subject: to staff"));
    wait_for_maildir(&d.mail_dir().join("postern/Maildir"), 1, WAIT);
    let relayed = sink.wait_for_messages(1, WAIT);
    assert!(String::from_utf8_lossy(&relayed[0].data).contains("Subject: to staff"));

    // Unknown names are still refused at RCPT; alias names are accepted.
    let refused = smtp_send(
        d.smtp_addr(),
        "a@sink.test",
        &["nobody-here@mx.test"],
        b"x\r\n",
    );
    assert_eq!(
        refused.unwrap_err().to_string().trim_end(),
        "RCPT TO:<nobody-here@mx.test>: 550 5.1.1 <nobody-here@mx.test>... User unknown"
    );

    // A loop: accepted, then returned to the sender with sendmail's reply.
    let reply = smtp_send(
        d.smtp_addr(),
        "a@sink.test",
        &["loop1@mx.test"],
        b"Subject: loop\r\n\r\nround\r\n",
    )
    .unwrap();
    assert!(reply.starts_with("250 2.0.0 "), "{reply}");
    let bounces = sink.wait_for_messages(2, WAIT);
    let bounce = String::from_utf8_lossy(&bounces[1].data).to_string();
    assert!(
        bounce.contains("aliasing/forwarding loop broken (11 aliases deep; 10 max)"),
        "{bounce}"
    );
    assert!(
        bounce.contains("Final-Recipient: RFC822; loop1@mx.test"),
        "{bounce}"
    );
}

#[test]
fn missing_required_aliases_are_logged_and_changes_need_no_restart() {
    let sink = Sink::start();
    let d = daemon(&sink, "root: postern\n");
    let path = d.config_path().with_file_name("aliases");
    d.wait_for_log(
        &format!("WARNING: {}: no alias for postmaster", path.display()),
        WAIT,
    );
    d.wait_for_log(
        &format!("WARNING: {}: no alias for MAILER-DAEMON", path.display()),
        WAIT,
    );
    let refused = smtp_send(
        d.smtp_addr(),
        "a@sink.test",
        &["helpdesk@mx.test"],
        b"x\r\n",
    );
    assert!(refused.is_err());
    std::fs::write(&path, "root: postern\nhelpdesk: root\n").unwrap();
    let reply = smtp_send(
        d.smtp_addr(),
        "a@sink.test",
        &["helpdesk@mx.test"],
        b"Subject: help\r\n\r\nplease\r\n",
    )
    .unwrap();
    assert!(reply.starts_with("250 2.0.0 "), "{reply}");
    // helpdesk -> root -> postern.
    let got = wait_for_maildir(&d.mail_dir().join("postern/Maildir"), 1, WAIT);
    assert!(String::from_utf8_lossy(&got[0]).contains("Subject: help"));
}

/// A directory anyone may write in (the alias's controlling user,
/// `daemon` for a root-owned aliases file, writes there).
fn open_dir(name: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("aliases-targets")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    dir
}

#[test]
fn file_and_program_targets_run_as_the_controlling_user() {
    use std::os::unix::fs::MetadataExt;
    if !postern_testkit::running_as_root() {
        eprintln!("skipped: running as another user takes root (CI runs as root)");
        return;
    }
    let sink = Sink::start();
    let dir = open_dir("file-and-program");
    let archive = dir.join("archive");
    let out = dir.join("out");
    let d = daemon(
        &sink,
        &format!(
            "postmaster: root\nMAILER-DAEMON: postmaster\narchive: {}\nprog: \"|cat > {}\"\nfails: \"|echo no such list >&2; exit 1\"\n",
            archive.display(),
            out.display()
        ),
    );
    for to in ["archive@mx.test", "prog@mx.test", "fails@mx.test"] {
        smtp_send(
            d.smtp_addr(),
            "a@sink.test",
            &[to],
            format!("Subject: to {to}\r\n\r\nFrom the list\r\n").as_bytes(),
        )
        .unwrap();
    }
    // The aliases file is root's: its targets run as DefaultUser, daemon.
    let daemon_uid = postern_testkit::uid_of("daemon");
    let text = postern_testkit::poll_until(WAIT, || {
        std::fs::read_to_string(&archive)
            .ok()
            .filter(|t| t.ends_with("\n\n"))
    })
    .expect("the archive file");
    assert!(text.starts_with("From a@sink.test "), "{text}");
    assert!(text.contains("Subject: to archive@mx.test\n"), "{text}");
    assert!(text.contains("\n>From the list\n"), "{text}");
    assert_eq!(std::fs::metadata(&archive).unwrap().uid(), daemon_uid);
    let piped = postern_testkit::poll_until(WAIT, || {
        std::fs::read_to_string(&out)
            .ok()
            .filter(|t| t.contains("From the list"))
    })
    .expect("the program's output");
    assert!(piped.contains("Subject: to prog@mx.test\n"), "{piped}");
    assert!(
        piped.contains("\nFrom the list\n"),
        "no escaping for a program: {piped}"
    );
    assert_eq!(std::fs::metadata(&out).unwrap().uid(), daemon_uid);
    // A program that fails: its words in the log line, and a bounce.
    let line = d.wait_for_log("to=\"|echo no such list", WAIT);
    assert!(
        line.contains(&format!("ctladdr=<fails@mx.test> ({daemon_uid}/"))
            && line.contains("mailer=prog")
            && line.contains("dsn=5.3.0"),
        "{line}"
    );
    let bounce = sink.wait_for_messages(1, WAIT);
    let text = String::from_utf8_lossy(&bounce[0].data);
    assert!(
        text.contains("unknown mailer error 1 (no such list)"),
        "{text}"
    );
}

#[test]
fn sendmail_v_shows_the_expansion() {
    if !postern_testkit::running_as_root() {
        eprintln!("skipped: sendmail -v's delivery is root's here (CI runs as root)");
        return;
    }
    let sink = Sink::start();
    let d = daemon(
        &sink,
        "postmaster: root\nMAILER-DAEMON: postmaster\nstaff: root, remote@sink.test\n",
    );
    let out = common::sendmail(
        &d,
        &["-v", "-f", "a@sink.test", "staff"],
        b"Subject: verbose\n\nhello\n",
    );
    assert!(
        out.lines()
            .any(|l| l == "staff@mx.test... aliased to root@mx.test, remote@sink.test"),
        "{out}"
    );
    assert!(out.contains("root@mx.test... Sent"), "{out}");
    assert!(out.contains("remote@sink.test... Sent ("), "{out}");
}

#[test]
fn a_lists_errors_go_to_its_owner_not_the_sender() {
    let sink = postern_testkit::SinkBehavior::new()
        .rcpt_reply("bad@sink.test", "550 5.1.1 <bad@sink.test>: unknown")
        .start();
    let d = daemon(
        &sink,
        "postmaster: root\nMAILER-DAEMON: postmaster\nlist: good@sink.test, bad@sink.test\nowner-list: root\n",
    );
    smtp_send(
        d.smtp_addr(),
        "writer@sink.test",
        &["list@mx.test"],
        b"Subject: to the list\r\n\r\nhello\r\n",
    )
    .unwrap();
    // The members get it from the list's owner, as sendmail sends it.
    let got = sink.wait_for_messages(1, WAIT);
    assert_eq!(got[0].mail_from, "owner-list@mx.test");
    assert_eq!(got[0].rcpt_to, ["good@sink.test"]);
    // The refusal goes to the owner (root's mailbox), not to the writer.
    let reports = wait_for_maildir(&d.mail_dir().join("root/Maildir"), 1, WAIT);
    let text = String::from_utf8_lossy(&reports[0]);
    assert!(
        text.contains("Final-Recipient: RFC822; list@mx.test"),
        "{text}"
    );
    assert!(text.contains("rfc822; bad@sink.test"), "{text}");
    assert!(
        text.contains("550 5.1.1 <bad@sink.test>: unknown"),
        "{text}"
    );
    assert_eq!(sink.messages().len(), 1, "the writer got a report");
}
