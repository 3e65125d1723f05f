//! Building contexts: every unusable setting is its own error, naming the
//! file the operator has to fix.

mod common;

use common::Pki;
use postern_tls::{ClientTls, Keys, ServerTls, TlsError, TlsFiles};

fn server_err(files: &TlsFiles) -> TlsError {
    ServerTls::from_files(files, Keys::Load).expect_err("should be refused")
}

#[test]
fn no_server_certificate_means_no_starttls() {
    assert!(ServerTls::from_files(&TlsFiles::default(), Keys::Load)
        .unwrap()
        .is_none());
    let pki = Pki::new();
    let files = TlsFiles {
        ca_cert_file: Some(pki.path("ca_a.pem")),
        ..TlsFiles::default()
    };
    assert!(ServerTls::from_files(&files, Keys::Load).unwrap().is_none());
}

#[test]
fn complete_configuration_builds() {
    let pki = Pki::new();
    assert!(
        ServerTls::from_files(&pki.server_files("srv_a", "ca_a.pem"), Keys::Load)
            .unwrap()
            .is_some()
    );
    ClientTls::from_files(&pki.client_files(Some("cli_a"), "ca_a.pem"), Keys::Load).unwrap();
    ClientTls::from_files(&TlsFiles::default(), Keys::Load).unwrap();
}

#[test]
fn the_server_context_warms_up_with_a_handshake_of_its_own() {
    let pki = Pki::new();
    for files in [
        pki.server_files("srv_a", "ca_a.pem"),
        // Without a client certificate request too (TLSSrvOptions V).
        TlsFiles {
            srv_options: postern_tls::TlsSrvOptions {
                no_client_cert_request: true,
                ..Default::default()
            },
            ..pki.server_files("srv_a", "ca_a.pem")
        },
    ] {
        let server = ServerTls::from_files(&files, Keys::Load).unwrap().unwrap();
        server.warm_up().unwrap();
        // Twice is fine: the context is not consumed.
        server.warm_up().unwrap();
    }
}

#[test]
fn half_a_pair_is_a_config_error() {
    let pki = Pki::new();
    let mut files = pki.server_files("srv_a", "ca_a.pem");
    files.server_key_file = None;
    let e = server_err(&files);
    assert!(matches!(e, TlsError::Config(_)), "{e:?}");
    assert!(e.to_string().contains("ServerKeyFile"), "{e}");

    let mut files = pki.client_files(Some("cli_a"), "ca_a.pem");
    files.client_cert_file = None;
    let e = ClientTls::from_files(&files, Keys::Load).unwrap_err();
    assert!(e.to_string().contains("ClientCertFile"), "{e}");
}

#[test]
fn missing_key_is_unreadable_naming_the_file() {
    let pki = Pki::new();
    let mut files = pki.server_files("srv_a", "ca_a.pem");
    let missing = pki.path("nonexistent.key");
    files.server_key_file = Some(missing.clone());
    match server_err(&files) {
        TlsError::Unreadable { file, reason } => {
            assert_eq!(file, missing);
            assert!(reason.contains("No such file"), "{reason}");
        }
        e => panic!("{e:?}"),
    }
    let text = server_err(&files).to_string();
    assert!(text.contains(&*missing.to_string_lossy()), "{text}");
}

#[test]
fn missing_or_empty_certificate_is_unreadable() {
    let pki = Pki::new();
    let mut files = pki.server_files("srv_a", "ca_a.pem");
    let missing = pki.path("nonexistent.pem");
    files.server_cert_file = Some(missing.clone());
    assert!(matches!(server_err(&files), TlsError::Unreadable { file, .. } if file == missing));

    let junk = pki.write("junk.pem", b"not a certificate\n", 0o644);
    files.server_cert_file = Some(junk.clone());
    assert!(matches!(server_err(&files), TlsError::Unreadable { file, .. } if file == junk));
}

#[test]
fn group_or_world_readable_key_is_unsafe() {
    let pki = Pki::new();
    let key = std::fs::read(pki.pair("srv_a").key).unwrap();
    for mode in [0o644, 0o640, 0o604, 0o660] {
        let loose = pki.write(&format!("loose{mode:o}.key"), &key, mode);
        let mut files = pki.server_files("srv_a", "ca_a.pem");
        files.server_key_file = Some(loose.clone());
        let e = server_err(&files);
        let text = e.to_string();
        match e {
            TlsError::UnsafeKey { file, .. } => assert_eq!(file, loose),
            e => panic!("mode {mode:o}: {e:?}"),
        }
        assert!(text.contains("unsafe"), "{text}");
        assert!(text.contains(&*loose.to_string_lossy()), "{text}");
    }
    // 0400 is fine.
    let strict = pki.write("strict.key", &key, 0o400);
    let mut files = pki.server_files("srv_a", "ca_a.pem");
    files.server_key_file = Some(strict);
    assert!(ServerTls::from_files(&files, Keys::Load).unwrap().is_some());
}

#[test]
fn key_of_another_certificate_is_a_mismatch() {
    let pki = Pki::new();
    let mut files = pki.server_files("srv_a", "ca_a.pem");
    files.server_key_file = Some(pki.pair("srv_b").key);
    let e = server_err(&files);
    let text = e.to_string();
    match e {
        TlsError::KeyMismatch { cert, key } => {
            assert_eq!(cert, pki.pair("srv_a").cert);
            assert_eq!(key, pki.pair("srv_b").key);
        }
        e => panic!("{e:?}"),
    }
    assert!(
        text.contains("srv_a.pem") && text.contains("srv_b.key"),
        "{text}"
    );

    // The client's pair is checked the same way.
    let mut files = pki.client_files(Some("cli_a"), "ca_a.pem");
    files.client_key_file = Some(pki.pair("cli_b").key);
    assert!(matches!(
        ClientTls::from_files(&files, Keys::Load),
        Err(TlsError::KeyMismatch { .. })
    ));
}

#[test]
fn bad_cipher_list_is_a_config_error() {
    let pki = Pki::new();
    let mut files = pki.server_files("srv_a", "ca_a.pem");
    files.cipher_list = Some("NO-SUCH-CIPHER".into());
    let e = server_err(&files);
    assert!(matches!(e, TlsError::Config(_)), "{e:?}");
    assert!(e.to_string().contains("CipherList"), "{e}");
    assert!(matches!(
        ClientTls::from_files(&files, Keys::Load),
        Err(TlsError::Config(_))
    ));

    files.cipher_list = Some("HIGH:!aNULL:!MD5".into());
    assert!(ServerTls::from_files(&files, Keys::Load).unwrap().is_some());
}

#[test]
fn unusable_ca_files_are_unreadable() {
    let pki = Pki::new();
    let mut files = pki.server_files("srv_a", "ca_a.pem");
    let missing = pki.path("no-ca.pem");
    files.ca_cert_file = Some(missing.clone());
    assert!(matches!(server_err(&files), TlsError::Unreadable { file, .. } if file == missing));

    let mut files = pki.server_files("srv_a", "ca_a.pem");
    let no_dir = pki.path("no-such-dir");
    files.ca_cert_path = Some(no_dir.clone());
    assert!(matches!(server_err(&files), TlsError::Unreadable { file, .. } if file == no_dir));
}

#[test]
fn unusable_crl_is_unreadable() {
    let pki = Pki::new();
    let mut files = pki.server_files("srv_a", "ca_a.pem");
    let missing = pki.path("no.crl");
    files.crl_file = Some(missing.clone());
    let e = server_err(&files);
    assert!(e.to_string().contains("no.crl"), "{e}");
    assert!(matches!(e, TlsError::Unreadable { file, .. } if file == missing));

    let junk = pki.write("junk.crl", b"-----BEGIN X509 CRL-----\nnope\n", 0o644);
    files.crl_file = Some(junk.clone());
    assert!(matches!(server_err(&files), TlsError::Unreadable { file, .. } if file == junk));

    let good = pki.write("a.crl", &pki.a.crl_pem(&[]), 0o644);
    files.crl_file = Some(good);
    assert!(ServerTls::from_files(&files, Keys::Load).unwrap().is_some());
}

#[test]
fn encrypted_key_is_refused_without_prompting() {
    let pki = Pki::new();
    let pem = std::fs::read(pki.pair("srv_a").key).unwrap();
    let key = openssl::pkey::PKey::private_key_from_pem(&pem).unwrap();
    let locked = key
        .private_key_to_pem_pkcs8_passphrase(openssl::symm::Cipher::aes_256_cbc(), b"secret")
        .unwrap();
    let locked = pki.write("locked.key", &locked, 0o600);
    let mut files = pki.server_files("srv_a", "ca_a.pem");
    files.server_key_file = Some(locked.clone());
    match server_err(&files) {
        TlsError::Unreadable { file, reason } => {
            assert_eq!(file, locked);
            assert!(reason.contains("unencrypted"), "{reason}");
        }
        e => panic!("{e:?}"),
    }
}
