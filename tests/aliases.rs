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
/// (world-writable), in a directory only its owner may write.
fn include_file(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("aliases-includes");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn nested_aliases_and_an_include_reach_the_users_maildirs() {
    let sink = Sink::start();
    let list = include_file("team", "# the team\npostern, remote@sink.test\n");
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
