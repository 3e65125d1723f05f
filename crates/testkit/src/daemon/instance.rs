//! A daemon instance's files: the state directory, its layout, the
//! configuration and side tables, written before anything is spawned.
//!
//! ```text
//! <state>/            a TempDir, removed when the Instance is dropped
//!   etc/postern.cf    the test's lines plus the defaults below
//!   etc/<table>       mailertable, local-host-names … (DaemonBuilder::table)
//!   spool/            O QueueDirectory (created by the daemon)
//!   mail/             O MailboxDirectory (created by the daemon)
//! ```
//!
//! Defaults are added unless the test's own lines set the same thing,
//! recognised in the `O Name=value` form (and `Dj`, and `DAEMON_OPTIONS`
//! for listeners); an m4 `define` of the same option is not recognised, so
//! a test using one should also write the `O` line it replaces.

use std::ffi::OsString;
use std::fs;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tempfile::TempDir;

use crate::ports::free_port;

/// One listener of the daemon, as read back from the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listener {
    /// `Name=` (`MTA`, `MSA`), if given.
    pub name: Option<String>,
    /// Where to connect: `Addr=` (127.0.0.1 if absent or unspecified) and
    /// `Port=`.
    pub addr: SocketAddr,
}

/// The files of one daemon instance, which outlive restarts of its process.
#[derive(Debug)]
pub struct Instance {
    pub(crate) binary: PathBuf,
    pub(crate) args: Vec<OsString>,
    pub(crate) envs: Vec<(OsString, OsString)>,
    /// A program (and its arguments) that execs the daemon.
    pub(crate) launcher: Option<(OsString, Vec<OsString>)>,
    pub(crate) ready_timeout: Duration,
    pub(crate) stop_timeout: Duration,
    pub(crate) children_grace: Duration,
    listeners: Vec<Listener>,
    dir: TempDir,
}

/// Settings a builder collects before writing an [`Instance`].
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) binary: PathBuf,
    pub(crate) config_lines: Vec<String>,
    pub(crate) tables: Vec<(String, Vec<u8>)>,
    pub(crate) args: Vec<OsString>,
    pub(crate) envs: Vec<(OsString, OsString)>,
    pub(crate) launcher: Option<(OsString, Vec<OsString>)>,
    pub(crate) ready_timeout: Duration,
    pub(crate) stop_timeout: Duration,
    pub(crate) children_grace: Duration,
}

impl Instance {
    pub(crate) fn write(plan: Plan) -> Instance {
        let dir = tempfile::Builder::new()
            .prefix("posternd-test-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create the daemon's state dir: {e}"));
        // spool/ and mail/ are left for the daemon to create: as root it
        // gives them to QueueOwner and RunAsUser, who must be able to reach
        // them through the state directory.
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|e| panic!("cannot open up the state dir: {e}"));
        let etc = dir.path().join("etc");
        fs::create_dir(&etc).unwrap_or_else(|e| panic!("cannot create {}: {e}", etc.display()));
        let text = render_config(&plan.config_lines, dir.path());
        let listeners = listeners(&text);
        assert!(
            !listeners.is_empty(),
            "the daemon's configuration names no listener:\n{text}"
        );
        let instance = Instance {
            binary: plan.binary,
            args: plan.args,
            envs: plan.envs,
            launcher: plan.launcher,
            ready_timeout: plan.ready_timeout,
            stop_timeout: plan.stop_timeout,
            children_grace: plan.children_grace,
            listeners,
            dir,
        };
        write_file(&instance.config_path(), text.as_bytes());
        for (name, contents) in &plan.tables {
            instance.write_table(name, contents);
        }
        instance
    }

    /// The control socket master serves (`O ControlSocket`).
    pub fn control_socket(&self) -> PathBuf {
        self.state_dir().join("control.sock")
    }

    /// The state directory (a TempDir).
    pub fn state_dir(&self) -> &Path {
        self.dir.path()
    }

    /// `<state>/etc`, holding the configuration and the side tables.
    pub fn etc_dir(&self) -> PathBuf {
        self.state_dir().join("etc")
    }

    /// `<state>/spool`, the default QueueDirectory.
    pub fn spool_dir(&self) -> PathBuf {
        self.state_dir().join("spool")
    }

    /// `<state>/mail`, the default MailboxDirectory.
    pub fn mail_dir(&self) -> PathBuf {
        self.state_dir().join("mail")
    }

    /// `<state>/etc/postern.cf`.
    pub fn config_path(&self) -> PathBuf {
        self.etc_dir().join("postern.cf")
    }

    /// The configuration as written.
    pub fn config_text(&self) -> String {
        let path = self.config_path();
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
    }

    /// The first listener's address: where SMTP tests connect.
    pub fn smtp_addr(&self) -> SocketAddr {
        self.listeners[0].addr
    }

    /// Every listener, in file order.
    pub fn listeners(&self) -> &[Listener] {
        &self.listeners
    }

    /// The address of the listener called `name` (`"MSA"` …); panics if
    /// there is none.
    pub fn listener_addr(&self, name: &str) -> SocketAddr {
        self.listeners
            .iter()
            .find(|l| {
                l.name
                    .as_deref()
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
            })
            .unwrap_or_else(|| panic!("no listener named {name:?} in {:?}", self.listeners))
            .addr
    }

    /// Writes (or rewrites, e.g. before a reload) `etc/<name>`.
    pub fn write_table(&self, name: &str, contents: &[u8]) {
        assert!(
            !name.is_empty()
                && !name.contains('/')
                && name != "."
                && name != ".."
                && name != "postern.cf",
            "bad table name {name:?}: a plain file name next to postern.cf is expected"
        );
        write_file(&self.etc_dir().join(name), contents);
    }

    /// Removes the state directory, saying so if that fails (TempDir's own
    /// Drop would stay silent).
    pub(crate) fn remove(self) {
        let path = self.state_dir().to_path_buf();
        if let Err(e) = self.dir.close() {
            eprintln!(
                "cannot remove the daemon's state dir {}: {e}",
                path.display()
            );
        }
    }
}

fn write_file(path: &Path, contents: &[u8]) {
    fs::write(path, contents).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

/// The test's lines, preceded by every default they do not override.
pub(crate) fn render_config(lines: &[String], state: &Path) -> String {
    let sets = |option: &str| {
        lines
            .iter()
            .any(|l| option_name(l).is_some_and(|n| n.eq_ignore_ascii_case(option)))
    };
    let mut out = String::from("# Written by postern-testkit for one test.\n");
    if !sets("QueueDirectory") {
        out += &format!("O QueueDirectory={}\n", state.join("spool").display());
    }
    if !sets("MailboxDirectory") {
        out += &format!("O MailboxDirectory={}\n", state.join("mail").display());
    }
    if !sets("ControlSocket") {
        out += &format!("O ControlSocket={}\n", state.join("control.sock").display());
    }
    let has_listener = sets("DaemonPortOptions")
        || lines
            .iter()
            .any(|l| l.trim_start().starts_with("DAEMON_OPTIONS("));
    if !has_listener {
        out += &format!(
            "O DaemonPortOptions=Port={}, Addr=127.0.0.1, Name=MTA\n",
            free_port()
        );
    }
    if !lines.iter().any(|l| l.trim_start().starts_with("Dj")) {
        out += "Dj mx.test\n";
    }
    for line in lines {
        out += line;
        out += "\n";
    }
    out
}

/// `O Name=value` → `Name`.
fn option_name(line: &str) -> Option<&str> {
    let rest = line.trim_start().strip_prefix('O')?;
    if !rest.starts_with([' ', '\t']) {
        return None;
    }
    Some(rest.split_once('=')?.0.trim())
}

/// The listeners named by `O DaemonPortOptions=` and m4 `DAEMON_OPTIONS(…)`
/// lines, in file order.
pub(crate) fn listeners(config: &str) -> Vec<Listener> {
    config
        .lines()
        .filter_map(|line| {
            if option_name(line).is_some_and(|n| n.eq_ignore_ascii_case("DaemonPortOptions")) {
                return Some(line.split_once('=')?.1);
            }
            let m4 = line.trim_start().strip_prefix("DAEMON_OPTIONS(")?;
            let m4 = m4.trim_start().strip_prefix('`').unwrap_or(m4);
            Some(m4.split('\'').next().unwrap_or(m4))
        })
        .map(parse_listener)
        .collect()
}

/// The keys the config crate accepts (full names or first letters).
fn parse_listener(value: &str) -> Listener {
    let mut port = 25;
    let mut ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let mut name = None;
    for item in value.split(',') {
        let Some((key, val)) = item.split_once('=') else {
            continue;
        };
        let val = val.trim();
        match key.trim().to_ascii_lowercase().as_str() {
            "port" | "p" => {
                port = match val {
                    "smtp" => 25,
                    "submission" => 587,
                    "smtps" => 465,
                    _ => val
                        .parse()
                        .unwrap_or_else(|_| panic!("bad Port in DaemonPortOptions={value}")),
                }
            }
            "addr" | "a" => {
                let parsed: IpAddr = val
                    .parse()
                    .unwrap_or_else(|_| panic!("bad Addr in DaemonPortOptions={value}"));
                // A wildcard bind is reached through loopback.
                if !parsed.is_unspecified() {
                    ip = parsed;
                }
            }
            "name" | "n" => name = Some(val.to_string()),
            _ => {}
        }
    }
    Listener {
        name,
        addr: SocketAddr::new(ip, port),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_what_the_test_left_out() {
        let text = render_config(&["O PrivacyOptions=goaway".to_string()], Path::new("/s"));
        assert!(text.contains("O QueueDirectory=/s/spool\n"));
        assert!(text.contains("O MailboxDirectory=/s/mail\n"));
        assert!(text.contains("Dj mx.test\n"));
        assert!(text.ends_with("O PrivacyOptions=goaway\n"));
        let ls = listeners(&text);
        assert_eq!(ls.len(), 1);
        assert_eq!(ls[0].name.as_deref(), Some("MTA"));
        assert_eq!(ls[0].addr.ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_ne!(ls[0].addr.port(), 0);
    }

    #[test]
    fn the_test_overrides_defaults() {
        let lines = [
            "O queuedirectory=/q",
            "O MailboxDirectory = /m",
            "O ControlSocket=/c.sock",
            "Djother.test",
            "O DaemonPortOptions=Port=2525, Name=MTA",
            "DAEMON_OPTIONS(`Port=submission, Addr=0.0.0.0, Name=MSA, M=Ea')",
        ]
        .map(String::from);
        let text = render_config(&lines, Path::new("/s"));
        assert!(!text.contains("/s/"), "{text}");
        assert!(!text.contains("mx.test"), "{text}");
        let ls = listeners(&text);
        assert_eq!(
            ls,
            vec![
                Listener {
                    name: Some("MTA".into()),
                    addr: "127.0.0.1:2525".parse().unwrap()
                },
                Listener {
                    name: Some("MSA".into()),
                    addr: "127.0.0.1:587".parse().unwrap()
                },
            ]
        );
    }

    #[test]
    fn option_names() {
        assert_eq!(option_name("O LogLevel=9"), Some("LogLevel"));
        assert_eq!(option_name("  O\tLogLevel = 9"), Some("LogLevel"));
        assert_eq!(option_name("Ostrich=1"), None);
        assert_eq!(option_name("# O LogLevel=9"), None);
    }
}
