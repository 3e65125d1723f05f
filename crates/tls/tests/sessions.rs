//! Real handshakes over real sockets: {verify} on both sides, the trace
//! lines, CACertPath in a "chroot", CRLs, non-blocking driving, and the
//! TLS 1.2 floor.

mod common;

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::thread;
use std::time::Duration;

use common::{connect, Pki};
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode, SslVersion};
use postern_tls::{ClientTls, Handshake, Keys, ServerTls, TlsError, TlsFiles, Verify};

fn server(files: &TlsFiles) -> ServerTls {
    ServerTls::from_files(files, Keys::Load).unwrap().unwrap()
}

fn client(files: &TlsFiles) -> ClientTls {
    ClientTls::from_files(files, Keys::Load).unwrap()
}

#[test]
fn same_ca_verifies_both_ways() {
    let pki = Pki::new();
    let out = connect(
        &server(&pki.server_files("srv_a", "ca_a.pem")),
        &client(&pki.client_files(Some("cli_a"), "ca_a.pem")),
    );
    for info in [&out.server, &out.client] {
        assert_eq!(info.verify, Verify::Ok, "{info:?}");
        assert_eq!(info.version, "TLSv1.3");
        assert!(!info.cipher.is_empty());
        assert!(info.cipher_bits >= 128, "{info:?}");
        assert!(info.alg_bits >= 128, "{info:?}");
        assert_eq!(
            info.cert_issuer.as_deref(),
            Some("/O=Postern tests/CN=Postern test CA A")
        );
    }
    assert_eq!(
        out.server.cert_subject.as_deref(),
        Some("/O=Postern tests/CN=client.postern.test")
    );
    assert_eq!(
        out.client.cert_subject.as_deref(),
        Some("/O=Postern tests/CN=mx.postern.test")
    );
    assert_eq!(out.server.cipher, out.client.cipher);
    // The callback saw the leaf and the CA, both fine.
    assert!(out.server_trace.iter().any(|l| l
        == "STARTTLS: TLS cert verify: depth=0 /O=Postern tests/CN=client.postern.test, state=ok, reason=ok"),
        "{:?}", out.server_trace);
    assert!(
        out.server_trace.iter().any(|l| l.contains("depth=1 ")),
        "{:?}",
        out.server_trace
    );
}

#[test]
fn client_certificate_from_another_ca_is_fail_but_accepted() {
    let pki = Pki::new();
    let out = connect(
        &server(&pki.server_files("srv_a", "ca_a.pem")),
        &client(&pki.client_files(Some("cli_b"), "ca_a.pem")),
    );
    assert_eq!(out.server.verify, Verify::Fail);
    assert_eq!(out.client.verify, Verify::Ok);
    let fail: Vec<_> = out
        .server_trace
        .iter()
        .filter(|l| l.contains("state=fail"))
        .collect();
    assert!(!fail.is_empty(), "{:?}", out.server_trace);
    assert!(
        fail.iter().any(|l| l.starts_with(
            "STARTTLS: TLS cert verify: depth=0 /O=Postern tests/CN=client.postern.test, state=fail, reason="
        ) && !l.ends_with("reason=")),
        "{:?}",
        out.server_trace
    );

    // With its CA in the file, the chain fails one level up instead.
    let out = connect(
        &server(&pki.server_files("srv_a", "ca_a.pem")),
        &client(&pki.client_files(Some("cli_b_chain"), "ca_a.pem")),
    );
    assert_eq!(out.server.verify, Verify::Fail);
    assert!(
        out.server_trace
            .iter()
            .any(|l| l.contains("depth=1 ") && l.contains("state=fail")),
        "{:?}",
        out.server_trace
    );
}

#[test]
fn no_client_certificate_is_no() {
    let pki = Pki::new();
    let out = connect(
        &server(&pki.server_files("srv_a", "ca_a.pem")),
        &client(&pki.client_files(None, "ca_a.pem")),
    );
    assert_eq!(out.server.verify, Verify::No);
    assert_eq!(out.server.cert_subject, None);
    assert_eq!(out.server.cert_issuer, None);
    assert!(out.server_trace.is_empty());
    assert_eq!(out.client.verify, Verify::Ok);
}

#[test]
fn srv_option_v_is_not() {
    let pki = Pki::new();
    let mut files = pki.server_files("srv_a", "ca_a.pem");
    files.srv_options.no_client_cert_request = true;
    let out = connect(
        &server(&files),
        &client(&pki.client_files(Some("cli_a"), "ca_a.pem")),
    );
    assert_eq!(out.server.verify, Verify::Not);
    // Not asked, so the client sent nothing.
    assert_eq!(out.server.cert_subject, None);
    assert!(out.server_trace.is_empty());
}

#[test]
fn server_certificate_from_another_ca_is_fail_and_completes() {
    let pki = Pki::new();
    let out = connect(
        &server(&pki.server_files("srv_b", "ca_a.pem")),
        &client(&pki.client_files(Some("cli_a"), "ca_a.pem")),
    );
    assert_eq!(out.client.verify, Verify::Fail);
    assert!(
        out.client_trace
            .iter()
            .any(|l| l.contains("depth=0 ") && l.contains("state=fail")),
        "{:?}",
        out.client_trace
    );
    assert_eq!(out.server.verify, Verify::Ok);

    // A client with no CA at all cannot verify anything, and still talks.
    let out = connect(
        &server(&pki.server_files("srv_a", "ca_a.pem")),
        &client(&TlsFiles::default()),
    );
    assert_eq!(out.client.verify, Verify::Fail);
    assert_eq!(out.server.verify, Verify::No);
}

#[test]
fn ca_cert_path_is_read_before_the_chroot() {
    let pki = Pki::new();
    let ca_dir = pki.dir.path().join("certs");
    std::fs::create_dir(&ca_dir).unwrap();
    let hash = pki.a.cert.subject_name_hash();
    std::fs::write(
        ca_dir.join(format!("{hash:08x}.0")),
        pki.a.cert.to_pem().unwrap(),
    )
    .unwrap();
    // Things that are not certificates are skipped.
    std::fs::write(ca_dir.join("readme.pem"), b"hello\n").unwrap();
    std::fs::copy(pki.pair("srv_a").key, ca_dir.join("key.pem")).unwrap();

    let mut server_files = pki.server_files("srv_a", "ca_a.pem");
    server_files.ca_cert_file = None;
    server_files.ca_cert_path = Some(ca_dir.clone());
    let mut client_files = pki.client_files(Some("cli_a"), "ca_a.pem");
    client_files.ca_cert_file = None;
    client_files.ca_cert_path = Some(ca_dir.clone());
    let (s, c) = (server(&server_files), client(&client_files));

    // What the front sees in its empty chroot: nothing.
    std::fs::remove_dir_all(&ca_dir).unwrap();
    let out = connect(&s, &c);
    assert_eq!(out.server.verify, Verify::Ok, "{:?}", out.server_trace);
    assert_eq!(out.client.verify, Verify::Ok, "{:?}", out.client_trace);
}

#[test]
fn crl_revokes_a_client_certificate() {
    let pki = Pki::new();
    let mut files = pki.server_files("srv_a", "ca_a.pem");
    files.crl_file = Some(pki.write("empty.crl", &pki.a.crl_pem(&[99]), 0o644));
    let cli = client(&pki.client_files(Some("cli_a"), "ca_a.pem"));
    assert_eq!(connect(&server(&files), &cli).server.verify, Verify::Ok);

    // cli_a has serial 11.
    files.crl_file = Some(pki.write("revoked.crl", &pki.a.crl_pem(&[11]), 0o644));
    let s = server(&files);
    // The CRL was loaded at build time; it may go away.
    std::fs::remove_file(files.crl_file.as_ref().unwrap()).unwrap();
    let out = connect(&s, &cli);
    assert_eq!(out.server.verify, Verify::Fail);
    assert!(
        out.server_trace
            .iter()
            .any(|l| l.contains("depth=0 ") && l.contains("reason=certificate revoked")),
        "{:?}",
        out.server_trace
    );
}

/// Drives both handshakes on non-blocking sockets in one thread, the way
/// an event loop would, until both are done.
#[test]
fn non_blocking_handshake_and_io() {
    let pki = Pki::new();
    let s = server(&pki.server_files("srv_a", "ca_a.pem"));
    let c = client(&pki.client_files(Some("cli_a"), "ca_a.pem"));
    let (a, b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    b.set_nonblocking(true).unwrap();
    let mut srv = s.session(a).unwrap();
    let mut cli = c.session(b, "mx.postern.test").unwrap();

    let (mut srv_state, mut cli_state) = (Handshake::WantRead, Handshake::WantRead);
    let mut waits = 0;
    for _ in 0..1000 {
        if cli_state != Handshake::Done {
            cli_state = cli.handshake().unwrap();
        }
        if srv_state != Handshake::Done {
            srv_state = srv.handshake().unwrap();
        }
        if srv_state == Handshake::Done && cli_state == Handshake::Done {
            break;
        }
        if srv_state == Handshake::WantRead || cli_state == Handshake::WantRead {
            waits += 1;
        }
    }
    assert_eq!((srv_state, cli_state), (Handshake::Done, Handshake::Done));
    assert!(
        waits > 0,
        "a non-blocking handshake has to wait for the peer"
    );
    // Done stays done.
    assert_eq!(srv.handshake().unwrap(), Handshake::Done);
    assert_eq!(srv.info().verify, Verify::Ok);
    assert_eq!(cli.info().verify, Verify::Ok);

    // Nothing to read yet (the session tickets are consumed silently).
    let mut buf = [0u8; 64];
    assert_eq!(
        cli.read(&mut buf).unwrap_err().kind(),
        io::ErrorKind::WouldBlock
    );
    assert_eq!(
        srv.read(&mut buf).unwrap_err().kind(),
        io::ErrorKind::WouldBlock
    );

    srv.write_all(b"220 ready\r\n").unwrap();
    let n = retry(|| cli.read(&mut buf));
    assert_eq!(&buf[..n], b"220 ready\r\n");

    // Fill the socket until writing would block, then drain it from the
    // other side and finish the pending write with the same bytes.
    let chunk = vec![b'x'; 16 * 1024];
    let mut written = 0;
    let mut blocked = false;
    for _ in 0..10_000 {
        match cli.write(&chunk) {
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                blocked = true;
                break;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(blocked, "the socket buffer never filled");
    let mut read = 0;
    let mut big = vec![0u8; 64 * 1024];
    let mut pending = true;
    for _ in 0..100_000 {
        if pending {
            match cli.write(&chunk) {
                Ok(n) => {
                    written += n;
                    pending = false;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
        }
        match srv.read(&mut big) {
            Ok(0) => panic!("unexpected end of stream"),
            Ok(n) => {
                assert!(big[..n].iter().all(|&b| b == b'x'));
                read += n;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("{e}"),
        }
        if !pending && read == written {
            break;
        }
    }
    assert!(!pending);
    assert_eq!(read, written);

    // close_notify reads as the end of the stream.
    cli.shutdown();
    assert_eq!(retry(|| srv.read(&mut buf)), 0);
}

/// Retries a non-blocking operation until it stops saying WouldBlock.
fn retry(mut op: impl FnMut() -> io::Result<usize>) -> usize {
    for _ in 0..1000 {
        match op() {
            Ok(n) => return n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(1))
            }
            Err(e) => panic!("{e}"),
        }
    }
    panic!("still blocked");
}

#[test]
fn eof_without_close_notify_reads_as_end() {
    let pki = Pki::new();
    let s = server(&pki.server_files("srv_a", "ca_a.pem"));
    let c = client(&pki.client_files(None, "ca_a.pem"));
    let (a, b) = UnixStream::pair().unwrap();
    let handle = thread::spawn(move || {
        let mut tls = c.session(b, "mx.postern.test").unwrap();
        assert_eq!(tls.handshake().unwrap(), Handshake::Done);
        tls.write_all(b"QUIT\r\n").unwrap();
        // The transport ends without a close_notify. (Half-closed, so that
        // the unread session tickets do not turn the close into a reset.)
        tls.get_ref().shutdown(Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        let _ = tls.read_to_end(&mut rest);
    });
    let mut tls = s.session(a).unwrap();
    assert_eq!(tls.handshake().unwrap(), Handshake::Done);
    let mut all = Vec::new();
    tls.read_to_end(&mut all).unwrap();
    assert_eq!(all, b"QUIT\r\n");
    drop(tls);
    handle.join().unwrap();
}

#[test]
fn tls_1_1_client_is_refused() {
    let pki = Pki::new();
    let s = server(&pki.server_files("srv_a", "ca_a.pem"));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = thread::spawn(move || {
        let (sock, _) = listener.accept().unwrap();
        let mut tls = s.session(sock).unwrap();
        tls.handshake()
    });
    let mut old = SslConnector::builder(SslMethod::tls_client()).unwrap();
    old.set_min_proto_version(Some(SslVersion::TLS1_1)).unwrap();
    old.set_max_proto_version(Some(SslVersion::TLS1_1)).unwrap();
    // OpenSSL 3's default security level forbids TLS 1.1 even for the
    // client; lower it so the old ClientHello actually goes out.
    old.set_cipher_list("DEFAULT:@SECLEVEL=0").unwrap();
    old.set_verify(SslVerifyMode::NONE);
    let sock = TcpStream::connect(addr).unwrap();
    let client_result = old.build().connect("mx.postern.test", sock);
    assert!(client_result.is_err());
    match handle.join().unwrap() {
        Err(TlsError::Handshake(msg)) => {
            assert!(msg.contains("unsupported protocol"), "{msg}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn failed_handshake_is_an_error_not_a_panic() {
    let pki = Pki::new();
    let s = server(&pki.server_files("srv_a", "ca_a.pem"));
    let (a, mut b) = UnixStream::pair().unwrap();
    // A plaintext SMTP command where a ClientHello should be.
    b.write_all(b"EHLO mail.example\r\n").unwrap();
    drop(b);
    let mut tls = s.session(a).unwrap();
    let e = tls.handshake().unwrap_err();
    assert!(matches!(e, TlsError::Handshake(_)), "{e:?}");

    // A peer that hangs up at once.
    let (a, b) = UnixStream::pair().unwrap();
    drop(b);
    let mut tls = s.session(a).unwrap();
    assert!(tls.handshake().is_err());
}

/// The certificates a server sends, as a plain OpenSSL client sees them.
fn chain_sent(server: &ServerTls) -> Vec<String> {
    let (addr, handle) = common::serve_one(server, drop);
    let mut builder = SslConnector::builder(SslMethod::tls_client()).unwrap();
    builder.set_verify(SslVerifyMode::NONE);
    let tls = builder
        .build()
        .connect("mx.postern.test", TcpStream::connect(addr).unwrap())
        .unwrap();
    let subjects = tls
        .ssl()
        .peer_cert_chain()
        .unwrap()
        .iter()
        .map(|cert| {
            let cn = cert.subject_name().entries().last().unwrap();
            cn.data().to_string().unwrap()
        })
        .collect();
    drop(tls);
    handle.join().unwrap();
    subjects
}

#[test]
fn a_certificate_without_intermediates_goes_out_with_its_chain_from_the_trust_store() {
    let pki = Pki::new();
    // The file holds the leaf alone: the CA comes from CACertFile (built
    // once when the context is made, as OpenSSL would in each handshake).
    assert_eq!(
        chain_sent(&server(&pki.server_files("srv_b", "ca_b.pem"))),
        ["mx.postern.test", "Postern test CA B"]
    );
    // Trusting another CA, there is no chain to build: the leaf alone.
    assert_eq!(
        chain_sent(&server(&pki.server_files("srv_b", "ca_a.pem"))),
        ["mx.postern.test"]
    );
    // A file with its chain: that chain, as it is.
    assert_eq!(
        chain_sent(&server(&pki.server_files("srv_a", "ca_b.pem"))),
        ["mx.postern.test", "Postern test CA A"]
    );
}
