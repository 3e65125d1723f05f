//! Control files kept for reuse.
//!
//! Every message used to cost the file system two new inodes (its data
//! and its control file) and two freed ones. On ext4 without a journal the
//! inode allocator steps over every inode freed in the last seconds
//! (`recently_deleted`), reading the inode table for each: at a few hundred
//! messages a second that scan was the largest single cost of the queue
//! runner in a profile, and it grows with the rate. A removed message's
//! control file is therefore not unlinked but moved to `free/` and reused,
//! truncated, as the next control file written: one inode per message
//! instead of two.
//!
//! Only control files: the queue runner reads them whole, by name, and
//! holds no descriptor to them. A data file may still be open in a
//! delivery process when its message is removed, and must never become
//! another message.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use nix::fcntl::{renameat2, RenameFlags, AT_FDCWD};

/// Most files kept: enough for a burst of removals, few enough that
/// `free/` stays a small directory.
const MOST_KEPT: usize = 1024;

/// The files in `free/`, as this process knows them.
#[derive(Debug)]
pub(super) struct Recycler {
    dir: PathBuf,
    names: Mutex<Vec<String>>,
    next: AtomicU64,
    mode: u32,
}

impl Recycler {
    /// The pool in `dir` (which exists), empty: files left there by an
    /// earlier process are deleted by [`Recycler::clear`] at recovery.
    pub(super) fn new(dir: PathBuf, mode: u32) -> Recycler {
        Recycler {
            dir,
            names: Mutex::new(Vec::new()),
            next: AtomicU64::new(0),
            mode,
        }
    }

    /// Deletes everything in `free/` (they hold old control files).
    pub(super) fn clear(&self) -> io::Result<()> {
        for entry in fs::read_dir(&self.dir)? {
            fs::remove_file(entry?.path())?;
        }
        self.names.lock().unwrap_or_else(|e| e.into_inner()).clear();
        Ok(())
    }

    /// Takes `path` out of the spool: into the pool, or unlinked when the
    /// pool is full. Missing is fine.
    pub(super) fn retire(&self, path: &Path) -> io::Result<()> {
        let mut names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        if names.len() >= MOST_KEPT {
            drop(names);
            return super::ignore_not_found(fs::remove_file(path));
        }
        let name = format!(
            "f{}.{}",
            std::process::id(),
            self.next.fetch_add(1, Ordering::Relaxed)
        );
        match fs::rename(path, self.dir.join(&name)) {
            Ok(()) => {
                names.push(name);
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// A file at `path` (which must not exist), empty and open for
    /// writing: a kept one when there is one, else a new one.
    pub(super) fn fresh(&self, path: &Path) -> io::Result<File> {
        loop {
            let name = self.names.lock().unwrap_or_else(|e| e.into_inner()).pop();
            let Some(name) = name else {
                return OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(self.mode)
                    .open(path);
            };
            // Never over an existing file: that would be a message's.
            match renameat2(
                AT_FDCWD,
                &self.dir.join(&name),
                AT_FDCWD,
                path,
                RenameFlags::RENAME_NOREPLACE,
            ) {
                Ok(()) => {
                    return OpenOptions::new().write(true).truncate(true).open(path);
                }
                // Deleted behind our back: try the next one.
                Err(nix::errno::Errno::ENOENT) => continue,
                // A leftover of the same name: keep the kept one, and
                // overwrite the leftover as before.
                Err(nix::errno::Errno::EEXIST) => {
                    self.names
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(name);
                    return OpenOptions::new().write(true).truncate(true).open(path);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}
