//! Writing one message into a Maildir (`tmp/`, `new/`, `cur/`).
//!
//! Owns: creating the Maildir (mode 0700), the unique file name
//! (`<unix secs>.P<pid>Q<counter>.<host>`), writing `Return-Path:` and the
//! message with CRLF turned into LF (the Maildir convention), and making it
//! durable: fsync the file, rename it from `tmp/` into `new/`, fsync
//! `new/`. Only then is the delivery done. Does not own: which Maildir, or
//! whose uid writes it (`local/mod.rs`).
//!
//! Security posture: runs in the local delivery agent as the mailbox's
//! owner. The temporary file is created with `O_EXCL` (`create_new`) and
//! mode 0600, so a planted file or symlink in `tmp/` is never written
//! through. The message is read through the descriptor the queue runner
//! passed, by position.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use super::mailbox::{copy_lines, Message};

/// Distinguishes deliveries within one second and one process.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Delivers the message in `data` into the Maildir at `maildir` (created
/// if missing; its parent must exist) and returns the new file's path.
pub fn deliver(
    maildir: &Path,
    sender: &str,
    data: &Message,
    hostname: &str,
) -> io::Result<PathBuf> {
    match maildir.parent() {
        Some(parent) if parent.is_dir() => {}
        // MailboxDirectory or the home directory is the administrator's
        // to create; never guessed here.
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "{}: no such directory",
                    maildir.parent().unwrap_or(maildir).display()
                ),
            ))
        }
    }
    for sub in ["tmp", "new", "cur"] {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(maildir.join(sub))?;
    }
    let (name, mut file) = create_unique(&maildir.join("tmp"), hostname)?;
    let tmp = maildir.join("tmp").join(&name);
    let written = write_message(&mut file, sender, data).and_then(|()| file.sync_all());
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    drop(file);
    let new = maildir.join("new").join(&name);
    std::fs::rename(&tmp, &new).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })?;
    File::open(maildir.join("new"))?.sync_all()?;
    Ok(new)
}

/// Creates `tmp/<unique>` exclusively; retries with the next counter value
/// if the name is taken (a crashed delivery with the same pid, say).
fn create_unique(tmp: &Path, hostname: &str) -> io::Result<(String, File)> {
    let host = safe_hostname(hostname);
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let pid = std::process::id();
    let mut last = None;
    for _ in 0..8 {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("{secs}.P{pid}Q{n}.{host}");
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(tmp.join(&name))
        {
            Ok(file) => return Ok((name, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no unique name")))
}

/// The Maildir convention: `/` and `:` in the host name are written as
/// octal escapes, so the name stays one path component without a flag part.
fn safe_hostname(hostname: &str) -> String {
    hostname.replace('/', "\\057").replace(':', "\\072")
}

/// `Return-Path: <sender>` LF, then the message with every CRLF as LF.
fn write_message(out: &mut File, sender: &str, data: &Message) -> io::Result<()> {
    out.write_all(super::mailbox::return_path(sender).as_bytes())?;
    copy_lines(data, out, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// `<dir>/<user>/Maildir`, its parent made as the agent's root step
    /// makes it.
    fn mailbox(dir: &tempfile::TempDir, user: &str) -> PathBuf {
        std::fs::create_dir(dir.path().join(user)).unwrap();
        dir.path().join(user).join("Maildir")
    }

    fn data_file(bytes: &[u8]) -> Message {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(bytes).unwrap();
        Message::new(f, bytes.len() as u64)
    }

    #[test]
    fn writes_return_path_and_lf_body() {
        let dir = tempfile::tempdir().unwrap();
        let data = data_file(b"Subject: hi\r\n\r\nline\r\n.dot\r\nbare\rcr\r\n");
        let path = deliver(&mailbox(&dir, "alice"), "s@example.org", &data, "host.test").unwrap();
        assert_eq!(
            std::fs::read(&path).unwrap(),
            b"Return-Path: <s@example.org>\nSubject: hi\n\nline\n.dot\nbare\rcr\n"
        );
        let maildir = dir.path().join("alice/Maildir");
        for sub in ["tmp", "new", "cur"] {
            let mode = std::fs::metadata(maildir.join(sub))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o700, "{sub}");
        }
        assert_eq!(path.parent().unwrap(), maildir.join("new"));
        assert_eq!(std::fs::read_dir(maildir.join("tmp")).unwrap().count(), 0);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn crlf_split_across_chunks_and_null_sender() {
        let dir = tempfile::tempdir().unwrap();
        let mut body = vec![b'a'; super::super::mailbox::CHUNK - 1];
        body.extend_from_slice(b"\r\nend\r");
        let data = data_file(&body);
        let path = deliver(&mailbox(&dir, "bob"), "", &data, "h").unwrap();
        let mut want = b"Return-Path: <>\n".to_vec();
        want.extend_from_slice(&vec![b'a'; super::super::mailbox::CHUNK - 1]);
        want.extend_from_slice(b"\nend\r");
        assert_eq!(std::fs::read(path).unwrap(), want);
    }

    #[test]
    fn names_are_unique() {
        let dir = tempfile::tempdir().unwrap();
        let data = data_file(b"x\r\n");
        let mut names = std::collections::BTreeSet::new();
        let carol = mailbox(&dir, "carol");
        for _ in 0..20 {
            let p = deliver(&carol, "s@x", &data, "h/o:st").unwrap();
            let name = p.file_name().unwrap().to_str().unwrap().to_string();
            assert!(name.ends_with(".h\\057o\\072st"), "{name}");
            assert!(
                name.contains(&format!(".P{}Q", std::process::id())),
                "{name}"
            );
            names.insert(name);
        }
        assert_eq!(names.len(), 20);
        assert_eq!(
            std::fs::read_dir(dir.path().join("carol/Maildir/new"))
                .unwrap()
                .count(),
            20
        );
    }

    #[test]
    fn missing_mailbox_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let data = data_file(b"x\r\n");
        let missing = dir.path().join("nope");
        assert!(deliver(&missing.join("dave/Maildir"), "s@x", &data, "h").is_err());
        assert!(!missing.exists());
    }
}
