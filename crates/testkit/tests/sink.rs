//! The sink, driven by the kit's own client.

use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use postern_testkit::{smtp_send, ReceivedMessage, Sink, SinkBehavior, SmtpConversation};

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn receives_a_pipelined_message() {
    let sink = Sink::start();
    let body = b"Subject: hi\r\n\r\n.leading dot\r\n..two\r\nlast line\r\n";
    let reply =
        smtp_send(sink.addr(), "a@x.test", &["b@y.test", "c@y.test"], body).expect("accepted");
    assert!(
        reply.starts_with("250 2.0.0 Ok: queued as SINK0001"),
        "{reply}"
    );
    let got = sink.wait_for_messages(1, WAIT);
    assert_eq!(
        got,
        vec![ReceivedMessage {
            mail_from: "a@x.test".into(),
            mail_params: String::new(),
            rcpt_to: vec!["b@y.test".into(), "c@y.test".into()],
            rcpt_params: vec![String::new(), String::new()],
            data: body.to_vec(),
            helo: "client.test".into(),
        }]
    );
    assert_eq!(sink.connections(), 1);
}

#[test]
fn records_mail_and_rcpt_parameters() {
    let sink = SinkBehavior::new()
        .rcpt_reply("no@y.test", "550 5.1.1 no")
        .start();
    let mut c = SmtpConversation::connect(sink.addr());
    c.read_reply();
    c.cmd("EHLO me", "250");
    c.cmd("MAIL FROM:<a@x.test> RET=HDRS ENVID=e1", "250");
    c.cmd("RCPT TO:<b@y.test> NOTIFY=SUCCESS,DELAY", "250");
    c.cmd("RCPT TO:<no@y.test> NOTIFY=NEVER", "550");
    c.cmd("RCPT TO:<c@y.test>", "250");
    c.cmd("DATA", "354");
    c.send_raw(b"x\r\n.\r\n");
    c.read_reply();
    c.cmd("QUIT", "221");
    let got = &sink.wait_for_messages(1, WAIT)[0];
    assert_eq!(got.mail_params, "RET=HDRS ENVID=e1");
    assert_eq!(got.rcpt_to, ["b@y.test", "c@y.test"]);
    assert_eq!(got.rcpt_params, ["NOTIFY=SUCCESS,DELAY", ""]);
}

#[test]
fn receives_without_pipelining_and_without_enhanced_codes() {
    let sink = SinkBehavior::new().extensions(&["8BITMIME"]).start();
    let mut c = SmtpConversation::connect(sink.addr());
    assert_eq!(c.read_reply(), "220 sink.test ESMTP");
    assert_eq!(c.cmd("EHLO me", "250"), "250-sink.test\n250 8BITMIME");
    assert_eq!(c.cmd("NOOP", "250"), "250 Ok");
    c.cmd("QUIT", "221");
    c.expect_closed();

    let reply = smtp_send(sink.addr(), "", &["b@y.test"], b"no final newline").expect("accepted");
    assert!(reply.starts_with("250 Ok"), "{reply}");
    let got = sink.wait_for_messages(1, WAIT);
    assert_eq!(got[0].mail_from, "");
    assert_eq!(got[0].data, b"no final newline\r\n");
}

#[test]
fn helo_only_server() {
    let sink = SinkBehavior::new().reject_ehlo().start();
    let mut c = SmtpConversation::connect(sink.addr());
    c.read_reply();
    c.cmd("EHLO me", "500");
    c.cmd("HELO me", "250 sink.test");
    drop(c);
    smtp_send(sink.addr(), "a@x", &["b@y"], b"hi\r\n").expect("accepted over HELO");
    assert_eq!(sink.wait_for_messages(1, WAIT)[0].helo, "client.test");

    let bare = SinkBehavior::new().extensions(&[]).start();
    let mut c = SmtpConversation::connect(bare.addr());
    c.read_reply();
    assert_eq!(c.cmd("EHLO me", "250"), "250 sink.test");
}

#[test]
fn answers_a_pipelined_group_in_order() {
    let sink = Sink::start();
    let mut c = SmtpConversation::connect(sink.addr());
    c.read_reply();
    c.send_raw(b"EHLO me\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nRCPT TO:<c@y>\r\nDATA\r\n");
    assert!(c.read_reply().starts_with("250-sink.test\n250-PIPELINING"));
    assert_eq!(c.read_reply(), "250 2.1.0 Ok");
    assert_eq!(c.read_reply(), "250 2.1.5 Ok");
    assert_eq!(c.read_reply(), "250 2.1.5 Ok");
    assert!(c.read_reply().starts_with("354 "));
    c.send_raw(b"body\r\n.\r\nRSET\r\nNOOP\r\nQUIT\r\n");
    assert!(c.read_reply().starts_with("250 2.0.0 Ok: queued"));
    assert_eq!(c.read_reply(), "250 2.0.0 Ok");
    assert_eq!(c.read_reply(), "250 2.0.0 Ok");
    assert!(c.read_reply().starts_with("221 "));
    c.expect_closed();
    assert_eq!(sink.messages()[0].rcpt_to, ["b@y", "c@y"]);
}

#[test]
fn data_ends_only_at_crlf_dot_crlf() {
    let sink = Sink::start();
    let mut c = SmtpConversation::connect(sink.addr());
    c.read_reply();
    c.cmd("HELO me", "250");
    c.cmd("MAIL FROM:<a@x>", "250");
    c.cmd("RCPT TO:<b@y>", "250");
    c.cmd("DATA", "354");
    // Bare LF and bare CR before a dot line do not end DATA, and the dot
    // after them is not unstuffed: it is not at the start of a CRLF line.
    c.send_raw(b"a\n.\nb\r.\r\nc\r\n..d\r\n.\r\n");
    assert!(c.read_reply().starts_with("250 2.0.0 Ok: queued"));
    let got = sink.wait_for_messages(1, WAIT);
    assert_eq!(got[0].text(), "a\n.\nb\r.\r\nc\r\n.d\r\n");
}

#[test]
fn sequence_errors() {
    let sink = Sink::start();
    let mut c = SmtpConversation::connect(sink.addr());
    c.read_reply();
    c.cmd("MAIL FROM:<a@x>", "503 5.5.1");
    c.cmd("EHLO me", "250");
    c.cmd("RCPT TO:<b@y>", "503 5.5.1");
    c.cmd("MAIL FROM:a@x", "501 5.5.4");
    c.cmd("MAIL FROM:<a@x>", "250");
    c.cmd("DATA", "554 5.5.1");
    c.cmd("RSET", "250");
    c.cmd("WHAT", "500 5.5.2");
    c.cmd("QUIT", "221");
    assert!(sink.messages().is_empty());
}

#[test]
fn scripted_recipient_reply() {
    let sink = SinkBehavior::new()
        .rcpt_reply("bad@x", "550 5.1.1 no")
        .rcpt_reply("fwd@x", "251 2.1.5 will forward")
        .start();
    let err = smtp_send(sink.addr(), "a@x", &["good@x", "BAD@x"], b"hi\r\n").unwrap_err();
    assert_eq!(err, "RCPT TO:<BAD@x>: 550 5.1.1 no");
    assert!(sink.messages().is_empty(), "aborted, not delivered");

    let mut c = SmtpConversation::connect(sink.addr());
    c.read_reply();
    c.cmd("EHLO me", "250");
    c.cmd("MAIL FROM:<a@x>", "250");
    c.cmd("RCPT TO:<good@x>", "250");
    c.cmd("RCPT TO:<bad@x>", "550 5.1.1 no");
    c.cmd("RCPT TO:<fwd@x>", "251");
    c.cmd("DATA", "354");
    c.send_raw(b"hi\r\n.\r\n");
    c.read_reply();
    assert_eq!(
        sink.wait_for_messages(1, WAIT)[0].rcpt_to,
        ["good@x", "fwd@x"]
    );
    assert_eq!(sink.rcpt_attempts("bad@X"), 2);
}

#[test]
fn temporary_failures_then_success() {
    let sink = SinkBehavior::new().rcpt_tempfail("later@x", 2).start();
    for _ in 0..2 {
        let err = smtp_send(sink.addr(), "a@x", &["later@x"], b"hi\r\n").unwrap_err();
        assert_eq!(err, "RCPT TO:<later@x>: 451 4.3.0 try later");
    }
    smtp_send(sink.addr(), "a@x", &["later@x"], b"hi\r\n").expect("third attempt");
    assert_eq!(sink.wait_for_messages(1, WAIT).len(), 1);
    assert_eq!(sink.rcpt_attempts("later@x"), 3);
    assert_eq!(sink.connections(), 3);
}

#[test]
fn final_dot_reply_override() {
    let sink = SinkBehavior::new().data_reply("554 5.7.1 rejected").start();
    let err = smtp_send(sink.addr(), "a@x", &["b@y"], b"hi\r\n").unwrap_err();
    assert_eq!(err, "end of data: 554 5.7.1 rejected");
    assert!(sink.messages().is_empty());
}

#[test]
fn drops_the_connection_after_data() {
    let sink = SinkBehavior::new().drop_connection_after_data(1).start();
    let err = smtp_send(sink.addr(), "a@x", &["b@y"], b"one\r\n").unwrap_err();
    assert!(err.starts_with("end of data: no reply"), "{err}");
    assert_eq!(sink.dropped_messages()[0].data, b"one\r\n");
    smtp_send(sink.addr(), "a@x", &["b@y"], b"two\r\n").expect("second attempt");
    assert_eq!(sink.wait_for_messages(1, WAIT)[0].data, b"two\r\n");
}

#[test]
fn greeting_override() {
    let sink = SinkBehavior::new().greeting("554 5.3.2 go away").start();
    let err = smtp_send(sink.addr(), "a@x", &["b@y"], b"hi").unwrap_err();
    assert_eq!(err, "greeting: 554 5.3.2 go away");
}

#[test]
#[should_panic(expected = "for 2 message(s), 1 arrived")]
fn wait_for_messages_says_how_many_arrived() {
    let sink = Sink::start();
    smtp_send(sink.addr(), "a@x", &["b@y"], b"hi\r\n").expect("accepted");
    sink.wait_for_messages(2, Duration::from_millis(50));
}

#[test]
fn stops_on_drop_even_with_an_idle_client() {
    let sink = Sink::start();
    let addr = sink.addr();
    let mut idle = SmtpConversation::connect(addr);
    idle.read_reply();
    sink.wait_for_connections(1, WAIT);
    drop(sink);
    idle.expect_closed();
    assert!(TcpStream::connect(addr).is_err(), "nobody listens any more");
    TcpListener::bind(addr).expect("the port is free again");
}
