//! The Dovecot backend against a real Dovecot (Debian's dovecot-core),
//! started by each test with its own users: PLAIN, LOGIN and CRAM-MD5
//! exchanges as an SMTP client would run them, failures, and a Dovecot
//! that goes away and comes back. Runs as root, as CI does.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use postern_auth::{Authenticator, ClientInfo, DovecotAuth, Step};
use postern_testkit::{AuthDovecot, StoredAs};

fn b64(bytes: impl AsRef<[u8]>) -> String {
    STANDARD.encode(bytes)
}

/// alice has a SHA512-CRYPT password, carol a plain one (for CRAM-MD5).
fn dovecot() -> AuthDovecot {
    AuthDovecot::start(&[
        ("alice", "secret", StoredAs::Sha512Crypt),
        ("carol", "cram pass", StoredAs::Plain),
    ])
}

/// A client from an address of its own (in 198.18.0.0/15, which is for
/// tests; no packet goes there): Dovecot delays every request from an
/// address with recent failures (its auth penalty: 2 s, 4 s … up to
/// 15 s), which a test that fails on purpose would otherwise pay for.
fn client() -> ClientInfo {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    ClientInfo {
        local_ip: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        remote_ip: Some(IpAddr::V4(Ipv4Addr::new(198, 18, (n >> 8) as u8, n as u8))),
        secured: false,
    }
}

fn success(user: &str) -> Step {
    Step::Success { user: user.into() }
}

fn plain(auth: &mut DovecotAuth, id: u32, user: &str, password: &str) -> Step {
    let initial = b64(format!("\0{user}\0{password}"));
    auth.start(id, "PLAIN", Some(&initial), &client())
}

#[test]
fn mechanisms_are_dovecots() {
    let dovecot = dovecot();
    let mut auth = DovecotAuth::new(dovecot.socket());
    let mut mechs: Vec<_> = auth
        .mechanisms()
        .unwrap_or_else(|e| panic!("{e}; log:\n{}", dovecot.log()))
        .into_iter()
        .map(|m| (m.name, m.plaintext))
        .collect();
    mechs.sort();
    assert_eq!(
        mechs,
        [
            ("CRAM-MD5".to_string(), false),
            ("LOGIN".to_string(), true),
            ("PLAIN".to_string(), true),
        ]
    );
}

#[test]
fn plain_with_initial_response() {
    let dovecot = dovecot();
    let mut auth = DovecotAuth::new(dovecot.socket());
    assert_eq!(plain(&mut auth, 1, "alice", "secret"), success("alice"));
    // The same id again, once the first exchange is over.
    assert_eq!(plain(&mut auth, 1, "carol", "cram pass"), success("carol"));
}

#[test]
fn plain_without_initial_response_gets_an_empty_challenge() {
    let dovecot = dovecot();
    let mut auth = DovecotAuth::new(dovecot.socket());
    assert_eq!(
        auth.start(7, "plain", None, &client()),
        Step::Challenge(String::new())
    );
    assert_eq!(auth.respond(7, &b64("\0alice\0secret")), success("alice"));
}

#[test]
fn plain_with_an_empty_initial_response_is_refused() {
    let dovecot = dovecot();
    let mut auth = DovecotAuth::new(dovecot.socket());
    // `AUTH PLAIN =`: an empty message, which PLAIN cannot take.
    assert!(matches!(
        auth.start(1, "PLAIN", Some(""), &client()),
        Step::Failure { .. }
    ));
    assert_eq!(plain(&mut auth, 2, "alice", "secret"), success("alice"));
}

#[test]
fn login_asks_for_user_name_and_password() {
    let dovecot = dovecot();
    let mut auth = DovecotAuth::new(dovecot.socket());
    assert_eq!(
        auth.start(3, "LOGIN", None, &client()),
        Step::Challenge(b64("Username:"))
    );
    assert_eq!(
        auth.respond(3, &b64("alice")),
        Step::Challenge(b64("Password:"))
    );
    assert_eq!(auth.respond(3, &b64("secret")), success("alice"));
}

#[test]
fn cram_md5() {
    let dovecot = dovecot();
    let mut auth = DovecotAuth::new(dovecot.socket());
    let Step::Challenge(challenge) = auth.start(4, "CRAM-MD5", None, &client()) else {
        panic!("no CRAM-MD5 challenge; log:\n{}", dovecot.log())
    };
    let challenge = STANDARD.decode(challenge).expect("base64 challenge");
    assert!(challenge.starts_with(b"<") && challenge.ends_with(b">"));
    // RFC 2195: the user, a space, and HMAC-MD5(password, challenge) in hex.
    let answer = |password: &str| {
        let mut mac = Hmac::<md5::Md5>::new_from_slice(password.as_bytes()).expect("any key");
        mac.update(&challenge);
        let digest: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        b64(format!("carol {digest}"))
    };
    assert_eq!(auth.respond(4, &answer("cram pass")), success("carol"));

    let Step::Challenge(_) = auth.start(5, "CRAM-MD5", None, &client()) else {
        panic!("no second challenge")
    };
    assert!(matches!(
        auth.respond(5, &answer("cram pass")), // an answer to the old challenge
        Step::Failure { .. }
    ));
}

#[test]
fn wrong_password_and_unknown_user_fail() {
    let dovecot = dovecot();
    let mut auth = DovecotAuth::new(dovecot.socket());
    let started = Instant::now();
    assert!(matches!(
        plain(&mut auth, 1, "alice", "Secret"),
        Step::Failure { .. }
    ));
    assert!(matches!(
        plain(&mut auth, 2, "mallory", "secret"),
        Step::Failure { .. }
    ));
    assert!(matches!(
        plain(&mut auth, 3, "root", "secret"),
        Step::Failure { .. }
    ));
    // auth_failure_delay = 0 in the test configuration.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?} {}",
        started.elapsed(),
        dovecot.log()
    );
    assert_eq!(plain(&mut auth, 4, "alice", "secret"), success("alice"));
}

#[test]
fn unknown_mechanism_is_refused_and_not_sent() {
    let dovecot = dovecot();
    let mut auth = DovecotAuth::new(dovecot.socket());
    for mech in [
        "DIGEST-MD5",
        "GSSAPI",
        "EXTERNAL",
        "ANONYMOUS",
        "",
        "PLAIN ",
    ] {
        assert_eq!(
            auth.start(1, mech, None, &client()),
            Step::Failure {
                reason: "mechanism not offered".into()
            },
            "{mech:?}"
        );
    }
    // Dovecot disconnects a client that asks for a mechanism it does not
    // have: the connection is still fine, so none was sent.
    assert_eq!(plain(&mut auth, 2, "alice", "secret"), success("alice"));
    assert!(!dovecot.log().contains("BUG"), "{}", dovecot.log());
}

#[test]
fn a_tab_from_the_client_cannot_inject_a_field() {
    let dovecot = dovecot();
    let mut auth = DovecotAuth::new(dovecot.socket());
    // In the mechanism name: not one Dovecot offered.
    assert!(matches!(
        auth.start(1, "PLAIN\tresp=AGFsaWNlAHNlY3JldA==", None, &client()),
        Step::Failure { .. }
    ));
    // In the base64 of the initial response or of an answer: not base64.
    let initial = format!("{}\tuser=alice", b64("\0alice\0wrong"));
    assert_eq!(
        auth.start(2, "PLAIN", Some(&initial), &client()),
        Step::Malformed
    );
    assert_eq!(
        auth.start(3, "LOGIN", None, &client()),
        Step::Challenge(b64("Username:"))
    );
    assert_eq!(
        auth.respond(3, "YWxpY2U=\nOK\t3\tuser=alice"),
        Step::Malformed
    );
    // Inside the decoded message: Dovecot gets it as base64 and finds no
    // such user.
    assert!(matches!(
        plain(&mut auth, 4, "alice\tnologin", "secret"),
        Step::Failure { .. }
    ));
    assert!(matches!(
        plain(&mut auth, 5, "alice\nOK", "x\tuser=alice"),
        Step::Failure { .. }
    ));
    assert_eq!(plain(&mut auth, 6, "alice", "secret"), success("alice"));
    assert!(!dovecot.log().contains("BUG"), "{}", dovecot.log());
}

#[test]
fn malformed_answer_ends_the_exchange_and_keeps_the_connection() {
    let dovecot = dovecot();
    let mut auth = DovecotAuth::new(dovecot.socket());
    assert!(matches!(
        auth.start(1, "LOGIN", None, &client()),
        Step::Challenge(_)
    ));
    assert_eq!(auth.respond(1, "*"), Step::Malformed);
    assert!(matches!(
        auth.respond(1, &b64("alice")),
        Step::Failure { .. }
    ));
    assert_eq!(plain(&mut auth, 1, "alice", "secret"), success("alice"));
}

#[test]
fn exchanges_interleave_and_cancel() {
    let dovecot = dovecot();
    let mut auth = DovecotAuth::new(dovecot.socket());
    for id in [10, 11, 12] {
        assert!(matches!(
            auth.start(id, "LOGIN", None, &client()),
            Step::Challenge(_)
        ));
    }
    auth.cancel(11);
    assert!(matches!(
        auth.respond(12, &b64("carol")),
        Step::Challenge(_)
    ));
    assert!(matches!(
        auth.respond(10, &b64("alice")),
        Step::Challenge(_)
    ));
    assert!(matches!(
        auth.respond(11, &b64("alice")),
        Step::Failure { .. }
    ));
    assert_eq!(auth.respond(10, &b64("secret")), success("alice"));
    assert_eq!(auth.respond(12, &b64("cram pass")), success("carol"));
    // Starting an id that is still open starts it afresh.
    assert!(matches!(
        auth.start(13, "LOGIN", None, &client()),
        Step::Challenge(_)
    ));
    assert_eq!(plain(&mut auth, 13, "alice", "secret"), success("alice"));
}

#[test]
fn dovecot_is_told_the_client_address() {
    let dovecot = dovecot();
    let mut auth = DovecotAuth::new(dovecot.socket());
    let from = ClientInfo {
        local_ip: Some("192.0.2.1".parse().unwrap()),
        remote_ip: Some("198.51.100.7".parse().unwrap()),
        secured: true,
    };
    let initial = b64("\0alice\0wrong");
    assert!(matches!(
        auth.start(1, "PLAIN", Some(&initial), &from),
        Step::Failure { .. }
    ));
    let log = dovecot.log();
    assert!(log.contains("198.51.100.7"), "{log}");
}

#[test]
fn dovecot_going_away_is_a_temporary_failure_until_it_is_back() {
    let mut dovecot = dovecot();
    let mut auth = DovecotAuth::new(dovecot.socket())
        .with_timeouts(Duration::from_secs(5), Duration::from_secs(5));
    assert!(matches!(
        auth.start(1, "LOGIN", None, &client()),
        Step::Challenge(_)
    ));

    dovecot.stop();
    let started = Instant::now();
    let step = auth.respond(1, &b64("alice"));
    assert!(matches!(step, Step::TemporaryFailure { .. }), "{step:?}");
    assert!(matches!(
        plain(&mut auth, 2, "alice", "secret"),
        Step::TemporaryFailure { .. }
    ));
    assert!(auth.mechanisms().is_err());
    assert!(started.elapsed() < Duration::from_secs(3), "it waited");

    dovecot.restart();
    assert_eq!(plain(&mut auth, 3, "alice", "secret"), success("alice"));
    assert!(matches!(
        auth.respond(1, &b64("alice")),
        Step::Failure { .. }
    ));
}

#[test]
fn a_dovecot_restarted_unnoticed_is_reconnected_to() {
    let mut dovecot = dovecot();
    let mut auth = DovecotAuth::new(dovecot.socket());
    assert_eq!(plain(&mut auth, 1, "alice", "secret"), success("alice"));
    dovecot.restart();
    // The old connection is dead; the request goes again on a new one.
    assert_eq!(plain(&mut auth, 2, "alice", "secret"), success("alice"));
}

#[test]
fn two_authenticators_in_one_process_share_a_dovecot() {
    let dovecot = dovecot();
    let mut first = DovecotAuth::new(dovecot.socket());
    let mut second = DovecotAuth::new(dovecot.socket());
    assert_eq!(plain(&mut first, 1, "alice", "secret"), success("alice"));
    assert_eq!(
        plain(&mut second, 1, "carol", "cram pass"),
        success("carol")
    );
    assert_eq!(plain(&mut first, 1, "alice", "secret"), success("alice"));
    assert!(!dovecot.log().contains("BUG"), "{}", dovecot.log());
}
