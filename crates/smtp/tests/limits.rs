//! The limits a server session enforces itself, with sendmail's replies:
//! the greet pause and the null server it makes of a client that talks
//! first, BadRcptThrottle, and MaxMessageSize's two refusals.

mod harness;

use std::time::Duration;

use harness::{Harness, Policy};
use postern_smtp::server::{Event, Output, ServerConfig};
use postern_smtp::{EnhancedCode, Reply};

fn config() -> ServerConfig {
    let mut cfg = ServerConfig::new("mx.example.org", "client.example [192.0.2.1]");
    cfg.greeting = "mx.example.org Postern test".into();
    cfg
}

fn paused(pause_ms: u64) -> Harness {
    Harness::new(
        ServerConfig {
            greet_pause: Duration::from_millis(pause_ms),
            ..config()
        },
        Policy::default(),
    )
}

#[test]
fn the_greeting_waits_for_the_pause() {
    let mut h = paused(700);
    // Nothing is sent: the shell is told to watch the socket first.
    assert_eq!(
        h.session.poll_output(),
        Some(Output::GreetPause(Duration::from_millis(700)))
    );
    assert_eq!(h.session.poll_output(), None);
    h.session.greet(None);
    assert_eq!(h.drain(), b"220 mx.example.org ESMTP Postern test\r\n");
    assert!(!h.session.is_rejecting());
    h.run(
        "C: EHLO client.example
         S: 250-mx.example.org Hello client.example [192.0.2.1], pleased to meet you
         S: 250-ENHANCEDSTATUSCODES
         S: 250-PIPELINING
         S: 250-EXPN
         S: 250-VERB
         S: 250-8BITMIME
         S: 250-SIZE
         S: 250-DSN
         S: 250-ETRN
         S: 250-DELIVERBY
         S: 250 HELP
         C: MAIL FROM:<s@example.net>
         S: 250 2.1.0 <s@example.net>... Sender ok",
    );
}

#[test]
fn a_client_that_talks_first_is_refused_as_sendmail_refuses_it() {
    let mut h = paused(5000);
    let _ = h.session.poll_output();
    // The shell saw traffic 1.4 s into the pause and read it afterwards.
    h.session.greet(Some(Duration::from_millis(1400)));
    h.session.receive(b"HELO spam.example\r\n");
    assert_eq!(
        h.drain(),
        b"554 mx.example.org ESMTP not accepting messages\r\n\
          250 mx.example.org Hello client.example [192.0.2.1], pleased to meet you\r\n"
    );
    assert!(h.session.is_rejecting());
    assert_eq!(
        h.events,
        [Event::PreGreetingTraffic {
            after: Duration::from_millis(1400)
        }]
    );
    h.run(
        "C: EHLO spam.example
         S: 250-mx.example.org Hello client.example [192.0.2.1], pleased to meet you
         S: 250 ENHANCEDSTATUSCODES
         C: MAIL FROM:<s@example.net>
         S: 550 5.0.0 Command rejected
         C: RCPT TO:<a@example.org>
         S: 550 5.0.0 Command rejected
         C: DATA
         S: 550 5.0.0 Command rejected
         C: VRFY root
         S: 550 5.0.0 Command rejected
         C: STARTTLS
         S: 550 5.0.0 Command rejected
         C: NOOP
         S: 250 2.0.0 OK
         C: RSET
         S: 250 2.0.0 Reset state
         C: BOGUS
         S: 500 5.5.1 Command unrecognized: \"BOGUS\"
         C: QUIT
         S: 221 2.0.0 mx.example.org closing connection",
    );
    assert!(h.closed);
    assert!(h.questions.is_empty(), "{:?}", h.questions);
}

#[test]
fn a_null_server_closes_after_too_many_refused_commands() {
    let mut h = paused(100);
    let _ = h.session.poll_output();
    h.session.greet(Some(Duration::ZERO));
    let _ = h.drain();
    for _ in 0..25 {
        assert_eq!(h.send(b"HELP\r\n"), "550 5.0.0 Command rejected\r\n");
    }
    assert_eq!(
        h.send(b"HELP\r\n"),
        "421 4.7.0 mx.example.org Too many bad commands; closing connection\r\n"
    );
    assert!(h.closed);
}

/// Client traffic the shell read before the pause ended waits for the
/// greeting, and is answered after it.
#[test]
fn early_input_is_answered_after_the_greeting() {
    let mut h = paused(1000);
    let _ = h.session.poll_output();
    h.session.receive(b"QUIT\r\n");
    assert_eq!(h.drain(), b"");
    h.session.greet(Some(Duration::from_millis(10)));
    assert_eq!(
        h.drain(),
        b"554 mx.example.org ESMTP not accepting messages\r\n\
          221 2.0.0 mx.example.org closing connection\r\n"
    );
}

/// The policy's refusal of an unknown user `addr` (without brackets).
fn unknown(addr: &str) -> Reply {
    Reply::new(
        550,
        EnhancedCode::new(5, 1, 1),
        format!("<{addr}>... User unknown"),
    )
}

#[test]
fn bad_recipients_past_the_throttle_wait_a_second_each() {
    let mut policy = Policy::default();
    for u in ["u1@example.org", "u2@example.org", "u3@example.org"] {
        policy.refuse_rcpt.insert(u.into(), unknown(u));
    }
    let mut h = Harness::new(
        ServerConfig {
            bad_rcpt_throttle: 2,
            max_recipients: 1,
            ..config()
        },
        policy,
    );
    let _ = h.drain();
    h.run(
        "C: HELO client.example
         S: 250 mx.example.org Hello client.example [192.0.2.1], pleased to meet you
         C: RCPT TO:<u1@example.org>
         S: 503 5.0.0 Need MAIL before RCPT
         C: MAIL FROM:<s@example.net>
         S: 250 2.1.0 <s@example.net>... Sender ok
         C: RCPT TO:<u1@example.org>
         S: 550 5.1.1 <u1@example.org>... User unknown
         C: RCPT TO:<a@example.org>
         S: 250 2.1.5 <a@example.org>... Recipient ok
         C: RCPT TO:<b@example.org>
         S: 452 4.5.3 Too many recipients",
    );
    // Two refused (503 before MAIL does not count, as in sendmail).
    assert!(h.pauses.is_empty(), "{:?}", h.pauses);
    assert!(h.events.is_empty(), "{:?}", h.events);
    // RSET does not forget them.
    h.run(
        "C: RSET
         S: 250 2.0.0 Reset state
         C: MAIL FROM:<s@example.net>
         S: 250 2.1.0 <s@example.net>... Sender ok
         C: RCPT TO:<u2@example.org>
         S: 550 5.1.1 <u2@example.org>... User unknown
         C: RCPT TO:<c@example.org>
         S: 250 2.1.5 <c@example.org>... Recipient ok
         C: RCPT TO:<bad@@example.org>
         S: 553 5.1.2 <bad@@example.org>... Invalid domain",
    );
    assert_eq!(h.pauses, [Duration::from_secs(1); 3]);
    assert_eq!(h.events, [Event::RcptFlood]);
}

/// The wait comes before the throttled RCPT's reply, after the replies
/// before it went out.
#[test]
fn the_throttle_waits_before_the_reply() {
    let mut policy = Policy::default();
    policy
        .refuse_rcpt
        .insert("u@example.org".into(), unknown("u@example.org"));
    let mut h = Harness::new(
        ServerConfig {
            bad_rcpt_throttle: 1,
            ..config()
        },
        policy,
    );
    let _ = h.drain();
    h.send(b"HELO c\r\n");
    h.send(b"MAIL FROM:<s@example.net>\r\nRCPT TO:<u@example.org>\r\n");
    h.session.receive(b"NOOP\r\nRCPT TO:<a@example.org>\r\n");
    let mut order = Vec::new();
    while let Some(out) = h.session.poll_output() {
        match out {
            Output::Send(b) => order.push(String::from_utf8(b).unwrap()),
            Output::Pause(d) => order.push(format!("pause {d:?}")),
            Output::Event(e) => order.push(format!("{e:?}")),
            Output::Ask(_) => h
                .session
                .answer(postern_smtp::server::Answer::Accept)
                .unwrap(),
            _ => {}
        }
    }
    assert_eq!(
        order,
        [
            "RcptFlood",
            "250 2.0.0 OK\r\n",
            "pause 1s",
            "250 2.1.5 <a@example.org>... Recipient ok\r\n"
        ]
    );
}

#[test]
fn message_size_refusals_in_sendmails_words() {
    let mut h = Harness::new(
        ServerConfig {
            max_message_size: 10,
            ..config()
        },
        Policy::default(),
    );
    let _ = h.drain();
    h.run(
        "C: EHLO client.example
         S: 250-mx.example.org Hello client.example [192.0.2.1], pleased to meet you
         S: 250-ENHANCEDSTATUSCODES
         S: 250-PIPELINING
         S: 250-EXPN
         S: 250-VERB
         S: 250-8BITMIME
         S: 250-SIZE 10
         S: 250-DSN
         S: 250-ETRN
         S: 250-DELIVERBY
         S: 250 HELP
         C: MAIL FROM:<s@example.net> SIZE=11
         S: 552 5.2.3 Message size exceeds fixed maximum message size (10)
         C: MAIL FROM:<s@example.net> SIZE=99999999999999999999999
         S: 552 5.2.3 Message size exceeds maximum value",
    );
    // Without SIZE (or with a SIZE that lied), the message is refused
    // after its end, and the size is reported for the log.
    h.send(b"MAIL FROM:<s@example.net>\r\nRCPT TO:<a@example.org>\r\nDATA\r\n");
    assert_eq!(
        h.send(b"0123456789abcdef\r\n.\r\n"),
        "552 5.2.3 Message exceeds maximum fixed size (10)\r\n"
    );
    assert!(h
        .events
        .contains(&Event::MessageTooBig { size: 18, max: 10 }));
    assert!(h.committed.is_empty());
}
