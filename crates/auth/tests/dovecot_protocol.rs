//! The Dovecot backend against a scripted stand-in on a Unix socket: the
//! exact lines it sends, and what it makes of answers a real Dovecot
//! gives rarely or never (stale ids, temporary failures, silence, lines
//! that would break an SMTP reply). The real Dovecot is in dovecot.rs.

use std::io::{BufRead, BufReader, Write};
use std::net::IpAddr;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use postern_auth::{Authenticator, ClientInfo, DovecotAuth, Mechanism, Step};

/// What a Dovecot 2.3 says on connecting, with a private mechanism.
const HANDSHAKE: &str = "VERSION\t1\t2\nMECH\tPLAIN\tplaintext\nMECH\tLOGIN\tplaintext\n\
    MECH\tEXTERNAL\tprivate\nSPID\t4242\nCUID\t1\nCOOKIE\t00112233445566778899aabbccddeeff\nDONE\n";

/// The stand-in's side of one connection.
struct Peer {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Peer {
    fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("read a line");
        assert!(line.ends_with('\n'), "no whole line: {line:?}");
        line.pop();
        line
    }

    fn send(&mut self, text: &str) {
        self.writer.write_all(text.as_bytes()).expect("write");
    }

    /// Reads our handshake, answers with `handshake`.
    fn handshake(&mut self, handshake: &str) {
        assert_eq!(self.line(), "VERSION\t1\t2");
        assert_eq!(self.line(), format!("CPID\t{}", std::process::id()));
        self.send(handshake);
    }
}

/// A stand-in that accepts one connection and runs `script` on it; the
/// handle's join fails if the script's assertions did.
fn stand_in(
    script: impl FnOnce(&mut Peer) + Send + 'static,
) -> (tempfile::TempDir, PathBuf, JoinHandle<()>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("auth-client");
    let listener = UnixListener::bind(&path).expect("bind");
    let handle = thread::spawn(move || {
        let (stream, _) = listener.accept().expect("accept");
        let mut peer = Peer {
            reader: BufReader::new(stream.try_clone().expect("clone")),
            writer: stream,
        };
        script(&mut peer);
    });
    (dir, path, handle)
}

fn quick(path: PathBuf) -> DovecotAuth {
    DovecotAuth::new(path).with_timeouts(Duration::from_secs(1), Duration::from_secs(1))
}

fn temporary(step: &Step) -> bool {
    matches!(step, Step::TemporaryFailure { .. })
}

#[test]
fn requests_are_the_lines_dovecot_expects() {
    let (_dir, path, server) = stand_in(|peer| {
        peer.handshake(HANDSHAKE);
        assert_eq!(
            peer.line(),
            "AUTH\t1\tPLAIN\tservice=smtp\tnologin\tlip=192.0.2.1\trip=2001:db8::7\tsecured\tresp=AGFsaWNlAHNlY3JldA=="
        );
        peer.send("OK\t1\tuser=alice\n");
        assert_eq!(peer.line(), "AUTH\t2\tLOGIN\tservice=smtp\tnologin");
        peer.send("CONT\t2\tVXNlcm5hbWU6\n");
        // Our base64 goes on canonical (padded), whatever the client sent.
        assert_eq!(peer.line(), "CONT\t2\tYWxpY2U=");
        peer.send("FAIL\t2\treason=Try again\n");
        assert_eq!(peer.line(), "AUTH\t3\tPLAIN\tservice=smtp\tnologin\tresp=");
        peer.send("CONT\t3\t\n");
        assert_eq!(peer.line(), "CANCEL\t3");
        assert_eq!(peer.line(), "AUTH\t4\tLOGIN\tservice=smtp\tnologin");
        peer.send("CONT\t4\tVXNlcm5hbWU6\n");
        assert_eq!(peer.line(), "CANCEL\t4");
    });
    let mut auth = quick(path);
    let mechs = auth.mechanisms().expect("mechanisms");
    assert_eq!(
        mechs,
        [
            Mechanism {
                name: "PLAIN".into(),
                plaintext: true
            },
            Mechanism {
                name: "LOGIN".into(),
                plaintext: true
            },
        ]
    );
    let client = ClientInfo {
        local_ip: Some("192.0.2.1".parse::<IpAddr>().unwrap()),
        remote_ip: Some("2001:db8::7".parse::<IpAddr>().unwrap()),
        secured: true,
    };
    assert_eq!(
        auth.start(50, "plain", Some("AGFsaWNlAHNlY3JldA=="), &client),
        Step::Success {
            user: "alice".into()
        }
    );
    let plain = ClientInfo::default();
    assert_eq!(
        auth.start(50, "Login", None, &plain),
        Step::Challenge("VXNlcm5hbWU6".into())
    );
    assert_eq!(
        auth.respond(50, "YWxpY2U"),
        Step::Failure {
            reason: "Try again".into()
        }
    );
    assert_eq!(
        auth.start(51, "PLAIN", Some("="), &plain),
        Step::Challenge(String::new())
    );
    auth.cancel(51);
    assert!(matches!(
        auth.start(52, "LOGIN", None, &plain),
        Step::Challenge(_)
    ));
    // A client's `*`: not base64, and the exchange is cancelled.
    assert_eq!(auth.respond(52, "*"), Step::Malformed);
    server.join().expect("the stand-in's checks");
}

#[test]
fn private_and_unknown_mechanisms_are_never_sent() {
    let (_dir, path, server) = stand_in(|peer| {
        peer.handshake(HANDSHAKE);
        // The first request to arrive is the PLAIN one.
        assert!(peer.line().starts_with("AUTH\t1\tPLAIN\t"));
        peer.send("OK\t1\tuser=alice\n");
    });
    let mut auth = quick(path);
    let client = ClientInfo::default();
    for mech in ["EXTERNAL", "CRAM-MD5", "PLAIN\tresp=x", "PLAIN\n"] {
        assert!(
            matches!(auth.start(1, mech, None, &client), Step::Failure { .. }),
            "{mech:?}"
        );
    }
    assert!(matches!(
        auth.start(1, "PLAIN", Some("AGFsaWNlAHg="), &client),
        Step::Success { .. }
    ));
    server.join().expect("the stand-in's checks");
}

#[test]
fn answers_to_other_requests_are_skipped() {
    let (_dir, path, server) = stand_in(|peer| {
        peer.handshake(HANDSHAKE);
        assert!(peer.line().starts_with("AUTH\t1\t"));
        peer.send("FAIL\t99\treason=stale\nCANCELLED\t1\nNOTICE\tx\n\nOK\t1\tuser=alice\n");
    });
    let mut auth = quick(path);
    assert_eq!(
        auth.start(1, "PLAIN", Some("AGFsaWNlAHg="), &ClientInfo::default()),
        Step::Success {
            user: "alice".into()
        }
    );
    server.join().expect("the stand-in's checks");
}

#[test]
fn a_temporary_failure_of_dovecot_is_one_for_the_client() {
    let (_dir, path, server) = stand_in(|peer| {
        peer.handshake(HANDSHAKE);
        peer.line();
        peer.send("FAIL\t1\tuser=alice\treason=passdb\x01tdown\ttemp\n");
    });
    let mut auth = quick(path);
    assert_eq!(
        auth.start(1, "PLAIN", Some("AGFsaWNlAHg="), &ClientInfo::default()),
        Step::TemporaryFailure {
            reason: "passdb down".into()
        }
    );
    server.join().expect("the stand-in's checks");
}

#[test]
fn answers_that_could_break_an_smtp_reply_are_refused() {
    let (_dir, path, server) = stand_in(|peer| {
        peer.handshake(HANDSHAKE);
        peer.line();
        peer.send("CONT\t1\tVXNl\x01n250 OK\n");
        assert_eq!(peer.line(), "CANCEL\t1");
        peer.line();
        peer.send("OK\t2\tuser=alice\x01r\x01nRCPT\n");
    });
    let mut auth = quick(path);
    let client = ClientInfo::default();
    assert!(temporary(&auth.start(1, "LOGIN", None, &client)));
    // The connection was kept: the second answer is read on it.
    assert!(temporary(&auth.start(
        2,
        "PLAIN",
        Some("AGFsaWNlAHg="),
        &client
    )));
    server.join().expect("the stand-in's checks");
}

#[test]
fn a_silent_dovecot_costs_the_timeout_and_no_more() {
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let (_dir, path, server) = stand_in(move |peer| {
        peer.handshake(HANDSHAKE);
        peer.line();
        // Holds the connection open without a word until the test ends.
        let _ = done_rx.recv_timeout(Duration::from_secs(20));
    });
    let mut auth = quick(path);
    let started = Instant::now();
    let step = auth.start(1, "PLAIN", Some("AGFsaWNlAHg="), &ClientInfo::default());
    assert!(temporary(&step), "{step:?}");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(900), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    done_tx.send(()).unwrap();
    server.join().expect("the stand-in's checks");
}

#[test]
fn a_silent_handshake_times_out() {
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let (_dir, path, server) = stand_in(move |peer| {
        peer.line();
        let _ = done_rx.recv_timeout(Duration::from_secs(20));
    });
    let mut auth = quick(path);
    let started = Instant::now();
    let error = auth.mechanisms().expect_err("no handshake");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(error.to_string().contains("auth-client"), "{error}");
    done_tx.send(()).unwrap();
    server.join().expect("the stand-in's checks");
}

#[test]
fn another_protocol_version_or_an_endless_line_is_refused() {
    let (_dir, path, server) = stand_in(|peer| {
        peer.line();
        peer.line();
        peer.send("VERSION\t2\t0\nDONE\n");
    });
    let error = quick(path).mechanisms().expect_err("version 2");
    assert!(error.to_string().contains("version 2"), "{error}");
    server.join().expect("the stand-in's checks");

    let (_dir, path, server) = stand_in(|peer| {
        peer.handshake(HANDSHAKE);
        peer.line();
        // Dovecot's limit is 16 KiB: 100 KiB without a newline is wrong.
        let _ = peer.writer.write_all(&vec![b'A'; 100_000]);
    });
    let mut auth = quick(path);
    let step = auth.start(1, "LOGIN", None, &ClientInfo::default());
    assert!(temporary(&step), "{step:?}");
    server.join().expect("the stand-in's checks");
}

#[test]
fn no_dovecot_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let mut auth = quick(dir.path().join("auth-client"));
    assert!(auth.mechanisms().is_err());
    assert!(temporary(&auth.start(
        1,
        "PLAIN",
        None,
        &ClientInfo::default()
    )));
    assert!(matches!(auth.respond(1, "eA=="), Step::Failure { .. }));
    auth.cancel(1);
}
