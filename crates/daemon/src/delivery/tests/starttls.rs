//! STARTTLS as a client: delivery over TLS (certificates verified both
//! ways), a server certificate from a foreign CA (reported, not enforced),
//! a failing or silent handshake (deferred, or retried in clear text with
//! `TLSFallbacktoClear`), a response injected behind the `220`, and a
//! server that offers no STARTTLS.
//!
//! The testkit sink cannot do STARTTLS, so [`TlsSink`] is a small SMTP
//! server of its own on std threads: clear-text greeting and EHLO, then,
//! depending on its [`Mode`], a real TLS handshake (`postern_tls`'s server
//! side, blocking) and the rest of the session inside it, or a way of
//! failing. Certificates come from `scripts/make-certs.sh`.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use postern_config::TlsFiles;
use postern_ipc::{QueueToDelivery, RecipientStatus};
use postern_tls::{Handshake, ServerTls, Verify};

use super::{job, settings_full, status_of, tls_lines, Harness, BODY, WAIT};

/// How the server behaves once the client says STARTTLS.
#[derive(Clone)]
pub(super) enum Mode {
    /// `220`, then a real handshake and the session inside TLS.
    Tls(Arc<ServerTls>),
    /// `220`, then (after the ClientHello) bytes that are not TLS, then
    /// close.
    Garbage,
    /// `220`, then nothing until the client goes away.
    Silent,
    /// `220` with a forged reply behind it in the same write.
    Inject,
    /// STARTTLS is not offered.
    NoStartTls,
}

/// What the server saw on one connection.
#[derive(Debug, Default)]
pub(super) struct Seen {
    /// The client said STARTTLS.
    pub(super) starttls: bool,
    /// `{verify}` of the client's certificate, once the handshake is done.
    pub(super) verify: Option<Verify>,
    pub(super) helo: Vec<String>,
    pub(super) mail_from: Option<String>,
    pub(super) rcpt_to: Vec<String>,
    /// The message, dot-stuffing undone.
    pub(super) data: Option<Vec<u8>>,
}

/// A STARTTLS-capable SMTP server on 127.0.0.1; one report per connection.
pub(super) struct TlsSink {
    pub(super) addr: SocketAddr,
    seen: Receiver<Seen>,
}

impl TlsSink {
    pub(super) fn start(mode: Mode) -> TlsSink {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, seen) = mpsc::channel();
        // The accept loop outlives the test, blocked in accept: harmless.
        std::thread::spawn(move || {
            for tcp in listener.incoming() {
                let Ok(tcp) = tcp else { return };
                let (mode, tx) = (mode.clone(), tx.clone());
                std::thread::spawn(move || serve(tcp, &mode, &tx));
            }
        });
        TlsSink { addr, seen }
    }

    /// The next connection's report.
    pub(super) fn next(&self) -> Seen {
        self.seen
            .recv_timeout(WAIT)
            .expect("a connection to the TLS sink")
    }

    /// True if another connection came within `wait`.
    pub(super) fn another(&self, wait: Duration) -> bool {
        self.seen.recv_timeout(wait).is_ok()
    }
}

fn serve(tcp: TcpStream, mode: &Mode, tx: &Sender<Seen>) {
    tcp.set_read_timeout(Some(WAIT)).unwrap();
    let mut tcp = tcp;
    let mut seen = Seen::default();
    let offer = !matches!(mode, Mode::NoStartTls);
    if tcp.write_all(b"220 tls.test ESMTP test sink\r\n").is_ok()
        && dialog(&mut tcp, offer, &mut seen) == Step::StartTls
    {
        seen.starttls = true;
        const READY: &[u8] = b"220 2.0.0 Ready to start TLS\r\n";
        match mode {
            Mode::Tls(server) => {
                let _ = tcp.write_all(READY);
                let mut tls = server.session(tcp).unwrap();
                // Blocking: Done or an error (a read timeout shows as WantRead).
                if matches!(tls.handshake(), Ok(Handshake::Done)) {
                    seen.verify = Some(tls.info().verify);
                    dialog(&mut tls, false, &mut seen);
                    tls.shutdown();
                }
            }
            Mode::Garbage => {
                let _ = tcp.write_all(READY);
                // After the ClientHello, or it would come with the 220 and
                // be refused as an injected response instead.
                let _ = tcp.read(&mut [0u8; 512]);
                let _ = tcp.write_all(b"this is not a TLS record\r\n\r\n\x00\x01\x02");
            }
            Mode::Silent => {
                let _ = tcp.write_all(READY);
                // Until the client gives up (EOF) or WAIT passes.
                let _ = tcp.read_to_end(&mut Vec::new());
            }
            Mode::Inject => {
                let _ = tcp.write_all(b"220 2.0.0 Ready to start TLS\r\n250 2.0.0 injected\r\n");
                let _ = tcp.read_to_end(&mut Vec::new());
            }
            Mode::NoStartTls => unreachable!("not offered"),
        }
    }
    let _ = tx.send(seen);
}

#[derive(Debug, PartialEq, Eq)]
enum Step {
    StartTls,
    Done,
}

/// The SMTP dialog after the greeting, until QUIT, EOF or STARTTLS.
fn dialog<S: Read + Write>(s: &mut S, offer_starttls: bool, seen: &mut Seen) -> Step {
    while let Some(line) = read_line(s) {
        let upper = line.to_ascii_uppercase();
        let reply: &[u8] = if let Some(name) = upper.strip_prefix("EHLO ") {
            seen.helo.push(name.to_ascii_lowercase());
            if offer_starttls {
                b"250-tls.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-STARTTLS\r\n250 HELP\r\n"
            } else {
                b"250-tls.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 HELP\r\n"
            }
        } else if upper == "STARTTLS" && offer_starttls {
            return Step::StartTls;
        } else if upper.starts_with("MAIL FROM:") {
            seen.mail_from = Some(path(&line));
            b"250 2.1.0 Sender ok\r\n"
        } else if upper.starts_with("RCPT TO:") {
            seen.rcpt_to.push(path(&line));
            b"250 2.1.5 Recipient ok\r\n"
        } else if upper == "DATA" {
            if s.write_all(b"354 Enter mail, end with \".\"\r\n").is_err() {
                return Step::Done;
            }
            let mut data = Vec::new();
            loop {
                let Some(line) = read_line(s) else {
                    return Step::Done;
                };
                if line == "." {
                    break;
                }
                data.extend_from_slice(line.strip_prefix('.').unwrap_or(&line).as_bytes());
                data.extend_from_slice(b"\r\n");
            }
            seen.data = Some(data);
            b"250 2.0.0 Message accepted for delivery\r\n"
        } else if upper == "QUIT" {
            let _ = s.write_all(b"221 2.0.0 closing connection\r\n");
            return Step::Done;
        } else {
            b"500 5.5.1 Command unrecognized\r\n"
        };
        if s.write_all(reply).is_err() {
            break;
        }
    }
    Step::Done
}

/// `<a@b>` out of `MAIL FROM:<a@b> SIZE=…`.
fn path(line: &str) -> String {
    let start = line.find('<').map_or(0, |i| i + 1);
    let end = line[start..].find('>').map_or(line.len(), |i| start + i);
    line[start..end].to_string()
}

/// One CR LF line, read a byte at a time (so that nothing behind it is
/// consumed before a handshake); `None` at EOF or on an error.
fn read_line<S: Read>(s: &mut S) -> Option<String> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match s.read(&mut byte) {
            Ok(0) => return None,
            Ok(_) => line.push(byte[0]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return None,
        }
        if line.ends_with(b"\r\n") {
            line.truncate(line.len() - 2);
            return Some(String::from_utf8_lossy(&line).into_owned());
        }
    }
}

use postern_testkit::make_certs;

/// A server context with `certs`' certificate, asking for a client
/// certificate and trusting `certs`' CA.
pub(super) fn server_tls(certs: &Path) -> Arc<ServerTls> {
    let files = TlsFiles {
        ca_cert_file: Some(certs.join("cacert.pem")),
        server_cert_file: Some(certs.join("cert.pem")),
        server_key_file: Some(certs.join("key.pem")),
        ..TlsFiles::default()
    };
    Arc::new(
        ServerTls::from_files(&files, postern_tls::Keys::Load)
            .unwrap()
            .unwrap(),
    )
}

/// The client's TLS options: trust `certs`' CA, present its certificate.
/// The client's certificates; connections are not kept open after their
/// message, because the TLS sink records a session when it ends.
pub(super) fn client_options(certs: &Path) -> String {
    let d = certs.display();
    format!(
        "O CACertFile={d}/cacert.pem\nO ClientCertFile={d}/cert.pem\nO ClientKeyFile={d}/key.pem\n\
         O ConnectionCacheSize=0\n"
    )
}

pub(super) fn table(sink: &TlsSink) -> String {
    format!("tls.test esmtp:[127.0.0.1]:{}\n", sink.addr.port())
}

/// The `STARTTLS=client, relay=…` summary lines logged for `sink`.
fn summaries(sink: &TlsSink) -> Vec<(u32, String)> {
    tls_lines(sink.addr)
        .into_iter()
        .filter(|(_, l)| l.starts_with("STARTTLS=client, relay="))
        .collect()
}

#[test]
fn delivers_over_tls_with_certificates_verified_both_ways() {
    let certs = make_certs();
    let sink = TlsSink::start(Mode::Tls(server_tls(certs.path())));
    let (_dir, settings) = settings_full(&table(&sink), "", &client_options(certs.path()));
    let mut h = Harness::start(settings);
    h.deliver(job(1, &["a@tls.test", "b@tls.test"]), BODY);
    let report = h.report();
    for r in ["a@tls.test", "b@tls.test"] {
        let (status, reply, relay, mailer) = status_of(&report, r);
        assert_eq!(status, RecipientStatus::Sent, "{reply}");
        assert_eq!(reply, "250 2.0.0 Message accepted for delivery");
        assert_eq!(
            (relay.as_str(), mailer.as_str()),
            ("[127.0.0.1] [127.0.0.1]", "esmtp")
        );
    }
    let seen = sink.next();
    assert!(seen.starttls);
    assert_eq!(
        seen.verify,
        Some(Verify::Ok),
        "the server verified our certificate"
    );
    // EHLO before and again inside TLS (RFC 3207 §4.2).
    assert_eq!(seen.helo, ["delivery.test", "delivery.test"]);
    assert_eq!(seen.mail_from.as_deref(), Some("sender@example.org"));
    assert_eq!(seen.rcpt_to, ["a@tls.test", "b@tls.test"]);
    assert!(
        seen.data.as_deref() == Some(BODY),
        "byte-identical inside TLS"
    );

    let lines = tls_lines(sink.addr);
    let start = lines
        .iter()
        .position(|l| *l == (14, "STARTTLS=client, start=ok".to_string()))
        .expect("start=ok at LogLevel 14");
    let summary = summaries(&sink);
    assert_eq!(summary.len(), 1, "{lines:?}");
    let (level, text) = &summary[0];
    assert_eq!(*level, 9);
    assert!(
        text.starts_with("STARTTLS=client, relay=[127.0.0.1], version=TLSv1."),
        "{text}"
    );
    assert!(text.contains(", verify=OK, cipher="), "{text}");
    let bits = text.rsplit_once(", bits=").unwrap().1;
    let (cipher_bits, alg_bits) = bits.split_once('/').unwrap();
    assert!(cipher_bits.parse::<u32>().unwrap() >= 128, "{text}");
    assert!(alg_bits.parse::<u32>().unwrap() >= 128, "{text}");
    // The verify trace (LogLevel 14) comes between start=ok and the summary.
    let trace: Vec<_> = lines
        .iter()
        .filter(|(_, l)| l.starts_with("STARTTLS: TLS cert verify: "))
        .collect();
    assert!(!trace.is_empty(), "{lines:?}");
    assert!(trace
        .iter()
        .all(|(level, l)| *level == 14 && l.contains("state=ok")));
    let summary_at = lines.iter().position(|l| *l == summary[0]).unwrap();
    assert!(start < summary_at);
    assert!(!lines.iter().any(|(_, l)| l.contains("error")), "{lines:?}");

    h.send(&QueueToDelivery::Shutdown);
    assert_eq!(h.exit_code(), 0);
}

#[test]
fn foreign_ca_is_reported_as_fail_and_still_delivered() {
    let ours = make_certs();
    let foreign = make_certs();
    let sink = TlsSink::start(Mode::Tls(server_tls(foreign.path())));
    let (_dir, settings) = settings_full(&table(&sink), "", &client_options(ours.path()));
    let mut h = Harness::start(settings);
    h.deliver(job(1, &["a@tls.test"]), BODY);
    let report = h.report();
    let (status, reply, ..) = status_of(&report, "a@tls.test");
    assert_eq!(status, RecipientStatus::Sent, "opportunistic: {reply}");
    let seen = sink.next();
    assert!(seen.verify.is_some(), "delivered inside TLS");
    // Our certificate is from a CA the server does not trust either.
    assert_eq!(seen.verify, Some(Verify::Fail));
    assert!(seen.data.as_deref() == Some(BODY));
    let summary = summaries(&sink);
    assert_eq!(summary.len(), 1);
    assert!(summary[0].1.contains(", verify=FAIL, "), "{summary:?}");
    let lines = tls_lines(sink.addr);
    assert!(
        lines
            .iter()
            .any(|(level, l)| *level == 14 && l.contains("state=fail")),
        "{lines:?}"
    );
    h.send(&QueueToDelivery::Shutdown);
    assert_eq!(h.exit_code(), 0);
}

#[test]
fn failed_handshake_defers_without_fallback() {
    let certs = make_certs();
    let sink = TlsSink::start(Mode::Garbage);
    let (_dir, settings) = settings_full(&table(&sink), "", &client_options(certs.path()));
    let mut h = Harness::start(settings);
    h.deliver(job(1, &["a@tls.test", "b@tls.test"]), BODY);
    let report = h.report();
    for r in ["a@tls.test", "b@tls.test"] {
        let (status, reply, relay, _) = status_of(&report, r);
        assert_eq!(status, RecipientStatus::TempFail);
        assert_eq!(reply, "454 4.7.0 TLS handshake failed");
        assert_eq!(relay, "[127.0.0.1] [127.0.0.1]");
    }
    let seen = sink.next();
    assert!(seen.starttls && seen.data.is_none());
    assert!(
        !sink.another(Duration::from_millis(500)),
        "no second connection"
    );
    let errors: Vec<_> = tls_lines(sink.addr)
        .into_iter()
        .filter(|(_, l)| l.starts_with("STARTTLS=client, error: connect failed="))
        .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].0, 6);
    assert!(errors[0].1.ends_with(", relay=[127.0.0.1]"), "{errors:?}");
    assert!(summaries(&sink).is_empty());
    h.send(&QueueToDelivery::Shutdown);
    assert_eq!(h.exit_code(), 0);
}

#[test]
fn failed_handshake_with_fallback_to_clear_delivers_on_a_new_connection() {
    let certs = make_certs();
    let sink = TlsSink::start(Mode::Garbage);
    let extra = format!(
        "{}O TLSFallbacktoClear=true\n",
        client_options(certs.path())
    );
    let (_dir, settings) = settings_full(&table(&sink), "", &extra);
    let mut h = Harness::start(settings);
    h.deliver(job(1, &["a@tls.test", "b@tls.test"]), BODY);
    let report = h.report();
    assert_eq!(report.recipients.len(), 2, "each recipient reported once");
    for r in ["a@tls.test", "b@tls.test"] {
        let (status, reply, ..) = status_of(&report, r);
        assert_eq!(status, RecipientStatus::Sent, "{reply}");
    }
    let first = sink.next();
    assert!(first.starttls && first.data.is_none());
    let second = sink.next();
    assert!(!second.starttls, "no STARTTLS on the retry");
    assert_eq!(second.rcpt_to, ["a@tls.test", "b@tls.test"]);
    assert!(second.data.as_deref() == Some(BODY));
    // Not silent: the failure is logged before the retry.
    assert!(tls_lines(sink.addr)
        .iter()
        .any(|(level, l)| *level == 6 && l.starts_with("STARTTLS=client, error: connect failed=")));
    h.send(&QueueToDelivery::Shutdown);
    assert_eq!(h.exit_code(), 0);
}

#[test]
fn silent_handshake_times_out_under_timeout_starttls() {
    let certs = make_certs();
    let sink = TlsSink::start(Mode::Silent);
    let extra = format!("{}O Timeout.starttls=1s\n", client_options(certs.path()));
    let (_dir, settings) = settings_full(&table(&sink), "", &extra);
    let mut h = Harness::start(settings);
    let started = Instant::now();
    h.deliver(job(1, &["a@tls.test"]), BODY);
    let report = h.report();
    let (status, reply, ..) = status_of(&report, "a@tls.test");
    assert_eq!(
        (status, reply.as_str()),
        (RecipientStatus::TempFail, "454 4.7.0 TLS handshake failed")
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(tls_lines(sink.addr).contains(&(
        6,
        "STARTTLS=client, error: connect failed=timeout, relay=[127.0.0.1]".into()
    )));
    h.send(&QueueToDelivery::Shutdown);
    assert_eq!(h.exit_code(), 0);
}

#[test]
fn response_injected_behind_the_220_is_refused_before_any_handshake() {
    let certs = make_certs();
    let sink = TlsSink::start(Mode::Inject);
    let (_dir, settings) = settings_full(&table(&sink), "", &client_options(certs.path()));
    let mut h = Harness::start(settings);
    h.deliver(job(1, &["a@tls.test"]), BODY);
    let report = h.report();
    let (status, reply, ..) = status_of(&report, "a@tls.test");
    assert_eq!(status, RecipientStatus::TempFail);
    assert!(
        reply.starts_with("451 4.5.0 SMTP protocol error: "),
        "{reply}"
    );
    assert!(
        tls_lines(sink.addr).is_empty(),
        "no handshake was started: {:?}",
        tls_lines(sink.addr)
    );
    h.send(&QueueToDelivery::Shutdown);
    assert_eq!(h.exit_code(), 0);
}

#[test]
fn server_without_starttls_gets_the_message_in_clear() {
    let certs = make_certs();
    let sink = TlsSink::start(Mode::NoStartTls);
    let (_dir, settings) = settings_full(&table(&sink), "", &client_options(certs.path()));
    let mut h = Harness::start(settings);
    h.deliver(job(1, &["a@tls.test"]), BODY);
    let report = h.report();
    let (status, reply, ..) = status_of(&report, "a@tls.test");
    assert_eq!(status, RecipientStatus::Sent, "{reply}");
    let seen = sink.next();
    assert!(!seen.starttls && seen.verify.is_none());
    assert_eq!(seen.helo, ["delivery.test"]);
    assert!(seen.data.as_deref() == Some(BODY));
    assert!(tls_lines(sink.addr).is_empty());
    h.send(&QueueToDelivery::Shutdown);
    assert_eq!(h.exit_code(), 0);
}

#[test]
fn large_message_over_tls() {
    let certs = make_certs();
    let sink = TlsSink::start(Mode::Tls(server_tls(certs.path())));
    let (_dir, settings) = settings_full(&table(&sink), "", &client_options(certs.path()));
    let mut h = Harness::start(settings);
    // ~1.5 MiB with dot lines: many partial TLS writes that would block.
    let mut big = b"Subject: big\r\n\r\n".to_vec();
    for i in 0..30_000 {
        big.extend_from_slice(format!(".line {i} with a leading dot and filler\r\n").as_bytes());
    }
    h.deliver(job(1, &["big@tls.test"]), &big);
    let report = h.report();
    let (status, reply, ..) = status_of(&report, "big@tls.test");
    assert_eq!(status, RecipientStatus::Sent, "{reply}");
    let seen = sink.next();
    assert_eq!(seen.verify, Some(Verify::Ok));
    assert!(seen.data == Some(big), "large message differs");
    h.send(&QueueToDelivery::Shutdown);
    assert_eq!(h.exit_code(), 0);
}
