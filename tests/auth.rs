//! SMTP AUTH (RFC 4954) against a running daemon, with real clients
//! (Python's smtplib, OpenSSL's s_client by way of smtplib's STARTTLS)
//! and real password stores: the `auth-users` file (hashes made by
//! Dovecot's own `doveadm pw`) and Dovecot's authentication service.
//!
//! Loopback is made an outsider (`O RelayNetworks=`), so relaying is
//! refused until the client authenticates.

mod common;

use std::net::SocketAddr;
use std::process::Command;

use common::{daemon_with_sink, seed_tls_defines, WAIT};
use postern_testkit::{
    doveadm_pw, free_port, make_certs, running_as_root, DaemonBuilder, Sink, SmtpConversation,
    StoredAs,
};

/// `auth-users` for alice (SHA512-CRYPT) and bob (BLF-CRYPT).
fn auth_users() -> String {
    format!(
        "# Dovecot's passwd-file format\nalice:{}\nbob:{}::::::\n",
        doveadm_pw("SHA512-CRYPT", "alice-secret"),
        doveadm_pw("BLF-CRYPT", "bob-secret"),
    )
}

/// Runs a Python smtplib script against `addr`; its standard output.
fn smtplib(addr: SocketAddr, script: &str, args: &[&str]) -> String {
    let port = addr.port().to_string();
    let mut all = vec!["-c", script, "127.0.0.1", &port];
    all.extend_from_slice(args);
    let out = Command::new("python3").args(&all).output().unwrap();
    assert!(
        out.status.success(),
        "python: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Logs in with `mechanism` (smtplib's own implementation of it) as
/// `user`/`password`, then sends one message to `rcpt`; prints each
/// reply as `code text`.
const LOGIN_AND_SEND: &str = r#"
import smtplib, sys
host, port, mech, user, password, rcpt, tls = sys.argv[1:8]
s = smtplib.SMTP(host, int(port), local_hostname="client.example", timeout=30)
if tls == "tls":
    import ssl
    ctx = ssl.create_default_context(cafile=sys.argv[8])
    ctx.check_hostname = False
    s.starttls(context=ctx)
s.ehlo("client.example")
s.user, s.password = user, password
try:
    code, text = s.auth(mech, getattr(s, "auth_" + mech.lower().replace("-", "_")),
                        initial_response_ok=(mech == "PLAIN"))
    print(code, text.decode())
except smtplib.SMTPAuthenticationError as e:
    print(e.smtp_code, e.smtp_error.decode())
    sys.exit(0)
code, text = s.docmd("MAIL FROM:<alice@client.example>")
print(code, text.decode())
code, text = s.docmd("RCPT TO:<" + rcpt + ">")
print(code, text.decode())
if code == 250:
    code, text = s.data(b"Subject: auth test\r\n\r\nhello\r\n")
    print(code, text.decode())
s.quit()
"#;

#[test]
fn the_auth_users_file_lets_a_user_relay_with_plain_and_login() {
    let sink = Sink::start();
    let users = auth_users();
    let daemon = common::daemon_with_sink_and_tables(
        &sink,
        &[
            "O RelayNetworks=",
            "O AuthMechanisms=PLAIN LOGIN CRAM-MD5",
            "O LogLevel=10",
        ],
        &[("auth-users", users.as_str())],
    );
    // The file backend has no CRAM-MD5 (it would need clear-text
    // passwords): EHLO offers what both have, in AuthMechanisms' order.
    let mut c = SmtpConversation::connect(daemon.smtp_addr());
    c.read_reply();
    c.send_line("EHLO client.example");
    let ehlo = c.read_reply();
    assert!(ehlo.contains("\n250-AUTH PLAIN LOGIN\n"), "{ehlo}");
    // Before AUTH, loopback is an outsider.
    c.cmd("MAIL FROM:<alice@client.example>", "250");
    c.send_line("RCPT TO:<x@sink.test>");
    assert_eq!(c.read_reply(), "550 5.7.1 <x@sink.test>... Relaying denied");
    c.cmd("QUIT", "221");

    let out = smtplib(
        daemon.smtp_addr(),
        LOGIN_AND_SEND,
        &["PLAIN", "alice", "alice-secret", "x@sink.test", "plain"],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "235 2.0.0 OK Authenticated", "{out}");
    assert_eq!(lines[2], "250 2.1.5 <x@sink.test>... Recipient ok", "{out}");
    assert!(lines[3].starts_with("250 2.0.0 "), "{out}");
    let message = &sink.wait_for_messages(1, WAIT)[0];
    let text = message.text();
    assert!(
        text.contains("\r\n\t(authenticated bits=0)\r\n\tby mx.test (Postern "),
        "{text}"
    );
    assert!(text.contains(" with ESMTPA id "), "{text}");
    daemon.wait_for_log(
        "AUTH=server, relay=localhost [127.0.0.1], authid=alice, mech=PLAIN, bits=0",
        WAIT,
    );
    daemon.wait_for_log(
        "proto=ESMTPA, daemon=MTA, relay=localhost [127.0.0.1], authid=alice",
        WAIT,
    );

    // Authenticated, an outsider relays: to foreign domains (by source
    // route and address literal too); a local part with `%` or `!` is
    // still only ever a local user, never a route.
    const RELAYED: &str = r#"
import smtplib, sys
s = smtplib.SMTP(sys.argv[1], int(sys.argv[2]), local_hostname="client.example", timeout=30)
s.login("alice", "alice-secret")
for r in sys.argv[3:]:
    s.docmd("MAIL FROM:<alice@client.example>")
    code, text = s.docmd("RCPT TO:" + r)
    print(code, text.decode())
    s.docmd("RSET")
s.quit()
"#;
    let out = smtplib(
        daemon.smtp_addr(),
        RELAYED,
        &[
            "<victim@example.com>",
            "<@mx.test:victim@sink.test>",
            "<victim@[192.0.2.9]>",
            "<victim%example.com@mx.test>",
            "<example.com!victim@mx.test>",
            "<\"victim@example.com\">",
        ],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "250 2.1.5 <victim@example.com>... Recipient ok",
            "250 2.1.5 <@mx.test:victim@sink.test>... Recipient ok",
            "250 2.1.5 <victim@[192.0.2.9]>... Recipient ok",
            "550 5.1.1 <victim%example.com@mx.test>... User unknown",
            "550 5.1.1 <example.com!victim@mx.test>... User unknown",
            "550 5.1.1 <\"victim@example.com\">... User unknown",
        ]
    );

    // LOGIN, and bob's bcrypt hash.
    let out = smtplib(
        daemon.smtp_addr(),
        LOGIN_AND_SEND,
        &["LOGIN", "bob", "bob-secret", "y@sink.test", "plain"],
    );
    assert!(out.starts_with("235 2.0.0 OK Authenticated\n"), "{out}");
    sink.wait_for_messages(2, WAIT);
    daemon.wait_for_log("authid=bob, mech=LOGIN, bits=0", WAIT);
}

#[test]
fn wrong_passwords_are_refused_slowed_down_and_end_the_session() {
    let sink = Sink::start();
    let users = auth_users();
    let daemon = common::daemon_with_sink_and_tables(
        &sink,
        &[
            "O RelayNetworks=",
            "O AuthMechanisms=PLAIN LOGIN",
            "O AuthMaxFailures=2",
            "O LogLevel=10",
        ],
        &[("auth-users", users.as_str())],
    );
    let mut c = SmtpConversation::connect(daemon.smtp_addr());
    c.read_reply();
    c.cmd("EHLO client.example", "250");
    // \0alice\0wrong, and an unknown user.
    let started = std::time::Instant::now();
    c.send_line("AUTH PLAIN AGFsaWNlAHdyb25n");
    assert_eq!(c.read_reply(), "535 5.7.0 authentication failed");
    c.send_line("AUTH PLAIN AG5vYm9keQB3cm9uZw==");
    assert_eq!(c.read_reply(), "535 5.7.0 authentication failed");
    assert_eq!(
        c.read_reply(),
        "421 4.7.0 mx.test Too many authentication failures; closing connection"
    );
    // One second after the first failure, two after the second.
    assert!(started.elapsed() >= std::time::Duration::from_secs(3));
    c.expect_closed();
    daemon.wait_for_log(
        "AUTH failure (PLAIN): authentication failed, relay=localhost [127.0.0.1]",
        WAIT,
    );
    // Not base64, a mechanism not offered, a cancelled exchange.
    let mut c = SmtpConversation::connect(daemon.smtp_addr());
    c.read_reply();
    c.cmd("EHLO client.example", "250");
    c.send_line("AUTH PLAIN %%%");
    assert_eq!(c.read_reply(), "501 5.5.4 cannot decode AUTH parameter %%%");
    c.send_line("AUTH CRAM-MD5");
    assert_eq!(
        c.read_reply(),
        "504 5.3.3 AUTH mechanism CRAM-MD5 not available"
    );
    c.send_line("AUTH LOGIN");
    assert_eq!(c.read_reply(), "334 VXNlcm5hbWU6");
    c.send_line("*");
    assert_eq!(c.read_reply(), "501 5.0.0 AUTH aborted");
    // RFC 4954 §5: AUTH= from a client that did not authenticate is
    // accepted and treated as AUTH=<>.
    c.cmd(
        "MAIL FROM:<a@client.example> AUTH=<someone@client.example>",
        "250",
    );
    c.cmd("QUIT", "221");
}

#[test]
fn plain_text_mechanisms_wait_for_starttls_under_auth_options_p() {
    let certs = make_certs();
    let sink = Sink::start();
    let users = auth_users();
    let mut lines: Vec<String> = seed_tls_defines(certs.path());
    lines.extend(
        [
            "O RelayNetworks=",
            "O AuthMechanisms=PLAIN LOGIN",
            "O AuthOptions=p,y",
            "O LogLevel=10",
        ]
        .map(String::from),
    );
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let daemon =
        common::daemon_with_sink_and_tables(&sink, &lines, &[("auth-users", users.as_str())]);
    let mut c = SmtpConversation::connect(daemon.smtp_addr());
    c.read_reply();
    c.send_line("EHLO client.example");
    let ehlo = c.read_reply();
    assert!(!ehlo.contains("AUTH"), "{ehlo}");
    assert!(ehlo.contains("250-STARTTLS"), "{ehlo}");
    c.send_line("AUTH PLAIN AGFsaWNlAGFsaWNlLXNlY3JldA==");
    assert_eq!(
        c.read_reply(),
        "538 5.7.11 Encryption required for requested authentication mechanism"
    );
    c.cmd("QUIT", "221");
    // Inside TLS both are offered, and work.
    let ca = certs.path().join("cacert.pem");
    let out = smtplib(
        daemon.smtp_addr(),
        LOGIN_AND_SEND,
        &[
            "PLAIN",
            "alice",
            "alice-secret",
            "x@sink.test",
            "tls",
            ca.to_str().unwrap(),
        ],
    );
    assert!(out.starts_with("235 2.0.0 OK Authenticated\n"), "{out}");
    let text = sink.wait_for_messages(1, WAIT)[0].text();
    assert!(text.contains("(authenticated bits=0)"), "{text}");
    assert!(text.contains(" with ESMTPSA id "), "{text}");
}

#[test]
fn the_submission_port_wants_auth_before_mail() {
    let sink = Sink::start();
    let users = auth_users();
    let msa = format!(
        "O DaemonPortOptions=Port={}, Addr=127.0.0.1, Name=MSA, M=Ea",
        free_port()
    );
    let daemon = common::daemon_with_sink_and_tables(
        &sink,
        &[
            &format!(
                "O DaemonPortOptions=Port={}, Addr=127.0.0.1, Name=MTA",
                free_port()
            ),
            &msa,
            "O RelayNetworks=",
            "O AuthMechanisms=PLAIN LOGIN",
        ],
        &[("auth-users", users.as_str())],
    );
    let msa = daemon.instance().listener_addr("MSA");
    let mut c = SmtpConversation::connect(msa);
    c.read_reply();
    c.send_line("EHLO client.example");
    let ehlo = c.read_reply();
    // M=E: no ETRN.
    assert!(
        ehlo.contains("250-AUTH PLAIN LOGIN\n") && !ehlo.contains("ETRN"),
        "{ehlo}"
    );
    c.send_line("MAIL FROM:<alice@client.example>");
    assert_eq!(c.read_reply(), "530 5.7.0 Authentication required");
    c.send_line("ETRN sink.test");
    assert!(c.read_reply().starts_with("502 5.7.0"));
    c.cmd("QUIT", "221");
    let out = smtplib(
        msa,
        LOGIN_AND_SEND,
        &["LOGIN", "alice", "alice-secret", "x@sink.test", "plain"],
    );
    assert!(
        out.contains("\n250 2.1.5 <x@sink.test>... Recipient ok\n"),
        "{out}"
    );
    let text = sink.wait_for_messages(1, WAIT)[0].text();
    assert!(text.contains("(authenticated bits=0)"), "{text}");
    daemon.wait_for_log(
        "daemon=MSA, relay=localhost [127.0.0.1], authid=alice",
        WAIT,
    );
    // The MTA port takes mail for local users without AUTH.
    let mut c = SmtpConversation::connect(daemon.smtp_addr());
    c.read_reply();
    c.cmd("EHLO client.example", "250");
    c.cmd("MAIL FROM:<a@client.example>", "250");
    c.cmd("RCPT TO:<postmaster@mx.test>", "250");
    c.cmd("QUIT", "221");
}

#[test]
fn dovecot_checks_passwords_and_offers_its_mechanisms() {
    if !running_as_root() {
        eprintln!("skipped: Dovecot is started as root (CI runs as root)");
        return;
    }
    let dovecot = postern_testkit::AuthDovecot::start(&[
        ("carol", "carol-secret", StoredAs::Plain),
        ("dave", "dave-secret", StoredAs::Sha512Crypt),
    ]);
    let sink = Sink::start();
    let socket = format!("O AuthDovecotSocket={}", dovecot.socket().display());
    // sendmail's default AuthMechanisms (GSSAPI KERBEROS_V4 DIGEST-MD5
    // CRAM-MD5) and Dovecot's plain, login and cram-md5: the seed's
    // EHLO line, but with only what Dovecot has.
    let daemon = daemon_with_sink(&sink, &["O RelayNetworks=", "O LogLevel=10", &socket]);
    let mut c = SmtpConversation::connect(daemon.smtp_addr());
    c.read_reply();
    c.send_line("EHLO client.example");
    let ehlo = c.read_reply();
    assert!(ehlo.contains("\n250-AUTH CRAM-MD5\n"), "{ehlo}");
    c.cmd("QUIT", "221");
    let out = smtplib(
        daemon.smtp_addr(),
        LOGIN_AND_SEND,
        &["CRAM-MD5", "carol", "carol-secret", "x@sink.test", "plain"],
    );
    assert!(out.starts_with("235 2.0.0 OK Authenticated\n"), "{out}");
    sink.wait_for_messages(1, WAIT);
    daemon.wait_for_log("authid=carol, mech=CRAM-MD5, bits=0", WAIT);
    let out = smtplib(
        daemon.smtp_addr(),
        LOGIN_AND_SEND,
        &["CRAM-MD5", "carol", "wrong", "x@sink.test", "plain"],
    );
    assert!(out.starts_with("535 5.7.0 authentication failed"), "{out}");

    // With PLAIN and LOGIN allowed too.
    let daemon = daemon_with_sink(
        &sink,
        &[
            "O RelayNetworks=",
            "O AuthMechanisms=DIGEST-MD5 CRAM-MD5 PLAIN LOGIN",
            &socket,
        ],
    );
    let out = smtplib(
        daemon.smtp_addr(),
        LOGIN_AND_SEND,
        &["PLAIN", "dave", "dave-secret", "y@sink.test", "plain"],
    );
    assert!(out.starts_with("235 2.0.0 OK Authenticated\n"), "{out}");
    let out = smtplib(
        daemon.smtp_addr(),
        LOGIN_AND_SEND,
        &["LOGIN", "dave", "dave-secret", "y@sink.test", "plain"],
    );
    assert!(out.starts_with("235 2.0.0 OK Authenticated\n"), "{out}");
    sink.wait_for_messages(3, WAIT);
}

#[test]
fn without_a_backend_there_is_no_auth() {
    let sink = Sink::start();
    let daemon = DaemonBuilder::new(postern_testkit::binary("posternd"))
        .config_line("O AuthMechanisms=PLAIN LOGIN")
        .start();
    let mut c = SmtpConversation::connect(daemon.smtp_addr());
    c.read_reply();
    c.send_line("EHLO client.example");
    assert!(!c.read_reply().contains("AUTH"));
    c.send_line("AUTH PLAIN AGFsaWNlAGFsaWNlLXNlY3JldA==");
    assert_eq!(c.read_reply(), "503 5.3.3 AUTH not available");
    c.cmd("QUIT", "221");
    drop(sink);
}

#[test]
fn authwarnings_mark_a_missing_helo_and_a_false_address_literal() {
    let sink = Sink::start();
    let daemon = daemon_with_sink(&sink, &["O PrivacyOptions=authwarnings"]);
    let send = |helo: Option<&str>| {
        let mut c = SmtpConversation::connect(daemon.smtp_addr());
        c.read_reply();
        if let Some(helo) = helo {
            c.cmd(&format!("EHLO {helo}"), "250");
        }
        c.cmd("MAIL FROM:<a@client.example>", "250");
        c.cmd("RCPT TO:<x@sink.test>", "250");
        c.cmd("DATA", "354");
        c.cmd("Subject: w\r\n\r\nbody\r\n.", "250");
        c.cmd("QUIT", "221");
    };
    send(None);
    send(Some("[192.0.2.1]"));
    send(Some("[127.0.0.1]"));
    let messages = sink.wait_for_messages(3, WAIT);
    // Sorted: deliveries may overtake each other.
    let mut warnings: Vec<Vec<String>> = messages
        .iter()
        .map(|m| {
            m.text()
                .lines()
                .filter_map(|l| l.strip_prefix("X-Authentication-Warning: "))
                .map(|l| l.trim_end().to_string())
                .collect()
        })
        .collect();
    warnings.sort();
    assert_eq!(
        warnings,
        [
            vec![],
            vec!["mx.test: Host localhost [127.0.0.1] claimed to be [192.0.2.1]".to_string()],
            vec!["mx.test: localhost [127.0.0.1] didn't use HELO protocol".to_string()],
        ]
    );
    daemon.wait_for_log(
        "Authentication-Warning: mx.test: Host localhost [127.0.0.1] claimed to be [192.0.2.1]",
        WAIT,
    );
}
