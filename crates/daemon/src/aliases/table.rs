//! The aliases table, re-read when its file changes.
//!
//! Before each use the file is `stat`ed (one system call); when its inode,
//! device, size or modification time differ from those of the copy in
//! memory, it is read again. A file that no longer parses is logged (each
//! bad line as `file:line: …`) and the previous table is kept, so a typo
//! never drops mail for every alias. SIGHUP restarts the queue runner,
//! which reads the file afresh. At start the required aliases are checked
//! (`postmaster`, `MAILER-DAEMON`) and a missing one is logged.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use postern_config::Aliases;

use crate::log;

/// What identifies one version of the file.
type Stamp = Option<(u64, u64, u64, i64, i64)>;

/// The table and the version of the file it came from.
#[derive(Debug)]
pub struct AliasTable {
    path: PathBuf,
    stamp: Stamp,
    loaded: bool,
    aliases: Aliases,
}

fn stamp(path: &Path) -> Stamp {
    std::fs::metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino(), m.size(), m.mtime(), m.mtime_nsec()))
}

impl AliasTable {
    /// Reads `path` (a missing file is an empty table) and logs the
    /// warnings sendmail's users expect at start.
    pub fn open(path: &Path) -> AliasTable {
        let mut table = AliasTable {
            path: path.to_path_buf(),
            stamp: None,
            loaded: false,
            aliases: Aliases::default(),
        };
        table.refresh();
        for name in table.aliases.missing_required() {
            log::warning(
                log::Level::Serious,
                &format!("WARNING: {}: no alias for {name}", path.display()),
            );
        }
        table
    }

    /// The current table, re-read first if the file changed.
    pub fn current(&mut self) -> &Aliases {
        self.refresh();
        &self.aliases
    }

    fn refresh(&mut self) {
        let now = stamp(&self.path);
        if self.loaded && now == self.stamp {
            return;
        }
        self.loaded = true;
        match Aliases::load(&self.path) {
            Ok(aliases) => {
                let s = aliases.stats();
                if now.is_some() {
                    log::info(
                        log::Level::Query,
                        &format!(
                            "{}: {} aliases, longest {} bytes, {} bytes total",
                            self.path.display(),
                            s.aliases,
                            s.longest,
                            s.total
                        ),
                    );
                }
                self.aliases = aliases;
                self.stamp = now;
            }
            Err(errors) => {
                for e in errors.errors() {
                    log::err(&format!("{e} (alias file not reloaded)"));
                }
                // Not again until the file changes once more.
                self.stamp = now;
            }
        }
    }
}
