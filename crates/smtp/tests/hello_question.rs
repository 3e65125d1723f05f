//! HELO and EHLO asked of the shell (`ask_hello`, when mail filters are
//! configured): accepted, refused as sendmail's milter refusal (the
//! greeting answered, the later commands refused), or shut down with 421;
//! and unrecognised commands asked about too (`ask_unknown`).

mod harness;

use harness::{Harness, Policy};
use postern_smtp::server::{Event, Question, ServerConfig};
use postern_smtp::{EnhancedCode, PrivacyFlags, Reply};

fn session(policy: Policy, auth_from_shell: bool) -> Harness {
    let mut cfg = ServerConfig::new("mx.example", "localhost [127.0.0.1]");
    cfg.greeting = "mx.example Postern test".into();
    cfg.privacy = PrivacyFlags::PUBLIC;
    cfg.ask_hello = true;
    cfg.auth_from_shell = auth_from_shell;
    let mut h = Harness::new(cfg, policy);
    h.drain();
    h
}

fn refusing(name: &str, code: u16, text: &str) -> Policy {
    let mut p = Policy::default();
    let class = (code / 100) as u8;
    p.refuse_hello.insert(
        name.into(),
        Reply::new(code, EnhancedCode::new(class, 7, 1), text),
    );
    p
}

#[test]
fn an_accepted_greeting_is_asked_once_with_its_name() {
    let mut h = session(Policy::default(), false);
    assert!(h
        .send(b"EHLO client.example\r\n")
        .starts_with("250-mx.example Hello"));
    assert_eq!(
        h.questions,
        [Question::Hello {
            name: "client.example".into(),
            extended: true
        }]
    );
    // A bad name is refused by the session before anyone is asked.
    assert!(h.send(b"HELO\r\n").starts_with("501 "));
    assert_eq!(h.questions.len(), 1);
}

#[test]
fn a_refused_greeting_is_answered_and_later_commands_get_the_refusal() {
    let mut h = session(refusing("spam.example", 550, "Go away"), false);
    assert!(h
        .send(b"HELO spam.example\r\n")
        .starts_with("250 mx.example Hello"));
    assert_eq!(
        h.send(b"MAIL FROM:<a@example.com>\r\n"),
        "550 5.7.1 Go away\r\n"
    );
    assert_eq!(h.send(b"NOOP\r\n"), "250 2.0.0 OK\r\n");
    assert!(!h.closed);
}

#[test]
fn a_421_closes_at_once() {
    let mut h = session(refusing("spam.example", 421, "closing connection"), false);
    assert_eq!(
        h.send(b"EHLO spam.example\r\n"),
        "421 4.7.1 closing connection\r\n"
    );
    assert!(h.closed);
}

/// With the AUTH mechanisms asked too, an EHLO is still one greeting for
/// the repetition count: the third would be logged as an attack.
#[test]
fn questions_do_not_count_a_greeting_twice() {
    let mut h = session(Policy::default(), true);
    for _ in 0..2 {
        assert!(h.send(b"EHLO client.example\r\n").starts_with("250-"));
    }
    assert!(!h
        .events
        .iter()
        .any(|e| matches!(e, Event::PossibleAttack { .. })));
}

#[test]
fn an_unknown_command_is_asked_about_and_either_reply_counts_as_bad() {
    let mut cfg = ServerConfig::new("mx.example", "localhost [127.0.0.1]");
    cfg.ask_unknown = true;
    let mut h = Harness::new(cfg.clone(), Policy::default());
    h.drain();
    assert_eq!(
        h.send(b"XYZZY plugh\r\n"),
        "500 5.5.1 Command unrecognized: \"XYZZY plugh\"\r\n"
    );
    assert_eq!(h.questions, [Question::Unknown("XYZZY plugh".into())]);
    let policy = Policy {
        refuse_unknown: Some(Reply::new(
            550,
            EnhancedCode::new(5, 7, 1),
            "the filter knows no such thing",
        )),
        ..Policy::default()
    };
    let mut h = Harness::new(cfg, policy);
    h.drain();
    for _ in 0..24 {
        assert_eq!(
            h.send(b"XYZZY\r\n"),
            "550 5.7.1 the filter knows no such thing\r\n"
        );
    }
    // The 25th bad command ends the session, as without a filter.
    assert!(h
        .send(b"XYZZY\r\n")
        .contains("421 4.7.0 mx.example Too many bad commands"));
    assert!(h.closed);
}
