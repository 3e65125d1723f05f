//! `newaliases` (= `sendmail -bi`): checks the aliases file and prints
//! sendmail's statistics line.
//!
//! Postern reads the aliases file itself, as text, and the daemon picks up
//! a changed file on its own (it compares the file's inode, size and
//! modification time before each use, and re-reads it on SIGHUP), so there
//! is no database to rebuild: what is left of sendmail's command is its
//! check. It runs with the caller's rights and needs no daemon.
//!
//! - a clean file: `<file>: N aliases, longest L bytes, T bytes total` on
//!   standard output (sendmail's line), exit 0;
//! - each bad line: `<file>:<line>: <what>` on standard error (sendmail's
//!   texts: `missing colon`, `… illegal alias name`, `… bad address`,
//!   `… missing value for alias`, `Non-continuation line starts with
//!   space`), then exit 78 (EX_CONFIG, as `postern check-config`);
//! - a file without `postmaster` or `MAILER-DAEMON`: the warning the
//!   daemon logs at start, on standard error (exit 0).

use postern_config::Aliases;
use postern_ipc::Sysexit;

use crate::context::Context;

/// The warning for a required alias that is missing (the daemon logs the
/// same text at start).
pub fn missing_alias_warning(file: &std::path::Path, name: &str) -> String {
    format!("WARNING: {}: no alias for {name}", file.display())
}

/// Runs newaliases for the configuration in `ctx`.
pub fn run(ctx: &Context) -> Sysexit {
    let path = ctx.config.alias_path();
    match Aliases::load(&path) {
        Ok(aliases) => {
            for name in aliases.missing_required() {
                eprintln!("{}", missing_alias_warning(&path, name));
            }
            let s = aliases.stats();
            println!(
                "{}: {} aliases, longest {} bytes, {} bytes total",
                path.display(),
                s.aliases,
                s.longest,
                s.total
            );
            Sysexit::Ok
        }
        Err(errors) => {
            for e in errors.errors() {
                eprintln!("{e}");
            }
            Sysexit::Config
        }
    }
}
