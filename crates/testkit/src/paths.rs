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
