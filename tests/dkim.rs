//! DKIM signing with OpenDKIM (Debian's `opendkim`), as a sendmail site
//! runs it: `INPUT_MAIL_FILTER(`opendkim', `S=inet:PORT@127.0.0.1, F=T')`.
//! Mail relayed through Postern from an internal host arrives at the sink
//! signed, and a second OpenDKIM, in verify mode with the public key from
//! a file (`TestPublicKeys`: no DNS), says `dkim=pass`; the same message
//! with its body changed says `dkim=fail`.

mod common;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command};

use common::filters::{relaying_daemon, send, session};
use common::WAIT;
use postern_milter::edit::Message;
use postern_milter::filter::{ClientAddress, Timeouts};
use postern_milter::{Filter, Modification, Verdict};
use postern_testkit::{poll_until, Sink};

/// An OpenDKIM process, stopped by its PID when the test ends.
struct OpenDkim {
    child: Child,
    port: u16,
}

impl Drop for OpenDkim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `opendkim -f` with `settings` (plus its socket and pid file)
/// written to `dir/<name>.conf`; returns once it listens.
fn opendkim(dir: &Path, name: &str, settings: &str) -> OpenDkim {
    let port = free_port();
    let conf = dir.join(format!("{name}.conf"));
    std::fs::write(
        &conf,
        format!(
            "Syslog no\nSocket inet:{port}@127.0.0.1\nPidFile {}\n{settings}",
            dir.join(format!("{name}.pid")).display()
        ),
    )
    .unwrap();
    let child = Command::new("/usr/sbin/opendkim")
        .args(["-f", "-x"])
        .arg(&conf)
        .spawn()
        .expect("opendkim (scripts/test.sh installs it)");
    let mut o = OpenDkim { child, port };
    let up = poll_until(WAIT, || {
        if let Ok(Some(status)) = o.child.try_wait() {
            panic!("opendkim {name} exited: {status}");
        }
        TcpStream::connect(("127.0.0.1", port)).ok()
    });
    assert!(up.is_some(), "opendkim {name} never listened");
    o
}

/// `opendkim-genkey`'s TXT record as one `name value` line, the form
/// OpenDKIM's TestPublicKeys file takes.
fn public_key_line(zone_text: &str) -> String {
    let quoted: String = zone_text
        .split('"')
        .skip(1)
        .step_by(2)
        .collect::<Vec<_>>()
        .concat();
    format!("test._domainkey.example.com {quoted}")
}

/// What the verifying OpenDKIM says of `message`: its
/// Authentication-Results header.
fn verify(verifier: &OpenDkim, message: &[u8]) -> String {
    let stream = TcpStream::connect(("127.0.0.1", verifier.port)).unwrap();
    let mut f = Filter::negotiate(stream, Timeouts::default(), BTreeMap::new()).unwrap();
    let none = |_: &str| None;
    // From outside: OpenDKIM verifies mail from hosts not internal.
    let client = ClientAddress::Ip {
        addr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 25)),
        port: 25,
    };
    assert_eq!(
        f.connect("mx.example.com", &client, &none).unwrap(),
        Verdict::Continue
    );
    f.helo("mx.example.com", &none).unwrap();
    f.mail(&["<alice@example.com>".to_string()], &none).unwrap();
    f.rcpt(&["<bob@example.net>".to_string()], &none).unwrap();
    f.data(&none).unwrap();
    let parsed = Message::parse(message, true);
    for h in parsed.user_headers() {
        f.header(&h.name, &h.value).unwrap();
    }
    f.end_of_headers(&none).unwrap();
    f.body(&parsed.body).unwrap();
    let (_, changes) = f.end_of_message(&none).unwrap();
    f.quit();
    changes
        .iter()
        .find_map(|c| match c {
            Modification::AddHeader { name, value }
            | Modification::InsertHeader { name, value, .. }
                if name == "Authentication-Results" =>
            {
                Some(value.clone())
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no Authentication-Results in {changes:?}"))
}

#[test]
fn mail_relayed_through_opendkim_arrives_signed_and_verifies() {
    // OpenDKIM refuses keys and configuration below a directory others
    // may write to (as /tmp is).
    let dir = tempfile::Builder::new()
        .prefix("postern-dkim-")
        .tempdir_in("/run")
        .expect("a directory in /run (the tests run as root)");
    let status = Command::new("/usr/sbin/opendkim-genkey")
        .args(["-D"])
        .arg(dir.path())
        .args(["-d", "example.com", "-s", "test"])
        .status()
        .unwrap();
    assert!(status.success());
    let key = dir.path().join("test.private");
    let signer = opendkim(
        dir.path(),
        "sign",
        &format!(
            "Mode s\nDomain example.com\nSelector test\nKeyFile {}\n\
             Canonicalization relaxed/simple\nInternalHosts 127.0.0.1\n",
            key.display()
        ),
    );
    let zone = std::fs::read_to_string(dir.path().join("test.txt")).unwrap();
    let keys = dir.path().join("keys");
    std::fs::write(&keys, format!("{}\n", public_key_line(&zone))).unwrap();
    let verifier = opendkim(
        dir.path(),
        "verify",
        &format!(
            "Mode v\nTestPublicKeys {}\nAuthservID verifier.test\n",
            keys.display()
        ),
    );

    let sink = Sink::start();
    let d = relaying_daemon(
        &sink,
        &[format!(
            "INPUT_MAIL_FILTER(`opendkim', `S=inet:{}@127.0.0.1, F=T, T=C:10s;S:10s;R:10s;E:1m')",
            signer.port
        )],
    );
    let mut c = session(&d, "client.example.com");
    let reply = send(
        &mut c,
        "alice@example.com",
        &["bob@example.net"],
        "From: Alice <alice@example.com>\r\nTo: bob@example.net\r\n\
         Subject: signed by OpenDKIM\r\n\r\nHello Bob,\r\n\r\nthis message is signed.\r\n",
    );
    assert!(reply.starts_with("250 2.0.0 "), "{reply}");
    c.cmd("QUIT", "221");

    let m = sink.wait_for_messages(1, WAIT).remove(0);
    let text = String::from_utf8_lossy(&m.data).into_owned();
    let head = text.split("\r\n\r\n").next().unwrap();
    // OpenDKIM inserts its signature at the top, above our Received:.
    assert!(
        head.starts_with("DKIM-Signature: v=1; a=rsa-sha256;"),
        "{head}"
    );
    assert!(
        head.contains("d=example.com") && head.contains("s=test"),
        "{head}"
    );
    d.wait_for_log("Milter insert (0): header: DKIM-Signature:", WAIT);

    let results = verify(&verifier, &m.data);
    assert!(results.contains("dkim=pass"), "{results}");
    assert!(results.contains("header.d=example.com"), "{results}");
    // The check can fail: a changed body does not verify.
    let mut tampered = m.data.clone();
    tampered.extend_from_slice(b"P.S. added on the way\r\n");
    let results = verify(&verifier, &tampered);
    assert!(results.contains("dkim=fail"), "{results}");
}

#[test]
fn the_public_key_line_is_the_txt_records_text() {
    let zone = "test._domainkey\tIN\tTXT\t( \"v=DKIM1; h=sha256; k=rsa; \"\n\t  \"p=MIIB\"\n\t  \"IjAN\" )  ; ----- DKIM key test for example.com\n";
    assert_eq!(
        public_key_line(zone),
        "test._domainkey.example.com v=DKIM1; h=sha256; k=rsa; p=MIIBIjAN"
    );
}
