//! Hashes made by the real `doveadm pw` (Debian's dovecot-core), fresh
//! each run, in a passwd-file: the right password logs in, a wrong one
//! does not. This is what an administrator who moves users over from
//! Dovecot relies on.

use std::fs;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use postern_auth::{Authenticator, ClientInfo, PasswdFile, Step};
use postern_testkit::doveadm_pw;

/// With a space and non-ASCII letters, as real passwords have.
const PASSWORD: &str = "correct horse bättery";

/// Writes a passwd-file of one user with `doveadm pw -s <scheme>`'s hash
/// of [`PASSWORD`], and checks the right and two wrong passwords with
/// PLAIN and LOGIN.
fn check(scheme: &str) {
    let field = doveadm_pw(scheme, PASSWORD);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth-users");
    fs::write(
        &path,
        format!("alice:{field}:1000:1000::/home/alice:/bin/sh\n"),
    )
    .unwrap();
    let mut auth = PasswdFile::new(path).unwrap();
    let errors = auth.take_load_errors();
    assert!(errors.is_empty(), "{field}: {errors:?}");

    let client = ClientInfo::default();
    let mut plain = |password: &str| {
        let initial = STANDARD.encode(format!("\0alice\0{password}"));
        auth.start(1, "PLAIN", Some(&initial), &client)
    };
    let alice = Step::Success {
        user: "alice".into(),
    };
    assert_eq!(plain(PASSWORD), alice, "{field}");
    assert!(
        matches!(plain("correct horse battery"), Step::Failure { .. }),
        "{field}"
    );
    assert!(matches!(plain(""), Step::Failure { .. }), "{field}");

    assert!(matches!(
        auth.start(2, "LOGIN", None, &client),
        Step::Challenge(_)
    ));
    assert!(matches!(
        auth.respond(2, &STANDARD.encode("alice")),
        Step::Challenge(_)
    ));
    assert_eq!(
        auth.respond(2, &STANDARD.encode(PASSWORD)),
        alice,
        "{field}"
    );
}

#[test]
fn sha512_crypt() {
    check("SHA512-CRYPT");
}

#[test]
fn sha256_crypt() {
    check("SHA256-CRYPT");
}

#[test]
fn blf_crypt() {
    check("BLF-CRYPT");
}

#[test]
fn argon2id() {
    check("ARGON2ID");
}

#[test]
fn argon2i() {
    check("ARGON2I");
}

#[test]
fn plain_and_cleartext() {
    check("PLAIN");
    check("CLEARTEXT");
}

#[test]
fn a_scheme_we_do_not_have_is_reported_and_cannot_log_in() {
    let field = doveadm_pw("SSHA512", PASSWORD);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth-users");
    fs::write(&path, format!("# moved from Dovecot\nalice:{field}\n")).unwrap();
    let mut auth = PasswdFile::new(path.clone()).unwrap();
    let errors = auth.take_load_errors();
    assert_eq!(errors.len(), 1, "{errors:?}");
    let error = errors[0].to_string();
    assert!(
        error.starts_with(&format!(
            "{}:2: user alice: unknown password scheme {{SSHA512}}",
            path.display()
        )),
        "{error}"
    );
    let initial = STANDARD.encode(format!("\0alice\0{PASSWORD}"));
    assert!(matches!(
        auth.start(1, "PLAIN", Some(&initial), &ClientInfo::default()),
        Step::Failure { .. }
    ));
}
