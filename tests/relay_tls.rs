//! Postern to Postern over STARTTLS with client certificates: the
//! receiving side records sendmail's {verify} in its log and in the
//! Received: header: OK for a certificate from the CA it trusts, FAIL for
//! one from another CA.

mod common;

use postern_testkit::make_certs;

use common::WAIT;
use postern_testkit::{ensure_test_users, smtp_send, wait_for_maildir, DaemonBuilder};

fn daemon(lines: &[String], tables: &[(&str, String)]) -> postern_testkit::Daemon {
    ensure_test_users();
    let mut b =
        DaemonBuilder::new(postern_testkit::binary("posternd")).config_line("O LogLevel=14");
    for line in lines {
        b = b.config_line(line);
    }
    for (name, text) in tables {
        b = b.table(name, text.clone());
    }
    b.start()
}

/// Server and client certificate defines: the server side always from
/// `ca`, the client certificate from `client`.
fn tls_lines(ca: &std::path::Path, client: &std::path::Path) -> Vec<String> {
    let (ca, client) = (ca.display(), client.display());
    vec![
        format!("define(`confCACERT', `{ca}/cacert.pem')"),
        format!("define(`confSERVER_CERT', `{ca}/cert.pem')"),
        format!("define(`confSERVER_KEY', `{ca}/key.pem')"),
        format!("define(`confCLIENT_CERT', `{client}/cert.pem')"),
        format!("define(`confCLIENT_KEY', `{client}/key.pem')"),
    ]
}

fn relay_and_read(
    client_certs: &std::path::Path,
    trusted: &std::path::Path,
) -> (String, postern_testkit::Daemon, postern_testkit::Daemon) {
    let receiver = daemon(
        &tls_lines(trusted, trusted),
        &[("local-host-names", "b.test\n".into())],
    );
    let route = format!("b.test esmtp:[127.0.0.1]:{}\n", receiver.smtp_addr().port());
    let sender = daemon(&tls_lines(trusted, client_certs), &[("mailertable", route)]);
    let reply = smtp_send(
        sender.smtp_addr(),
        "a@example.net",
        &["root@b.test"],
        b"Subject: relayed\r\n\r\nover TLS\r\n",
    )
    .unwrap();
    assert!(reply.starts_with("250 2.0.0 "), "{reply}");
    let messages = wait_for_maildir(&receiver.mail_dir().join("root/Maildir"), 1, WAIT);
    (
        String::from_utf8_lossy(&messages[0]).into_owned(),
        sender,
        receiver,
    )
}

#[test]
fn a_client_certificate_from_the_same_ca_is_verified() {
    let certs = make_certs();
    let (text, sender, receiver) = relay_and_read(certs.path(), certs.path());
    assert!(
        text.contains("\n\t(version=TLSv1.3 cipher=") && text.contains(" verify=OK)\n"),
        "{text}"
    );
    assert!(text.contains(" with ESMTPS id "), "{text}");
    receiver.wait_for_log(
        "STARTTLS=server, relay=localhost [127.0.0.1], version=TLSv1.3, verify=OK, cipher=",
        WAIT,
    );
    sender.wait_for_log(
        "STARTTLS=client, relay=[127.0.0.1], version=TLSv1.3, verify=OK, cipher=",
        WAIT,
    );
    // LogLevel 14: the certificate chain as it was checked.
    receiver.wait_for_log("STARTTLS: TLS cert verify: depth=0", WAIT);
}

#[test]
fn a_client_certificate_from_another_ca_fails_verification() {
    let trusted = make_certs();
    let foreign = make_certs();
    let (text, _sender, receiver) = relay_and_read(foreign.path(), trusted.path());
    assert!(text.contains(" verify=FAIL)\n"), "{text}");
    receiver.wait_for_log(
        "STARTTLS=server, relay=localhost [127.0.0.1], version=TLSv1.3, verify=FAIL, cipher=",
        WAIT,
    );
}
