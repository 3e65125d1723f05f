//! `MaybeTls`: clear text, then STARTTLS over the same socket, on both
//! sides; a failed switch leaves a closed connection, never a half one.

mod common;

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::thread;

use common::Pki;
use postern_tls::{ClientTls, Handshake, Keys, MaybeTls, ServerTls, TlsError};

fn line(conn: &mut MaybeTls<UnixStream>) -> String {
    let mut text = Vec::new();
    let mut byte = [0u8; 1];
    while !text.ends_with(b"\r\n") {
        assert_eq!(conn.read(&mut byte).unwrap(), 1, "closed after {text:?}");
        text.push(byte[0]);
    }
    String::from_utf8(text).unwrap()
}

#[test]
fn clear_text_then_tls_on_both_sides() {
    let pki = Pki::new();
    let server = ServerTls::from_files(&pki.server_files("srv_a", "ca_a.pem"), Keys::Load)
        .unwrap()
        .unwrap();
    let client = ClientTls::from_files(&pki.client_files(None, "ca_a.pem"), Keys::Load).unwrap();
    let (a, b) = UnixStream::pair().unwrap();
    let server_side = thread::spawn(move || {
        let mut conn = MaybeTls::Plain(a);
        assert_eq!(line(&mut conn), "STARTTLS\r\n");
        conn.write_all(b"220 2.0.0 Ready to start TLS\r\n").unwrap();
        let tls = conn.start_tls(|s| server.session(s)).unwrap();
        assert_eq!(tls.handshake().unwrap(), Handshake::Done);
        assert_eq!(line(&mut conn), "EHLO client\r\n");
        conn.write_all(b"250 mx\r\n").unwrap();
        conn.tls_mut().unwrap().info()
    });
    let mut conn = MaybeTls::Plain(b);
    assert!(conn.tls_mut().is_none());
    conn.write_all(b"STARTTLS\r\n").unwrap();
    assert_eq!(line(&mut conn), "220 2.0.0 Ready to start TLS\r\n");
    let tls = conn
        .start_tls(|s| client.session(s, "mx.postern.test"))
        .unwrap();
    assert_eq!(tls.handshake().unwrap(), Handshake::Done);
    conn.write_all(b"EHLO client\r\n").unwrap();
    assert_eq!(line(&mut conn), "250 mx\r\n");
    let server_info = server_side.join().unwrap();
    assert_eq!(server_info.version, conn.tls_mut().unwrap().info().version);
    assert!(conn.transport().is_some());
    // A second STARTTLS is refused, and the connection is gone.
    let again = conn.start_tls(|_| unreachable!("no session over a TLS connection"));
    assert!(matches!(again, Err(TlsError::Config(_))));
    assert!(conn.transport().is_none());
}

#[test]
fn a_failed_switch_closes_the_connection() {
    let (a, _b) = UnixStream::pair().unwrap();
    let mut conn = MaybeTls::Plain(a);
    let failed = conn.start_tls(|_| Err(TlsError::Handshake("no".into())));
    assert!(matches!(failed, Err(TlsError::Handshake(_))));
    assert!(conn.transport().is_none());
    assert_eq!(conn.read(&mut [0u8; 8]).unwrap(), 0);
    assert_eq!(
        conn.write(b"x").unwrap_err().kind(),
        io::ErrorKind::NotConnected
    );
}
