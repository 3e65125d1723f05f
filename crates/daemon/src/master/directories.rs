//! The directories master prepares before anything is forked: the spool
//! (owned by QueueOwner, 0700, so only the queue runner can enter it), the
//! mailbox directory (owned by RunAsUser), and the fronts' empty jail.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

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
    ensure_dir(&config.mailbox_directory, &users.run_as, 0o700)?;
    if privsep::privileged() {
        let jail = jail_dir();
        fs::create_dir_all(&jail)?;
        // Root's and read-only: a front that got code execution finds
        // nothing inside and can create nothing.
        fs::set_permissions(&jail, fs::Permissions::from_mode(0o555))?;
        let meta = fs::metadata(&jail)?;
        if meta.uid() != 0 || fs::read_dir(&jail)?.next().is_some() {
            return Err(MasterError::Setup(format!(
                "{} must be an empty directory owned by root",
                jail.display()
            )));
        }
    }
    Ok(())
}

/// Creates `dir` if missing; as root, gives it to `owner` with `mode`, and
/// refuses a spool owned by anyone else.
fn ensure_dir(dir: &Path, owner: &Identity, mode: u32) -> Result<(), MasterError> {
    if !dir.exists() {
        fs::create_dir_all(dir)?;
        fs::set_permissions(dir, fs::Permissions::from_mode(mode))?;
        if privsep::privileged() {
            nix::unistd::chown(dir, Some(owner.uid), Some(owner.gid))
                .map_err(std::io::Error::from)?;
        }
    }
    let meta = fs::metadata(dir)?;
    if !meta.is_dir() {
        return Err(MasterError::Setup(format!(
            "{} is not a directory",
            dir.display()
        )));
    }
    if privsep::privileged() && meta.uid() != owner.uid.as_raw() {
        return Err(MasterError::Setup(format!(
            "{} is owned by uid {}, not by {} (uid {})",
            dir.display(),
            meta.uid(),
            owner.name,
            owner.uid
        )));
    }
    Ok(())
}
