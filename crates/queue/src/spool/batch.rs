//! Group commit: many messages made durable with shared flushes.
//!
//! A commit needs two barriers: the message's bytes (its `df` and its
//! control file `tf`) must be on stable storage before any name in
//! `queue/` points at them, and the renames into `queue/` must be on
//! stable storage before the client hears `250`. Each barrier is a cache
//! flush of the disk, which costs about a millisecond whatever it covers,
//! so a batch pays for two of them, not two per message.
//!
//! How a barrier is made is [`SyncMethod`]: `fsync` of each file and of
//! the two directories (portable, and only the spool's own files are
//! flushed), or one `syncfs` of the spool's file system (every dirty page
//! of that file system is written with the batch: best on a file system of
//! its own, as `/var/spool` usually is on a mail host).

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::fd::AsFd;

use super::{ignore_not_found, sync_dir, Spool};
use crate::control::ControlFile;
use crate::id::QueueId;

/// How the spool makes its writes durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncMethod {
    /// `fsync(2)` every file written and every directory changed.
    #[default]
    Fsync,
    /// One `syncfs(2)` of the spool's file system per barrier.
    Syncfs,
}

/// One message of a batch: its data file (complete, in `incoming/`) and
/// its control file.
pub struct Pending<'a> {
    /// `incoming/df<id>`.
    pub data: &'a File,
    /// What `queue/qf<id>` will say.
    pub control: &'a ControlFile,
}

impl Spool {
    /// Commits every message of `batch`; the result for each, in order.
    /// Only a message whose result is `Ok` may be acknowledged. Nothing of
    /// a failed one is left, not even its data in `incoming/`.
    ///
    /// The order of [`Spool::commit`], per batch instead of per message:
    /// every `df` and `tf` written, one barrier, every rename, one barrier.
    pub fn commit_batch(&self, batch: &[Pending<'_>]) -> Vec<io::Result<()>> {
        let mut results: Vec<io::Result<()>> = Vec::with_capacity(batch.len());
        // Control files written; each kept open for its own barrier.
        let mut controls: Vec<Option<File>> = Vec::with_capacity(batch.len());
        for p in batch {
            match self.write_tf_unsynced(p.control) {
                Ok(file) => {
                    controls.push(Some(file));
                    results.push(Ok(()));
                }
                Err(e) => {
                    controls.push(None);
                    results.push(Err(e));
                }
            }
        }
        // Barrier 1: the bytes.
        match self.sync {
            SyncMethod::Fsync => {
                for ((p, control), result) in batch.iter().zip(&controls).zip(results.iter_mut()) {
                    if let Some(control) = control {
                        if let Err(e) = p.data.sync_all().and_then(|()| control.sync_all()) {
                            *result = Err(e);
                        }
                    }
                }
            }
            SyncMethod::Syncfs => {
                if let Err(e) = self.syncfs() {
                    results = fail_all(batch.len(), e);
                }
            }
        }
        drop(controls);
        // The names: `queue/df` first (a df without qf is debris), then
        // the qf, whose appearance is the commit.
        for (p, result) in batch.iter().zip(results.iter_mut()) {
            if result.is_ok() {
                let id = &p.control.id;
                *result = fs::rename(self.incoming_df(id), self.df(id))
                    .and_then(|()| fs::rename(self.tf(id), self.qf(id)));
            }
        }
        // Barrier 2: the names.
        if let Err(e) = self.sync_names() {
            results = fail_all(batch.len(), e);
        }
        for (p, result) in batch.iter().zip(&results) {
            if result.is_err() {
                self.undo(&p.control.id);
            }
        }
        results
    }

    /// Removes whatever a failed commit of `id` left, the data it was
    /// given included: the client was not told it is queued.
    fn undo(&self, id: &QueueId) {
        let _ = self.remove_unsynced(id);
        let _ = self.recycler.retire(&self.tf(id));
        let _ = self.abort(id);
    }

    /// Uncommits and deletes a message as [`Spool::remove`] does, without
    /// waiting for the deletion to be durable: the next barrier (a commit,
    /// or [`Spool::sync_names`]) makes it so. A crash before then brings
    /// the message back, to be delivered again: a duplicate, never a loss.
    pub fn remove_unsynced(&self, id: &QueueId) -> io::Result<()> {
        self.recycler.retire(&self.qf(id))?;
        ignore_not_found(fs::remove_file(self.df(id)))
    }

    /// Makes every rename and unlink in the spool durable.
    pub fn sync_names(&self) -> io::Result<()> {
        match self.sync {
            SyncMethod::Fsync => {
                sync_dir(&self.queue)?;
                sync_dir(&self.incoming)
            }
            SyncMethod::Syncfs => self.syncfs(),
        }
    }

    /// Writes `queue/tf<id>`; the caller makes it durable.
    fn write_tf_unsynced(&self, control: &ControlFile) -> io::Result<File> {
        let mut file = self.recycler.fresh(&self.tf(&control.id))?;
        file.write_all(control.to_text().as_bytes())?;
        Ok(file)
    }

    /// `syncfs(2)` of the file system holding `queue/`.
    fn syncfs(&self) -> io::Result<()> {
        let dir = File::open(&self.queue)?;
        nix::unistd::syncfs(dir.as_fd()).map_err(io::Error::from)
    }
}

fn clone_error(e: &io::Error) -> io::Error {
    io::Error::new(e.kind(), e.to_string())
}

fn fail_all(n: usize, e: io::Error) -> Vec<io::Result<()>> {
    (0..n).map(|_| Err(clone_error(&e))).collect()
}
