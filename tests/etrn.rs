//! ETRN (RFC 1985) end to end, in sendmail's three forms: mail queued
//! while its next hop was down is delivered, once that next hop is up,
//! when a client says `ETRN host`, `ETRN @domain` (the domain and its
//! subdomains) or `ETRN #mqueue` (Postern's one queue group: the whole
//! queue); `ETRN #nosuch` gets sendmail's 459, and under
//! `noetrn` ETRN is neither offered nor allowed. Retries are an hour
//! apart (`MinQueueAge=1h`), so only ETRN can deliver within the test.

mod common;

use std::net::{SocketAddr, TcpListener};

use common::WAIT;
use postern_testkit::{
    ensure_test_users, poll_until, Daemon, DaemonBuilder, Sink, SinkBehavior, SmtpConversation,
};

/// A loopback address nothing listens on (yet).
fn free_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

fn daemon(mailertable: String, extra: &[&str]) -> Daemon {
    ensure_test_users();
    let mut builder = DaemonBuilder::new(postern_testkit::binary("posternd"))
        .table("mailertable", mailertable)
        .config_line("O LogLevel=14")
        .config_line("O MinQueueAge=1h");
    for line in extra {
        builder = builder.config_line(line);
    }
    builder.start()
}

/// Sends one message from `s@client.example` to `rcpt`; returns its
/// queue ID.
fn send(daemon: &Daemon, rcpt: &str) -> String {
    let mut c = SmtpConversation::connect(daemon.smtp_addr());
    c.read_reply();
    c.cmd("EHLO client.example", "250");
    c.cmd("MAIL FROM:<s@client.example>", "250");
    c.cmd(&format!("RCPT TO:<{rcpt}>"), "250");
    c.cmd("DATA", "354");
    c.send_raw(format!("Subject: for {rcpt}\r\n\r\nqueued for {rcpt}\r\n.\r\n").as_bytes());
    let reply = c.read_reply();
    assert!(reply.starts_with("250 2.0.0 "), "{reply}");
    c.cmd("QUIT", "221");
    reply[10..24].to_string()
}

/// One ETRN in a session of its own; the reply.
fn etrn(daemon: &Daemon, argument: &str, expect: &str) -> String {
    let mut c = SmtpConversation::connect(daemon.smtp_addr());
    c.read_reply();
    c.cmd("EHLO client.example", "250");
    let reply = c.cmd(&format!("ETRN {argument}"), expect);
    c.cmd("QUIT", "221");
    reply
}

/// Waits for the `to=` line of `id` that says `stat`.
fn logged(daemon: &Daemon, id: &str, stat: &str) -> String {
    poll_until(WAIT, || {
        daemon
            .log_lines()
            .into_iter()
            .find(|l| l.contains(&format!("{id}: to=<")) && l.contains(stat))
    })
    .unwrap_or_else(|| panic!("no {stat} for {id}:\n{}", daemon.log_lines().join("\n")))
}

fn deferred(daemon: &Daemon, id: &str) {
    logged(daemon, id, "stat=Deferred");
}

#[test]
fn etrn_host_domain_and_queue_group_deliver_what_waited() {
    let (node, domain, group) = (free_addr(), free_addr(), free_addr());
    let mailertable = format!(
        "node.test esmtp:[127.0.0.1]:{}\n\
         sub.domain.test esmtp:[127.0.0.1]:{}\n\
         group.test esmtp:[127.0.0.1]:{}\n",
        node.port(),
        domain.port(),
        group.port()
    );
    let d = daemon(mailertable, &[]);
    // EHLO offers ETRN.
    let mut c = SmtpConversation::connect(d.smtp_addr());
    c.read_reply();
    let ehlo = c.cmd("EHLO client.example", "250");
    assert!(ehlo.lines().any(|l| l == "250-ETRN"), "{ehlo}");
    c.cmd("QUIT", "221");

    // Each next hop is down when its message arrives.
    let to_node = send(&d, "a@node.test");
    let to_domain = send(&d, "b@sub.domain.test");
    let to_group = send(&d, "c@group.test");
    for id in [&to_node, &to_domain, &to_group] {
        deferred(&d, id);
    }
    let sinks: Vec<Sink> = [node, domain, group]
        .into_iter()
        .map(|addr| SinkBehavior::new().start_at(addr))
        .collect();

    // ETRN host: that host's mail, and only that.
    assert_eq!(
        etrn(&d, "node.test", "250"),
        "250 2.0.0 Queuing for node node.test started"
    );
    let got = sinks[0].wait_for_messages(1, WAIT);
    assert_eq!(got[0].rcpt_to, ["a@node.test"]);
    assert!(got[0].text().contains("queued for a@node.test"));
    logged(&d, &to_node, "stat=Sent");
    d.wait_for_log("[127.0.0.1]: ETRN node.test", WAIT);
    assert!(sinks[1].messages().is_empty() && sinks[2].messages().is_empty());

    // ETRN @domain: the domain's subdomains too.
    assert_eq!(
        etrn(&d, "@domain.test", "250"),
        "250 2.0.0 Queuing for node @domain.test started"
    );
    assert_eq!(
        sinks[1].wait_for_messages(1, WAIT)[0].rcpt_to,
        ["b@sub.domain.test"]
    );
    d.wait_for_log("[127.0.0.1]: ETRN @domain.test", WAIT);
    assert!(sinks[2].messages().is_empty());

    // An unknown queue group: sendmail's 459, nothing run.
    assert_eq!(etrn(&d, "#nosuch", "459"), "459 4.5.4 Queue nosuch unknown");
    d.wait_for_log("[127.0.0.1]: ETRN #nosuch", WAIT);

    // ETRN #mqueue: the whole queue.
    assert_eq!(
        etrn(&d, "#mqueue", "250"),
        "250 2.0.0 Queuing for queue group mqueue started"
    );
    assert_eq!(
        sinks[2].wait_for_messages(1, WAIT)[0].rcpt_to,
        ["c@group.test"]
    );
    d.wait_for_log("[127.0.0.1]: ETRN #mqueue", WAIT);
    for id in [&to_node, &to_domain, &to_group] {
        d.wait_for_log(&format!("{id}: done;"), WAIT);
    }
    // Each message went once.
    assert!(sinks.iter().all(|s| s.messages().len() == 1));
}

#[test]
fn noetrn_refuses_etrn_as_sendmail_does() {
    let closed = free_addr();
    let d = daemon(
        format!("node.test esmtp:[127.0.0.1]:{}\n", closed.port()),
        &["O PrivacyOptions=noetrn"],
    );
    let id = send(&d, "a@node.test");
    deferred(&d, &id);
    let sink = SinkBehavior::new().start_at(closed);

    let mut c = SmtpConversation::connect(d.smtp_addr());
    c.read_reply();
    let ehlo = c.cmd("EHLO client.example", "250");
    assert!(!ehlo.contains("ETRN"), "{ehlo}");
    for argument in ["node.test", "@node.test", "#mqueue"] {
        assert_eq!(
            c.cmd(&format!("ETRN {argument}"), "502"),
            "502 5.7.0 Sorry, we do not allow this operation"
        );
    }
    c.cmd("QUIT", "221");
    d.wait_for_log("[127.0.0.1]: ETRN #mqueue [rejected]", WAIT);
    // Still queued: nothing ran.
    assert!(sink.messages().is_empty());
    assert!(!d.log_lines().iter().any(|l| l.contains("stat=Sent")));
}
