//! STARTTLS as the seed's recipe configures it: the six defines, a
//! certificate made by scripts/make-certs.sh, and real peers (OpenSSL's
//! s_client, swaks) on the other end.

mod common;

use postern_testkit::make_certs;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};

use common::{daemon_with_sink, seed_tls_defines, strip_received, WAIT};
use postern_testkit::{Sink, SmtpConversation};

fn tls_daemon(sink: &Sink, certs: &std::path::Path, extra: &[&str]) -> postern_testkit::Daemon {
    let defines = seed_tls_defines(certs);
    let mut lines: Vec<&str> = defines.iter().map(String::as_str).collect();
    lines.extend_from_slice(extra);
    daemon_with_sink(sink, &lines)
}

#[test]
fn the_seed_recipe_offers_starttls_and_the_second_ehlo_does_not() {
    let certs = make_certs();
    let sink = Sink::start();
    // sendmail's MaxMessageSize (no limit), as in the seed: bare `SIZE`.
    // (Postern's default, 35 MiB, is announced as `SIZE 36700160`.)
    let daemon = tls_daemon(&sink, certs.path(), &["O MaxMessageSize=0"]);
    let mut c = SmtpConversation::connect(daemon.smtp_addr());
    c.read_reply();
    c.send_line("EHLO localhost");
    assert_eq!(
        c.read_reply(),
        "250-mx.test Hello localhost [127.0.0.1], pleased to meet you\n\
         250-ENHANCEDSTATUSCODES\n250-PIPELINING\n250-EXPN\n250-VERB\n250-8BITMIME\n\
         250-SIZE\n250-DSN\n250-ETRN\n250-STARTTLS\n250-DELIVERBY\n250 HELP"
    );
    c.cmd("QUIT", "221");

    // OpenSSL's own client: handshake, then EHLO inside TLS.
    let mut s_client = Command::new("openssl")
        .args([
            "s_client",
            "-starttls",
            "smtp",
            "-crlf",
            "-quiet",
            "-connect",
        ])
        .arg(daemon.smtp_addr().to_string())
        .arg("-CAfile")
        .arg(certs.path().join("cacert.pem"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = s_client.stdin.take().unwrap();
    let mut stdout = BufReader::new(s_client.stdout.take().unwrap());
    writeln!(stdin, "EHLO client.example").unwrap();
    let mut ehlo = Vec::new();
    loop {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "s_client ended early: {ehlo:?}"
        );
        // s_client may print the last line of its own, pre-TLS EHLO reply
        // first; ours is the multi-line reply that follows.
        ehlo.push(line.clone());
        if line.starts_with("250 ") && ehlo.iter().any(|l| l.starts_with("250-")) {
            break;
        }
    }
    assert!(
        ehlo.iter().any(|l| l.starts_with("250-PIPELINING")),
        "{ehlo:?}"
    );
    assert!(
        !ehlo.iter().any(|l| l.contains("STARTTLS")),
        "STARTTLS offered inside TLS: {ehlo:?}"
    );
    writeln!(stdin, "STARTTLS").unwrap();
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert!(line.starts_with("503 5.5.1 "), "{line}");
    writeln!(stdin, "QUIT").unwrap();
    drop(stdin);
    let mut rest = String::new();
    stdout.read_line(&mut rest).unwrap();
    assert!(
        rest.starts_with("221 2.0.0 mx.test closing connection"),
        "{rest}"
    );
    s_client.wait().unwrap();
    let line = daemon.wait_for_log(
        "STARTTLS=server, relay=localhost [127.0.0.1], version=TLSv1.3, verify=NO, cipher=",
        WAIT,
    );
    assert!(line.contains(", bits=") && line.contains('/'), "{line}");
}

/// Runs `openssl s_client -starttls smtp` for TLS 1.2 with `cipher`;
/// true when the handshake succeeded.
fn tls12_handshake_with(addr: std::net::SocketAddr, certs: &std::path::Path, cipher: &str) -> bool {
    let out = Command::new("openssl")
        .args([
            "s_client",
            "-starttls",
            "smtp",
            "-tls1_2",
            "-cipher",
            cipher,
        ])
        .arg("-connect")
        .arg(addr.to_string())
        .arg("-CAfile")
        .arg(certs.join("cacert.pem"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    out.status.success() && text.contains(&format!("Cipher is {cipher}"))
}

#[test]
fn only_forward_secret_suites_by_default() {
    let certs = make_certs();
    let sink = Sink::start();
    let daemon = tls_daemon(&sink, certs.path(), &[]);
    let addr = daemon.smtp_addr();
    // RSA key exchange: a recorded session decrypts with the key later.
    for static_rsa in ["AES128-SHA", "AES256-GCM-SHA384"] {
        assert!(
            !tls12_handshake_with(addr, certs.path(), static_rsa),
            "{static_rsa} accepted"
        );
    }
    assert!(tls12_handshake_with(
        addr,
        certs.path(),
        "ECDHE-RSA-AES256-GCM-SHA384"
    ));
    // An administrator may widen the list, but never to RSA key
    // exchange: that would have the key holder decrypt, which it never
    // does. The rest of the wider list is there.
    let wide = tls_daemon(&sink, certs.path(), &["O CipherList=DEFAULT"]);
    assert!(!tls12_handshake_with(
        wide.smtp_addr(),
        certs.path(),
        "AES256-GCM-SHA384"
    ));
    assert!(tls12_handshake_with(
        wide.smtp_addr(),
        certs.path(),
        "ECDHE-RSA-AES128-SHA"
    ));
}

#[test]
fn swaks_over_tls_gets_the_tls_received_header() {
    let certs = make_certs();
    let sink = Sink::start();
    let daemon = tls_daemon(&sink, certs.path(), &[]);
    let addr = daemon.smtp_addr();
    let out = Command::new("swaks")
        .args([
            "--server",
            &addr.ip().to_string(),
            "--port",
            &addr.port().to_string(),
        ])
        .args([
            "--from",
            "craig@rodent.example",
            "--to",
            "craig@sink.test",
            "--helo",
            "rodent.example",
        ])
        .args(["--tls", "--tls-cert"])
        .arg(certs.path().join("cert.pem"))
        .arg("--tls-key")
        .arg(certs.path().join("key.pem"))
        .args([
            "--header",
            "Subject: First STARTTLS test",
            "--body",
            "hello over TLS",
        ])
        .output()
        .unwrap();
    let transcript = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "swaks failed:\n{transcript}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        transcript.contains("<~  250 2.0.0 ")
            && transcript.contains("Message accepted for delivery"),
        "{transcript}"
    );

    let m = &sink.wait_for_messages(1, WAIT)[0];
    let text = String::from_utf8_lossy(&m.data);
    let received: String = text[..text.len() - strip_received(&m.data).len()].to_string();
    assert!(
        received.starts_with(
            "Received: from rodent.example (localhost [127.0.0.1])\r\n\tby mx.test (Postern "
        ),
        "{received}"
    );
    assert!(received.contains(") with ESMTPS id "), "{received}");
    assert!(
        received.contains("\r\n\t(version=TLSv1.3 cipher=TLS_"),
        "{received}"
    );
    assert!(
        received.contains(" bits=256 verify=OK)\r\n\tfor <craig@sink.test>; "),
        "{received}"
    );
    daemon.wait_for_log(
        "STARTTLS=server, relay=localhost [127.0.0.1], version=TLSv1.3, verify=OK",
        WAIT,
    );
}

/// `STARTTLS\r\nRSET\r\n` in one write: RSET must never be answered from
/// inside TLS (CVE-2011-0411).
#[test]
fn commands_pipelined_behind_starttls_are_thrown_away() {
    let certs = make_certs();
    let sink = Sink::start();
    let daemon = tls_daemon(&sink, certs.path(), &[]);
    let mut c = SmtpConversation::connect(daemon.smtp_addr());
    c.read_reply();
    c.cmd("EHLO client.example", "250");
    c.send_raw(b"STARTTLS\r\nRSET\r\n");
    assert_eq!(c.read_reply(), "220 2.0.0 Ready to start TLS");
    let config = postern_config::Config::parse_str(
        &format!(
            "define(`confCACERT', `{}/cacert.pem')\n",
            certs.path().display()
        ),
        std::path::Path::new("/client.cf"),
    )
    .unwrap();
    let client = postern_tls::ClientTls::from_files(&config.tls, postern_tls::Keys::Load).unwrap();
    let tcp = c.stream().try_clone().unwrap();
    let mut tls = client.session(tcp, "localhost").unwrap();
    assert!(matches!(
        tls.handshake().unwrap(),
        postern_tls::Handshake::Done
    ));
    assert_eq!(tls.info().verify.as_str(), "OK");
    tls.write_all(b"NOOP\r\n").unwrap();
    let mut reply = [0u8; 512];
    let n = tls.read(&mut reply).unwrap();
    // The first reply inside TLS is NOOP's, not RSET's.
    assert_eq!(&reply[..n], b"250 2.0.0 OK\r\n");
    daemon.wait_for_log(
        "discarded 6 bytes of plaintext pipelined after STARTTLS",
        WAIT,
    );
}

#[test]
fn unusable_keys_stop_the_start_naming_the_file() {
    let certs = make_certs();
    let other = make_certs();
    let key = certs.path().join("key.pem");
    let cases = [
        ("missing", certs.path().join("nosuch.pem"), "unreadable"),
        (
            "mismatched",
            other.path().join("key.pem"),
            "does not match certificate",
        ),
        ("world-readable", key.clone(), "unsafe"),
    ];
    for (what, key_file, expect) in cases {
        if what == "world-readable" {
            std::fs::set_permissions(
                &key_file,
                std::os::unix::fs::PermissionsExt::from_mode(0o644),
            )
            .unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        let cf = dir.path().join("postern.cf");
        std::fs::write(
            &cf,
            format!(
                "define(`confSERVER_CERT', `{}/cert.pem')\ndefine(`confSERVER_KEY', `{}')\nO QueueDirectory={}/spool\n",
                certs.path().display(),
                key_file.display(),
                dir.path().display()
            ),
        )
        .unwrap();
        let out = Command::new(postern_testkit::binary("posternd"))
            .arg("-C")
            .arg(&cf)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{what}: {stderr}");
        assert!(
            stderr.contains(&key_file.display().to_string()) && stderr.contains(expect),
            "{what}: {stderr}"
        );
        assert!(stderr.contains("STARTTLS=server"), "{what}: {stderr}");
    }
}
