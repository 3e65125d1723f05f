//! Local delivery into a Maildir: `<MailboxDirectory>/<user>/Maildir`.
//!
//! Owns: creating the Maildir (`tmp`, `new`, `cur`, mode 0700), the unique
//! file name (`<unix secs>.P<pid>Q<counter>.<host>`), writing
//! `Return-Path:` and the message with CRLF turned into LF (the Maildir
//! convention), and making it durable: fsync the file, rename it from
//! `tmp/` into `new/`, fsync `new/`. Only then is the recipient `Sent`.
//! Does not own: deciding that a recipient is local or validating its user
//! name (`route.rs` hands over only names that passed `local_user`).
//!
//! Security posture: runs as RunAsUser inside the delivery client, so every
//! mailbox is owned by that user (per-user ownership needs the privileged
//! local delivery helper of DESIGN §1, still to come). The message is read
//! only through the descriptor the queue runner passed, with positional
//! reads (`read_at`), never through the spool. The temporary file is
//! created with `O_EXCL` (`create_new`) and mode 0600, so a planted file or
//! symlink in `tmp/` is never written through.
//!
//! The write is blocking and runs on the delivery loop: a local delivery
//! stalls outbound sessions for as long as one fsync takes. Acceptable for
//! this version; a helper process takes it off the loop later.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use super::message::Message;

/// Message bytes read per `read_at`.
const CHUNK: usize = 64 << 10;

/// Distinguishes deliveries within one second and one process.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Delivers the message in `data` to `user`'s Maildir under `mailbox_dir`
/// and returns the path of the new file. `user` must come from
/// `route::local_user`.
pub fn deliver(
    mailbox_dir: &Path,
    user: &str,
    sender: &str,
    data: &Message,
    hostname: &str,
) -> io::Result<PathBuf> {
    debug_assert!(crate::policy::mailbox_name(user).as_deref() == Some(user));
    if !mailbox_dir.is_dir() {
        // Created by the administrator (or master); never guessed here.
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("MailboxDirectory {} missing", mailbox_dir.display()),
        ));
    }
    let maildir = mailbox_dir.join(user).join("Maildir");
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
/// A CR not followed by LF is kept as it is.
fn write_message(out: &mut File, sender: &str, data: &Message) -> io::Result<()> {
    // The sender went through the front's address parser; make sure anyway
    // that it cannot add a header line.
    let sender: String = sender
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut buf = Vec::with_capacity(CHUNK + 1);
    buf.extend_from_slice(format!("Return-Path: <{sender}>\n").as_bytes());
    let mut chunk = vec![0u8; CHUNK];
    let mut offset = 0u64;
    let mut pending_cr = false;
    loop {
        let n = data.read_at(&mut chunk, offset)?;
        if n == 0 {
            break;
        }
        offset += n as u64;
        for &b in &chunk[..n] {
            if pending_cr {
                pending_cr = false;
                if b != b'\n' {
                    buf.push(b'\r');
                }
            }
            if b == b'\r' {
                pending_cr = true;
            } else {
                buf.push(b);
            }
        }
        out.write_all(&buf)?;
        buf.clear();
    }
    if pending_cr {
        buf.push(b'\r');
    }
    out.write_all(&buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn data_file(bytes: &[u8]) -> Message {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(bytes).unwrap();
        Message::new(f, bytes.len() as u64)
    }

    #[test]
    fn writes_return_path_and_lf_body() {
        let dir = tempfile::tempdir().unwrap();
        let data = data_file(b"Subject: hi\r\n\r\nline\r\n.dot\r\nbare\rcr\r\n");
        let path = deliver(dir.path(), "alice", "s@example.org", &data, "host.test").unwrap();
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
        let mut body = vec![b'a'; CHUNK - 1];
        body.extend_from_slice(b"\r\nend\r");
        let data = data_file(&body);
        let path = deliver(dir.path(), "bob", "", &data, "h").unwrap();
        let mut want = b"Return-Path: <>\n".to_vec();
        want.extend_from_slice(&vec![b'a'; CHUNK - 1]);
        want.extend_from_slice(b"\nend\r");
        assert_eq!(std::fs::read(path).unwrap(), want);
    }

    #[test]
    fn names_are_unique() {
        let dir = tempfile::tempdir().unwrap();
        let data = data_file(b"x\r\n");
        let mut names = std::collections::BTreeSet::new();
        for _ in 0..20 {
            let p = deliver(dir.path(), "carol", "s@x", &data, "h/o:st").unwrap();
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
        assert!(deliver(&missing, "dave", "s@x", &data, "h").is_err());
        assert!(!missing.exists());
    }
}
