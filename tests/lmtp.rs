//! LMTP (RFC 2033) into a real Dovecot (Debian's `dovecot-lmtpd`),
//! started by each test with its own configuration under a temporary
//! directory (`postern_testkit::Dovecot`): a mailertable `lmtp:unix:`
//! route and an `lmtp:[127.0.0.1]:port` one, `O LocalDelivery=lmtp:…`
//! for local users with one of two recipients over quota (one delivered,
//! one deferred, then delivered by a queue run once the quota is raised),
//! and a user Dovecot does not know (refused, bounced with 5.1.1). What
//! was delivered is read back with Dovecot's own `doveadm fetch`.
//!
//! Dovecot is started as root (it changes to the mail user itself), as
//! CI runs the suite; as an ordinary user these tests say so and stop.

mod common;

use std::os::unix::process::CommandExt;
use std::process::Command;

use common::WAIT;
use postern_testkit::{
    ensure_system_user, ensure_test_users, poll_until, running_as_root, smtp_send, Daemon,
    DaemonBuilder, Dovecot, Sink,
};

/// Local users of test 3: system users (Postern accepts only users of
/// the password database for its local domains) and Dovecot users.
const LOCAL_A: &str = "postlmtpa";
const LOCAL_B: &str = "postlmtpb";

fn as_root(test: &str) -> bool {
    if !running_as_root() {
        eprintln!("{test}: Dovecot must be started as root; skipped as an ordinary user");
    }
    running_as_root()
}

struct World {
    dovecot: Dovecot,
    daemon: Daemon,
    /// Where bounces for `origin.test` go.
    origin: Sink,
}

impl World {
    /// Dovecot for `users`, and a daemon with `mailertable` (plus the
    /// senders' domain) and `extra` lines.
    fn start(
        users: &[(&str, Option<&str>)],
        mailertable: impl Fn(&Dovecot) -> String,
        extra: impl Fn(&Dovecot) -> Vec<String>,
    ) -> World {
        ensure_test_users();
        let dovecot = Dovecot::start(users);
        let origin = Sink::start();
        let table = format!(
            "origin.test esmtp:[127.0.0.1]:{}\n{}",
            origin.addr().port(),
            mailertable(&dovecot)
        );
        let mut builder = DaemonBuilder::new(postern_testkit::binary("posternd"))
            .table("mailertable", table)
            .config_line("O LogLevel=14")
            .config_line("O MinQueueAge=1h");
        for line in extra(&dovecot) {
            builder = builder.config_line(&line);
        }
        World {
            daemon: builder.start(),
            dovecot,
            origin,
        }
    }

    fn send(&self, rcpts: &[&str], data: &str) {
        smtp_send(
            self.daemon.smtp_addr(),
            "sender@origin.test",
            rcpts,
            data.as_bytes(),
        )
        .unwrap_or_else(|e| panic!("sending to {rcpts:?}: {e}"));
    }

    /// The `to=` line for `rcpt` logged after `mark`.
    fn to_line(&self, mark: usize, rcpt: &str) -> String {
        self.daemon
            .wait_for_log_since(mark, &format!("to=<{rcpt}>"), WAIT)
    }

    /// A command under one of `postern`'s names, against the daemon.
    fn tool(&self, name: &str) -> String {
        let out = Command::new(postern_testkit::binary("postern"))
            .arg0(name)
            .env("POSTERN_CONFIG", self.daemon.config_path())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {name}: {e}"));
        assert!(out.status.success(), "{name}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("daemon log:\n{}", self.daemon.log_lines().join("\n"));
            eprintln!("dovecot log:\n{}", self.dovecot.log());
        }
    }
}

/// The message's header section (each line with its LF) and body, split
/// at the first empty line.
fn split(message: &str) -> (String, &str) {
    let (header, body) = message
        .split_once("\n\n")
        .unwrap_or_else(|| panic!("no body in {message:?}"));
    (format!("{header}\n"), body)
}

const BODY: &str = "Hello over LMTP.\n..a line that began with a dot\n\nlast line\n";

fn message(subject: &str, body: &str) -> String {
    format!(
        "From: Sender <sender@origin.test>\r\nTo: someone\r\nSubject: {subject}\r\n\r\n{}",
        body.replace('\n', "\r\n")
    )
}

#[test]
fn a_mailertable_unix_route_delivers_into_dovecot() {
    if !as_root("a_mailertable_unix_route_delivers_into_dovecot") {
        return;
    }
    let w = World::start(
        &[("alice", None)],
        |d| format!("dovecot.test lmtp:unix:{}\n", d.socket().display()),
        |_| Vec::new(),
    );
    let mark = w.daemon.log_mark();
    w.send(&["alice@dovecot.test"], &message("over a socket", BODY));
    let got = w.dovecot.wait_for_messages("alice", 1, WAIT);
    assert_eq!(got.len(), 1);
    let (header, body) = split(&got[0]);
    // The body exactly as sent (dot-stuffing undone by Dovecot).
    assert_eq!(body, BODY);
    assert!(
        header.starts_with("Return-Path: <sender@origin.test>\n"),
        "{header}"
    );
    assert!(header.contains("\nSubject: over a socket\n"), "{header}");
    assert!(
        header.contains("\nFrom: Sender <sender@origin.test>\n"),
        "{header}"
    );
    // Postern's Received: is there, under Dovecot's.
    assert!(header.contains("by mx.test"), "{header}");
    assert!(header.contains("with LMTP"), "{header}");
    let line = w.to_line(mark, "alice@dovecot.test");
    let socket = w.dovecot.socket();
    assert!(
        line.contains(", mailer=lmtp, pri=")
            && line.contains(&format!(
                ", relay={}, dsn=2.0.0, stat=Sent (<alice@dovecot.test> ",
                socket.display()
            )),
        "{line}"
    );
    assert!(line.ends_with(" Saved)"), "{line}");
}

#[test]
fn a_tcp_route_delivers_into_dovecot() {
    if !as_root("a_tcp_route_delivers_into_dovecot") {
        return;
    }
    let w = World::start(
        &[("alice", None), ("bob", None)],
        |d| format!("tcp.test lmtp:[127.0.0.1]:{}\n", d.addr().port()),
        |_| Vec::new(),
    );
    let mark = w.daemon.log_mark();
    w.send(
        &["alice@tcp.test", "bob@tcp.test"],
        &message("over TCP", BODY),
    );
    for user in ["alice", "bob"] {
        let got = w.dovecot.wait_for_messages(user, 1, WAIT);
        let (header, body) = split(&got[0]);
        assert_eq!(body, BODY);
        assert!(header.contains("\nSubject: over TCP\n"), "{header}");
        let line = w.to_line(mark, &format!("{user}@tcp.test"));
        assert!(
            line.contains(", mailer=lmtp, ")
                && line.contains(", relay=[127.0.0.1] [127.0.0.1], dsn=2.0.0, stat=Sent ("),
            "{line}"
        );
    }
    // One transaction for both: Dovecot saved bob's copy as the second
    // recipient (`:R2`) of the session that saved alice's.
    let log = w.dovecot.log();
    let session = |user: &str| {
        log.lines()
            .find(|l| l.contains(&format!("lmtp({user})<")) && l.contains("saved mail to INBOX"))
            .and_then(|l| l.split('<').nth(2))
            .and_then(|s| s.split(['>', ':']).next())
            .unwrap_or_else(|| panic!("no saved mail for {user} in {log}"))
            .to_string()
    };
    assert_eq!(session("alice"), session("bob"), "{log}");
    assert!(
        log.contains(&format!("<{}:R2>: Info:", session("bob"))),
        "{log}"
    );
}

#[test]
fn local_users_over_lmtp_one_delivered_one_over_quota_deferred_then_delivered() {
    if !as_root("local_users_over_lmtp_one_delivered_one_over_quota_deferred_then_delivered") {
        return;
    }
    ensure_system_user(LOCAL_A);
    ensure_system_user(LOCAL_B);
    // B's quota (1 KiB) is smaller than the message.
    let users = [(LOCAL_A, None), (LOCAL_B, Some("1K"))];
    let mut w = World::start(
        &users,
        |_| String::new(),
        |d| {
            vec![format!(
                "define(`confLOCAL_DELIVERY', `lmtp:unix:{}')dnl",
                d.socket().display()
            )]
        },
    );
    // 3 KiB in lines of 70 octets (a longer line would be folded on the way).
    let big = format!("{}\n", "0123456789".repeat(7)).repeat(44);
    let mark = w.daemon.log_mark();
    let a = format!("{LOCAL_A}@mx.test");
    let b = format!("{LOCAL_B}@localhost");
    w.send(&[&a, &b], &message("quota", &big));

    let got = w.dovecot.wait_for_messages(LOCAL_A, 1, WAIT);
    let (header, body) = split(&got[0]);
    assert_eq!(body, big);
    assert!(header.contains("\nSubject: quota\n"), "{header}");
    let line = w.to_line(mark, &a);
    assert!(
        line.contains(", mailer=lmtp, ") && line.contains(", stat=Sent (<postlmtpa@mx.test> "),
        "{line}"
    );
    // B: Dovecot's own answer, after DATA, for B alone; as user@$j.
    let line = w.to_line(mark, &b);
    assert!(
        line.contains(", mailer=lmtp, ")
            && line.contains(", dsn=4.2.2, ")
            && line.contains(
                "stat=Deferred: 452 4.2.2 <postlmtpb@mx.test> Quota exceeded (mailbox for user is full)"
            ),
        "{line}"
    );
    assert!(w.dovecot.messages(LOCAL_B).is_empty());
    let listing = w.tool("mailq");
    assert!(listing.contains(&format!("<{b}>")), "{listing}");
    assert!(listing.contains("Quota exceeded"), "{listing}");
    assert!(!listing.contains(&format!("<{a}>")), "{listing}");

    // The quota is raised; a queue run delivers B's copy, once.
    w.dovecot.set_quota(LOCAL_B, None);
    let mark = w.daemon.log_mark();
    w.tool("runq");
    let got = w.dovecot.wait_for_messages(LOCAL_B, 1, WAIT);
    assert_eq!(split(&got[0]).1, big);
    let line = w.to_line(mark, &b);
    assert!(line.contains(", stat=Sent (<postlmtpb@mx.test> "), "{line}");
    let empty = poll_until(WAIT, || {
        w.tool("mailq").contains("Total requests: 0").then_some(())
    });
    assert!(empty.is_some(), "{}", w.tool("mailq"));
    assert_eq!(w.dovecot.messages(LOCAL_A).len(), 1, "A got a second copy");
    assert!(w.origin.messages().is_empty(), "a bounce was sent");
}

#[test]
fn a_user_dovecot_does_not_know_is_bounced_with_5_1_1() {
    if !as_root("a_user_dovecot_does_not_know_is_bounced_with_5_1_1") {
        return;
    }
    let w = World::start(
        &[("alice", None)],
        |d| format!("dovecot.test lmtp:unix:{}\n", d.socket().display()),
        |_| Vec::new(),
    );
    let mark = w.daemon.log_mark();
    w.send(
        &["alice@dovecot.test", "nobody@dovecot.test"],
        &message("one known", BODY),
    );
    w.dovecot.wait_for_messages("alice", 1, WAIT);
    let line = w.to_line(mark, "nobody@dovecot.test");
    assert!(
        line.contains(", mailer=lmtp, ")
            && line.contains(", dsn=5.1.1, reply=550 5.1.1 <nobody@dovecot.test> User doesn't exist: nobody@dovecot.test, stat=User unknown"),
        "{line}"
    );
    // The sender is told, with Dovecot's reply.
    let bounce = w.origin.wait_for_messages(1, WAIT);
    let text = String::from_utf8_lossy(&bounce[0].data);
    assert_eq!(bounce[0].rcpt_to, ["sender@origin.test"]);
    assert!(text.contains("Status: 5.1.1"), "{text}");
    assert!(
        text.contains("Final-Recipient: RFC822; nobody@dovecot.test"),
        "{text}"
    );
    assert!(text.contains("User doesn't exist"), "{text}");
}
