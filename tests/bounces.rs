//! Bounces and delivery status notifications (RFC 3461/3462/3464) as a
//! sender receives them: every report is parsed with Python's `email`
//! package (`bounces/dsn.py`) and its fields checked. The senders'
//! domains are routed by mailertable to testkit sinks on 127.0.0.1, so
//! each report arrives where a test can read it, having gone through the
//! queue and the delivery client like any other message.

mod common;

use std::net::SocketAddr;

use common::dsn::Dsn;
use common::{mailq, WAIT};
use postern_testkit::{
    ensure_test_users, poll_until, wait_for_maildir, Daemon, DaemonBuilder, ReceivedMessage, Sink,
    SinkBehavior, SmtpConversation,
};

/// The test's world: `mx.example` (Postern); `example.com`, where senders
/// live, routed to `senders`; `bounce.test` to a sink refusing every
/// RCPT with 550 5.1.1; `relay.test` to a sink without DSN and `dsn.test`
/// to one with it (both `relayed`); `down.test` to a closed port.
struct World {
    daemon: Daemon,
    senders: Sink,
    relayed: Sink,
    _refusing: Sink,
    _with_dsn: Sink,
}

const REFUSAL: &str = "550 5.1.1 <user@bounce.test>: Recipient address rejected: User unknown";

fn world(extra: &[&str]) -> World {
    world_with(SinkBehavior::new(), extra)
}

/// As [`world`], the senders' sink behaving as `senders`.
fn world_with(senders: SinkBehavior, extra: &[&str]) -> World {
    ensure_test_users();
    let senders = senders.start();
    let refusing = SinkBehavior::new()
        .rcpt_reply("user@bounce.test", REFUSAL)
        .rcpt_reply("other@bounce.test", "550 5.7.1 Not here")
        .start();
    let relayed = SinkBehavior::new().start();
    let with_dsn = SinkBehavior::new()
        .extensions(&[
            "PIPELINING",
            "8BITMIME",
            "SIZE",
            "ENHANCEDSTATUSCODES",
            "DSN",
        ])
        .start();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let port = |s: &Sink| s.addr().port();
    let mailertable = format!(
        "example.com esmtp:[127.0.0.1]:{}\n\
         bounce.test esmtp:[127.0.0.1]:{}\n\
         relay.test esmtp:[127.0.0.1]:{}\n\
         dsn.test esmtp:[127.0.0.1]:{}\n\
         down.test smtp:[127.0.0.1]:{closed_port}\n",
        port(&senders),
        port(&refusing),
        port(&relayed),
        port(&with_dsn),
    );
    let mut builder = DaemonBuilder::new(postern_testkit::binary("posternd"))
        .table("mailertable", mailertable)
        .table("local-host-names", "mx.example\n")
        .config_line("Dj mx.example")
        .config_line("O LogLevel=14")
        .config_line("O MinQueueAge=1s");
    for line in extra {
        builder = builder.config_line(line);
    }
    World {
        daemon: builder.start(),
        senders,
        relayed,
        _refusing: refusing,
        _with_dsn: with_dsn,
    }
}

/// One SMTP transaction: `mail` and each of `rcpts` are the whole
/// command arguments (parameters included). Returns the queue ID.
fn send(addr: SocketAddr, mail: &str, rcpts: &[&str], subject: &str) -> String {
    let mut c = SmtpConversation::connect(addr);
    c.read_reply();
    c.cmd("EHLO client.example", "250");
    c.cmd(&format!("MAIL FROM:{mail}"), "250");
    for r in rcpts {
        c.cmd(&format!("RCPT TO:{r}"), "250");
    }
    c.cmd("DATA", "354");
    c.send_raw(
        format!(
            "From: sender@example.com\r\nTo: someone\r\nSubject: {subject}\r\n\
             Message-Id: <{subject}@client.example>\r\n\r\nThe body of {subject}.\r\n.\r\n"
        )
        .as_bytes(),
    );
    let reply = c.read_reply();
    assert!(reply.starts_with("250 2.0.0 "), "{reply}");
    c.cmd("QUIT", "221");
    reply[10..24].to_string()
}

/// The report `daemon` logged for the message `id`: its queue ID and
/// the text after it (`DSN: User unknown`).
fn report_line(daemon: &Daemon, id: &str, what: &str) -> (String, String) {
    let needle = format!(": {what}");
    let found = poll_until(WAIT, || {
        daemon
            .log_lines()
            .into_iter()
            .find(|l| l.contains(&format!("{id}: ")) && l.contains(&needle))
    })
    .unwrap_or_else(|| {
        panic!(
            "no {what:?} line for {id}:\n{}",
            daemon.log_lines().join("\n")
        )
    });
    let rest = found.split_once(&format!("{id}: ")).unwrap().1;
    let (report_id, text) = rest.split_once(": ").unwrap();
    (report_id.to_string(), text.to_string())
}

/// The message that reached `sink` from `<>`, the `n`th (from 0).
fn nth_report(sink: &Sink, n: usize) -> ReceivedMessage {
    let messages = sink.wait_for_messages(n + 1, WAIT);
    let m = messages[n].clone();
    assert_eq!(m.mail_from, "", "a report comes from <>");
    m
}

/// Committed messages in the spool.
fn queued(daemon: &Daemon) -> usize {
    std::fs::read_dir(daemon.spool_dir().join("queue"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().starts_with("qf"))
        })
        .count()
}

fn wait_for_empty_queue(daemon: &Daemon) {
    poll_until(WAIT, || (queued(daemon) == 0).then_some(())).unwrap_or_else(|| {
        panic!(
            "{} messages still queued:\n{}",
            queued(daemon),
            daemon.log_lines().join("\n")
        )
    });
}

#[test]
fn a_permanent_failure_returns_the_message_with_every_dsn_field() {
    let w = world(&[]);
    let id = send(
        w.daemon.smtp_addr(),
        "<sender@example.com> ENVID=envid-0001",
        &["<user@bounce.test> ORCPT=rfc822;user@bounce.test"],
        "fails",
    );
    let (report_id, text) = report_line(&w.daemon, &id, "DSN:");
    assert_eq!(text, "DSN: User unknown");
    let m = nth_report(&w.senders, 0);
    assert_eq!(m.rcpt_to, ["sender@example.com"]);
    let d = Dsn::parse(&m.data);
    assert_eq!(
        d.get("top.From"),
        "Mail Delivery Subsystem <MAILER-DAEMON@mx.example>"
    );
    assert_eq!(d.get("top.To"), "<sender@example.com>");
    assert_eq!(
        d.get("top.Subject"),
        "Returned mail: see transcript for details"
    );
    assert_eq!(d.get("top.Auto-Submitted"), "auto-generated (failure)");
    assert!(d
        .get("top.Message-Id")
        .ends_with(&format!(".{report_id}@mx.example>")));
    assert!(d.has("top.Date"));
    assert_eq!(d.get("top.content-type"), "multipart/report");
    assert_eq!(d.get("top.report-type"), "delivery-status");
    assert_eq!(d.get("parts"), "3");
    assert_eq!(d.get("part.0.type"), "text/plain");
    assert_eq!(d.get("part.1.type"), "message/delivery-status");
    let human = d.get("human");
    for line in [
        "The original message was received at ",
        "\nfrom localhost [127.0.0.1]\n",
        "   ----- The following addresses had permanent fatal errors -----\n<user@bounce.test>\n",
        &format!("    (reason: {REFUSAL})\n"),
        "   ----- Transcript of session follows -----\n... while talking to [127.0.0.1]:\n\
         >>> RCPT To:<user@bounce.test>\n",
        &format!("<<< {REFUSAL}\n550 5.1.1 <user@bounce.test>... User unknown\n"),
    ] {
        assert!(human.contains(line), "{line:?} not in\n{human}");
    }
    assert_eq!(d.get("msg.Original-Envelope-Id"), "envid-0001");
    assert_eq!(d.get("msg.Reporting-MTA"), "dns; mx.example");
    assert_eq!(d.get("msg.Received-From-MTA"), "DNS; localhost");
    assert!(d.has("msg.Arrival-Date"));
    assert_eq!(d.get("rcpts"), "1");
    assert_eq!(
        d.get("rcpt.0.Original-Recipient"),
        "rfc822;user@bounce.test"
    );
    assert_eq!(d.get("rcpt.0.Final-Recipient"), "RFC822; user@bounce.test");
    assert_eq!(
        d.get("rcpt.0.X-Actual-Recipient"),
        "rfc822; user@bounce.test"
    );
    assert_eq!(d.get("rcpt.0.Action"), "failed");
    assert_eq!(d.get("rcpt.0.Status"), "5.1.1");
    assert_eq!(d.get("rcpt.0.Remote-MTA"), "DNS; [127.0.0.1]");
    assert_eq!(d.get("rcpt.0.Diagnostic-Code"), format!("SMTP; {REFUSAL}"));
    assert!(d.has("rcpt.0.Last-Attempt-Date"));
    // RET absent: the whole message comes back.
    assert_eq!(d.get("returned.type"), "message/rfc822");
    assert_eq!(d.get("returned.Return-Path"), "<sender@example.com>");
    assert_eq!(d.get("returned.Subject"), "fails");
    assert!(d.get("returned.body").contains("The body of fails."));
    // The report went through the queue under its own ID, and both left it.
    w.daemon.wait_for_log(
        &format!("{report_id}: to=<sender@example.com>, delay="),
        WAIT,
    );
    wait_for_empty_queue(&w.daemon);
    w.daemon.wait_for_log(&format!("{id}: done;"), WAIT);
}

#[test]
fn ret_hdrs_nobodyreturn_and_noactualrecipient() {
    let w = world(&[]);
    let addr = w.daemon.smtp_addr();
    send(
        addr,
        "<sender@example.com> RET=HDRS",
        &["<user@bounce.test>"],
        "hdrs",
    );
    let d = Dsn::parse(&nth_report(&w.senders, 0).data);
    assert_eq!(d.get("returned.type"), "text/rfc822-headers");
    assert_eq!(d.get("returned.Subject"), "hdrs");
    assert!(!d.get("returned.body").contains("The body of"));
    assert!(d.has("rcpt.0.X-Actual-Recipient"));
    send(
        addr,
        "<sender@example.com> RET=FULL",
        &["<user@bounce.test>"],
        "full",
    );
    let d = Dsn::parse(&nth_report(&w.senders, 1).data);
    assert_eq!(d.get("returned.type"), "message/rfc822");
    assert!(d.get("returned.body").contains("The body of full."));

    let w = world(&["define(`confPRIVACY_FLAGS', `nobodyreturn,noactualrecipient')"]);
    send(
        w.daemon.smtp_addr(),
        "<sender@example.com> RET=FULL",
        &["<user@bounce.test>"],
        "private",
    );
    let d = Dsn::parse(&nth_report(&w.senders, 0).data);
    assert_eq!(d.get("returned.type"), "text/rfc822-headers");
    assert_eq!(d.get("returned.Subject"), "private");
    assert!(!d.get("returned.body").contains("The body of"));
    assert!(!d.has("rcpt.0.X-Actual-Recipient"));
    assert_eq!(d.get("rcpt.0.Action"), "failed");
}

#[test]
fn notify_never_and_delay_get_no_failure_report_and_failures_share_one() {
    let w = world(&[]);
    let addr = w.daemon.smtp_addr();
    let never = send(
        addr,
        "<sender@example.com>",
        &["<user@bounce.test> NOTIFY=NEVER"],
        "never",
    );
    let delay = send(
        addr,
        "<sender@example.com>",
        &["<user@bounce.test> NOTIFY=DELAY"],
        "delay",
    );
    // Both failed and left the queue without a report.
    for id in [&never, &delay] {
        w.daemon.wait_for_log(&format!("{id}: done;"), WAIT);
        assert!(
            !w.daemon
                .log_lines()
                .iter()
                .any(|l| l.contains(&format!("{id}: ")) && l.contains(": DSN: ")),
            "a report for {id}"
        );
    }
    // Two failed recipients of one message (one NOTIFY=NEVER): one report
    // naming only the other.
    let both = send(
        addr,
        "<sender@example.com>",
        &[
            "<user@bounce.test> NOTIFY=FAILURE",
            "<other@bounce.test>",
            "<never@bounce.test> NOTIFY=NEVER",
        ],
        "both",
    );
    let (_, text) = report_line(&w.daemon, &both, "DSN:");
    assert_eq!(text, "DSN: User unknown");
    let m = nth_report(&w.senders, 0);
    let d = Dsn::parse(&m.data);
    assert_eq!(d.get("returned.Subject"), "both");
    assert_eq!(d.get("rcpts"), "2");
    assert_eq!(d.get("rcpt.0.Final-Recipient"), "RFC822; user@bounce.test");
    assert_eq!(d.get("rcpt.1.Final-Recipient"), "RFC822; other@bounce.test");
    assert_eq!(d.get("rcpt.1.Status"), "5.7.1");
    wait_for_empty_queue(&w.daemon);
    // never@bounce.test was accepted by the sink: nothing else came.
    assert_eq!(w.senders.messages().len(), 1);
}

#[test]
fn notify_success_is_delivered_or_relayed_unless_the_next_hop_speaks_dsn() {
    let w = world(&[]);
    let addr = w.daemon.smtp_addr();
    let local = send(
        addr,
        "<sender@example.com>",
        &["<root@mx.example> NOTIFY=SUCCESS"],
        "local",
    );
    let (_, text) = report_line(&w.daemon, &local, "DSN:");
    assert_eq!(text, "DSN: Return receipt");
    let d = Dsn::parse(&nth_report(&w.senders, 0).data);
    assert_eq!(d.get("top.Subject"), "Return receipt");
    assert_eq!(
        d.get("top.Auto-Submitted"),
        "auto-generated (return-receipt)"
    );
    assert_eq!(d.get("rcpt.0.Final-Recipient"), "RFC822; root@mx.example");
    assert_eq!(d.get("rcpt.0.Action"), "delivered (to mailbox)");
    assert_eq!(d.get("rcpt.0.Status"), "2.0.0");
    assert!(d
        .get("human")
        .contains("<root@mx.example>  (successfully delivered to mailbox)"));
    wait_for_maildir(&w.daemon.mail_dir().join("root/Maildir"), 1, WAIT);

    let relayed = send(
        addr,
        "<sender@example.com>",
        &["<x@relay.test> NOTIFY=SUCCESS,FAILURE"],
        "relayed",
    );
    report_line(&w.daemon, &relayed, "DSN: Return receipt");
    let d = Dsn::parse(&nth_report(&w.senders, 1).data);
    assert_eq!(d.get("rcpt.0.Action"), "relayed (to non-DSN-aware mailer)");
    assert_eq!(d.get("rcpt.0.Remote-MTA"), "DNS; [127.0.0.1]");
    assert_eq!(
        w.relayed.wait_for_messages(1, WAIT)[0].rcpt_to,
        ["x@relay.test"]
    );

    // A next hop that speaks DSN got NOTIFY=SUCCESS and reports itself.
    let passed = send(
        addr,
        "<sender@example.com>",
        &["<x@dsn.test> NOTIFY=SUCCESS"],
        "passed",
    );
    w.daemon.wait_for_log(&format!("{passed}: done;"), WAIT);
    // No success report without NOTIFY=SUCCESS either.
    let plain = send(addr, "<sender@example.com>", &["<y@relay.test>"], "plain");
    w.daemon.wait_for_log(&format!("{plain}: done;"), WAIT);
    for id in [&passed, &plain] {
        assert!(
            !w.daemon
                .log_lines()
                .iter()
                .any(|l| l.contains(&format!("{id}: ")) && l.contains(": DSN: ")),
            "a report for {id}"
        );
    }
    assert_eq!(w.senders.messages().len(), 2);
    wait_for_empty_queue(&w.daemon);
}

#[test]
fn noreceipts_stops_offering_dsn_and_refuses_notify() {
    let w = world(&["define(`confPRIVACY_FLAGS', `noreceipts')"]);
    let mut c = SmtpConversation::connect(w.daemon.smtp_addr());
    c.read_reply();
    let ehlo = c.cmd("EHLO client.example", "250");
    assert!(!ehlo.contains("DSN"), "{ehlo}");
    c.cmd("MAIL FROM:<sender@example.com>", "250");
    let refused = c.cmd("RCPT TO:<root@mx.example> NOTIFY=SUCCESS", "504");
    assert!(refused.contains("NOTIFY not supported"), "{refused}");
    c.cmd("QUIT", "221");
}

#[test]
fn a_delay_warning_then_the_return_after_queuereturn() {
    let w = world(&["O Timeout.queuewarn=2s", "O Timeout.queuereturn=5s"]);
    let id = send(
        w.daemon.smtp_addr(),
        "<sender@example.com>",
        &["<u@down.test>"],
        "delayed",
    );
    let (warning_id, text) = report_line(&w.daemon, &id, "sender notify: Warning");
    assert_eq!(
        text,
        "sender notify: Warning: could not send message for past 2 seconds"
    );
    let d = Dsn::parse(&nth_report(&w.senders, 0).data);
    assert!(d.get("top.Message-Id").contains(&warning_id));
    assert_eq!(
        d.get("top.Subject"),
        "Warning: could not send message for past 2 seconds"
    );
    assert_eq!(
        d.get("top.Auto-Submitted"),
        "auto-generated (warning-timeout)"
    );
    let human = d.get("human");
    for line in [
        "**      THIS IS A WARNING MESSAGE ONLY      **",
        "<u@down.test>... Deferred: Connection refused by [127.0.0.1]\n\
         Warning: message still undelivered after 2 seconds\n\
         Will keep trying until message is 5 seconds old\n",
    ] {
        assert!(human.contains(line), "{line:?} not in\n{human}");
    }
    assert_eq!(d.get("rcpt.0.Action"), "delayed");
    assert_eq!(d.get("rcpt.0.Status"), "4.4.1");
    assert_eq!(d.get("rcpt.0.Remote-MTA"), "DNS; [127.0.0.1]");
    assert!(d.has("rcpt.0.Will-Retry-Until"));
    assert!(!d.has("rcpt.0.Diagnostic-Code"));
    // The message is still queued, with the warning remembered.
    let qf = std::fs::read_to_string(w.daemon.spool_dir().join(format!("queue/qf{id}"))).unwrap();
    assert!(qf.contains("\nW warned\n"), "{qf}");

    let (_, text) = report_line(&w.daemon, &id, "sender notify: Cannot");
    assert_eq!(text, "sender notify: Cannot send message for 5 seconds");
    let d = Dsn::parse(&nth_report(&w.senders, 1).data);
    assert_eq!(
        d.get("top.Subject"),
        "Returned mail: see transcript for details"
    );
    assert!(d.get("human").contains(
        "Message could not be delivered for 5 seconds\nMessage will be deleted from queue\n"
    ));
    assert_eq!(d.get("rcpt.0.Action"), "failed");
    assert_eq!(d.get("rcpt.0.Status"), "4.4.7");
    assert!(!d.has("rcpt.0.Will-Retry-Until"));
    wait_for_empty_queue(&w.daemon);
    // One warning, one return: nothing more.
    assert_eq!(w.senders.messages().len(), 2);
}

#[test]
fn a_failed_bounce_goes_to_the_postmaster_and_an_undeliverable_one_waits_in_mailq() {
    // The senders' server refuses the report itself.
    let w = world_with(
        SinkBehavior::new().rcpt_reply("gone@example.com", "550 5.1.1 <gone@example.com>: gone"),
        &[],
    );
    let addr = w.daemon.smtp_addr();
    let id = send(
        addr,
        "<gone@example.com>",
        &["<user@bounce.test>"],
        "double",
    );
    let (report_id, _) = report_line(&w.daemon, &id, "DSN:");
    // The report failed: the postmaster gets it (sendmail's double bounce).
    let (notice_id, text) = report_line(&w.daemon, &report_id, "postmaster notify:");
    assert_eq!(text, "postmaster notify: User unknown");
    let mail = wait_for_maildir(&w.daemon.mail_dir().join("postmaster/Maildir"), 1, WAIT);
    let d = Dsn::parse(&mail[0]);
    assert_eq!(
        d.get("top.Subject"),
        "Postmaster notify: see transcript for details"
    );
    assert_eq!(
        d.get("top.Auto-Submitted"),
        "auto-generated (postmaster-notification)"
    );
    assert!(d.get("human").contains(&format!("\nwith id {report_id}\n")));
    assert_eq!(d.get("rcpt.0.Final-Recipient"), "RFC822; gone@example.com");
    assert_eq!(d.get("rcpt.0.Action"), "failed");
    // What failed to reach gone@example.com comes back whole.
    assert_eq!(
        d.get("returned.Subject"),
        "Returned mail: see transcript for details"
    );
    w.daemon
        .wait_for_log(&format!("{notice_id}: to=<postmaster@mx.example>"), WAIT);
    wait_for_empty_queue(&w.daemon);
    assert!(w.senders.messages().is_empty());

    // A report whose sender's server is down waits in the queue, from <>.
    let id = send(
        addr,
        "<someone@down.test>",
        &["<user@bounce.test>"],
        "waits",
    );
    let (report_id, _) = report_line(&w.daemon, &id, "DSN:");
    w.daemon
        .wait_for_log(&format!("{report_id}: to=<someone@down.test>"), WAIT);
    let listing = mailq(&w.daemon);
    assert!(listing.contains(&report_id), "{listing}");
    assert!(!listing.contains(&id), "{listing}");
    assert!(listing.contains("<someone@down.test>"), "{listing}");
    assert!(listing.contains("Connection refused"), "{listing}");
}

#[test]
fn a_message_from_the_null_sender_is_never_bounced_to_it() {
    let w = world(&[]);
    let id = send(w.daemon.smtp_addr(), "<>", &["<user@bounce.test>"], "null");
    let (notice_id, text) = report_line(&w.daemon, &id, "postmaster notify:");
    assert_eq!(text, "postmaster notify: User unknown");
    let mail = wait_for_maildir(&w.daemon.mail_dir().join("postmaster/Maildir"), 1, WAIT);
    let d = Dsn::parse(&mail[0]);
    assert_eq!(d.get("top.To"), "postmaster@mx.example");
    assert_eq!(d.get("rcpt.0.Final-Recipient"), "RFC822; user@bounce.test");
    w.daemon
        .wait_for_log(&format!("{notice_id}: to=<postmaster@mx.example>"), WAIT);
    wait_for_empty_queue(&w.daemon);
    assert!(w.senders.messages().is_empty());
}
