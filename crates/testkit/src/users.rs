//! The system users a privilege-separated daemon needs, made on demand when
//! the tests run as root (as CI does), so a root test run checks the real
//! uid changes instead of skipping them.

use std::process::Command;
use std::sync::Once;

/// RunAsUser of test daemons.
pub const RUN_AS_USER: &str = "postern";
/// QueueOwner of test daemons.
pub const QUEUE_OWNER: &str = "posternq";
/// FrontUser of test daemons.
pub const FRONT_USER: &str = "posternf";

/// True when the tests run as root.
pub fn running_as_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

/// As root, creates `postern`, `posternq` and `posternf` if they do not
/// exist.
pub fn ensure_test_users() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if !running_as_root() {
            return;
        }
        for user in [RUN_AS_USER, QUEUE_OWNER, FRONT_USER] {
            ensure_system_user(user);
        }
    });
}

/// As root, creates the system user `user` (no home, no login) if it
/// does not exist: a local user for a test to send mail to. Does nothing
/// as an ordinary user.
pub fn ensure_system_user(user: &str) {
    if !running_as_root() || nix::unistd::User::from_name(user).ok().flatten().is_some() {
        return;
    }
    let status = Command::new("useradd")
        .args([
            "--system",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            user,
        ])
        .status()
        .unwrap_or_else(|e| panic!("cannot run useradd: {e}"));
    // Another test process may have made it meanwhile (exit 9).
    let exists = nix::unistd::User::from_name(user).ok().flatten().is_some();
    assert!(
        status.success() || exists,
        "useradd {user} failed: {status}"
    );
}

/// The uid of `user`.
pub fn uid_of(user: &str) -> u32 {
    nix::unistd::User::from_name(user)
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("no user {user}"))
        .uid
        .as_raw()
}

/// As root, makes `name` an ordinary user with a home directory
/// (`/home/<name>`, the user's) if it does not exist, as an administrator's
/// `useradd -m` would; returns its uid and home. A user is created once and
/// kept: tests share it and remove only what they deliver.
pub fn ensure_mail_user(name: &str) -> (u32, std::path::PathBuf) {
    assert!(running_as_root(), "making users takes root");
    let find = || nix::unistd::User::from_name(name).ok().flatten();
    if find().is_none() {
        let status = Command::new("useradd")
            .args(["--create-home", "--shell", "/bin/sh", name])
            .status()
            .unwrap_or_else(|e| panic!("cannot run useradd: {e}"));
        assert!(
            status.success() || find().is_some(),
            "useradd {name} failed: {status}"
        );
    }
    let user = find().expect("the user exists");
    std::fs::create_dir_all(&user.dir).unwrap();
    std::os::unix::fs::chown(&user.dir, Some(user.uid.as_raw()), Some(user.gid.as_raw())).unwrap();
    (user.uid.as_raw(), user.dir)
}
