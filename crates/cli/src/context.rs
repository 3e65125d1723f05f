//! Which configuration the tool reads, who is calling, and where master's
//! control socket is.
//!
//! The configuration file is, in order: `-C file` (root only, REFERENCE
//! §4.4), the `POSTERN_CONFIG` environment variable (anyone: it only
//! chooses which daemon the tool talks to, and that daemon authorises every
//! request by the caller's uid; the test suite and development instances
//! use it), then `/etc/mail/postern.cf`. A file that cannot be read or does
//! not validate does not stop the tools: they fall back to the built-in
//! defaults (the control socket `/run/postern/control.sock`), saying so on
//! standard error when the file was named explicitly.

use std::path::{Path, PathBuf};

use postern_config::{Config, DEFAULT_PATH};

/// The environment variable that names the configuration file.
pub const CONFIG_ENV: &str = "POSTERN_CONFIG";

/// The built-in control socket, used when no configuration can be read.
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/postern/control.sock";

/// Everything a tool needs besides its arguments.
#[derive(Debug)]
pub struct Context {
    /// The program name for messages.
    pub prog: &'static str,
    /// The configuration (the file's, or the built-in defaults).
    pub config: Config,
    /// The caller's real uid.
    pub uid: u32,
    /// The caller's user name (or uid as a number).
    pub user: String,
}

impl Context {
    /// Reads the configuration chosen by `explicit` (`-C`), the
    /// environment, or the default path.
    pub fn new(prog: &'static str, explicit: Option<&Path>) -> Context {
        let (path, named) = config_path(explicit);
        let config = match Config::load(&path) {
            Ok(config) => config,
            Err(errors) => {
                if named {
                    for e in errors.errors() {
                        eprintln!("{prog}: {e}");
                    }
                    eprintln!("{prog}: using the built-in defaults");
                }
                defaults(&path)
            }
        };
        let (uid, user) = caller();
        Context {
            prog,
            config,
            uid,
            user,
        }
    }

    /// master's control socket.
    pub fn control_socket(&self) -> &Path {
        &self.config.control_socket
    }

    /// Prints `prog: message` on standard error.
    pub fn error(&self, message: &str) {
        eprintln!("{}: {message}", self.prog);
    }
}

/// The file to read and whether the caller named it (`-C` or the
/// environment) rather than getting the default.
pub fn config_path(explicit: Option<&Path>) -> (PathBuf, bool) {
    if let Some(path) = explicit {
        return (path.to_path_buf(), true);
    }
    match std::env::var_os(CONFIG_ENV) {
        Some(v) if !v.is_empty() => (PathBuf::from(v), true),
        _ => (PathBuf::from(DEFAULT_PATH), false),
    }
}

/// The built-in configuration (every option at its default, the control
/// socket at [`DEFAULT_CONTROL_SOCKET`]).
fn defaults(origin: &Path) -> Config {
    Config::parse_str("", origin).unwrap_or_else(|_| {
        Config::parse_str("", Path::new(DEFAULT_PATH)).expect("the built-in defaults validate")
    })
}

/// The real uid and its user name.
pub fn caller() -> (u32, String) {
    let uid = nix::unistd::getuid();
    let user = nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map_or_else(|| uid.as_raw().to_string(), |u| u.name);
    (uid.as_raw(), user)
}

/// True when the real uid is root (sendmail's RealUid == 0).
pub fn is_root() -> bool {
    nix::unistd::getuid().is_root()
}
