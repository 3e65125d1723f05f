//! DELIVERBY (RFC 2852) end to end: a real daemon, testkit sinks as next
//! hops and as the senders' server, reports parsed with Python's `email`
//! package (`bounces/dsn.py`). By-times are a few seconds, with
//! `O MinQueueAge=1s`; a sink that answers RCPT with 451 keeps a message
//! queued so that its deadline passes.

mod common;

use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::{Duration, Instant};

use common::dsn::Dsn;
use common::WAIT;
use postern_testkit::{
    ensure_test_users, poll_until, Daemon, DaemonBuilder, ReceivedMessage, Sink, SinkBehavior,
    SmtpConversation,
};

/// `mx.example` (Postern); `example.com`, the senders, routed to
/// `senders`; `slow.test` to a sink offering DELIVERBY that answers
/// every RCPT with 451; `by.test` to a sink offering DELIVERBY;
/// `plain.test` to one that does not.
struct World {
    daemon: Daemon,
    senders: Sink,
    slow: Sink,
    with_by: Sink,
    plain: Sink,
}

const BY_EXTENSIONS: &[&str] = &["PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "DELIVERBY"];

fn world() -> World {
    ensure_test_users();
    let senders = SinkBehavior::new().start();
    let slow = SinkBehavior::new()
        .extensions(BY_EXTENSIONS)
        .rcpt_tempfail("u@slow.test", 1_000)
        .start();
    let with_by = SinkBehavior::new().extensions(BY_EXTENSIONS).start();
    let plain = SinkBehavior::new().start();
    let port = |s: &Sink| s.addr().port();
    let mailertable = format!(
        "example.com esmtp:[127.0.0.1]:{}\n\
         slow.test esmtp:[127.0.0.1]:{}\n\
         by.test esmtp:[127.0.0.1]:{}\n\
         plain.test esmtp:[127.0.0.1]:{}\n",
        port(&senders),
        port(&slow),
        port(&with_by),
        port(&plain),
    );
    let daemon = DaemonBuilder::new(postern_testkit::binary("posternd"))
        .table("mailertable", mailertable)
        .table("local-host-names", "mx.example\n")
        .config_line("Dj mx.example")
        .config_line("O LogLevel=14")
        .config_line("O MinQueueAge=1s")
        .start();
    World {
        daemon,
        senders,
        slow,
        with_by,
        plain,
    }
}

/// One SMTP transaction from `sender@example.com` with the MAIL
/// parameters `params`; returns the queue ID.
fn send(addr: SocketAddr, params: &str, rcpt: &str, subject: &str) -> String {
    let mut c = SmtpConversation::connect(addr);
    c.read_reply();
    c.cmd("EHLO client.example", "250");
    c.cmd(&format!("MAIL FROM:<sender@example.com> {params}"), "250");
    c.cmd(&format!("RCPT TO:<{rcpt}>"), "250");
    c.cmd("DATA", "354");
    c.send_raw(
        format!(
            "From: sender@example.com\r\nTo: {rcpt}\r\nSubject: {subject}\r\n\
             Message-Id: <{subject}@client.example>\r\n\r\nThe body of {subject}.\r\n.\r\n"
        )
        .as_bytes(),
    );
    let reply = c.read_reply();
    assert!(reply.starts_with("250 2.0.0 "), "{reply}");
    c.cmd("QUIT", "221");
    reply[10..24].to_string()
}

/// The report logged for message `id` (`<id>: <report id>: <what>…`):
/// the report's queue ID and the text after it.
fn report_line(daemon: &Daemon, id: &str, what: &str) -> (String, String) {
    let found = poll_until(WAIT, || {
        daemon
            .log_lines()
            .into_iter()
            .find(|l| l.contains(&format!("{id}: ")) && l.contains(&format!(": {what}")))
    })
    .unwrap_or_else(|| panic!("no {what:?} for {id}:\n{}", daemon.log_lines().join("\n")));
    let rest = found.split_once(&format!("{id}: ")).unwrap().1;
    let (report_id, text) = rest.split_once(": ").unwrap();
    (report_id.to_string(), text.to_string())
}

/// The `n`th message (from 0) that reached `sink`, which must be a report.
fn nth_report(sink: &Sink, n: usize) -> ReceivedMessage {
    let m = sink.wait_for_messages(n + 1, WAIT)[n].clone();
    assert_eq!(m.mail_from, "", "a report comes from <>");
    m
}

fn mailq(daemon: &Daemon) -> String {
    let out = Command::new(postern_testkit::binary("postern"))
        .arg0("mailq")
        .env("POSTERN_CONFIG", daemon.config_path())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The by-time a MAIL command carried (`BY=<n>;<mode>`).
fn by_param(m: &ReceivedMessage) -> (i64, String) {
    let by = m
        .mail_params
        .split(' ')
        .find_map(|p| p.strip_prefix("BY="))
        .unwrap_or_else(|| panic!("no BY= in {:?}", m.mail_params));
    let (n, mode) = by.split_once(';').unwrap();
    (n.parse().unwrap(), mode.to_string())
}

#[test]
fn return_mode_returns_the_message_at_its_deadline_between_retries() {
    let w = world();
    let sent = Instant::now();
    // Retries after 1, 2, 4, 8 s (MinQueueAge doubling): attempts at 0, 1,
    // 3, 7 and 15 s. The deadline at 8 s falls between two of them.
    let id = send(w.daemon.smtp_addr(), "BY=8;R", "u@slow.test", "late");
    let (report_id, text) = report_line(&w.daemon, &id, "sender notify:");
    assert_eq!(text, "sender notify: delivery time expired 8s");
    let m = nth_report(&w.senders, 0);
    let took = sent.elapsed();
    assert!(
        took < Duration::from_secs(14),
        "returned after {took:?}: the deadline was not acted on before the next retry"
    );
    assert!(took >= Duration::from_secs(7), "returned early: {took:?}");
    let d = Dsn::parse(&m.data);
    assert_eq!(
        d.get("top.Subject"),
        "Returned mail: see transcript for details"
    );
    assert_eq!(d.get("top.Auto-Submitted"), "auto-generated (failure)");
    assert!(d
        .get("top.Message-Id")
        .ends_with(&format!(".{report_id}@mx.example>")));
    // RFC 2852 §5: the deadline, 8 seconds after the arrival.
    assert_ne!(d.get("msg.Deliver-By-Date"), d.get("msg.Arrival-Date"));
    assert_eq!(d.get("rcpts"), "1");
    assert_eq!(d.get("rcpt.0.Final-Recipient"), "RFC822; u@slow.test");
    assert_eq!(d.get("rcpt.0.Action"), "failed");
    assert_eq!(d.get("rcpt.0.Status"), "5.4.7");
    let human = d.get("human");
    for line in [
        "   ----- The following addresses had permanent fatal errors -----\n<u@slow.test>\n",
        "<u@slow.test>... Deferred: 451 4.3.0 try later\n",
        "Delivery time (8s) expired\nMessage will be deleted from queue\n",
    ] {
        assert!(human.contains(line), "{line:?} not in\n{human}");
    }
    assert_eq!(d.get("returned.Subject"), "late");
    // The message left the queue; no attempt was made after the deadline.
    w.daemon.wait_for_log(&format!("{id}: done;"), WAIT);
    assert!(w.slow.rcpt_attempts("u@slow.test") <= 4);
}

#[test]
fn notify_mode_sends_one_delay_notice_and_keeps_the_message() {
    let w = world();
    let id = send(w.daemon.smtp_addr(), "BY=2;N", "u@slow.test", "slow");
    let (_, text) = report_line(&w.daemon, &id, "sender notify:");
    assert_eq!(text, "sender notify: Warning: Delivery time (2s) exceeded");
    let d = Dsn::parse(&nth_report(&w.senders, 0).data);
    assert_eq!(d.get("top.Subject"), "Warning: Delivery time (2s) exceeded");
    assert_eq!(
        d.get("top.Auto-Submitted"),
        "auto-generated (warning-timeout)"
    );
    assert_eq!(d.get("rcpt.0.Action"), "delayed");
    assert!(d.get("rcpt.0.Status").starts_with("4."));
    assert!(d.get("rcpt.0.Will-Retry-Until").contains("20"));
    let human = d.get("human");
    for line in [
        "THIS IS A WARNING MESSAGE ONLY",
        "   ----- The following addresses had transient non-fatal errors -----\n<u@slow.test>\n",
        "Warning: Delivery time (2s) exceeded\nWill keep trying until message is 5 days old\n",
    ] {
        assert!(human.contains(line), "{line:?} not in\n{human}");
    }
    // Still queued, and still tried: one more attempt brings no second
    // notice.
    assert!(mailq(&w.daemon).contains(&id), "{}", mailq(&w.daemon));
    let tried = w.slow.rcpt_attempts("u@slow.test");
    poll_until(WAIT, || {
        (w.slow.rcpt_attempts("u@slow.test") > tried + 1).then_some(())
    })
    .expect("delivery goes on after the notice");
    assert_eq!(w.senders.messages().len(), 1, "one notice only");
    assert!(mailq(&w.daemon).contains(&id));
}

#[test]
fn a_next_hop_with_deliverby_gets_the_time_left() {
    let w = world();
    send(w.daemon.smtp_addr(), "BY=600;R", "a@by.test", "r");
    send(w.daemon.smtp_addr(), "BY=120;NT", "b@by.test", "nt");
    let got = w.with_by.wait_for_messages(2, WAIT);
    let by_rcpt = |rcpt: &str| {
        got.iter()
            .find(|m| m.rcpt_to == [rcpt])
            .map(by_param)
            .unwrap()
    };
    let (left, mode) = by_rcpt("a@by.test");
    assert_eq!(mode, "R");
    assert!((1..=600).contains(&left) && left > 590, "BY={left};R");
    let (left, mode) = by_rcpt("b@by.test");
    assert_eq!(mode, "NT");
    assert!((110..=120).contains(&left), "BY={left};NT");
}

#[test]
fn a_next_hop_without_deliverby_fails_return_mode_and_relays_notify_mode() {
    let w = world();
    let failed = send(w.daemon.smtp_addr(), "BY=600;R", "x@plain.test", "refused");
    let relayed = send(w.daemon.smtp_addr(), "BY=600;N", "y@plain.test", "relayed");
    // N: relayed as it is, without BY=.
    let m = w.plain.wait_for_messages(1, WAIT)[0].clone();
    assert_eq!(m.rcpt_to, ["y@plain.test"]);
    assert!(!m.mail_params.contains("BY="), "{:?}", m.mail_params);
    w.daemon.wait_for_log(&format!("{relayed}: done;"), WAIT);
    // R: the recipient fails with sendmail's words for RFC 2852 §4.1.4.
    let line = w
        .daemon
        .wait_for_log(&format!("{failed}: to=<x@plain.test>"), WAIT);
    assert!(
        line.contains("dsn=5.4.7, reply=554 5.4.7 Server does not support Deliver By,"),
        "{line}"
    );
    let d = Dsn::parse(&nth_report(&w.senders, 0).data);
    assert_eq!(d.get("rcpt.0.Final-Recipient"), "RFC822; x@plain.test");
    assert_eq!(d.get("rcpt.0.Action"), "failed");
    assert_eq!(d.get("rcpt.0.Status"), "5.4.7");
    assert!(
        d.get("human")
            .contains("Server does not support Deliver By"),
        "{}",
        d.get("human")
    );
    assert_eq!(w.plain.messages().len(), 1, "nothing was sent for R");
    w.daemon.wait_for_log(&format!("{failed}: done;"), WAIT);
}
