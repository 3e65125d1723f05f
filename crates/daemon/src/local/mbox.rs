//! Appending one message to an mbox file, as sendmail's mail.local does:
//! a `From sender date` line, `Return-Path:`, the message with `From `
//! lines escaped, and a blank line; locked both ways mail readers lock
//! (procmail, mutt, mail.local): a `<mbox>.lock` dot-lock file when the
//! directory lets the owner make one, and an `fcntl` write lock; made
//! durable with fsync; and on any failure truncated back to where it
//! was, so a reader never sees half a message.
//!
//! Does not own: creating the mbox as root and giving it to its owner, or
//! changing uid (`local/mod.rs`). Runs as the mailbox's owner.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use nix::fcntl::{Flock, FlockArg};

use super::mailbox::{copy_lines, return_path, Message};

/// How long a dot-lock may stand before it is taken for a crashed
/// writer's and removed (procmail's and liblockfile's 5 minutes).
const STALE_LOCK: Duration = Duration::from_secs(300);
/// How long to wait for the dot-lock.
const LOCK_WAIT: Duration = Duration::from_secs(60);

/// Why an append failed.
#[derive(Debug)]
pub enum MboxError {
    /// The file is not something to append mail to: a symbolic link,
    /// another user's file, a file with several names, not a regular file.
    Unsafe(String),
    /// The lock could not be had in time.
    Locked(String),
    /// A write failed (the file is back as it was).
    Io(io::Error),
}

impl std::fmt::Display for MboxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unsafe(why) | Self::Locked(why) => f.write_str(why),
            Self::Io(e) => e.fmt(f),
        }
    }
}

impl From<io::Error> for MboxError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// Whose file an mbox may be.
#[derive(Clone, Copy, Debug)]
pub enum Owner {
    /// A mailbox: its owner's, with this uid.
    Uid(u32),
    /// A file an alias names: anyone's the writer may write, but never an
    /// executable one (sendmail's rule for its `*file*` mailer).
    AnyNotExecutable,
}

/// Appends the message in `data` from `sender` (empty for `<>`) to the mbox
/// at `path`, which must be a regular file with one name, as `owner` says
/// (created when missing, mode 0600). `now` is for the `From ` line.
pub fn append(
    path: &Path,
    owner: Owner,
    sender: &str,
    data: &Message,
    now: SystemTime,
) -> Result<(), MboxError> {
    let _dotlock = DotLock::take(path)?;
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc_o_nofollow())
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(code) if code == nix::errno::Errno::ELOOP as i32 => {
                MboxError::Unsafe(format!("{}: is a symbolic link", path.display()))
            }
            _ => MboxError::Io(e),
        })?;
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(MboxError::Unsafe(format!(
            "{}: not a regular file",
            path.display()
        )));
    }
    if meta.nlink() != 1 {
        return Err(MboxError::Unsafe(format!(
            "{}: has {} links",
            path.display(),
            meta.nlink()
        )));
    }
    match owner {
        Owner::Uid(uid) if meta.uid() != uid => {
            return Err(MboxError::Unsafe(format!(
                "{}: owned by uid {}, not {uid}",
                path.display(),
                meta.uid()
            )));
        }
        Owner::AnyNotExecutable if meta.mode() & 0o111 != 0 => {
            return Err(MboxError::Unsafe(format!(
                "{}: cannot mail to executable file",
                path.display()
            )));
        }
        _ => {}
    }
    let mut locked = Flock::lock(file, FlockArg::LockExclusive)
        .map_err(|(_, e)| MboxError::Locked(format!("{}: lock: {e}", path.display())))?;
    // The fcntl lock readers use, besides flock.
    fcntl_lock(&locked)?;
    let start = locked.metadata()?.len();
    let written = write_entry(&mut locked, sender, data, now).and_then(|()| locked.sync_all());
    if let Err(e) = written {
        // Back to where it was: no half message for a reader to find.
        let _ = locked.set_len(start);
        let _ = locked.sync_all();
        return Err(MboxError::Io(e));
    }
    Ok(())
}

/// `O_NOFOLLOW`: the mbox itself must not be a symbolic link.
fn libc_o_nofollow() -> i32 {
    nix::fcntl::OFlag::O_NOFOLLOW.bits()
}

/// A whole-file write lock with `fcntl(F_SETLKW)`, released when the file
/// is closed.
fn fcntl_lock(file: &File) -> Result<(), MboxError> {
    let lock = nix::libc::flock {
        l_type: nix::libc::F_WRLCK as i16,
        l_whence: nix::libc::SEEK_SET as i16,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    };
    nix::fcntl::fcntl(file, nix::fcntl::FcntlArg::F_SETLKW(&lock))
        .map(|_| ())
        .map_err(|e| MboxError::Locked(format!("fcntl lock: {e}")))
}

/// The `From ` line, `Return-Path:`, the message, the blank line.
fn write_entry(out: &mut File, sender: &str, data: &Message, now: SystemTime) -> io::Result<()> {
    let mut w = io::BufWriter::with_capacity(64 << 10, &mut *out);
    w.write_all(from_line(sender, now).as_bytes())?;
    w.write_all(return_path(sender).as_bytes())?;
    copy_lines(data, &mut w, true)?;
    w.flush()
}

/// `From sender Thu Dec  3 10:00:00 2026` LF, in local time as ctime(3)
/// writes it; `MAILER-DAEMON` for the null sender, as mail.local does.
pub fn from_line(sender: &str, now: SystemTime) -> String {
    let who: String = if sender.is_empty() {
        "MAILER-DAEMON".into()
    } else {
        sender
            .chars()
            .map(|c| {
                if c.is_whitespace() || c.is_control() {
                    '_'
                } else {
                    c
                }
            })
            .collect()
    };
    let when = chrono::DateTime::<chrono::Local>::from(now).format("%a %b %e %H:%M:%S %Y");
    format!("From {who} {when}\n")
}

/// `<mbox>.lock`, made with `O_EXCL` and removed on drop. A directory the
/// owner cannot write in (no group `mail` here, say) means no dot-lock:
/// the fcntl and flock locks still hold.
struct DotLock(Option<PathBuf>);

impl DotLock {
    fn take(mbox: &Path) -> Result<Self, MboxError> {
        let mut name = mbox.as_os_str().to_owned();
        name.push(".lock");
        let path = PathBuf::from(name);
        let deadline = SystemTime::now() + LOCK_WAIT;
        loop {
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
            {
                Ok(_) => return Ok(Self(Some(path))),
                Err(e) if e.kind() == io::ErrorKind::PermissionDenied => return Ok(Self(None)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    let stale = std::fs::symlink_metadata(&path)
                        .and_then(|m| m.modified())
                        .is_ok_and(|t| t.elapsed().unwrap_or_default() > STALE_LOCK);
                    if stale {
                        let _ = std::fs::remove_file(&path);
                        continue;
                    }
                    if SystemTime::now() > deadline {
                        return Err(MboxError::Locked(format!(
                            "{}: locked by another writer",
                            mbox.display()
                        )));
                    }
                    std::thread::sleep(Duration::from_millis(250));
                }
                Err(e) => return Err(MboxError::Io(e)),
            }
        }
    }
}

impl Drop for DotLock {
    fn drop(&mut self) {
        if let Some(path) = &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn data(bytes: &[u8]) -> Message {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(bytes).unwrap();
        Message::new(f, bytes.len() as u64)
    }

    fn me() -> u32 {
        nix::unistd::Uid::effective().as_raw()
    }

    #[test]
    fn two_messages_append_with_from_lines_and_escaping() {
        let dir = tempfile::tempdir().unwrap();
        let mbox = dir.path().join("alice");
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_172_021);
        append(
            &mbox,
            Owner::Uid(me()),
            "s@example.org",
            &data(b"Subject: 1\r\n\r\nFrom here\r\n"),
            now,
        )
        .unwrap();
        append(
            &mbox,
            Owner::Uid(me()),
            "",
            &data(b"Subject: 2\r\n\r\nlast"),
            now,
        )
        .unwrap();
        let text = String::from_utf8(std::fs::read(&mbox).unwrap()).unwrap();
        let from1 = from_line("s@example.org", now);
        let from2 = from_line("", now);
        assert!(from2.starts_with("From MAILER-DAEMON "));
        assert_eq!(
            text,
            format!(
                "{from1}Return-Path: <s@example.org>\nSubject: 1\n\n>From here\n\n\
                 {from2}Return-Path: <>\nSubject: 2\n\nlast\n\n"
            )
        );
        assert!(!dir.path().join("alice.lock").exists());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&mbox).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn the_from_line_is_ctimes() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_172_021);
        let line = from_line("a b@c", now);
        assert!(line.starts_with("From a_b@c "), "{line}");
        let re = regex_lite(&line);
        assert!(re, "{line}");
    }

    /// `Www Mmm dd hh:mm:ss yyyy` LF, day padded with a space.
    fn regex_lite(line: &str) -> bool {
        let date = line.splitn(3, ' ').nth(2).unwrap();
        date.len() == 25 && date.ends_with('\n') && date.as_bytes()[10] == b' '
    }

    #[test]
    fn symlinks_foreign_and_linked_files_are_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, b"keep").unwrap();
        let link = dir.path().join("bob");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let now = SystemTime::now();
        assert!(matches!(
            append(&link, Owner::Uid(me()), "s@x", &data(b"x\r\n"), now),
            Err(MboxError::Unsafe(_))
        ));
        let hard = dir.path().join("carol");
        std::fs::hard_link(&target, &hard).unwrap();
        assert!(matches!(
            append(&hard, Owner::Uid(me()), "s@x", &data(b"x\r\n"), now),
            Err(MboxError::Unsafe(_))
        ));
        assert!(matches!(
            append(&target, Owner::Uid(me() + 1), "s@x", &data(b"x\r\n"), now),
            Err(MboxError::Unsafe(_))
        ));
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
        std::fs::remove_file(&hard).unwrap();
        // A file an alias names may be anyone's, but not a program.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(matches!(
            append(&target, Owner::AnyNotExecutable, "s@x", &data(b"x\r\n"), now),
            Err(MboxError::Unsafe(why)) if why.contains("executable")
        ));
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
        append(
            &target,
            Owner::AnyNotExecutable,
            "s@x",
            &data(b"x\r\n"),
            now,
        )
        .unwrap();
        assert!(std::fs::read(&target)
            .unwrap()
            .starts_with(b"keepFrom s@x "));
    }

    #[test]
    fn a_failed_write_leaves_the_mbox_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let mbox = dir.path().join("dave");
        std::fs::write(&mbox, b"From x Thu Jan  1 00:00:00 1970\nold\n\n").unwrap();
        // A message whose committed length is longer than its file: the
        // read fails halfway through the write.
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&vec![b'y'; 200_000]).unwrap();
        let short = Message::new(f, 300_000);
        assert!(matches!(
            append(&mbox, Owner::Uid(me()), "s@x", &short, SystemTime::now()),
            Err(MboxError::Io(_))
        ));
        assert_eq!(
            std::fs::read(&mbox).unwrap(),
            b"From x Thu Jan  1 00:00:00 1970\nold\n\n"
        );
    }

    #[test]
    fn a_stale_dot_lock_is_broken_and_a_fresh_one_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let mbox = dir.path().join("erin");
        let lock = dir.path().join("erin.lock");
        std::fs::write(&lock, b"").unwrap();
        let old = SystemTime::now() - Duration::from_secs(600);
        std::fs::File::options()
            .write(true)
            .open(&lock)
            .unwrap()
            .set_modified(old)
            .unwrap();
        append(
            &mbox,
            Owner::Uid(me()),
            "s@x",
            &data(b"x\r\n"),
            SystemTime::now(),
        )
        .unwrap();
        assert!(!lock.exists());
    }
}
