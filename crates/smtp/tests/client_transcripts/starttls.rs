//! STARTTLS on the client side: the hello again inside TLS, response
//! injection, clear text during the handshake, refusals and failures.

use super::*;

#[test]
fn starttls_then_ehlo_again_with_extensions_reset() {
    let mut t = Script::new(&["bob@b.example"]);
    t.hello(&["PIPELINING", "DSN", "STARTTLS"]);
    t.sends("STARTTLS\r\n");
    assert_eq!(t.s.phase(), Phase::StartTls);
    t.server("220 2.0.0 Ready to start TLS\r\n");
    t.start_tls();
    t.idle();
    assert_eq!(t.s.phase(), Phase::TlsHandshake);
    t.s.tls_started();
    t.sends(EHLO);
    assert_eq!(t.s.phase(), Phase::Helo);
    // After TLS the server offers less: no PIPELINING, no DSN; STARTTLS again.
    t.server("250-mx.example\r\n250-SIZE\r\n250 STARTTLS\r\n");
    t.sends("MAIL From:<alice@a.example> SIZE=1234\r\n");
    t.server("250 ok\r\n");
    t.sends("RCPT To:<bob@b.example>\r\n");
    t.server("250 ok\r\n");
    t.sends("DATA\r\n");
    t.server("354 go\r\n");
    t.send_body();
    t.s.body_sent();
    t.server("250 ok\r\n");
    t.sends("QUIT\r\n");
    let o = t.done();
    assert!(o.tls);
    let ext = o.extensions.unwrap();
    assert!(ext.starttls && !ext.pipelining && !ext.dsn);
    assert_eq!(ext.size, Some(0));
}

#[test]
fn the_shell_judges_the_connection_after_the_hello_inside_tls() {
    let mut t = Script::with(
        checking(StartTlsPolicy::Opportunistic),
        envelope(&["bob@b.example"]),
    );
    t.hello(&["STARTTLS"]);
    t.sends("STARTTLS\r\n");
    t.server("220 2.0.0 Ready to start TLS\r\n");
    t.start_tls();
    t.s.tls_started();
    t.sends(EHLO);
    t.server("250 mx.example\r\n");
    assert_eq!(
        t.next(),
        Some(ClientOutput::CheckTls {
            starttls_offered: false
        })
    );
    t.idle();
    t.s.tls_checked(None);
    t.sends("MAIL From:<alice@a.example>\r\n");
}

#[test]
fn starttls_response_injection_fails_the_session() {
    let mut t = Script::new(&["bob@b.example"]);
    t.hello(&["STARTTLS"]);
    t.sends("STARTTLS\r\n");
    t.server("220 Ready\r\n250 injected\r\n");
    let o = t.done(); // no StartTls, no QUIT
    assert!(o.protocol_error.as_deref().unwrap().contains("injection"));
    assert_eq!(statuses(&o), [(451, TempFail)]);
    assert!(!o.tls);
    assert_eq!(t.s.phase(), Phase::Done);
}

#[test]
fn starttls_partial_injected_line_also_fails() {
    let mut t = Script::new(&["bob@b.example"]);
    t.hello(&["STARTTLS"]);
    t.sends("STARTTLS\r\n");
    t.server("220 Ready\r\n2");
    assert!(t.done().protocol_error.is_some());
}

#[test]
fn clear_text_during_handshake_fails_the_session() {
    let mut t = Script::new(&["bob@b.example"]);
    t.hello(&["STARTTLS"]);
    t.sends("STARTTLS\r\n");
    t.server("220 Ready\r\n");
    t.start_tls();
    t.s.receive(b""); // an empty read is not clear text
    t.idle();
    t.server("250 injected\r\n");
    assert!(t.done().protocol_error.is_some());
}

#[test]
fn starttls_refused_goes_on_in_clear_text() {
    let mut t = Script::new(&["bob@b.example"]);
    t.hello(&["STARTTLS"]);
    t.sends("STARTTLS\r\n");
    t.server("454 4.7.0 TLS not available\r\n");
    t.sends("MAIL From:<alice@a.example>\r\n");
}

#[test]
fn starttls_not_used_when_policy_never_or_already_tls() {
    let mut t = Script::with(config(StartTlsPolicy::Never), envelope(&["b@b"]));
    t.hello(&["STARTTLS"]);
    t.sends("MAIL From:<alice@a.example>\r\n");

    let mut cfg = config(StartTlsPolicy::Opportunistic);
    cfg.already_tls = true;
    let mut t = Script::with(cfg, envelope(&["b@b"]));
    t.hello(&["STARTTLS"]);
    t.sends("MAIL From:<alice@a.example>\r\n");
}

#[test]
fn tls_handshake_failure_defers_everyone() {
    let mut t = Script::new(&["bob@b.example", "carol@b.example"]);
    t.hello(&["STARTTLS"]);
    t.sends("STARTTLS\r\n");
    t.server("220 Ready\r\n");
    t.start_tls();
    t.s.tls_failed();
    let o = t.done();
    assert_eq!(statuses(&o), [(454, TempFail), (454, TempFail)]);
    assert_eq!(o.recipients[0].reply.text(), "TLS handshake failed");
    assert!(o.protocol_error.is_none());
}
