//! VRFY and EXPN: sendmail's replies for each kind of answer, the log
//! events, and the slowdown against address harvesting (sendmail's
//! MAXVRFYCOMMANDS and checksmtpattack).

mod harness;

use std::time::Duration;

use harness::{Harness, Policy};
use postern_smtp::server::{Answer, Event, ServerConfig, VerifiedAddress};
use postern_smtp::PrivacyFlags;

fn config(privacy: PrivacyFlags) -> ServerConfig {
    let mut cfg = ServerConfig::new("mx.example", "localhost [127.0.0.1]");
    cfg.greeting = "mx.example Postern test".into();
    cfg.privacy = privacy;
    cfg
}

fn addr(name: Option<&str>, a: &str) -> VerifiedAddress {
    VerifiedAddress {
        full_name: name.map(String::from),
        address: a.into(),
    }
}

/// The answers sendmail 8.17 gave in `smtp-transcripts.txt` (A1), and
/// a list.
fn policy() -> Policy {
    let mut policy = Policy::default();
    let one = |a: VerifiedAddress, definitive| Answer::Addresses {
        addresses: vec![a],
        definitive,
    };
    policy.lookups.insert(
        "root".into(),
        one(addr(Some("root"), "root@mx.example"), true),
    );
    policy.lookups.insert(
        "rcpt@example.net".into(),
        one(addr(None, "rcpt@example.net"), false),
    );
    policy.lookups.insert(
        "<staff>".into(),
        Answer::Addresses {
            addresses: vec![
                addr(Some("Alice Example"), "alice@mx.example"),
                addr(None, "bob@example.net"),
                addr(None, "/var/log/staff"),
            ],
            definitive: false,
        },
    );
    policy
}

fn greeted(privacy: PrivacyFlags) -> Harness {
    let mut h = Harness::new(config(privacy), policy());
    h.drain();
    assert!(h.send(b"HELO client.example\r\n").starts_with("250 "));
    h
}

#[test]
fn answers_in_sendmails_formats() {
    let mut h = greeted(PrivacyFlags::PUBLIC);
    h.run(
        "C: VRFY rcpt@example.net
         S: 252 2.1.5 <rcpt@example.net>
         C: VRFY root
         S: 250 2.1.5 root <root@mx.example>
         C: VRFY nosuchuser
         S: 550 5.1.1 nosuchuser... User unknown
         C: EXPN rcpt@example.net
         S: 250 2.1.5 <rcpt@example.net>
         C: EXPN <staff>
         S: 250-2.1.5 Alice Example <alice@mx.example>
         S: 250-2.1.5 <bob@example.net>
         S: 250 2.1.5 </var/log/staff>",
    );
    // Each is logged as sendmail's `<client>: VRFY <arg>`, none refused,
    // and five stay under the slowdown.
    let logged: Vec<String> = h
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Verify { verb, arg } => Some(format!("{verb} {arg}")),
            Event::Refused { .. } | Event::PossibleAttack { .. } => Some(format!("{e:?}")),
            _ => None,
        })
        .collect();
    assert_eq!(
        logged,
        [
            "VRFY rcpt@example.net",
            "VRFY root",
            "VRFY nosuchuser",
            "EXPN rcpt@example.net",
            "EXPN <staff>"
        ]
    );
    assert!(h.pauses.is_empty());
}

#[test]
fn an_empty_answer_is_nothing_to_vrfy() {
    let mut h = greeted(PrivacyFlags::PUBLIC);
    h.policy.lookups.insert(
        "<empty>".into(),
        Answer::Addresses {
            addresses: vec![],
            definitive: true,
        },
    );
    h.run(
        "C: EXPN <empty>
         S: 554 5.5.2 Nothing to EXPN
         C: EXPN
         S: 501 5.5.2 Argument required",
    );
}

#[test]
fn novrfy_noexpn_and_goaway_keep_the_refusals() {
    for (words, vrfy, expn) in [
        (
            PrivacyFlags::NO_VRFY,
            "252 2.5.2 Cannot VRFY user; try RCPT to attempt delivery (or try finger)",
            "250 2.1.5 root <root@mx.example>",
        ),
        (
            PrivacyFlags::NO_EXPN,
            "250 2.1.5 root <root@mx.example>",
            "502 5.7.0 Sorry, we do not allow this operation",
        ),
        (
            PrivacyFlags::GOAWAY,
            "252 2.5.2 Cannot VRFY user; try RCPT to attempt delivery (or try finger)",
            "502 5.7.0 Sorry, we do not allow this operation",
        ),
    ] {
        let mut h = greeted(words);
        assert_eq!(h.send(b"VRFY root\r\n"), format!("{vrfy}\r\n"), "{words}");
        assert_eq!(h.send(b"EXPN root\r\n"), format!("{expn}\r\n"), "{words}");
        // A refused one is never asked about.
        let answered = [vrfy, expn].iter().filter(|r| r.starts_with("250")).count();
        assert_eq!(h.questions.len(), answered, "{words}: {:?}", h.questions);
    }
}

/// sendmail's checksmtpattack: the sixth VRFY/EXPN of a session is
/// logged as a possible attack, and from it on each reply waits n/6
/// seconds, an answered one 2^(n-6) seconds in all, at most 240.
#[test]
fn replies_slow_down_after_six() {
    let mut h = greeted(PrivacyFlags::PUBLIC);
    for _ in 0..5 {
        h.send(b"VRFY root\r\n");
    }
    assert!(h.pauses.is_empty());
    assert_eq!(
        h.send(b"EXPN root\r\n"),
        "250 2.1.5 root <root@mx.example>\r\n"
    );
    let attacks: Vec<_> = h
        .events
        .iter()
        .filter(|e| matches!(e, Event::PossibleAttack { .. }))
        .collect();
    assert_eq!(
        attacks,
        [&Event::PossibleAttack {
            command: "EXPN",
            count: 6
        }]
    );
    for _ in 7..=20 {
        h.send(b"VRFY root\r\n");
    }
    let secs: Vec<u64> = h.pauses.iter().map(Duration::as_secs).collect();
    assert_eq!(
        secs,
        [1, 2, 4, 8, 16, 32, 64, 128, 240, 240, 240, 240, 240, 240, 240]
    );
    // Logged once only.
    let n = h
        .events
        .iter()
        .filter(|e| matches!(e, Event::PossibleAttack { .. }))
        .count();
    assert_eq!(n, 1);
}

/// Refused ones count too, and wait only sendmail's first part (n/6).
#[test]
fn refused_ones_count_and_wait_less() {
    let mut h = greeted(PrivacyFlags::NO_VRFY);
    for _ in 0..7 {
        assert!(h.send(b"VRFY root\r\n").starts_with("252 2.5.2 "));
    }
    let secs: Vec<u64> = h.pauses.iter().map(Duration::as_secs).collect();
    assert_eq!(secs, [1, 1]);
    assert!(h.events.contains(&Event::PossibleAttack {
        command: "VRFY",
        count: 6
    }));
}

/// The replies before a slowed-down one go out before the wait.
#[test]
fn pipelined_replies_are_sent_before_the_wait() {
    let mut h = greeted(PrivacyFlags::PUBLIC);
    for _ in 0..5 {
        h.send(b"VRFY root\r\n");
    }
    h.session.receive(b"NOOP\r\nVRFY root\r\n");
    let mut order = Vec::new();
    while let Some(out) = h.session.poll_output() {
        match out {
            postern_smtp::server::Output::Send(b) => {
                order.push(String::from_utf8(b).unwrap());
            }
            postern_smtp::server::Output::Pause(d) => order.push(format!("pause {d:?}")),
            postern_smtp::server::Output::Ask(q) => {
                let _ = q;
                h.session
                    .answer(Answer::Addresses {
                        addresses: vec![addr(None, "root@mx.example")],
                        definitive: true,
                    })
                    .unwrap();
            }
            _ => {}
        }
    }
    assert_eq!(
        order,
        [
            "250 2.0.0 OK\r\n",
            "pause 1s",
            "250 2.1.5 <root@mx.example>\r\n"
        ]
    );
}
