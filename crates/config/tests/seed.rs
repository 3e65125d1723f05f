//! The m4 lines of the seed configuration, verbatim, parse to the options
//! they name.

use std::path::{Path, PathBuf};

use postern_config::Config;
use postern_smtp::PrivacyFlags;

const SEED: &str = "\
dnl Point to the CA certificate directory
define(`confCACERT_PATH', `/etc/mail/certs')
dnl Point to the root CA's certificate
define(`confCACERT', `/etc/mail/certs/cacert.pem')
dnl Point to the certificate used for inbound connections
define(`confSERVER_CERT', `/etc/mail/certs/cert.pem')
dnl Point to the private key used for inbound connections
define(`confSERVER_KEY', `/etc/mail/certs/key.pem')
dnl Point to the certificate used for outbound connections
define(`confCLIENT_CERT', `/etc/mail/certs/cert.pem')
dnl Point to the private key used for outbound connections
define(`confCLIENT_KEY', `/etc/mail/certs/key.pem')
dnl Disable EXPN, VRFY, VERB and ETRN
define(`confPRIVACY_FLAGS', `noexpn,novrfy,noverb,noetrn')
";

fn p(s: &str) -> Option<PathBuf> {
    Some(PathBuf::from(s))
}

#[test]
fn seed_m4_lines_parse_verbatim() {
    let cfg = Config::parse_str(SEED, Path::new("/etc/mail/postern.cf")).unwrap();
    assert_eq!(cfg.tls.ca_cert_path, p("/etc/mail/certs"));
    assert_eq!(cfg.tls.ca_cert_file, p("/etc/mail/certs/cacert.pem"));
    assert_eq!(cfg.tls.server_cert_file, p("/etc/mail/certs/cert.pem"));
    assert_eq!(cfg.tls.server_key_file, p("/etc/mail/certs/key.pem"));
    assert_eq!(cfg.tls.client_cert_file, p("/etc/mail/certs/cert.pem"));
    assert_eq!(cfg.tls.client_key_file, p("/etc/mail/certs/key.pem"));
    assert_eq!(cfg.tls.crl_file, None);
    // Exactly these four: an explicit PrivacyOptions replaces the default
    // authwarnings.
    assert_eq!(
        cfg.privacy,
        PrivacyFlags::NO_EXPN
            | PrivacyFlags::NO_VRFY
            | PrivacyFlags::NO_VERB
            | PrivacyFlags::NO_ETRN
    );
}

#[test]
fn seed_loads_from_a_file_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("postern.cf");
    std::fs::write(&path, SEED).unwrap();
    let cfg = Config::load(&path).unwrap();
    assert_eq!(cfg.source, path);
    assert_eq!(cfg.tls.ca_cert_path, p("/etc/mail/certs"));
    assert_eq!(
        cfg.table_path("mailertable"),
        dir.path().join("mailertable")
    );
}

#[test]
fn crlf_line_endings_are_accepted() {
    let text = SEED.replace('\n', "\r\n");
    let cfg = Config::parse_str(&text, Path::new("x.cf")).unwrap();
    assert_eq!(cfg.tls.client_key_file, p("/etc/mail/certs/key.pem"));
}
