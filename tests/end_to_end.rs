//! Mail accepted on the socket is durably queued and delivered onward:
//! many sessions at once from a real client (Python's smtplib) to a real
//! daemon, relayed to a sink, every message exactly once and byte-identical.

mod common;

use std::collections::HashMap;
use std::process::Command;

use common::{daemon_with_sink, strip_received, WAIT};
use postern_testkit::{smtp_send, wait_for_maildir, Sink, SmtpConversation};

const SESSIONS: usize = 10;
const PER_SESSION: usize = 50;

fn message(n: usize) -> Vec<u8> {
    format!(
        "From: sender{n}@example.net\r\nTo: rcpt@sink.test\r\nSubject: message {n}\r\nDate: Thu, 3 Dec 2026 10:00:00 +0000\r\nMessage-ID: <m{n}@example.net>\r\n\r\n\
         Body of message {n}.\r\n.A line that starts with a dot\r\n..and one with two\r\n.\r\n \r\n{}\r\nend {n}\r\n",
        "x".repeat(n % 7 * 160)
    )
    .into_bytes()
}

/// Python's smtplib, ten threads, fifty messages each, files written by us.
const CLIENT: &str = r#"
import smtplib, sys, threading, os
host, port, sessions, per, folder = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
errors = []
def run(t):
    try:
        s = smtplib.SMTP(host, port, timeout=60)
        s.ehlo("client.example")
        for i in range(per):
            n = t * per + i
            with open(os.path.join(folder, str(n)), "rb") as f:
                data = f.read()
            s.sendmail("sender%d@example.net" % n, ["rcpt@sink.test"], data)
        s.quit()
    except Exception as e:
        errors.append(repr(e))
threads = [threading.Thread(target=run, args=(t,)) for t in range(sessions)]
for t in threads: t.start()
for t in threads: t.join()
if errors:
    print("\n".join(errors)); sys.exit(1)
print("sent", sessions * per)
"#;

#[test]
fn five_hundred_messages_over_ten_sessions_arrive_exactly_once() {
    let sink = Sink::start();
    let daemon = daemon_with_sink(&sink, &[]);
    let folder = tempfile::tempdir().unwrap();
    for n in 0..SESSIONS * PER_SESSION {
        std::fs::write(folder.path().join(n.to_string()), message(n)).unwrap();
    }
    let addr = daemon.smtp_addr();
    let out = Command::new("python3")
        .args([
            "-c",
            CLIENT,
            &addr.ip().to_string(),
            &addr.port().to_string(),
        ])
        .args([SESSIONS.to_string(), PER_SESSION.to_string()])
        .arg(folder.path())
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "smtplib failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );

    let received = sink.wait_for_messages(SESSIONS * PER_SESSION, WAIT * 3);
    let mut seen: HashMap<usize, usize> = HashMap::new();
    for m in &received {
        let n: usize = m
            .mail_from
            .trim_start_matches("sender")
            .trim_end_matches("@example.net")
            .parse()
            .unwrap();
        assert_eq!(
            strip_received(&m.data),
            message(n).as_slice(),
            "message {n} changed in transit"
        );
        assert_eq!(m.rcpt_to, ["rcpt@sink.test"]);
        *seen.entry(n).or_default() += 1;
    }
    assert_eq!(seen.len(), SESSIONS * PER_SESSION);
    assert!(seen.values().all(|&c| c == 1), "duplicates: {seen:?}");

    // sendmail's log lines, one per message and recipient. The sink can
    // have the last messages before the delivery client logged them.
    let counts = |log: &[String]| {
        let froms = log.iter().filter(|l| l.contains(": from=<sender")).count();
        let sent = log
            .iter()
            .filter(|l| l.contains("to=<rcpt@sink.test>") && l.contains("stat=Sent ("))
            .count();
        (froms, sent)
    };
    let all_logged = postern_testkit::poll_until(WAIT, || {
        let (froms, sent) = counts(&daemon.log_lines());
        (froms >= 500 && sent >= 500).then_some(())
    });
    let log = daemon.log_lines();
    assert!(all_logged.is_some(), "log:\n{}", log.join("\n"));
    assert_eq!(counts(&log), (500, 500), "log:\n{}", log.join("\n"));
}

#[test]
fn received_header_and_reply_follow_sendmail() {
    let sink = Sink::start();
    let daemon = daemon_with_sink(&sink, &[]);
    let mut c = SmtpConversation::connect(daemon.smtp_addr());
    let greeting = c.read_reply();
    assert!(
        greeting.starts_with("220 mx.test ESMTP Postern "),
        "{greeting}"
    );
    c.cmd("EHLO client.example", "250");
    c.cmd(
        "MAIL FROM:<a@example.net>",
        "250 2.1.0 <a@example.net>... Sender ok",
    );
    c.cmd(
        "RCPT TO:<b@sink.test>",
        "250 2.1.5 <b@sink.test>... Recipient ok",
    );
    c.cmd("DATA", "354 Enter mail");
    c.send_raw(b"Subject: hi\r\nMessage-ID:\r\n <hi.1@client.example>\r\n\r\nhello\r\n.\r\n");
    let reply = c.read_reply();
    let qid = reply
        .strip_prefix("250 2.0.0 ")
        .and_then(|r| r.trim_end().strip_suffix(" Message accepted for delivery"))
        .unwrap_or_else(|| panic!("{reply}"));
    assert_eq!(qid.len(), 14, "{qid}");
    c.cmd("QUIT", "221 2.0.0 mx.test closing connection");

    let m = &sink.wait_for_messages(1, WAIT)[0];
    let text = String::from_utf8_lossy(&m.data);
    let first_line = format!("Received: from client.example (localhost [127.0.0.1])\r\n\tby mx.test (Postern {}) with ESMTP id {qid}\r\n\tfor <b@sink.test>; ", env!("CARGO_PKG_VERSION"));
    assert!(text.starts_with(&first_line), "{text}");
    let from = daemon.wait_for_log(&format!("{qid}: from=<a@example.net>, size="), WAIT);
    assert!(
        from.contains(
            ", msgid=<hi.1@client.example>, proto=ESMTP, daemon=MTA, relay=localhost [127.0.0.1]"
        ),
        "{from}"
    );
    let to = daemon.wait_for_log(&format!("{qid}: to=<b@sink.test>, delay="), WAIT);
    assert!(
        to.contains(", mailer=esmtp, pri=")
            && to.contains(", relay=[127.0.0.1] [127.0.0.1], dsn=2.0.0, stat=Sent ("),
        "{to}"
    );
}

#[test]
fn local_domains_are_delivered_to_maildirs() {
    let sink = Sink::start();
    let daemon = daemon_with_sink(&sink, &[]);
    let reply = smtp_send(
        daemon.smtp_addr(),
        "a@example.net",
        &["Root@mx.test"],
        b"Subject: local\r\n\r\nfor root\r\n",
    )
    .unwrap();
    assert!(reply.starts_with("250 2.0.0 "), "{reply}");
    let maildir = daemon.mail_dir().join("root/Maildir");
    let messages = wait_for_maildir(&maildir, 1, WAIT);
    let text = String::from_utf8_lossy(&messages[0]);
    assert!(
        text.starts_with("Return-Path: <a@example.net>\nReceived: from "),
        "{text}"
    );
    assert!(text.ends_with("Subject: local\n\nfor root\n"), "{text}");
    daemon.wait_for_log("to=<Root@mx.test>", WAIT);
}

#[test]
fn permanent_and_temporary_failures_are_logged_and_settled() {
    let sink = postern_testkit::SinkBehavior::new()
        .rcpt_reply(
            "gone@sink.test",
            "550 5.1.1 <gone@sink.test>... User unknown",
        )
        .rcpt_tempfail("later@sink.test", 1)
        .start();
    let daemon = daemon_with_sink(&sink, &[]);
    let addr = daemon.smtp_addr();
    smtp_send(
        addr,
        "a@sink.test",
        &["gone@sink.test"],
        b"Subject: 1\r\n\r\nx\r\n",
    )
    .unwrap();
    smtp_send(
        addr,
        "a@sink.test",
        &["later@sink.test"],
        b"Subject: 2\r\n\r\nx\r\n",
    )
    .unwrap();
    let failed = daemon.wait_for_log("to=<gone@sink.test>", WAIT);
    assert!(
        failed.contains("dsn=5.1.1") && failed.contains("stat=User unknown"),
        "{failed}"
    );
    let deferred = daemon.wait_for_log("to=<later@sink.test>", WAIT);
    assert!(deferred.contains("stat=Deferred: 451"), "{deferred}");
    // The retry (MinQueueAge=1s) gets through, and the sender gets the
    // bounce for the other (tests/bounces.rs checks its fields).
    let m = sink.wait_for_messages(2, WAIT);
    let mut got: Vec<(String, Vec<String>)> = m
        .iter()
        .map(|m| (m.mail_from.clone(), m.rcpt_to.clone()))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            (String::new(), vec!["a@sink.test".to_string()]),
            (
                "a@sink.test".to_string(),
                vec!["later@sink.test".to_string()]
            ),
        ]
    );
    daemon.wait_for_log(": DSN: User unknown", WAIT);
    // Every recipient settled: nothing stays in the queue.
    let queue = daemon.spool_dir().join("queue");
    postern_testkit::poll_until(WAIT, || {
        let names: Vec<String> = std::fs::read_dir(&queue)
            .ok()?
            .filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned()))
            .collect();
        (!names.iter().any(|n| n.starts_with("qf"))).then_some(())
    })
    .expect("the queue empties");
}
