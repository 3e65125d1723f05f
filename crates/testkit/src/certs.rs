//! Test certificates, made the way an administrator makes them: by the
//! repository's `scripts/make-certs.sh` (Cookbook recipes 8.2/8.3).

use std::path::Path;

/// A private CA and a host certificate for `localhost` in a new directory:
/// `cacert.pem`, `cert.pem`, `key.pem` (0600). The directory is 0755 so a
/// test's unprivileged clients can read the CA certificate; the key stays
/// readable by its owner only.
pub fn make_certs() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/make-certs.sh");
    let out = std::process::Command::new("bash")
        .arg(&script)
        .args([dir.path().to_str().unwrap(), "localhost"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "make-certs.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    dir
}
