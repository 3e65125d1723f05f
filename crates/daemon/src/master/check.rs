//! `posternd --check-config`: every check master makes before it starts,
//! made without starting, binding, creating or changing anything, so that
//! `postern check-config` passing means `posternd` will not refuse the
//! configuration with 78: the file, the tables next to it, the TLS files
//! (readable, keys not group- or world-accessible, keys matching their
//! certificates and making a signature that verifies, as the key holder
//! checks them), the users (existing, not root, different from each
//! other), the spool and mailbox directories (directories, owned by the
//! right user), and the control socket's directory.
//!
//! Run it as root to check what the daemon will see: as another user the
//! files and users are checked with that user's rights, as the daemon
//! would then run.

use std::path::Path;

use postern_ipc::Sysexit;

use super::{control, directories, resolve_users, Users};
use crate::privsep;
use crate::settings::Settings;

/// Checks the configuration at `path`; prints each problem on standard
/// error; EX_CONFIG when there is one.
pub fn run(path: &Path) -> Sysexit {
    let problems = problems(path);
    for problem in &problems {
        eprintln!("{problem}");
    }
    if problems.is_empty() {
        Sysexit::Ok
    } else {
        Sysexit::Config
    }
}

/// Everything that would stop the daemon's start, in the order it would
/// meet them.
pub fn problems(path: &Path) -> Vec<String> {
    let settings = match Settings::load(path) {
        Ok(settings) => settings,
        Err(errors) => return errors.errors().iter().map(ToString::to_string).collect(),
    };
    let users = if privsep::privileged() {
        match resolve_users(&settings) {
            Ok(users) => users,
            Err(e) => return vec![format!("{}: {e}", path.display())],
        }
    } else {
        let me = privsep::current_identity();
        Users {
            run_as: me.clone(),
            queue_owner: me,
        }
    };
    let mut problems = directories::check(&settings, &users);
    // What the key holder will load and test at start (the daemon's own
    // contexts read no key: see key_holder.rs).
    if let Err(e) = postern_tls::KeyStore::load(&settings.config.tls) {
        problems.push(format!("{}: {e}", path.display()));
    }
    if let Some(dir) = settings.config.control_socket.parent() {
        if let Err(e) = control::check_socket_dir_if_present(dir) {
            problems.push(e.to_string());
        }
    }
    problems
}
