//! Handshakes whose private-key operations happen outside the context:
//! the server's (and a client's) key made from the certificate alone, the
//! signatures made by a [`KeyStore`] as the key holder makes them. TLS 1.2
//! and 1.3, RSA-PSS and PKCS#1 signatures, ECDSA, and an RSA and an ECDSA
//! certificate configured together.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::thread;

use common::Pki;
use openssl::asn1::Asn1Time;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Private};
use openssl::rsa::Rsa;
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode, SslVersion};
use openssl::x509::{X509NameBuilder, X509};
use postern_tls::{
    ClientTls, Handshake, KeyFingerprint, KeySigner, KeyStore, Keys, ServerTls, SignOp, TlsError,
    TlsFiles, Verify,
};

/// Every store the tests of this process made; the process's signer asks
/// the one that holds the key (tests run in parallel threads, and the
/// handshakes run in threads of their own).
static STORES: Mutex<Vec<Arc<KeyStore>>> = Mutex::new(Vec::new());
static SIGNATURES: AtomicUsize = AtomicUsize::new(0);

struct AnyStore;

impl KeySigner for AnyStore {
    fn sign(&mut self, key: KeyFingerprint, op: SignOp, input: &[u8]) -> Result<Vec<u8>, String> {
        let stores = STORES.lock().unwrap().clone();
        for store in stores {
            match store.sign(&key, op, input) {
                Err(e) if e == "no such key" => continue,
                result => {
                    SIGNATURES.fetch_add(1, Ordering::SeqCst);
                    return result;
                }
            }
        }
        Err("no such key".into())
    }
}

fn hold(files: &TlsFiles) -> Arc<KeyStore> {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| postern_tls::set_process_signer(Some(Box::new(AnyStore))));
    let store = KeyStore::load(files).expect("keys load and pass the self-test");
    STORES.lock().unwrap().push(Arc::clone(&store));
    store
}

/// A self-signed certificate and its key (mode 0600) in `dir`.
fn write_pair(dir: &Path, stem: &str, key: &PKey<Private>) -> (PathBuf, PathBuf) {
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", &format!("{stem}.postern.test"))
        .unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(30).unwrap())
        .unwrap();
    b.sign(key, MessageDigest::sha256()).unwrap();
    let cert = dir.join(format!("{stem}.crt"));
    let key_file = dir.join(format!("{stem}.key"));
    fs::write(&cert, b.build().to_pem().unwrap()).unwrap();
    fs::write(&key_file, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    fs::set_permissions(&key_file, fs::Permissions::from_mode(0o600)).unwrap();
    (cert, key_file)
}

fn rsa_key() -> PKey<Private> {
    PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap()
}

fn ec_key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
}

fn server_files(pairs: &[(PathBuf, PathBuf)]) -> TlsFiles {
    let join = |f: fn(&(PathBuf, PathBuf)) -> &PathBuf| {
        PathBuf::from(
            pairs
                .iter()
                .map(|p| f(p).display().to_string())
                .collect::<Vec<_>>()
                .join(","),
        )
    };
    TlsFiles {
        server_cert_file: Some(join(|p| &p.0)),
        server_key_file: Some(join(|p| &p.1)),
        ..TlsFiles::default()
    }
}

/// One handshake of an OpenSSL client limited to `version` and
/// `sigalgs` with the delegated server; the key type of the certificate
/// the server chose, or the handshake's error.
fn handshake(server: &ServerTls, version: SslVersion, sigalgs: &str) -> Result<Id, String> {
    let (server_end, client_end) = UnixStream::pair().unwrap();
    let server = server.clone();
    let serving = thread::spawn(move || -> Result<(), TlsError> {
        let mut tls = server.session(server_end)?;
        match tls.handshake()? {
            Handshake::Done => Ok(()),
            other => Err(TlsError::Handshake(format!("{other:?}"))),
        }
    });
    let mut connector = SslConnector::builder(SslMethod::tls_client()).unwrap();
    connector.set_verify(SslVerifyMode::NONE);
    connector.set_min_proto_version(Some(version)).unwrap();
    connector.set_max_proto_version(Some(version)).unwrap();
    connector.set_sigalgs_list(sigalgs).unwrap();
    let connector = connector.build();
    let result = connector
        .configure()
        .unwrap()
        .verify_hostname(false)
        .connect("mx.postern.test", client_end)
        .map_err(|e| e.to_string())
        .map(|tls| {
            tls.ssl()
                .peer_certificate()
                .unwrap()
                .public_key()
                .unwrap()
                .id()
        });
    let served = serving.join().unwrap();
    match (result, served) {
        (Ok(id), Ok(())) => Ok(id),
        (client, server) => Err(format!("client: {client:?}, server: {server:?}")),
    }
}

#[test]
fn rsa_key_signs_through_the_holder_in_tls_1_2_and_1_3() {
    let dir = tempfile::tempdir().unwrap();
    let pair = write_pair(dir.path(), "rsa", &rsa_key());
    let files = server_files(&[pair]);
    let _store = hold(&files);
    let server = ServerTls::from_files(&files, Keys::AskHolder)
        .unwrap()
        .unwrap();
    for (version, sigalgs) in [
        (SslVersion::TLS1_3, "RSA-PSS+SHA256"),
        (SslVersion::TLS1_3, "rsa_pss_rsae_sha384"),
        (SslVersion::TLS1_3, "rsa_pss_rsae_sha512"),
        (SslVersion::TLS1_2, "RSA-PSS+SHA256"),
        (SslVersion::TLS1_2, "RSA+SHA256"),
        (SslVersion::TLS1_2, "RSA+SHA384"),
    ] {
        let before = SIGNATURES.load(Ordering::SeqCst);
        assert_eq!(
            handshake(&server, version, sigalgs),
            Ok(Id::RSA),
            "{version:?} {sigalgs}"
        );
        assert!(SIGNATURES.load(Ordering::SeqCst) > before, "{sigalgs}");
    }
}

#[test]
fn ecdsa_key_signs_through_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let files = server_files(&[write_pair(dir.path(), "ec", &ec_key())]);
    let _store = hold(&files);
    let server = ServerTls::from_files(&files, Keys::AskHolder)
        .unwrap()
        .unwrap();
    for version in [SslVersion::TLS1_2, SslVersion::TLS1_3] {
        assert_eq!(
            handshake(&server, version, "ECDSA+SHA256"),
            Ok(Id::EC),
            "{version:?}"
        );
    }
}

#[test]
fn an_rsa_and_an_ecdsa_certificate_together() {
    let dir = tempfile::tempdir().unwrap();
    let files = server_files(&[
        write_pair(dir.path(), "rsa", &rsa_key()),
        write_pair(dir.path(), "ec", &ec_key()),
    ]);
    let store = hold(&files);
    assert_eq!(store.len(), 2, "{:?}", store.describe());
    let server = ServerTls::from_files(&files, Keys::AskHolder)
        .unwrap()
        .unwrap();
    for version in [SslVersion::TLS1_2, SslVersion::TLS1_3] {
        assert_eq!(handshake(&server, version, "ECDSA+SHA256"), Ok(Id::EC));
        assert_eq!(handshake(&server, version, "RSA-PSS+SHA256"), Ok(Id::RSA));
    }
}

#[test]
fn without_the_holder_there_is_no_signature() {
    let dir = tempfile::tempdir().unwrap();
    // The key is never given to a store: nobody can sign with it.
    let files = server_files(&[write_pair(dir.path(), "orphan", &rsa_key())]);
    let server = ServerTls::from_files(&files, Keys::AskHolder)
        .unwrap()
        .unwrap();
    let failed = handshake(&server, SslVersion::TLS1_3, "RSA-PSS+SHA256").unwrap_err();
    assert!(failed.contains("server: Err"), "{failed}");
}

#[test]
fn a_delegated_client_certificate() {
    let pki = Pki::new();
    let mut client_files = pki.client_files(Some("cli_a"), "ca_a.pem");
    client_files.server_cert_file = None;
    let _store = hold(&client_files);
    let out = common::connect(
        &ServerTls::from_files(&pki.server_files("srv_a", "ca_a.pem"), Keys::Load)
            .unwrap()
            .unwrap(),
        &ClientTls::from_files(&client_files, Keys::AskHolder).unwrap(),
    );
    assert_eq!(out.server.verify, Verify::Ok, "{:?}", out.server_trace);
    assert_eq!(
        out.server.cert_subject.as_deref(),
        Some("/O=Postern tests/CN=client.postern.test")
    );
}

#[test]
fn the_holder_refuses_what_a_handshake_never_asks() {
    let dir = tempfile::tempdir().unwrap();
    let key = rsa_key();
    let files = server_files(&[write_pair(dir.path(), "rsa", &key)]);
    let store = KeyStore::load(&files).unwrap();
    let fingerprint = KeyFingerprint::of(&key).unwrap();
    // A ciphertext for the raw operation: decryption.
    let mut ciphertext = vec![0; 256];
    key.rsa()
        .unwrap()
        .public_encrypt(b"premaster", &mut ciphertext, openssl::rsa::Padding::PKCS1)
        .unwrap();
    assert!(store
        .sign(&fingerprint, SignOp::RsaRaw, &ciphertext)
        .unwrap_err()
        .contains("not a PSS-encoded block"));
    assert!(store
        .sign(&fingerprint, SignOp::RsaPkcs1, &[0; 300])
        .is_err());
    assert!(store.sign(&fingerprint, SignOp::Ecdsa, &[0; 32]).is_err());
    assert_eq!(
        store.sign(&KeyFingerprint([0; 32]), SignOp::Ecdsa, &[0; 32]),
        Err("no such key".into())
    );
}

#[test]
fn a_key_that_is_not_the_certificates_stops_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, _) = write_pair(dir.path(), "one", &rsa_key());
    let (_, other_key) = write_pair(dir.path(), "two", &rsa_key());
    let files = server_files(&[(cert, other_key)]);
    let e = KeyStore::load(&files).unwrap_err();
    assert!(matches!(e.error, TlsError::KeyMismatch { .. }), "{e}");
    assert!(
        e.to_string().starts_with("STARTTLS=server: private key "),
        "{e}"
    );
    let mismatched = server_files(&[write_pair(dir.path(), "three", &rsa_key())]);
    let mut files = mismatched.clone();
    files.server_key_file = Some(PathBuf::from(format!(
        "{},{}",
        mismatched.server_key_file.unwrap().display(),
        dir.path().join("two.key").display()
    )));
    let e = KeyStore::load(&files).unwrap_err().to_string();
    assert!(e.contains("ServerCertFile and ServerKeyFile"), "{e}");
}
