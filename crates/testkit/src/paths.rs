//! Where the things under test are: the workspace's built binaries and
//! the repository's scripts.
//!
//! The end-to-end suite (the top-level `tests/` package) treats Postern as
//! an administrator meets it, so it runs the real binaries, which belong
//! to other packages. Cargo hands a test the path of its own package's
//! binaries only; the others are found beside the test executable, in the
//! same target directory, where `cargo build --workspace` (the first step
//! of `scripts/test.sh`) put them.

use std::path::{Path, PathBuf};

/// The built workspace binary `name` (`posternd`, `postern`); panics with
/// what to run when it is missing.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    // target/<profile>/deps/<test>-<hash> → target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("a test executable lives in target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: build the workspace first (`cargo build --workspace`, as scripts/test.sh does)",
        path.display()
    );
    path
}

/// The repository's top directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository")
}

/// `scripts/<name>` in the repository.
pub fn script(name: &str) -> PathBuf {
    repo_root().join("scripts").join(name)
}

/// A temporary directory that neither it nor any directory above it lets
/// a group or others write in: where sendmail's DontBlameSendmail
/// defaults (and Postern's) accept an `:include:` file, mode 0755. The
/// checkout may lie under `/tmp` (world-writable, its sticky bit not
/// trusted), so the first safe place of `/var/lib/postern-tests` (as
/// root), the checkout and the home directory is used.
pub fn safe_tempdir() -> tempfile::TempDir {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let safe = |dir: &Path| {
        dir.is_absolute()
            && dir
                .ancestors()
                .all(|a| std::fs::metadata(a).is_ok_and(|m| m.is_dir() && m.mode() & 0o022 == 0))
    };
    let mut candidates: Vec<PathBuf> = Vec::new();
    // As root first a place the daemon's unprivileged users can read.
    if crate::running_as_root() {
        let lib = PathBuf::from("/var/lib/postern-tests");
        let _ = std::fs::DirBuilder::new().mode(0o755).create(&lib);
        candidates.push(lib);
    }
    candidates.extend(std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from));
    candidates.extend(std::env::var_os("HOME").map(PathBuf::from));
    let base = candidates.into_iter().find(|c| safe(c)).unwrap_or_else(|| {
        panic!(
            "no directory without group/world-writable parents for include files (set HOME to one)"
        )
    });
    let dir = tempfile::tempdir_in(base).expect("a temporary directory");
    // Readable by the daemon's users (the queue runner reads includes).
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    dir
}
