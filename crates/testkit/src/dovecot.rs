//! A real LMTP server for a test: Debian's Dovecot (`dovecot-lmtpd`),
//! with a configuration of its own in a temporary directory (its
//! base_dir, state_dir, log and the users' maildirs all there), serving
//! LMTP on a Unix socket and on a free port of 127.0.0.1.
//!
//! Users are virtual (a passwd-file userdb and passdb), each with a
//! Maildir under the temporary directory, all stored as one unprivileged
//! system user (`mail_uid`/`mail_gid`: [`RUN_AS_USER`], which
//! [`ensure_test_users`] makes). The quota plugin is on with
//! `quota_full_tempfail = yes`, so a user over quota gets a 4xx
//! (`452 4.2.2 … Quota exceeded`) after DATA; a user may be given a tiny
//! quota ([`Dovecot::start`]) and a bigger one later
//! ([`Dovecot::set_quota`]). `auth_username_format = %Ln` in the LMTP
//! protocol: `alice@any.domain` is the user `alice`, as a Postern that
//! sends `user@$j` needs.
//!
//! Messages are read back with Dovecot's own `doveadm fetch`. Dovecot
//! must be started as root (it changes to the mail user itself): the
//! tests that use it check [`running_as_root`] first. The server is
//! stopped by its PID when the [`Dovecot`] is dropped, and the directory
//! removed.

use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

use crate::ports::free_port;
use crate::users::{ensure_test_users, running_as_root, RUN_AS_USER};
use crate::wait::poll_until;

/// How long Dovecot gets to start listening, and to stop.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running Dovecot.
pub struct Dovecot {
    dir: tempfile::TempDir,
    port: u16,
    /// Users and their quota (`1K`; `None`: the default, 100M).
    users: Vec<(String, Option<String>)>,
    child: Option<Child>,
}

impl Dovecot {
    /// Starts Dovecot for `users`: `(name, quota)`, the quota in
    /// Dovecot's syntax (`1K`, `10M`) or `None` for the default 100M.
    /// Needs root.
    pub fn start(users: &[(&str, Option<&str>)]) -> Dovecot {
        assert!(running_as_root(), "Dovecot is started as root");
        ensure_test_users();
        let dir = tempfile::Builder::new()
            .prefix("postern-dovecot-")
            .tempdir()
            .expect("dovecot: temporary directory");
        // The mail user reaches the homes, RunAsUser the socket.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755))
            .expect("dovecot: chmod the temporary directory");
        let mut dovecot = Dovecot {
            dir,
            port: free_port(),
            users: users
                .iter()
                .map(|(n, q)| (n.to_string(), q.map(str::to_string)))
                .collect(),
            child: None,
        };
        dovecot.write_files();
        dovecot.run();
        dovecot
    }

    /// The LMTP Unix socket (mode 0666).
    pub fn socket(&self) -> PathBuf {
        self.path("lmtp")
    }

    /// The LMTP TCP listener on 127.0.0.1.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// The configuration file, for `doveadm -c`.
    pub fn config(&self) -> PathBuf {
        self.path("dovecot.conf")
    }

    /// Gives `user` another quota (`None`: the default), and waits until
    /// Dovecot's auth process answers with it. Dovecot reads the
    /// passwd-file again when its modification time or size changed, at
    /// most once a second: the time is moved on (two changes within a
    /// second are both seen), and `doveadm user` is asked until the new
    /// quota shows.
    pub fn set_quota(&mut self, user: &str, quota: Option<&str>) {
        let entry = self
            .users
            .iter_mut()
            .find(|(n, _)| n == user)
            .unwrap_or_else(|| panic!("dovecot: no user {user}"));
        entry.1 = quota.map(str::to_string);
        let path = self.path("users");
        let before = fs::metadata(&path)
            .and_then(|m| m.modified())
            .unwrap_or(SystemTime::UNIX_EPOCH);
        self.write_users();
        let after = (before + Duration::from_secs(2)).max(SystemTime::now());
        fs::File::options()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_modified(after))
            .expect("dovecot: set the users file's time");
        let want = quota.map(|q| format!("*:storage={q}")).unwrap_or_default();
        let seen = poll_until(START_TIMEOUT, || {
            (self.quota_rule(user) == want).then_some(())
        });
        assert!(
            seen.is_some(),
            "dovecot: {user}'s quota rule is still {:?}, not {want:?}",
            self.quota_rule(user)
        );
    }

    /// `user`'s quota rule as Dovecot's userdb gives it now (empty: none).
    fn quota_rule(&self, user: &str) -> String {
        let out = Command::new("doveadm")
            .arg("-c")
            .arg(self.config())
            .args(["user", "-f", "quota_rule", user])
            .output()
            .unwrap_or_else(|e| panic!("cannot run doveadm: {e}"));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// The messages in `user`'s INBOX, each whole (header and body) with
    /// LF line ends, as `doveadm fetch … text all` prints them.
    pub fn messages(&self, user: &str) -> Vec<String> {
        let out = Command::new("doveadm")
            .arg("-c")
            .arg(self.config())
            .args(["fetch", "-u", user, "text", "mailbox", "INBOX"])
            .output()
            .unwrap_or_else(|e| panic!("cannot run doveadm: {e}"));
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            // A user who never got mail has no mailbox yet.
            return Vec::new();
        }
        // The pager formatter: `text:` then the value, records separated
        // by a form feed line.
        text.split("\x0c\n")
            .filter_map(|record| record.strip_prefix("text:\n"))
            .map(str::to_string)
            .collect()
    }

    /// Waits until `user` has `n` messages; returns them.
    pub fn wait_for_messages(&self, user: &str, n: usize, timeout: Duration) -> Vec<String> {
        poll_until(timeout, || {
            let m = self.messages(user);
            (m.len() >= n).then_some(m)
        })
        .unwrap_or_else(|| {
            panic!(
                "dovecot: {user} has {} message(s), not {n}; Dovecot's log:\n{}",
                self.messages(user).len(),
                self.log()
            )
        })
    }

    /// Dovecot's log so far, for failure messages.
    pub fn log(&self) -> String {
        fs::read_to_string(self.path("dovecot.log")).unwrap_or_default()
    }

    /// The directory of Dovecot's files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn mail_ids() -> (u32, u32) {
        let user = nix::unistd::User::from_name(RUN_AS_USER)
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("no user {RUN_AS_USER}"));
        (user.uid.as_raw(), user.gid.as_raw())
    }

    fn write_users(&self) {
        let (uid, gid) = Self::mail_ids();
        let mut text = String::new();
        for (name, quota) in &self.users {
            let extra = quota
                .as_ref()
                .map(|q| format!("userdb_quota_rule=*:storage={q}"))
                .unwrap_or_default();
            let home = self.path("home").join(name);
            text += &format!(
                "{name}:{{PLAIN}}unused:{uid}:{gid}::{}::{extra}\n",
                home.display()
            );
        }
        fs::write(self.path("users"), text).expect("dovecot: write users");
    }

    fn write_files(&self) {
        let (uid, gid) = Self::mail_ids();
        let home = self.path("home");
        fs::create_dir(&home).expect("dovecot: mkdir home");
        nix::unistd::chown(&home, Some(uid.into()), Some(gid.into())).expect("dovecot: chown home");
        self.write_users();
        let dir = self.dir.path().display();
        let conf = format!(
            "# Written by postern-testkit for one test.\n\
             base_dir = {dir}/run\n\
             state_dir = {dir}/state\n\
             log_path = {dir}/dovecot.log\n\
             info_log_path = {dir}/dovecot.log\n\
             protocols = lmtp\n\
             listen = 127.0.0.1\n\
             ssl = no\n\
             mail_uid = {uid}\n\
             mail_gid = {gid}\n\
             first_valid_uid = 1\n\
             mail_location = maildir:~/Maildir\n\
             mail_plugins = quota\n\
             quota_full_tempfail = yes\n\
             passdb {{\n  driver = passwd-file\n  args = {dir}/users\n}}\n\
             userdb {{\n  driver = passwd-file\n  args = {dir}/users\n}}\n\
             protocol lmtp {{\n  auth_username_format = %Ln\n}}\n\
             service lmtp {{\n  \
               unix_listener {dir}/lmtp {{\n    mode = 0666\n  }}\n  \
               inet_listener lmtp {{\n    address = 127.0.0.1\n    port = {port}\n  }}\n\
             }}\n\
             plugin {{\n  quota = maildir:User quota\n  quota_rule = *:storage=100M\n}}\n",
            port = self.port
        );
        fs::write(self.config(), conf).expect("dovecot: write dovecot.conf");
    }

    fn run(&mut self) {
        self.child = Some(spawn_dovecot(&self.config()));
        let addr = self.addr();
        let socket = self.socket();
        let listening = poll_until(START_TIMEOUT, || {
            (TcpStream::connect(addr).is_ok() && socket.exists()).then_some(())
        });
        if listening.is_none() {
            panic!(
                "dovecot did not listen on {addr} and {} in time; its log:\n{}",
                socket.display(),
                self.log()
            );
        }
    }

    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        // SIGTERM: master stops its services and removes its sockets.
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let exited = poll_until(START_TIMEOUT, || child.try_wait().ok().flatten());
        if exited.is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Dovecot's master in the foreground with the configuration at `config`.
pub(crate) fn spawn_dovecot(config: &Path) -> Child {
    Command::new("dovecot")
        .arg("-F")
        .arg("-c")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("dovecot: cannot start (is dovecot-core installed?): {e}"))
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        self.stop();
    }
}
