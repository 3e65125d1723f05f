//! Startup recovery: bring the spool back to its invariant after a crash.
//!
//! Everything in `incoming/` and every `tf` is an interrupted write, and a
//! `df` without `qf` is an interrupted commit or removal: none of these was
//! acknowledged with `250` (or all its recipients were done), so they are
//! deleted, as is a `qf` whose data never left `incoming/` (the commit's
//! directory fsync did not finish). A `qf` we cannot parse is never
//! deleted: it may be the only copy of someone's mail, so it goes to
//! `corrupt/` (with its `df`) for a human.

use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use super::{sync_dir, Recovery, Spool, DIR_MODE};
use crate::id::QueueId;
use crate::QueueError;

/// Classification of a name in `queue/`.
enum Entry {
    Temp,
    Data(QueueId),
    Control(QueueId),
    Unknown,
}

fn classify(name: &str) -> Entry {
    let id = |rest: &str| rest.parse::<QueueId>().ok();
    if name.starts_with("tf") {
        Entry::Temp
    } else if let Some(rest) = name.strip_prefix("df") {
        // A df with a malformed id can have no qf: debris.
        id(rest).map_or(Entry::Temp, Entry::Data)
    } else if let Some(rest) = name.strip_prefix("qf") {
        id(rest).map_or(Entry::Unknown, Entry::Control)
    } else {
        Entry::Unknown
    }
}

fn remove_any(path: &Path) -> io::Result<()> {
    if fs::symlink_metadata(path)?.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    }
}

impl Spool {
    fn corrupt_dir(&self) -> io::Result<PathBuf> {
        let dir = self.root.join("corrupt");
        match DirBuilder::new().mode(DIR_MODE).create(&dir) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(e),
            _ => Ok(dir),
        }
    }

    /// Moves `path` into `corrupt/` without overwriting an earlier file of
    /// the same name; returns the new path.
    fn quarantine(&self, path: &Path) -> io::Result<PathBuf> {
        let dir = self.corrupt_dir()?;
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let mut target = dir.join(&*name);
        let mut n = 1;
        while fs::symlink_metadata(&target).is_ok() {
            target = dir.join(format!("{name}.{n}"));
            n += 1;
        }
        fs::rename(path, &target)?;
        Ok(target)
    }

    /// Scans the spool at startup, removes debris, quarantines corrupt
    /// control files and reports the committed messages. Must run before
    /// the queue runner accepts new messages.
    pub fn recover(&self) -> io::Result<Recovery> {
        let mut rec = Recovery::default();
        self.recycler.clear()?;
        // Ids whose data was still in incoming/: see the qf check below.
        let mut incoming = Vec::new();
        for entry in fs::read_dir(&self.incoming)? {
            let path = entry?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if let Entry::Data(id) = classify(name) {
                incoming.push(id);
            }
            remove_any(&path)?;
            rec.removed.push(path);
        }

        let mut names = Vec::new();
        for entry in fs::read_dir(&self.queue)? {
            names.push(entry?.file_name());
        }
        let mut data = Vec::new();
        let mut controls = Vec::new();
        for os_name in names {
            let path = self.queue.join(&os_name);
            match os_name.to_str().map_or(Entry::Unknown, classify) {
                Entry::Temp => {
                    remove_any(&path)?;
                    rec.removed.push(path);
                }
                Entry::Data(id) => data.push(id),
                Entry::Control(id) => controls.push(id),
                Entry::Unknown => rec.corrupt.push(self.quarantine(&path)?),
            }
        }

        for id in controls {
            if !data.contains(&id) && incoming.contains(&id) {
                // The qf rename reached the disk but the df rename did not:
                // the commit's directory fsync never returned, so no 250
                // was sent. An interrupted commit, not a damaged message.
                let path = self.qf(&id);
                fs::remove_file(&path)?;
                rec.removed.push(path);
                continue;
            }
            let bad = match self.load(&id) {
                Ok(_) if !data.contains(&id) => Some("data file missing"),
                Ok(_) => None,
                Err(QueueError::Io(e)) => return Err(e),
                Err(_) => Some("control file unreadable"),
            };
            if bad.is_some() {
                rec.corrupt.push(self.quarantine(&self.qf(&id))?);
                if data.contains(&id) {
                    rec.corrupt.push(self.quarantine(&self.df(&id))?);
                }
            }
            data.retain(|d| *d != id);
            if bad.is_none() {
                rec.committed.push(id);
            }
        }
        // What is left in `data` has no qf.
        for id in data {
            let path = self.df(&id);
            fs::remove_file(&path)?;
            rec.removed.push(path);
        }

        if !rec.corrupt.is_empty() {
            sync_dir(&self.corrupt_dir()?)?;
        }
        sync_dir(&self.queue)?;
        sync_dir(&self.incoming)?;
        rec.committed.sort();
        rec.removed.sort();
        rec.corrupt.sort();
        Ok(rec)
    }
}
