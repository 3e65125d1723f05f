//! A small private PKI for the tests: two independent CAs, leaf
//! certificates for a server and a client from each, a CRL, all written to
//! a temporary directory with the modes sendmail expects (keys 0600).

#![allow(dead_code)]

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::thread;

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
    SubjectKeyIdentifier,
};
use openssl::x509::{
    CrlNumber, X509Builder, X509CrlBuilder, X509NameBuilder, X509RevokedBuilder, X509,
};
use postern_tls::{ClientTls, ServerTls, TlsFiles, TlsInfo, TlsStream};

/// A certificate authority.
pub struct Ca {
    pub cert: X509,
    key: PKey<Private>,
}

fn ec_key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
}

fn name(cn: &str) -> openssl::x509::X509Name {
    let mut n = X509NameBuilder::new().unwrap();
    n.append_entry_by_text("O", "Postern tests").unwrap();
    n.append_entry_by_text("CN", cn).unwrap();
    n.build()
}

fn builder(serial: u32, subject: &str) -> X509Builder {
    let mut b = X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    let serial = Asn1Integer::from_bn(&BigNum::from_u32(serial).unwrap()).unwrap();
    b.set_serial_number(&serial).unwrap();
    b.set_subject_name(&name(subject)).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(30).unwrap())
        .unwrap();
    b
}

impl Ca {
    pub fn new(cn: &str) -> Ca {
        let key = ec_key();
        let mut b = builder(1, cn);
        b.set_issuer_name(&name(cn)).unwrap();
        b.set_pubkey(&key).unwrap();
        let ski = SubjectKeyIdentifier::new()
            .build(&b.x509v3_context(None, None))
            .unwrap();
        b.append_extension(ski).unwrap();
        b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
            .unwrap();
        b.append_extension(
            KeyUsage::new()
                .critical()
                .key_cert_sign()
                .crl_sign()
                .build()
                .unwrap(),
        )
        .unwrap();
        b.sign(&key, MessageDigest::sha256()).unwrap();
        Ca {
            cert: b.build(),
            key,
        }
    }

    /// A leaf certificate for `host`, usable by servers and clients.
    pub fn issue(&self, host: &str, serial: u32) -> (X509, PKey<Private>) {
        let key = ec_key();
        let mut b = builder(serial, host);
        b.set_issuer_name(self.cert.subject_name()).unwrap();
        b.set_pubkey(&key).unwrap();
        let san = SubjectAlternativeName::new()
            .dns(host)
            .build(&b.x509v3_context(Some(&self.cert), None))
            .unwrap();
        b.append_extension(san).unwrap();
        b.append_extension(
            ExtendedKeyUsage::new()
                .server_auth()
                .client_auth()
                .build()
                .unwrap(),
        )
        .unwrap();
        b.sign(&self.key, MessageDigest::sha256()).unwrap();
        (b.build(), key)
    }

    /// A CRL of this CA revoking `serials`, in PEM.
    pub fn crl_pem(&self, serials: &[u32]) -> Vec<u8> {
        let mut b = X509CrlBuilder::new().unwrap();
        b.set_issuer_name(self.cert.subject_name()).unwrap();
        let dummy = X509::builder().unwrap();
        let aki = AuthorityKeyIdentifier::new()
            .keyid(true)
            .build(&dummy.x509v3_context(Some(&self.cert), None))
            .unwrap();
        b.append_extension(aki).unwrap();
        let number = CrlNumber::new(BigNum::from_u32(1).unwrap()).unwrap();
        b.append_extension(number.build().unwrap()).unwrap();
        b.set_last_update(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_next_update(&Asn1Time::days_from_now(7).unwrap())
            .unwrap();
        for &s in serials {
            let mut r = X509RevokedBuilder::new().unwrap();
            let serial = Asn1Integer::from_bn(&BigNum::from_u32(s).unwrap()).unwrap();
            r.set_serial_number(&serial).unwrap();
            r.set_revocation_date(&Asn1Time::days_from_now(0).unwrap())
                .unwrap();
            b.add_revoked(r.build()).unwrap();
        }
        b.sign(&self.key, MessageDigest::sha256()).unwrap();
        b.build().unwrap().to_pem().unwrap()
    }
}

/// Two unrelated CAs and, from each, a server and a client certificate,
/// written under one temporary directory: `srv_a`, `cli_a` (with their CA
/// in the file), `srv_b`, `cli_b` (leaf only), `cli_b_chain` (with CA B).
pub struct Pki {
    pub dir: tempfile::TempDir,
    pub a: Ca,
    pub b: Ca,
}

/// Paths of one certificate and its key.
pub struct Pair {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Pki {
    pub fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let a = Ca::new("Postern test CA A");
        let b = Ca::new("Postern test CA B");
        let pki = Pki { dir, a, b };
        pki.write("ca_a.pem", &pki.a.cert.to_pem().unwrap(), 0o644);
        pki.write("ca_b.pem", &pki.b.cert.to_pem().unwrap(), 0o644);
        pki.leaf(&pki.a, "srv_a", "mx.postern.test", 10, true);
        pki.leaf(&pki.a, "cli_a", "client.postern.test", 11, true);
        pki.leaf(&pki.b, "srv_b", "mx.postern.test", 20, false);
        pki.leaf(&pki.b, "cli_b", "client.postern.test", 21, false);
        pki.leaf(&pki.b, "cli_b_chain", "client.postern.test", 22, true);
        pki
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, data: &[u8], mode: u32) -> PathBuf {
        let path = self.path(name);
        fs::write(&path, data).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    /// With `chain`, the certificate file holds the leaf and then its CA
    /// (the chain loader sends both); without, the leaf alone, so that a
    /// peer that does not know the CA fails at depth 0.
    fn leaf(&self, ca: &Ca, stem: &str, host: &str, serial: u32, chain: bool) {
        let (cert, key) = ca.issue(host, serial);
        let mut pem = cert.to_pem().unwrap();
        if chain {
            pem.extend(ca.cert.to_pem().unwrap());
        }
        self.write(&format!("{stem}.pem"), &pem, 0o644);
        self.write(
            &format!("{stem}.key"),
            &key.private_key_to_pem_pkcs8().unwrap(),
            0o600,
        );
    }

    pub fn pair(&self, stem: &str) -> Pair {
        Pair {
            cert: self.path(&format!("{stem}.pem")),
            key: self.path(&format!("{stem}.key")),
        }
    }

    /// Server settings: the `stem` certificate, trusting `ca` (a file).
    pub fn server_files(&self, stem: &str, ca: &str) -> TlsFiles {
        let p = self.pair(stem);
        TlsFiles {
            server_cert_file: Some(p.cert),
            server_key_file: Some(p.key),
            ca_cert_file: Some(self.path(ca)),
            ..TlsFiles::default()
        }
    }

    /// Client settings: optionally the `stem` certificate, trusting `ca`.
    pub fn client_files(&self, stem: Option<&str>, ca: &str) -> TlsFiles {
        let (cert, key) = match stem.map(|s| self.pair(s)) {
            Some(p) => (Some(p.cert), Some(p.key)),
            None => (None, None),
        };
        TlsFiles {
            client_cert_file: cert,
            client_key_file: key,
            ca_cert_file: Some(self.path(ca)),
            ..TlsFiles::default()
        }
    }
}

/// What each side saw of one connection.
pub struct Outcome {
    pub server: TlsInfo,
    pub server_trace: Vec<String>,
    pub client: TlsInfo,
    pub client_trace: Vec<String>,
}

/// A listener on 127.0.0.1 whose first connection `server` takes through
/// its handshake and hands to `then`, in a thread of its own.
pub fn serve_one<T: Send + 'static>(
    server: &ServerTls,
    then: impl FnOnce(TlsStream<TcpStream>) -> T + Send + 'static,
) -> (SocketAddr, thread::JoinHandle<T>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = server.clone();
    let handle = thread::spawn(move || {
        let (sock, _) = listener.accept().unwrap();
        let mut tls = server.session(sock).unwrap();
        assert_eq!(tls.handshake().unwrap(), postern_tls::Handshake::Done);
        then(tls)
    });
    (addr, handle)
}

/// Runs one blocking handshake over TCP on 127.0.0.1, then an SMTP-like
/// exchange both ways and a close_notify, and returns both sides' view.
pub fn connect(server: &ServerTls, client: &ClientTls) -> Outcome {
    let (addr, handle) = serve_one(server, |mut tls| {
        let mut line = [0u8; 13];
        tls.read_exact(&mut line).unwrap();
        assert_eq!(&line, b"EHLO client\r\n");
        tls.write_all(b"250 mx.postern.test\r\n").unwrap();
        // The client's close_notify reads as the end of the stream.
        let mut rest = Vec::new();
        tls.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
        tls.shutdown();
        (tls.info(), tls.verify_trace())
    });
    let sock = TcpStream::connect(addr).unwrap();
    let mut tls = client.session(sock, "mx.postern.test").unwrap();
    assert_eq!(tls.handshake().unwrap(), postern_tls::Handshake::Done);
    tls.write_all(b"EHLO client\r\n").unwrap();
    let mut reply = [0u8; 21];
    tls.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"250 mx.postern.test\r\n");
    let client_info = tls.info();
    let client_trace = tls.verify_trace();
    tls.shutdown();
    let (server_info, server_trace) = handle.join().unwrap();
    Outcome {
        server: server_info,
        server_trace,
        client: client_info,
        client_trace,
    }
}
