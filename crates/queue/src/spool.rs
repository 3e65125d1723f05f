//! The spool directory: layout, the durable commit, updates, removal and
//! crash recovery.
//!
//! ```text
//! <root>/incoming/df<id>   data being received, not committed
//! <root>/queue/df<id>      data of a committed message
//! <root>/queue/qf<id>      control file; its presence IS the commit
//! <root>/queue/tf<id>      control file being written (write, fsync, rename)
//! <root>/corrupt/          control files that do not parse, kept for a human
//! ```
//!
//! Directories are created 0700 and files 0600: only the queue runner's
//! user may read mail. The queue runner is the only process using the
//! spool, so there is no locking; the one invariant is "a message exists
//! iff `queue/qf<id>` exists, and then its `queue/df<id>` is complete".

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::control::ControlFile;
use crate::id::{QueueId, QueueIdGenerator};
use crate::QueueError;

const DIR_MODE: u32 = 0o700;
const FILE_MODE: u32 = 0o600;
/// How many fresh IDs `create` tries before giving up.
const CREATE_TRIES: usize = 100;

/// What [`Spool::recover`] found and did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// Committed messages (qf present, parses, df present), sorted.
    pub committed: Vec<QueueId>,
    /// Debris deleted: everything in `incoming/`, `tf` files, `df` files
    /// without a `qf`.
    pub removed: Vec<PathBuf>,
    /// Files moved to `corrupt/` (their new paths): control files that do
    /// not parse or whose data file is missing, their data files, and files
    /// in `queue/` we do not recognise.
    pub corrupt: Vec<PathBuf>,
}

/// The spool under one queue directory.
#[derive(Debug, Clone)]
pub struct Spool {
    root: PathBuf,
    incoming: PathBuf,
    queue: PathBuf,
    sync: SyncMethod,
    /// Control files kept for reuse (`free/`).
    recycler: Arc<Recycler>,
}

/// Creates `path` as a 0700 directory if missing and checks it is a real
/// directory (not a symlink that could point the spool elsewhere).
fn ensure_dir(path: &Path) -> io::Result<()> {
    match DirBuilder::new().mode(DIR_MODE).create(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    if fs::symlink_metadata(path)?.is_dir() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "{} is not a directory",
            path.display()
        )))
    }
}

/// fsync a directory, making renames and unlinks in it durable.
fn sync_dir(path: &Path) -> io::Result<()> {
    File::open(path)?.sync_all()
}

fn ignore_not_found(r: io::Result<()>) -> io::Result<()> {
    match r {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

impl Spool {
    /// Opens the spool at `root`, creating `root`, `incoming/` and `queue/`
    /// (0700) if missing. The root may be a symlink (admins relocate spools);
    /// the subdirectories may not.
    pub fn open(root: &Path) -> io::Result<Spool> {
        match DirBuilder::new()
            .mode(DIR_MODE)
            .recursive(true)
            .create(root)
        {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        if !fs::metadata(root)?.is_dir() {
            return Err(io::Error::other(format!(
                "{} is not a directory",
                root.display()
            )));
        }
        let free = root.join("free");
        ensure_dir(&free)?;
        let spool = Spool {
            root: root.to_path_buf(),
            incoming: root.join("incoming"),
            queue: root.join("queue"),
            sync: SyncMethod::default(),
            recycler: Arc::new(Recycler::new(free, FILE_MODE)),
        };
        ensure_dir(&spool.incoming)?;
        ensure_dir(&spool.queue)?;
        Ok(spool)
    }

    /// The same spool, making its commits durable by `sync`.
    pub fn with_sync(mut self, sync: SyncMethod) -> Spool {
        self.sync = sync;
        self
    }

    /// The queue directory this spool lives in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn incoming_df(&self, id: &QueueId) -> PathBuf {
        self.incoming.join(format!("df{id}"))
    }
    fn df(&self, id: &QueueId) -> PathBuf {
        self.queue.join(format!("df{id}"))
    }
    fn qf(&self, id: &QueueId) -> PathBuf {
        self.queue.join(format!("qf{id}"))
    }
    fn tf(&self, id: &QueueId) -> PathBuf {
        self.queue.join(format!("tf{id}"))
    }

    /// Starts a message: creates `incoming/df<id>` (0600, read+write,
    /// `O_CREAT|O_EXCL`) under a fresh ID. An ID whose file already exists
    /// in `incoming/` or `queue/` is skipped, so an ID can never collide
    /// with a message left by an earlier process with the same pid.
    pub fn create(&self, gen: &mut QueueIdGenerator) -> io::Result<(QueueId, File)> {
        for _ in 0..CREATE_TRIES {
            let id = gen.next(SystemTime::now());
            if self.qf(&id).exists() || self.df(&id).exists() {
                continue;
            }
            match OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(FILE_MODE)
                .open(self.incoming_df(&id))
            {
                Ok(file) => return Ok((id, file)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "no free queue id after repeated tries",
        ))
    }

    /// Commits a message. Only after this returns `Ok` may the front
    /// answer `250` to the final dot.
    ///
    /// The order is what makes it crash-safe:
    /// 1. fsync the data, so the df's contents are on disk before any name
    ///    points at it from `queue/`;
    /// 2. rename `incoming/df` to `queue/df`: now a df without qf, which
    ///    [`Spool::recover`] deletes, so a crash here loses nothing the
    ///    client was promised (it never got `250`, it will retry);
    /// 3. write `queue/tf`, fsync it, rename it to `queue/qf`: rename is
    ///    atomic, so the qf is either absent or complete, never partial;
    ///    its appearance is the commit point;
    /// 4. fsync `queue/` (making both renames durable: until then a crash
    ///    may undo them, which again only yields an uncommitted message)
    ///    and `incoming/` (so the old name does not reappear as debris).
    ///
    /// One directory fsync covers both renames (one fsync per message, not
    /// two). The price: a crash before it may persist the qf rename but not
    /// the df rename, leaving `queue/qf` with the data still in
    /// `incoming/df`; recovery knows that state can only come from an
    /// unacknowledged commit and deletes both.
    ///
    /// Many messages share their flushes with [`Spool::commit_batch`]; this
    /// is a batch of one.
    pub fn commit(&self, id: &QueueId, data: &File, control: &ControlFile) -> io::Result<()> {
        if control.id != *id {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("control file is for {}, not {id}", control.id),
            ));
        }
        self.commit_batch(&[Pending { data, control }])
            .pop()
            .expect("one result per message")
    }

    /// Writes `queue/tf<id>`, fsyncs it and renames it over `queue/qf<id>`.
    /// The caller fsyncs the directory.
    fn write_control(&self, id: &QueueId, control: &ControlFile) -> io::Result<()> {
        let tf = self.tf(id);
        let mut file = self.recycler.fresh(&tf)?;
        file.write_all(control.to_text().as_bytes())?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tf, self.qf(id))
    }

    /// Abandons a message being received: removes `incoming/df<id>`.
    /// Missing is fine (abort after a failed create, or twice).
    pub fn abort(&self, id: &QueueId) -> io::Result<()> {
        ignore_not_found(fs::remove_file(self.incoming_df(id)))
    }

    /// A second, write-only descriptor for a message being received: what
    /// the front gets. It cannot read anything back through it, and its
    /// offset is its own.
    pub fn open_for_writing(&self, id: &QueueId) -> io::Result<File> {
        fs::OpenOptions::new()
            .write(true)
            .open(self.incoming_df(id))
    }

    /// Reads a committed message's control file. A file that does not
    /// parse is [`QueueError::Parse`]; one that is not UTF-8 or names
    /// another ID is [`QueueError::Corrupt`].
    pub fn load(&self, id: &QueueId) -> Result<ControlFile, QueueError> {
        let bytes = fs::read(self.qf(id))?;
        let text = String::from_utf8(bytes).map_err(|_| QueueError::Corrupt {
            id: id.clone(),
            reason: "control file is not UTF-8".into(),
        })?;
        let control = ControlFile::parse(&text)?;
        if control.id != *id {
            return Err(QueueError::Corrupt {
                id: id.clone(),
                reason: format!("control file names queue id {}", control.id),
            });
        }
        Ok(control)
    }

    /// Replaces a committed message's control file atomically and durably
    /// (recipient state changes). `NotFound` if the message is not
    /// committed: an update must never resurrect a removed message.
    pub fn update(&self, id: &QueueId, control: &ControlFile) -> io::Result<()> {
        if control.id != *id {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("control file is for {}, not {id}", control.id),
            ));
        }
        fs::metadata(self.qf(id))?;
        self.write_control(id, control)?;
        sync_dir(&self.queue)
    }

    /// Removes a message: the qf first, which uncommits it (a crash after
    /// that leaves a df without qf, which recovery deletes), then the df,
    /// then fsyncs `queue/`. Idempotent: missing files are not an error.
    pub fn remove(&self, id: &QueueId) -> io::Result<()> {
        self.recycler.retire(&self.qf(id))?;
        ignore_not_found(fs::remove_file(self.df(id)))?;
        sync_dir(&self.queue)
    }

    /// Opens a committed message's data, read-only.
    pub fn open_data(&self, id: &QueueId) -> io::Result<File> {
        File::open(self.df(id))
    }

    /// Size of a committed message's data file (mailq's `--Size--`).
    pub fn data_size(&self, id: &QueueId) -> io::Result<u64> {
        Ok(fs::metadata(self.df(id))?.len())
    }

    /// The committed messages (`queue/qf<id>` with a valid ID), sorted, which
    /// is oldest first within a second-granular ID time.
    pub fn list(&self) -> io::Result<Vec<QueueId>> {
        let mut ids = Vec::new();
        for entry in fs::read_dir(&self.queue)? {
            let name = entry?.file_name();
            let id = name
                .to_str()
                .and_then(|n| n.strip_prefix("qf"))
                .and_then(|rest| rest.parse::<QueueId>().ok());
            ids.extend(id);
        }
        ids.sort();
        Ok(ids)
    }
}

mod batch;
mod recover;
mod recycle;

use recycle::Recycler;
use std::sync::Arc;

pub use batch::{Pending, SyncMethod};
