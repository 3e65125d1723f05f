//! Deliveries: remote, local and failing recipients, many jobs at once, a
//! large message, a server that never speaks.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use postern_ipc::{QueueToDelivery, RecipientStatus};
use postern_testkit::{free_port, SinkBehavior};

use super::{job, maildir_files, settings_full, settings_with, status_of, Harness, BODY, WAIT};

#[test]
fn delivers_remote_local_and_failing_recipients() {
    let sink = SinkBehavior::new()
        .rcpt_reply("bad@sink.test", "550 5.1.1 <bad@sink.test>... User unknown")
        .rcpt_reply("later@sink.test", "451 4.3.0 Try again later")
        .start();
    let port = sink.addr().port();
    let closed = free_port();
    let table = format!(
        "sink.test esmtp:[127.0.0.1]:{port}\nclosed.test esmtp:[127.0.0.1]:{closed}\ndeny.test error:5.7.1:550 Not here\n"
    );
    let (dir, settings) = settings_with(&table, "");
    let mut h = Harness::start(settings);
    let rcpts = [
        "good@sink.test",
        "bad@sink.test",
        "later@sink.test",
        "Root@local.test",
        "x@closed.test",
        "y@deny.test",
        "..@local.test",
    ];
    h.deliver(job(1, &rcpts), BODY);
    let report = h.report();
    assert_eq!(
        (report.job, report.queue_id.as_str()),
        (1, "6AP8Cx00000001")
    );
    let got: Vec<&str> = report
        .recipients
        .iter()
        .map(|r| r.address.as_str())
        .collect();
    assert_eq!(got, rcpts, "every recipient once, in job order");

    let (status, reply, relay, mailer) = status_of(&report, "good@sink.test");
    assert_eq!(status, RecipientStatus::Sent, "{reply}");
    assert!(reply.starts_with("250 2."), "{reply}");
    assert_eq!(
        (relay.as_str(), mailer.as_str()),
        ("[127.0.0.1] [127.0.0.1]", "esmtp")
    );
    let (status, reply, ..) = status_of(&report, "bad@sink.test");
    assert_eq!(
        (status, reply.as_str()),
        (
            RecipientStatus::PermFail,
            "550 5.1.1 <bad@sink.test>... User unknown"
        )
    );
    let (status, reply, ..) = status_of(&report, "later@sink.test");
    assert_eq!(
        (status, reply.as_str()),
        (RecipientStatus::TempFail, "451 4.3.0 Try again later")
    );
    let (status, reply, relay, mailer) = status_of(&report, "Root@local.test");
    assert_eq!(status, RecipientStatus::Sent);
    assert_eq!(reply, "250 2.0.0 <Root@local.test>... Delivered");
    assert_eq!((relay.as_str(), mailer.as_str()), ("local", "local"));
    let (status, reply, relay, _) = status_of(&report, "x@closed.test");
    assert_eq!(status, RecipientStatus::TempFail);
    assert_eq!(reply, "421 4.4.1 Connection refused by [127.0.0.1]");
    assert_eq!(relay, "[127.0.0.1] [127.0.0.1]");
    let (status, reply, _, mailer) = status_of(&report, "y@deny.test");
    assert_eq!(
        (status, reply.as_str(), mailer.as_str()),
        (RecipientStatus::PermFail, "550 5.7.1 Not here", "error")
    );
    let (status, reply, ..) = status_of(&report, "..@local.test");
    assert_eq!(
        (status, reply.as_str()),
        (
            RecipientStatus::PermFail,
            "553 5.1.3 <..@local.test>... Invalid address"
        )
    );

    let messages = sink.wait_for_messages(1, WAIT);
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].mail_from, "sender@example.org");
    assert_eq!(messages[0].rcpt_to, ["good@sink.test"]);
    assert_eq!(messages[0].helo, "delivery.test");
    assert_eq!(
        messages[0].data, BODY,
        "byte-identical after the dot-stuffing round trip"
    );

    let local = maildir_files(dir.path(), super::LOCAL_USER);
    assert_eq!(local.len(), 1);
    let want = [
        b"Return-Path: <sender@example.org>\n".as_slice(),
        &crlf_to_lf(BODY),
    ]
    .concat();
    assert_eq!(local[0], want);

    h.send(&QueueToDelivery::Shutdown);
    assert_eq!(h.exit_code(), 0);
}

fn crlf_to_lf(bytes: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(bytes)
        .replace("\r\n", "\n")
        .into_bytes()
}

#[test]
fn many_jobs_and_a_large_message_at_once() {
    let sink = SinkBehavior::new().start();
    let table = format!("sink.test esmtp:[127.0.0.1]:{}\n", sink.addr().port());
    let (_dir, settings) = settings_with(&table, "");
    let mut h = Harness::start(settings);
    // ~3 MiB with dot lines throughout: well past the 256 KiB high-water mark.
    let mut big = b"Subject: big\r\n\r\n".to_vec();
    for i in 0..60_000 {
        big.extend_from_slice(
            format!(".line {i} with a leading dot and some filler text\r\n").as_bytes(),
        );
    }
    h.deliver(job(1, &["big@sink.test"]), &big);
    for n in 2..=6 {
        h.deliver(job(n, &["a@sink.test", "b@sink.test"]), BODY);
    }
    let mut seen = Vec::new();
    for _ in 1..=6 {
        let report = h.report();
        assert!(
            report
                .recipients
                .iter()
                .all(|r| r.status == RecipientStatus::Sent),
            "{report:?}"
        );
        seen.push(report.job);
    }
    seen.sort_unstable();
    assert_eq!(seen, [1, 2, 3, 4, 5, 6]);
    let messages = sink.wait_for_messages(6, WAIT);
    let large: Vec<_> = messages
        .iter()
        .filter(|m| m.rcpt_to == ["big@sink.test"])
        .collect();
    assert_eq!(large.len(), 1);
    assert!(large[0].data == big, "large message differs");
    assert!(messages
        .iter()
        .filter(|m| m.rcpt_to == ["a@sink.test", "b@sink.test"])
        .all(|m| m.data == BODY));
    h.send(&QueueToDelivery::Shutdown);
    assert_eq!(h.exit_code(), 0);
}

#[test]
fn silent_server_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let table = format!("slow.test smtp:[127.0.0.1]:{port}\n");
    let (_dir, settings) = settings_full(&table, "", "O Timeout.initial=1s\n");
    let mut h = Harness::start(settings);
    let started = Instant::now();
    h.deliver(job(1, &["x@slow.test"]), BODY);
    let report = h.report();
    let (status, reply, _, mailer) = status_of(&report, "x@slow.test");
    assert_eq!(status, RecipientStatus::TempFail);
    assert_eq!(
        reply,
        "421 4.4.2 timeout waiting for input from [127.0.0.1] during client greeting"
    );
    assert_eq!(mailer, "smtp");
    assert!(started.elapsed() < Duration::from_secs(10));
    drop(listener);
    h.send(&QueueToDelivery::Shutdown);
    assert_eq!(h.exit_code(), 0);
}

#[test]
fn connection_dropped_after_the_body_is_a_tempfail() {
    let sink = SinkBehavior::new().drop_connection_after_data(1).start();
    let table = format!("sink.test esmtp:[127.0.0.1]:{}\n", sink.addr().port());
    let (_dir, settings) = settings_with(&table, "");
    let mut h = Harness::start(settings);
    h.deliver(job(1, &["a@sink.test", "b@sink.test"]), BODY);
    let report = h.report();
    for r in &report.recipients {
        assert_eq!(r.status, RecipientStatus::TempFail, "{r:?}");
        assert_eq!(r.reply, "421 4.4.2 Connection closed by [127.0.0.1]");
    }
    assert_eq!(sink.dropped_messages().len(), 1);
    // The next attempt goes through.
    h.deliver(job(2, &["a@sink.test"]), BODY);
    assert_eq!(h.report().recipients[0].status, RecipientStatus::Sent);
    h.send(&QueueToDelivery::Shutdown);
    assert_eq!(h.exit_code(), 0);
}
