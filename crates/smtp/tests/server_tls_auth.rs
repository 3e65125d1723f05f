//! The server session's STARTTLS and AUTH paths, errors included, as
//! transcripts.

mod harness;

use harness::{example_org_config as config, greeted, seed_config, seed_policy, Harness};
use postern_smtp::server::{Event, ServerConfig};
use postern_smtp::TlsInfo;

fn tls() -> TlsInfo {
    harness::tls_info()
}

#[test]
fn starttls_discards_pipelined_plaintext_and_resets_the_session() {
    let mut h = greeted(ServerConfig {
        starttls: true,
        ..config()
    });
    assert_eq!(
        h.send(b"STARTTLS\r\nRSET\r\n"),
        "220 2.0.0 Ready to start TLS\r\n",
        "RSET must get no answer"
    );
    assert!(h.starttls);
    assert!(h
        .events
        .contains(&Event::DiscardedAfterStartTls { bytes: 6 }));
    h.session.tls_started(tls()).unwrap();
    assert_eq!(h.drain(), b"");
    // The client must introduce itself again; STARTTLS is no longer offered.
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
         C: STARTTLS
         S: 503 5.5.1 TLS already active
         C: MAIL FROM:<s@example.net>
         C: RCPT TO:<a@example.org>
         C: DATA
         S: 250 2.1.0 <s@example.net>... Sender ok
         S: 250 2.1.5 <a@example.org>... Recipient ok
         S: 354 Enter mail, end with \".\" on a line by itself
         C: .
         S: 250 2.0.0 h0UGn9P7001230 Message accepted for delivery",
    );
    let env = &h.committed[0].0;
    assert_eq!(env.protocol, "ESMTPS");
    assert_eq!(env.tls.as_ref().unwrap().cipher, "TLS_AES_256_GCM_SHA384");
}

#[test]
fn starttls_refusals() {
    let mut h = greeted(config());
    assert_eq!(h.send(b"STARTTLS\r\n"), "503 5.5.0 TLS not available\r\n");
    let mut h = greeted(ServerConfig {
        starttls: true,
        ..config()
    });
    assert_eq!(
        h.send(b"STARTTLS now\r\n"),
        "501 5.5.2 Syntax error (no parameters allowed)\r\n"
    );
    h.send(b"MAIL FROM:<s@example.net>\r\n");
    assert_eq!(
        h.send(b"STARTTLS\r\n"),
        "503 5.5.0 TLS not permitted during a mail transaction\r\n"
    );
}

#[test]
fn plaintext_during_the_handshake_fails_it() {
    let mut h = greeted(ServerConfig {
        starttls: true,
        ..config()
    });
    h.send(b"STARTTLS\r\n");
    h.send(b"MAIL FROM:<injected@example.net>\r\n");
    assert!(h.session.tls_started(tls()).is_err());
    h.drain();
    assert!(h.closed);
}

#[test]
fn auth_exchange() {
    let mut policy = seed_policy();
    policy.auth = Some(("dXNlciBzZWNyZXQ=".into(), "user".into()));
    let mut h = Harness::new(seed_config(), policy);
    h.drain();
    h.run(
        "C: EHLO client.example
         S: 250-chef.wrotethebook.com Hello root@localhost, pleased to meet you
         S: 250-ENHANCEDSTATUSCODES
         S: 250-PIPELINING
         S: 250-EXPN
         S: 250-VERB
         S: 250-8BITMIME
         S: 250-SIZE
         S: 250-DSN
         S: 250-ETRN
         S: 250-AUTH DIGEST-MD5 CRAM-MD5
         S: 250-DELIVERBY
         S: 250 HELP
         C: AUTH PLAIN
         S: 504 5.3.3 AUTH mechanism PLAIN not available
         C: AUTH CRAM-MD5
         S: 334 PDEyMzQ1Ni43ODlAaG9zdD4=
         C: *
         S: 501 5.0.0 AUTH aborted
         C: AUTH CRAM-MD5
         S: 334 PDEyMzQ1Ni43ODlAaG9zdD4=
         C: d3Jvbmc=
         S: 535 5.7.0 authentication failed
         C: AUTH CRAM-MD5
         S: 334 PDEyMzQ1Ni43ODlAaG9zdD4=
         C: dXNlciBzZWNyZXQ=
         S: 235 2.0.0 OK Authenticated
         C: AUTH CRAM-MD5
         S: 503 5.5.0 Already Authenticated",
    );
    h.send(b"MAIL FROM:<s@example.net>\r\nRCPT TO:<a@example.org>\r\nDATA\r\n");
    h.send(b".\r\n");
    assert_eq!(h.committed[0].0.protocol, "ESMTPA");
    assert_eq!(h.committed[0].0.authenticated.as_deref(), Some("user"));
}

#[test]
fn auth_options_p_the_msa_and_failures() {
    let mut policy = seed_policy();
    policy.auth = Some(("dXNlciBzZWNyZXQ=".into(), "user".into()));
    let cfg = ServerConfig {
        auth_mechanisms: vec!["PLAIN".into(), "CRAM-MD5".into(), "LOGIN".into()],
        auth_tls_only: vec!["PLAIN".into(), "LOGIN".into()],
        auth_max_failures: 2,
        auth_required: true,
        starttls: true,
        ..seed_config()
    };
    let mut h = Harness::new(cfg, policy);
    h.drain();
    h.send(b"EHLO client.example\r\n");
    h.run(
        "C: MAIL FROM:<s@example.net>
         S: 530 5.7.0 Authentication required
         C: AUTH PLAIN AHVzZXIAc2VjcmV0
         S: 538 5.7.11 Encryption required for requested authentication mechanism
         C: AUTH CRAM-MD5 %%%
         S: 501 5.5.4 cannot decode AUTH parameter %%%
         C: AUTH CRAM-MD5
         S: 334 PDEyMzQ1Ni43ODlAaG9zdD4=
         C: not base64!
         S: 501 5.5.4 cannot decode AUTH parameter not base64!
         C: AUTH CRAM-MD5
         S: 334 PDEyMzQ1Ni43ODlAaG9zdD4=
         C: d3Jvbmc=
         S: 535 5.7.0 authentication failed
         C: MAIL FROM:<s@example.net> AUTH=<s@example.net>
         S: 530 5.7.0 Authentication required
         C: AUTH CRAM-MD5
         S: 334 PDEyMzQ1Ni43ODlAaG9zdD4=
         C: d3Jvbmc=
         S: 535 5.7.0 authentication failed
         S: 421 4.7.0 chef.wrotethebook.com Too many authentication failures; closing connection",
    );
    assert!(h.closed);
    // Each failure is answered later than the one before.
    let secs: Vec<u64> = h.pauses.iter().map(|d| d.as_secs()).collect();
    assert_eq!(secs, [1, 2]);
    assert!(h
        .events
        .iter()
        .any(|e| matches!(e, Event::TooManyAuthFailures { failures: 2 })));
}

#[test]
fn plain_text_mechanisms_appear_after_starttls_and_auth_param_is_believed_only_then() {
    let mut policy = seed_policy();
    policy.auth = Some(("dXNlciBzZWNyZXQ=".into(), "user".into()));
    let cfg = ServerConfig {
        auth_mechanisms: vec!["PLAIN".into(), "CRAM-MD5".into()],
        auth_tls_only: vec!["PLAIN".into()],
        starttls: true,
        ..seed_config()
    };
    let mut h = Harness::new(cfg, policy);
    h.drain();
    let ehlo = h.send(b"EHLO client.example\r\n");
    assert!(ehlo.contains("250-AUTH CRAM-MD5\r\n"), "{ehlo}");
    h.send(
        b"MAIL FROM:<s@example.net> AUTH=<boss@example.net>\r\nRCPT TO:<a@example.org>\r\nDATA\r\n",
    );
    h.send(b".\r\n");
    assert_eq!(h.committed[0].0.mail_params.auth.as_deref(), Some("<>"));
    h.send(b"STARTTLS\r\n");
    h.session.tls_started(tls()).unwrap();
    let ehlo = h.send(b"EHLO client.example\r\n");
    assert!(ehlo.contains("250-AUTH PLAIN CRAM-MD5\r\n"), "{ehlo}");
    assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
    let r = h.send(b"AUTH PLAIN\r\ndXNlciBzZWNyZXQ=\r\n");
    assert_eq!(
        r,
        "334 PDEyMzQ1Ni43ODlAaG9zdD4=\r\n235 2.0.0 OK Authenticated\r\n"
    );
    h.send(
        b"MAIL FROM:<s@example.net> AUTH=<boss@example.net>\r\nRCPT TO:<a@example.org>\r\nDATA\r\n",
    );
    let r = h.send(b".\r\n");
    assert!(r.ends_with(" Message accepted for delivery\r\n"), "{r}");
    assert_eq!(
        h.committed[1].0.mail_params.auth.as_deref(),
        Some("<boss@example.net>")
    );
    assert_eq!(h.committed[1].0.protocol, "ESMTPSA");
}

#[test]
fn mechanisms_from_the_shell_are_asked_once_at_the_first_ehlo() {
    let mut policy = seed_policy();
    policy.mechanisms = vec!["PLAIN".into(), "LOGIN".into()];
    let cfg = ServerConfig {
        auth_mechanisms: Vec::new(),
        auth_from_shell: true,
        ..seed_config()
    };
    let mut h = Harness::new(cfg, policy);
    // The greeting does not wait for them.
    assert!(h.drain().starts_with(b"220 "));
    assert!(h.questions.is_empty());
    let ehlo = h.send(b"EHLO a.example\r\n");
    assert!(ehlo.contains("250-AUTH PLAIN LOGIN\r\n"), "{ehlo}");
    h.send(b"EHLO b.example\r\n");
    let asked = h
        .questions
        .iter()
        .filter(|q| matches!(q, postern_smtp::server::Question::AuthMechanisms))
        .count();
    assert_eq!(asked, 1);
}

/// Found by fuzzing (fuzz/fuzz_targets/smtp_server.rs): a timeout while
/// the TLS handshake ran wrote the plaintext 421 into it.
#[test]
fn a_timeout_during_the_tls_handshake_writes_nothing() {
    let mut cfg = config();
    cfg.starttls = true;
    let mut h = greeted(cfg);
    assert_eq!(h.send(b"STARTTLS\r\n"), "220 2.0.0 Ready to start TLS\r\n");
    h.session.timed_out();
    assert_eq!(h.drain(), b"");
    assert!(h.closed);
}
