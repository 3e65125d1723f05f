//! The directories master prepares before anything is forked: the spool
//! (owned by QueueOwner, 0700, so only the queue runner can enter it), the
//! mailbox directory (root's, 0711 when master makes it: each mailbox in
//! it is made by a local delivery agent as root and given to its owner,
//! who must be able to pass through but not to list or add), and the
//! fronts' empty jail.
//!
//! Every change is made on an open descriptor (`O_DIRECTORY|O_NOFOLLOW`,
//! then `fchmod`/`fchown`), never by path after a check: a directory that
//! is swapped for a symbolic link between creating and securing it is
//! refused, not followed. A directory that already exists is only checked,
//! never changed, so it may be a symbolic link (administrators move
//! spools so).

use std::fs::DirBuilder;
use std::os::fd::OwnedFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{open, OFlag};
use nix::sys::stat::{fchmod, fstat, Mode, SFlag};
use nix::unistd::{fchown, Uid};

use super::{MasterError, Users};
use crate::privsep::{self, Identity};
use crate::settings::Settings;

/// The empty directory fronts are chrooted into (as root).
pub fn jail_dir() -> PathBuf {
    PathBuf::from("/run/postern/empty")
}

/// Creates and checks the directories.
pub fn prepare(settings: &Settings, users: &Users) -> Result<(), MasterError> {
    let config = &settings.config;
    ensure_dir(&config.queue_directory, &users.queue_owner, 0o700)?;
    let root = Identity {
        name: "root".into(),
        uid: Uid::from_raw(0),
        gid: nix::unistd::Gid::from_raw(0),
        groups: Vec::new(),
    };
    let mailbox_owner = if privsep::privileged() {
        &root
    } else {
        &users.run_as
    };
    ensure_mailbox_dir(&config.mailbox_directory, mailbox_owner, &users.run_as)?;
    if privsep::privileged() {
        let jail = jail_dir();
        // Root's and read-only: a front that got code execution finds
        // nothing inside and can create nothing.
        ensure_dir(&jail, &root, 0o555)?;
        privsep::open_jail(&jail).map_err(MasterError::Setup)?;
    }
    Ok(())
}

/// MailboxDirectory: made root's (or, without root, the invoking user's),
/// mode 0711. One that exists may be root's or RunAsUser's (an older
/// Postern made it so), and must let the mailboxes' owners pass.
fn ensure_mailbox_dir(dir: &Path, owner: &Identity, run_as: &Identity) -> Result<(), MasterError> {
    if let Err(e) = ensure_dir(dir, owner, 0o711) {
        if !privsep::privileged() {
            return Err(e);
        }
        // Owned by someone else: RunAsUser is allowed too.
        verify(&open_dir(dir, false)?, dir, run_as)?;
    }
    mailbox_dir_passable(&open_dir(dir, false)?, dir)
}

/// Mail is written by its owner: a MailboxDirectory others cannot pass
/// through keeps every owner out.
fn mailbox_dir_passable(fd: &OwnedFd, dir: &Path) -> Result<(), MasterError> {
    let st = fstat(fd).map_err(|e| MasterError::Io(e.into()))?;
    if privsep::privileged() && st.st_mode & 0o001 == 0 {
        return Err(MasterError::Setup(format!(
            "{}: mode {:04o} keeps the mailboxes' owners out (local mail is written by its owner): chmod o+x {}",
            dir.display(),
            st.st_mode & 0o7777,
            dir.display()
        )));
    }
    Ok(())
}

/// Opens `dir` as a directory; with `nofollow`, a symbolic link in its
/// place is refused.
fn open_dir(dir: &Path, nofollow: bool) -> Result<OwnedFd, MasterError> {
    let mut flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    if nofollow {
        flags |= OFlag::O_NOFOLLOW;
    }
    open(dir, flags, Mode::empty())
        .map_err(|e| MasterError::Setup(format!("cannot open directory {}: {e}", dir.display())))
}

/// Creates `dir` (and its parents) if missing; a directory created here is
/// given `mode` and, as root, to `owner`, on its open descriptor. An
/// existing one must be a real directory, and as root owned by `owner`.
fn ensure_dir(dir: &Path, owner: &Identity, mode: u32) -> Result<(), MasterError> {
    let created = match DirBuilder::new().mode(mode).create(dir) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(parent) = dir.parent() {
                DirBuilder::new()
                    .recursive(true)
                    .mode(0o755)
                    .create(parent)?;
            }
            DirBuilder::new().mode(mode).create(dir)?;
            true
        }
        Err(e) => return Err(e.into()),
    };
    let fd = open_dir(dir, created)?;
    if created {
        let io = |e: nix::Error| MasterError::Io(e.into());
        // The umask may have taken bits away.
        fchmod(&fd, Mode::from_bits_truncate(mode)).map_err(io)?;
        if privsep::privileged() {
            fchown(&fd, Some(owner.uid), Some(owner.gid)).map_err(io)?;
        }
    }
    verify(&fd, dir, owner)
}

/// What `prepare` would find wrong, without creating or changing anything
/// (`posternd --check-config`): an existing directory is checked as at
/// start; a missing one must have an existing directory above it.
pub fn check(settings: &Settings, users: &Users) -> Vec<String> {
    let config = &settings.config;
    let mut problems = Vec::new();
    for (dir, owner) in [
        (&config.queue_directory, &users.queue_owner),
        (&config.mailbox_directory, &users.run_as),
    ] {
        let mailboxes = dir == &config.mailbox_directory;
        let found = match std::fs::metadata(dir) {
            Ok(_) => open_dir(dir, false).and_then(|fd| {
                if mailboxes {
                    // root's, or RunAsUser's from an older Postern.
                    let root_owned = fstat(&fd).is_ok_and(|st| st.st_uid == 0);
                    if !root_owned {
                        verify(&fd, dir, owner)?;
                    }
                    mailbox_dir_passable(&fd, dir)
                } else {
                    verify(&fd, dir, owner)
                }
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => creatable(dir),
            Err(e) => Err(MasterError::Setup(format!("{}: {e}", dir.display()))),
        };
        if let Err(e) = found {
            problems.push(e.to_string());
        }
    }
    problems
}

/// A missing directory can be made: the nearest existing ancestor is a
/// directory.
fn creatable(dir: &Path) -> Result<(), MasterError> {
    match dir.ancestors().skip(1).find(|a| a.exists()) {
        Some(above) if above.is_dir() => Ok(()),
        Some(above) => Err(MasterError::Setup(format!(
            "cannot create {}: {} is not a directory",
            dir.display(),
            above.display()
        ))),
        None => Err(MasterError::Setup(format!(
            "cannot create {}",
            dir.display()
        ))),
    }
}

/// An open directory is one, and as root it belongs to `owner`.
fn verify(fd: &OwnedFd, dir: &Path, owner: &Identity) -> Result<(), MasterError> {
    let st = fstat(fd).map_err(|e| MasterError::Io(e.into()))?;
    if !SFlag::from_bits_truncate(st.st_mode).contains(SFlag::S_IFDIR) {
        return Err(MasterError::Setup(format!(
            "{} is not a directory",
            dir.display()
        )));
    }
    if privsep::privileged() && st.st_uid != owner.uid.as_raw() {
        return Err(MasterError::Setup(format!(
            "{} is owned by uid {}, not by {} (uid {})",
            dir.display(),
            st.st_uid,
            owner.name,
            owner.uid
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_existing_directory_is_checked_not_changed() {
        use std::os::unix::fs::PermissionsExt;
        // A spool moved elsewhere and linked back: followed, left alone.
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere");
        std::fs::create_dir(&target).unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o750)).unwrap();
        let link = dir.path().join("spool");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let me = privsep::current_identity();
        ensure_dir(&link, &me, 0o700).unwrap();
        let mode = std::fs::metadata(&target).unwrap().permissions().mode();
        assert_eq!(mode & 0o7777, 0o750);
        // A file is no directory.
        let file = dir.path().join("file");
        std::fs::write(&file, b"").unwrap();
        assert!(ensure_dir(&file, &me, 0o700).is_err());
    }

    #[test]
    fn created_directories_get_their_mode_whatever_the_umask() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let spool = dir.path().join("a/b/spool");
        let me = privsep::current_identity();
        ensure_dir(&spool, &me, 0o700).unwrap();
        let mode = std::fs::metadata(&spool).unwrap().permissions().mode();
        assert_eq!(mode & 0o7777, 0o700);
        // Twice is fine.
        ensure_dir(&spool, &me, 0o700).unwrap();
    }
}
