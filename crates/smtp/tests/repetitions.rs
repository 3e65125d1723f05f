//! Commands repeated to hold a session open (sendmail's checksmtpattack
//! for HELO/EHLO, ETRN, NOOP and VERB): the limit's command is logged as
//! a possible attack and slowed down, or, when the number of sessions is
//! limited (MaxDaemonChildren), the session ends with 421.

mod harness;

use std::time::Duration;

use harness::{Harness, Policy};
use postern_smtp::server::{Event, ServerConfig};
use postern_smtp::PrivacyFlags;

fn session(stop_attacks: bool, max_noop: u32) -> Harness {
    let mut cfg = ServerConfig::new("mx.example", "localhost [127.0.0.1]");
    cfg.greeting = "mx.example Postern test".into();
    cfg.privacy = PrivacyFlags::PUBLIC;
    cfg.stop_attacks = stop_attacks;
    cfg.max_noop_commands = max_noop;
    cfg.starttls = true;
    let mut h = Harness::new(cfg, Policy::default());
    h.drain();
    h
}

fn attacks(h: &Harness) -> Vec<&Event> {
    h.events
        .iter()
        .filter(|e| matches!(e, Event::PossibleAttack { .. }))
        .collect()
}

fn secs(h: &Harness) -> Vec<u64> {
    h.pauses.iter().map(Duration::as_secs).collect()
}

#[test]
fn the_twentieth_noop_is_logged_and_each_one_after_waits_longer() {
    let mut h = session(false, 20);
    for _ in 0..19 {
        assert_eq!(h.send(b"NOOP\r\n"), "250 2.0.0 OK\r\n");
    }
    assert!(h.pauses.is_empty() && attacks(&h).is_empty());
    for _ in 20..=24 {
        assert_eq!(h.send(b"NOOP\r\n"), "250 2.0.0 OK\r\n");
    }
    assert_eq!(secs(&h), [1, 2, 4, 8, 16]);
    assert_eq!(
        attacks(&h),
        [&Event::PossibleAttack {
            command: "NOOP",
            count: 20
        }]
    );
    assert!(!h.closed);
}

/// sendmail with MaxDaemonChildren set: after the first pause, the 421
/// that "too many bad commands" gives, and the connection is closed. A
/// client that pipelines NOOPs and never reads gets no further.
#[test]
fn a_limited_server_ends_the_session_at_the_limit() {
    let mut h = session(true, 20);
    let mut noops = Vec::new();
    for _ in 0..30 {
        noops.extend_from_slice(b"NOOP\r\n");
    }
    let out = h.send(&noops);
    assert_eq!(out.matches("250 2.0.0 OK\r\n").count(), 19, "{out}");
    assert!(
        out.ends_with("421 4.7.0 mx.example Too many bad commands; closing connection\r\n"),
        "{out}"
    );
    assert!(h.closed);
    assert_eq!(secs(&h), [1]);
}

#[test]
fn verb_counts_with_noop_and_the_option_sets_the_limit() {
    let mut h = session(true, 3);
    assert_eq!(h.send(b"NOOP\r\n"), "250 2.0.0 OK\r\n");
    assert_eq!(h.send(b"VERB\r\n"), "250 2.0.0 Verbose mode\r\n");
    assert!(h.send(b"NOOP\r\n").starts_with("421 4.7.0 "));
    assert_eq!(
        attacks(&h),
        [&Event::PossibleAttack {
            command: "NOOP",
            count: 3
        }]
    );
}

#[test]
fn no_limit_when_the_option_is_zero() {
    let mut h = session(true, 0);
    for _ in 0..100 {
        assert_eq!(h.send(b"NOOP\r\n"), "250 2.0.0 OK\r\n");
    }
    assert!(h.pauses.is_empty() && !h.closed);
}

/// As in sendmail's transcript A3: two greetings without a name, then a
/// good one: the third is logged (`command=HELO/EHLO, count=3`), waits a
/// second and is answered.
#[test]
fn the_third_greeting_is_logged_even_when_the_first_two_failed() {
    let mut h = session(false, 20);
    assert!(h.send(b"EHLO\r\n").starts_with("501 5.0.0 EHLO requires"));
    assert!(h.send(b"HELO\r\n").starts_with("501 5.0.0 HELO requires"));
    assert!(h
        .send(b"EHLO client.example\r\n")
        .starts_with("250-mx.example"));
    assert_eq!(
        attacks(&h),
        [&Event::PossibleAttack {
            command: "HELO/EHLO",
            count: 3
        }]
    );
    assert_eq!(secs(&h), [1]);
}

/// RFC 3207 asks for a new EHLO after STARTTLS: a client that greeted
/// twice before (one refused) is not ended for it.
#[test]
fn the_greeting_after_starttls_is_not_a_repetition() {
    let mut h = session(true, 20);
    assert!(h.send(b"EHLO\r\n").starts_with("501 "));
    assert!(h.send(b"EHLO client.example\r\n").starts_with("250-"));
    assert!(h.send(b"STARTTLS\r\n").starts_with("220 2.0.0 "));
    h.session.tls_started(harness::tls_info()).unwrap();
    h.drain();
    assert!(h.send(b"EHLO client.example\r\n").starts_with("250-"));
    assert!(!h.closed && attacks(&h).is_empty());
}

#[test]
fn etrn_is_slowed_from_the_eighth() {
    let mut h = session(false, 20);
    h.send(b"EHLO client.example\r\n");
    for _ in 0..8 {
        assert!(h.send(b"ETRN example.net\r\n").starts_with("250 2.0.0 "));
    }
    assert_eq!(
        attacks(&h),
        [&Event::PossibleAttack {
            command: "ETRN",
            count: 8
        }]
    );
    assert_eq!(secs(&h), [1]);
}

/// VRFY and EXPN under a limited server: the sixth waits a second and
/// ends the session, whatever its answer would have been.
#[test]
fn the_sixth_vrfy_ends_a_limited_servers_session() {
    let mut h = session(true, 20);
    h.send(b"EHLO client.example\r\n");
    for _ in 0..5 {
        assert!(!h.send(b"VRFY nosuch\r\n").starts_with("421"));
    }
    assert_eq!(
        h.send(b"EXPN nosuch\r\n"),
        "421 4.7.0 mx.example Too many bad commands; closing connection\r\n"
    );
    assert!(h.closed);
    assert_eq!(
        attacks(&h),
        [&Event::PossibleAttack {
            command: "EXPN",
            count: 6
        }]
    );
}
