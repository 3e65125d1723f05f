//! The access map's per-destination TLS requirements, against the TLS
//! sink: `TLS_Srv:` makes a server that does not offer STARTTLS (as behind
//! a STARTTLS-stripping man in the middle), an unverified certificate, a
//! certificate for another name or a failed handshake a deferral (or, with
//! `PERM+`, a failure) before any MAIL is sent, never a delivery in clear;
//! `Try_TLS: NO` keeps STARTTLS off.

use std::time::Duration;

use postern_config::AccessMap;
use postern_ipc::{QueueToDelivery, RecipientStatus};
use postern_testkit::make_certs;
use postern_tls::Verify;

use super::starttls::{client_options, server_tls, table, Mode, TlsSink};
use super::{job, settings_full, status_of, Harness, BODY};

/// A delivery client trusting `certs`' CA, with `access` as its access map.
fn harness(sink: &TlsSink, certs: &std::path::Path, access: &str, extra: &str) -> Harness {
    let extra = format!("{}{extra}", client_options(certs));
    let (dir, mut settings) = settings_full(&table(sink), "", &extra);
    settings.access = AccessMap::parse_str(access).unwrap();
    // The settings hold no path into the directory any more.
    drop(dir);
    Harness::start(settings)
}

/// Delivers one message to `a@tls.test`; returns its status and reply.
fn deliver(h: &mut Harness) -> (RecipientStatus, String) {
    h.deliver(job(1, &["a@tls.test"]), BODY);
    let report = h.report();
    let (status, reply, ..) = status_of(&report, "a@tls.test");
    h.send(&QueueToDelivery::Shutdown);
    assert_eq!(h.exit_code(), 0);
    (status, reply)
}

#[test]
fn a_server_that_does_not_offer_starttls_gets_no_mail() {
    let certs = make_certs();
    let sink = TlsSink::start(Mode::NoStartTls);
    let mut h = harness(&sink, certs.path(), "TLS_Srv:127.0.0.1 VERIFY\n", "");
    assert_eq!(
        deliver(&mut h),
        (
            RecipientStatus::TempFail,
            "403 4.7.0 other side does not support STARTTLS".into()
        )
    );
    let seen = sink.next();
    assert_eq!(seen.mail_from, None, "MAIL was sent in clear");
    assert!(seen.data.is_none());
}

#[test]
fn perm_makes_the_failure_permanent() {
    let certs = make_certs();
    let sink = TlsSink::start(Mode::NoStartTls);
    let mut h = harness(&sink, certs.path(), "TLS_Srv:127.0.0 PERM+ENCR:128\n", "");
    assert_eq!(
        deliver(&mut h),
        (
            RecipientStatus::PermFail,
            "503 5.7.0 encryption too weak 0 less than 128".into()
        )
    );
}

#[test]
fn a_verified_certificate_for_the_named_host_gets_the_mail() {
    let certs = make_certs();
    let sink = TlsSink::start(Mode::Tls(server_tls(certs.path())));
    let access = "TLS_Srv:127.0.0.1 VERIFY:128+CN:localhost\n";
    let mut h = harness(&sink, certs.path(), access, "");
    let (status, reply) = deliver(&mut h);
    assert_eq!(status, RecipientStatus::Sent, "{reply}");
    let seen = sink.next();
    assert_eq!(seen.verify, Some(Verify::Ok));
    assert!(seen.data.as_deref() == Some(BODY));
}

#[test]
fn a_certificate_from_an_untrusted_ca_gets_no_mail() {
    let ours = make_certs();
    let foreign = make_certs();
    let sink = TlsSink::start(Mode::Tls(server_tls(foreign.path())));
    let mut h = harness(&sink, ours.path(), "TLS_Srv: VERIFY\n", "");
    assert_eq!(
        deliver(&mut h),
        (
            RecipientStatus::TempFail,
            "403 4.7.0 authentication failed".into()
        )
    );
    let seen = sink.next();
    assert!(seen.verify.is_some(), "the handshake was done");
    assert_eq!(
        seen.mail_from, None,
        "MAIL was sent to an unverified server"
    );
}

#[test]
fn a_certificate_for_another_name_gets_no_mail() {
    // Verified by a trusted CA, but for `localhost`, not the server the
    // route names: a man in the middle with a certificate of its own.
    let certs = make_certs();
    let sink = TlsSink::start(Mode::Tls(server_tls(certs.path())));
    let mut h = harness(&sink, certs.path(), "TLS_Srv:127.0.0.1 VERIFY+CN\n", "");
    assert_eq!(
        deliver(&mut h),
        (
            RecipientStatus::TempFail,
            "403 4.7.0 CN localhost does not match [127.0.0.1]".into()
        )
    );
    assert_eq!(sink.next().mail_from, None);
}

#[test]
fn a_requirement_rules_out_the_clear_text_fallback() {
    let certs = make_certs();
    let sink = TlsSink::start(Mode::Garbage);
    let mut h = harness(
        &sink,
        certs.path(),
        "TLS_Srv:127.0.0.1 ENCR:128\n",
        "O TLSFallbacktoClear=true\n",
    );
    assert_eq!(
        deliver(&mut h),
        (
            RecipientStatus::TempFail,
            "454 4.7.0 TLS handshake failed".into()
        )
    );
    assert!(sink.next().starttls);
    assert!(
        !sink.another(Duration::from_millis(500)),
        "retried in clear text"
    );
}

#[test]
fn try_tls_no_keeps_starttls_off() {
    let certs = make_certs();
    let sink = TlsSink::start(Mode::Tls(server_tls(certs.path())));
    let mut h = harness(&sink, certs.path(), "Try_TLS:127.0.0.1 NO\n", "");
    let (status, reply) = deliver(&mut h);
    assert_eq!(status, RecipientStatus::Sent, "{reply}");
    let seen = sink.next();
    assert!(!seen.starttls, "STARTTLS was offered to and used");
    assert!(seen.data.as_deref() == Some(BODY));
}
