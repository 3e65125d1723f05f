//! How outbound sessions are shared: one transaction for all of a
//! message's recipients at one destination, connections kept open for the
//! next message to the same server (`ConnectionCacheSize`,
//! `ConnectionCacheTimeout`), and a server that cannot be reached held
//! back as a whole rather than tried once per message.

mod common;

use common::{daemon_with_sink, WAIT};
use postern_testkit::{smtp_send, Sink, SmtpConversation};

const MESSAGES: usize = 100;

/// One client session sending `count` messages to `rcpt@sink.test`, one
/// after the other, from `<{sender}{n}@example.net>`.
fn send_in_one_session(addr: std::net::SocketAddr, sender: &str, count: usize) {
    let mut c = SmtpConversation::connect(addr);
    assert!(c.read_reply().starts_with("220"));
    c.cmd("EHLO client.example", "250");
    for n in 0..count {
        c.cmd(&format!("MAIL FROM:<{sender}{n}@example.net>"), "250");
        c.cmd("RCPT TO:<rcpt@sink.test>", "250");
        c.cmd("DATA", "354");
        c.cmd(&format!("Subject: message {n}\r\n\r\nbody {n}\r\n."), "250");
    }
    c.cmd("QUIT", "221");
}

#[test]
fn a_hundred_messages_to_one_destination_share_a_few_connections() {
    let sink = Sink::start();
    let daemon = daemon_with_sink(&sink, &[]);
    // One client session, one message after the other: each is queued and
    // handed to the delivery client as it is accepted.
    send_in_one_session(daemon.smtp_addr(), "sender", MESSAGES);
    let received = sink.wait_for_messages(MESSAGES, WAIT);
    assert_eq!(received.len(), MESSAGES);
    let connections = sink.connections();
    assert!(
        connections <= 20,
        "{MESSAGES} messages took {connections} connections"
    );
    // sendmail's LogLevel 14 would say so; at 9 the proof is the sink's
    // count above, and every message is there exactly once.
    let mut senders: Vec<String> = received.iter().map(|m| m.mail_from.clone()).collect();
    senders.sort();
    senders.dedup();
    assert_eq!(senders.len(), MESSAGES);
}

#[test]
fn a_burst_from_many_clients_keeps_its_connections_then_the_cache_keeps_two() {
    let sink = Sink::start();
    // The idle time long, so that only the burst's grace can end the
    // connections beyond the cache's two within the wait below.
    let daemon = daemon_with_sink(&sink, &["O ConnectionCacheTimeout=120s"]);
    const CLIENTS: usize = 10;
    const EACH: usize = 10;
    let addr = daemon.smtp_addr();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            std::thread::spawn(move || send_in_one_session(addr, &format!("client{c}-"), EACH))
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    sink.wait_for_messages(CLIENTS * EACH, WAIT);
    // Messages committed a few at a time from ten clients: the
    // connections each batch's deliveries used were still there for the
    // next (closing all but two between batches opened a connection for
    // about every other message).
    let connections = sink.connections();
    assert!(
        connections <= 20,
        "{} messages took {connections} connections",
        CLIENTS * EACH
    );
    // After the burst the cache keeps its two (ConnectionCacheSize's
    // default); the others end with QUIT a second after their message,
    // long before their idle time.
    sink.wait_for_open_connections_at_most(2, std::time::Duration::from_secs(30));
}

#[test]
fn all_recipients_of_a_message_at_one_destination_go_in_one_transaction() {
    let sink = Sink::start();
    let daemon = daemon_with_sink(&sink, &[]);
    smtp_send(
        daemon.smtp_addr(),
        "sender@example.net",
        &["a@sink.test", "b@sink.test", "c@sink.test"],
        b"Subject: three\r\n\r\nhello\r\n",
    )
    .unwrap();
    let m = sink.wait_for_messages(1, WAIT);
    assert_eq!(m[0].rcpt_to, ["a@sink.test", "b@sink.test", "c@sink.test"]);
}

#[test]
fn a_connection_waits_for_the_next_message_then_quits() {
    let sink = Sink::start();
    let daemon = daemon_with_sink(&sink, &["O ConnectionCacheTimeout=3s", "O LogLevel=15"]);
    let send = |n: usize| {
        smtp_send(
            daemon.smtp_addr(),
            "sender@example.net",
            &["a@sink.test"],
            format!("Subject: {n}\r\n\r\nhello\r\n").as_bytes(),
        )
        .unwrap();
        sink.wait_for_messages(n, WAIT);
    };
    send(1);
    let mark = daemon.log_mark();
    send(2);
    daemon.wait_for_log_since(
        mark,
        "reusing the connection to [127.0.0.1] [127.0.0.1]",
        WAIT,
    );
    assert_eq!(
        sink.connections(),
        1,
        "the second message opened a connection"
    );
    // At LogLevel 15 every command is logged: once its time is up, the
    // kept connection ends with QUIT.
    daemon.wait_for_log_since(mark, "[127.0.0.1]: >>> QUIT", WAIT);
}

#[test]
fn a_server_that_refuses_is_held_back_for_all_its_messages() {
    postern_testkit::ensure_test_users();
    // A port nobody listens on.
    let closed = postern_testkit::free_port();
    let daemon = postern_testkit::DaemonBuilder::new(postern_testkit::binary("posternd"))
        .table(
            "mailertable",
            format!("down.test esmtp:[127.0.0.1]:{closed}\n"),
        )
        .config_line("O LogLevel=14")
        .config_line("O MinQueueAge=30s")
        .start();
    let mark = daemon.log_mark();
    for n in 0..5 {
        smtp_send(
            daemon.smtp_addr(),
            "sender@example.net",
            &[&format!("r{n}@down.test")],
            b"Subject: down\r\n\r\nhello\r\n",
        )
        .unwrap();
        let line = daemon.wait_for_log_since(mark, &format!("to=<r{n}@down.test>"), WAIT);
        assert!(
            line.contains("stat=Deferred: Connection refused by [127.0.0.1]"),
            "{line}"
        );
    }
    let tries = daemon.log_lines()[mark..]
        .iter()
        .filter(|l| l.contains("makeconnection (") && l.contains(&format!(".{closed} (2)) failed")))
        .count();
    assert_eq!(tries, 1, "the refusing server was tried for every message");
}
