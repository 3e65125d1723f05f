//! The passwd-file backend as the daemon uses it: PLAIN and LOGIN
//! exchanges, the file read again when it changes, an unreadable file,
//! load errors by file and line, and "no such user" answered like "wrong
//! password".

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use postern_auth::{Authenticator, ClientInfo, Mechanism, PasswdFile, Step};
use sha_crypt::{Algorithm, Params, PasswordHasher, ShaCrypt};

fn b64(bytes: impl AsRef<[u8]>) -> String {
    STANDARD.encode(bytes)
}

fn write(path: &Path, text: &str) {
    fs::write(path, text).unwrap();
}

/// Moves the file's time on, so a rewrite of the same size within the
/// clock's resolution is still seen as a change.
fn touch_later(path: &Path, seconds: u64) {
    let later = SystemTime::now() + Duration::from_secs(seconds);
    fs::File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(later))
        .unwrap();
}

fn users_file(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth-users");
    write(&path, text);
    (dir, path)
}

fn plain(auth: &mut PasswdFile, user: &str, password: &str) -> Step {
    let initial = b64(format!("\0{user}\0{password}"));
    auth.start(1, "PLAIN", Some(&initial), &ClientInfo::default())
}

fn failed() -> Step {
    Step::Failure {
        reason: "authentication failed".into(),
    }
}

#[test]
fn offers_plain_and_login() {
    let (_dir, path) = users_file("");
    let mut auth = PasswdFile::new(path).unwrap();
    let plaintext = |name: &str| Mechanism {
        name: name.into(),
        plaintext: true,
    };
    assert_eq!(
        auth.mechanisms().unwrap(),
        [plaintext("PLAIN"), plaintext("LOGIN")]
    );
}

#[test]
fn plain_and_login_exchanges() {
    let (_dir, path) = users_file("alice:{PLAIN}secret\n");
    let mut auth = PasswdFile::new(path).unwrap();
    let client = ClientInfo::default();
    assert_eq!(
        plain(&mut auth, "alice", "secret"),
        Step::Success {
            user: "alice".into()
        }
    );
    assert_eq!(
        auth.start(2, "PLAIN", None, &client),
        Step::Challenge(String::new())
    );
    assert_eq!(
        auth.respond(2, &b64("alice\0alice\0secret")),
        Step::Success {
            user: "alice".into()
        }
    );
    assert_eq!(
        auth.start(3, "LOGIN", None, &client),
        Step::Challenge(b64("Username:"))
    );
    assert_eq!(
        auth.respond(3, &b64("alice")),
        Step::Challenge(b64("Password:"))
    );
    assert_eq!(auth.respond(3, &b64("wrong")), failed());
    // The exchange is over: a further answer belongs to none.
    assert!(matches!(
        auth.respond(3, &b64("secret")),
        Step::Failure { .. }
    ));
}

#[test]
fn refusals_and_malformed_input() {
    let (_dir, path) = users_file("alice:{PLAIN}secret\n");
    let mut auth = PasswdFile::new(path).unwrap();
    let client = ClientInfo::default();
    assert_eq!(
        auth.start(1, "CRAM-MD5", None, &client),
        Step::Failure {
            reason: "mechanism not offered".into()
        }
    );
    assert!(matches!(
        auth.start(1, "PLAIN", Some(&b64("bob\0alice\0secret")), &client),
        Step::Failure { .. }
    ));
    assert_eq!(
        auth.start(1, "PLAIN", Some("%%%"), &client),
        Step::Malformed
    );
    assert!(matches!(
        auth.start(1, "LOGIN", None, &client),
        Step::Challenge(_)
    ));
    assert_eq!(auth.respond(1, "*"), Step::Malformed);
    assert!(matches!(
        auth.start(1, "LOGIN", None, &client),
        Step::Challenge(_)
    ));
    auth.cancel(1);
    assert!(matches!(
        auth.respond(1, &b64("alice")),
        Step::Failure { .. }
    ));
}

#[test]
fn unknown_user_and_wrong_password_are_alike() {
    // A costly hash (ten times Dovecot's default rounds), so that
    // skipping the verification would show.
    let hasher = ShaCrypt::new(Algorithm::Sha512Crypt, Params::new(50_000).unwrap());
    let hash = hasher
        .hash_password_with_salt(b"secret", b"0123456789abcdef")
        .unwrap();
    let (_dir, path) = users_file(&format!("alice:{{SHA512-CRYPT}}{}\n", hash.as_str()));
    let mut auth = PasswdFile::new(path).unwrap();
    let timed = |auth: &mut PasswdFile, user: &str| {
        let started = Instant::now();
        let step = plain(auth, user, "guess");
        (step, started.elapsed())
    };
    let (wrong, wrong_took) = timed(&mut auth, "alice");
    let (unknown, unknown_took) = timed(&mut auth, "mallory");
    assert_eq!(wrong, failed());
    assert_eq!(unknown, failed());
    // Generous bounds: only "no verification at all" (microseconds
    // against milliseconds) must fail this.
    assert!(
        unknown_took * 4 > wrong_took,
        "unknown {unknown_took:?}, wrong {wrong_took:?}"
    );
}

#[test]
fn the_file_is_read_again_when_it_changes() {
    let (_dir, path) = users_file("alice:{PLAIN}one\n");
    let mut auth = PasswdFile::new(path.clone()).unwrap();
    assert!(matches!(
        plain(&mut auth, "alice", "one"),
        Step::Success { .. }
    ));

    // Same size, so only the time tells.
    write(&path, "alice:{PLAIN}two\n");
    touch_later(&path, 2);
    assert_eq!(plain(&mut auth, "alice", "one"), failed());
    assert!(matches!(
        plain(&mut auth, "alice", "two"),
        Step::Success { .. }
    ));

    // Replaced by a new file (a new inode), as editors do.
    let new = path.with_extension("new");
    write(&new, "bob:{PLAIN}three\n");
    fs::rename(&new, &path).unwrap();
    assert_eq!(plain(&mut auth, "alice", "two"), failed());
    assert!(matches!(
        plain(&mut auth, "bob", "three"),
        Step::Success { .. }
    ));
}

#[test]
fn an_unreadable_file_is_a_temporary_failure() {
    let (_dir, path) = users_file("alice:{PLAIN}one\n");
    let mut auth = PasswdFile::new(path.clone()).unwrap();
    fs::remove_file(&path).unwrap();
    assert!(matches!(
        plain(&mut auth, "alice", "one"),
        Step::TemporaryFailure { .. }
    ));
    write(&path, "alice:{PLAIN}one\n");
    assert!(matches!(
        plain(&mut auth, "alice", "one"),
        Step::Success { .. }
    ));
}

#[test]
fn a_missing_file_is_an_error_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth-users");
    let error = PasswdFile::new(path).expect_err("no file");
    assert!(error.to_string().contains("auth-users"), "{error}");
}

#[test]
fn load_errors_name_file_and_line_and_are_taken_once() {
    let (_dir, path) = users_file("# users\nalice:{PLAIN}a\nbroken\nbob:{NTLM}abc\n");
    let mut auth = PasswdFile::new(path.clone()).unwrap();
    let errors: Vec<String> = auth
        .take_load_errors()
        .iter()
        .map(ToString::to_string)
        .collect();
    let name = path.display();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].starts_with(&format!("{name}:3: ")), "{errors:?}");
    assert!(
        errors[1].starts_with(&format!("{name}:4: user bob: ")),
        "{errors:?}"
    );
    assert!(auth.take_load_errors().is_empty());
    assert!(matches!(
        plain(&mut auth, "alice", "a"),
        Step::Success { .. }
    ));
    assert_eq!(plain(&mut auth, "bob", "abc"), failed());

    // A new version brings its own errors.
    write(&path, "alice:{PLAIN}a\n\n\nx\n");
    touch_later(&path, 4);
    assert!(matches!(
        plain(&mut auth, "alice", "a"),
        Step::Success { .. }
    ));
    let errors = auth.take_load_errors();
    assert_eq!(errors.len(), 1);
    assert!(errors[0].to_string().starts_with(&format!("{name}:4: ")));
}
