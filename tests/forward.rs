//! `~/.forward`, read by the local delivery agent as the user: forwarding
//! with a kept copy (`\user`), a program run as the user, an unsafe
//! `.forward` ignored, and a loop of `.forward`s returned to the sender.
//! Real users made by the test; root only, as CI runs.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use common::WAIT;
use postern_testkit::{
    ensure_mail_user, ensure_test_users, poll_until, running_as_root, smtp_send, wait_for_maildir,
    Daemon, DaemonBuilder, Sink,
};

fn daemon(sink: &Sink) -> Daemon {
    ensure_test_users();
    DaemonBuilder::new(postern_testkit::binary("posternd"))
        .table(
            "mailertable",
            format!("sink.test esmtp:[127.0.0.1]:{}\n", sink.addr().port()),
        )
        .table("local-host-names", "mx.test\n")
        .table("aliases", "postmaster: root\nMAILER-DAEMON: postmaster\n")
        .config_line("O LogLevel=9")
        .config_line("O MinQueueAge=1s")
        .start()
}

/// `user` with `text` as its `.forward` (mode `mode`), owned by the user.
fn user_with_forward(user: &str, text: &str, mode: u32) -> std::path::PathBuf {
    let (uid, home) = ensure_mail_user(user);
    let path = home.join(".forward");
    std::fs::write(&path, text).unwrap();
    std::os::unix::fs::chown(&path, Some(uid), None).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o755)).unwrap();
    home
}

fn send(d: &Daemon, to: &str) {
    smtp_send(
        d.smtp_addr(),
        "sender@sink.test",
        &[to],
        format!("Subject: for {to}\r\n\r\nhello\r\n").as_bytes(),
    )
    .unwrap();
}

fn skip_unless_root() -> bool {
    if !running_as_root() {
        eprintln!(
            "skipped: reading another user's .forward as that user takes root (CI runs as root)"
        );
        return true;
    }
    false
}

#[test]
fn forwarded_on_with_a_copy_kept() {
    if skip_unless_root() {
        return;
    }
    let sink = Sink::start();
    let d = daemon(&sink);
    user_with_forward("pfwdcopy", "elsewhere@sink.test, \\pfwdcopy\n", 0o644);
    send(&d, "pfwdcopy@mx.test");
    let relayed = sink.wait_for_messages(1, WAIT);
    assert_eq!(relayed[0].rcpt_to, ["elsewhere@sink.test"]);
    assert_eq!(relayed[0].mail_from, "sender@sink.test");
    let kept = wait_for_maildir(&d.mail_dir().join("pfwdcopy/Maildir"), 1, WAIT);
    assert!(String::from_utf8_lossy(&kept[0]).contains("Subject: for pfwdcopy@mx.test"));
    d.wait_for_log(
        "<pfwdcopy@mx.test>... forwarded to elsewhere@sink.test",
        WAIT,
    );
}

#[test]
fn a_program_in_a_forward_runs_as_the_user() {
    if skip_unless_root() {
        return;
    }
    let sink = Sink::start();
    let d = daemon(&sink);
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("forward-program");
    let _ = std::fs::remove_dir_all(&out_dir);
    std::fs::create_dir_all(&out_dir).unwrap();
    std::fs::set_permissions(&out_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = out_dir.join("got");
    user_with_forward(
        "pfwdprog",
        &format!("\"|cat > {}\"\n", out.display()),
        0o600,
    );
    send(&d, "pfwdprog@mx.test");
    let text = poll_until(WAIT, || {
        std::fs::read_to_string(&out)
            .ok()
            .filter(|t| t.contains("hello"))
    })
    .expect("the program ran");
    assert!(text.contains("Subject: for pfwdprog@mx.test\n"));
    let uid = nix::unistd::User::from_name("pfwdprog")
        .unwrap()
        .unwrap()
        .uid
        .as_raw();
    assert_eq!(std::fs::metadata(&out).unwrap().uid(), uid);
    // sendmail's log line for it: the program quoted, the user in control.
    let line = d.wait_for_log("to=\"|cat > ", WAIT);
    assert!(
        line.contains(&format!("ctladdr=<pfwdprog@mx.test> ({uid}/"))
            && line.contains("mailer=prog"),
        "{line}"
    );
    // Not in the mailbox: the .forward sent it elsewhere.
    assert!(
        !d.mail_dir().join("pfwdprog/Maildir/new").exists()
            || std::fs::read_dir(d.mail_dir().join("pfwdprog/Maildir/new"))
                .unwrap()
                .count()
                == 0
    );
}

#[test]
fn an_unsafe_forward_is_ignored_and_the_mail_kept() {
    if skip_unless_root() {
        return;
    }
    let sink = Sink::start();
    let d = daemon(&sink);
    user_with_forward("pfwdunsafe", "thief@sink.test\n", 0o666);
    send(&d, "pfwdunsafe@mx.test");
    wait_for_maildir(&d.mail_dir().join("pfwdunsafe/Maildir"), 1, WAIT);
    d.wait_for_log("to=<pfwdunsafe@mx.test>", WAIT);
    assert!(
        sink.messages().is_empty(),
        "an unsafe .forward was followed"
    );
}

#[test]
fn a_loop_of_forwards_goes_back_to_the_sender() {
    if skip_unless_root() {
        return;
    }
    let sink = Sink::start();
    let d = daemon(&sink);
    user_with_forward("pfwdloopa", "pfwdloopb\n", 0o644);
    user_with_forward("pfwdloopb", "pfwdloopa@mx.test\n", 0o644);
    send(&d, "pfwdloopa@mx.test");
    // The bounce, to the sender at the sink.
    let bounce = sink.wait_for_messages(1, WAIT);
    assert_eq!(bounce[0].mail_from, "");
    assert_eq!(bounce[0].rcpt_to, ["sender@sink.test"]);
    let text = String::from_utf8_lossy(&bounce[0].data);
    assert!(text.contains("aliasing/forwarding loop broken"), "{text}");
}

#[test]
fn sendmail_v_says_where_a_forward_sent_it() {
    if skip_unless_root() {
        return;
    }
    let sink = Sink::start();
    let d = daemon(&sink);
    user_with_forward("pfwdverb", "there@sink.test\n", 0o644);
    let out = common::sendmail(
        &d,
        &["-v", "-f", "sender@sink.test", "pfwdverb"],
        b"Subject: v\n\nhi\n",
    );
    assert!(
        out.lines()
            .any(|l| l == "pfwdverb@mx.test... forwarded to there@sink.test"),
        "{out}"
    );
    assert_eq!(
        sink.wait_for_messages(1, WAIT)[0].rcpt_to,
        ["there@sink.test"]
    );
}
