//! A real Dovecot that serves only authentication, for the tests of SMTP
//! AUTH: Debian's `dovecot-core` with a configuration of its own in a
//! temporary directory, no mail protocol at all (`protocols =` empty),
//! its `auth-client` socket (mode 0666) in that directory, and a
//! passwd-file passdb of the users a test asks for.
//!
//! Mechanisms are PLAIN, LOGIN and CRAM-MD5; plaintext ones are allowed
//! without TLS (`disable_plaintext_auth = no`), and a failed login is
//! answered at once (`auth_failure_delay = 0`, not Dovecot's 2 s), so the
//! tests stay fast. Passwords are stored as `doveadm pw` makes them, so
//! the real Dovecot verifies real hashes. CRAM-MD5 needs the password
//! itself on the server side: give its users [`StoredAs::Plain`].
//!
//! Dovecot is started as root (it drops to its own users); it can be
//! stopped and started again with the same users and socket, to test a
//! client that loses its connection. It is stopped by its PID when the
//! [`AuthDovecot`] is dropped, and the directory removed.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::procfs::descendants;
use crate::users::running_as_root;
use crate::wait::poll_until;

/// How long Dovecot gets to start listening, and to stop.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// How a test user's password is kept in the passwd-file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredAs {
    /// `{SHA512-CRYPT}$6$…`, made by `doveadm pw`.
    Sha512Crypt,
    /// `{PLAIN}password`: what CRAM-MD5 needs.
    Plain,
}

/// A running Dovecot that only authenticates.
pub struct AuthDovecot {
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl AuthDovecot {
    /// Starts Dovecot with these users: `(name, password, how stored)`.
    /// Needs root.
    pub fn start(users: &[(&str, &str, StoredAs)]) -> AuthDovecot {
        assert!(running_as_root(), "Dovecot is started as root");
        let dir = tempfile::Builder::new()
            .prefix("postern-dovecot-auth-")
            .tempdir()
            .expect("dovecot: temporary directory");
        // Dovecot's own users reach the passwd-file and the socket.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755))
            .expect("dovecot: chmod the temporary directory");
        let mut dovecot = AuthDovecot { dir, child: None };
        dovecot.write_users(users);
        dovecot.write_config();
        dovecot.run();
        dovecot
    }

    /// The auth-client socket (mode 0666): what an MTA connects to.
    pub fn socket(&self) -> PathBuf {
        self.path("run/auth-client")
    }

    /// The configuration file, for `doveadm -c`.
    pub fn config(&self) -> PathBuf {
        self.path("dovecot.conf")
    }

    /// The directory of Dovecot's files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Dovecot's log so far, for failure messages.
    pub fn log(&self) -> String {
        fs::read_to_string(self.path("dovecot.log")).unwrap_or_default()
    }

    /// Stops Dovecot (SIGTERM, then SIGKILL) and waits until it is gone,
    /// its auth process too. The master does not wait for its children,
    /// and the auth process lives on while clients are connected to it
    /// (as in a real restart); a test that stops Dovecot means it gone,
    /// so what is left after the master is sent SIGTERM as well.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let children = descendants(child.id());
        let pid = Pid::from_raw(child.id() as i32);
        let _ = kill(pid, Signal::SIGTERM);
        let exited = poll_until(START_TIMEOUT, || child.try_wait().ok().flatten());
        if exited.is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
        for c in children.iter().filter(|c| c.still_running()) {
            let _ = kill(Pid::from_raw(c.pid as i32), Signal::SIGTERM);
        }
        let gone = poll_until(START_TIMEOUT, || {
            (!children.iter().any(|c| c.still_running())).then_some(())
        });
        if gone.is_none() {
            for c in children.iter().filter(|c| c.still_running()) {
                let _ = kill(Pid::from_raw(c.pid as i32), Signal::SIGKILL);
            }
        }
    }

    /// Starts Dovecot again after [`AuthDovecot::stop`], with the same
    /// users and socket; waits until the socket accepts.
    pub fn restart(&mut self) {
        self.stop();
        self.run();
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write_users(&self, users: &[(&str, &str, StoredAs)]) {
        let mut text = String::new();
        for (name, password, stored) in users {
            let field = match stored {
                StoredAs::Sha512Crypt => doveadm_pw("SHA512-CRYPT", password),
                StoredAs::Plain => format!("{{PLAIN}}{password}"),
            };
            text += &format!("{name}:{field}\n");
        }
        fs::write(self.path("users"), text).expect("dovecot: write users");
    }

    fn write_config(&self) {
        let dir = self.dir.path().display();
        let conf = format!(
            "# Written by postern-testkit for one test: authentication only.\n\
             base_dir = {dir}/run\n\
             state_dir = {dir}/state\n\
             log_path = {dir}/dovecot.log\n\
             info_log_path = {dir}/dovecot.log\n\
             protocols =\n\
             ssl = no\n\
             auth_mechanisms = plain login cram-md5\n\
             disable_plaintext_auth = no\n\
             auth_failure_delay = 0\n\
             auth_verbose = yes\n\
             passdb {{\n  driver = passwd-file\n  args = {dir}/users\n}}\n\
             service auth {{\n  \
               unix_listener auth-client {{\n    mode = 0666\n  }}\n\
             }}\n"
        );
        fs::write(self.config(), conf).expect("dovecot: write dovecot.conf");
    }

    fn run(&mut self) {
        self.child = Some(crate::dovecot::spawn_dovecot(&self.config()));
        let socket = self.socket();
        // Dovecot's master makes the socket; the auth process answers on
        // it once started, and a client that connects before just waits.
        let listening = poll_until(START_TIMEOUT, || UnixStream::connect(&socket).ok());
        if listening.is_none() {
            panic!(
                "dovecot did not listen on {} in time; its log:\n{}",
                socket.display(),
                self.log()
            );
        }
    }
}

impl Drop for AuthDovecot {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `doveadm pw -s <scheme> -p <password>`: the password field Dovecot
/// itself writes, `{SCHEME}hash`. Needs no running Dovecot; an empty
/// configuration of its own keeps the system's `/etc/dovecot` out of it.
pub fn doveadm_pw(scheme: &str, password: &str) -> String {
    let dir = tempfile::tempdir().expect("doveadm: temporary directory");
    let conf = dir.path().join("empty.conf");
    fs::write(&conf, "").expect("doveadm: write empty.conf");
    let out = Command::new("doveadm")
        .arg("-c")
        .arg(&conf)
        .args(["pw", "-s", scheme, "-p", password])
        .output()
        .unwrap_or_else(|e| panic!("cannot run doveadm (is dovecot-core installed?): {e}"));
    assert!(
        out.status.success(),
        "doveadm pw -s {scheme} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let field = String::from_utf8(out.stdout).expect("doveadm pw prints ASCII");
    let field = field.trim().to_string();
    assert!(
        field.starts_with(&format!("{{{scheme}}}")),
        "doveadm pw -s {scheme} printed {field:?}"
    );
    field
}
