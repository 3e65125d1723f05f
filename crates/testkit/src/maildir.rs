//! Reading what the daemon delivered to a maildir.
//!
//! A maildir has no event to wait on (short of inotify, which std lacks),
//! so [`wait_for_maildir`] polls with a short backoff up to a deadline.
//! Reading a message in `new/` or `cur/` is safe at any moment: the maildir
//! protocol writes into `tmp/` and renames, so a visible file is complete.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::wait::poll_until;

/// The messages in `dir/new` and `dir/cur`, ordered by file name (maildir
/// names start with the delivery time). A missing directory is an empty
/// maildir: the mailbox may not have been created yet.
pub fn maildir_messages(dir: &Path) -> Vec<Vec<u8>> {
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    for sub in ["new", "cur"] {
        let entries = match fs::read_dir(dir.join(sub)) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => panic!("cannot read {}: {e}", dir.join(sub).display()),
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with('.') && entry.file_type().is_ok_and(|t| t.is_file()) {
                files.push((name, entry.path()));
            }
        }
    }
    files.sort();
    files
        .into_iter()
        .filter_map(|(_, path)| match fs::read(&path) {
            Ok(bytes) => Some(bytes),
            // Moved from new/ to cur/ between listing and reading.
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => panic!("cannot read {}: {e}", path.display()),
        })
        .collect()
}

/// Waits until the maildir holds at least `n` messages and returns them;
/// panics after `timeout` saying how many were there.
pub fn wait_for_maildir(dir: &Path, n: usize, timeout: Duration) -> Vec<Vec<u8>> {
    poll_until(timeout, || {
        let messages = maildir_messages(dir);
        (messages.len() >= n).then_some(messages)
    })
    .unwrap_or_else(|| {
        panic!(
            "waited {timeout:?} for {n} message(s) in maildir {}, found {}",
            dir.display(),
            maildir_messages(dir).len()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_new_and_cur_in_name_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(maildir_messages(dir.path()).is_empty());
        for sub in ["new", "cur", "tmp"] {
            fs::create_dir(dir.path().join(sub)).expect("mkdir");
        }
        fs::write(dir.path().join("cur/2.b:2,S"), b"second").expect("write");
        fs::write(dir.path().join("new/1.a"), b"first").expect("write");
        fs::write(dir.path().join("tmp/3.c"), b"partial").expect("write");
        fs::write(dir.path().join("new/.hidden"), b"no").expect("write");
        let got = wait_for_maildir(dir.path(), 2, Duration::from_secs(5));
        assert_eq!(got, vec![b"first".to_vec(), b"second".to_vec()]);
    }

    #[test]
    #[should_panic(expected = "for 1 message(s) in maildir")]
    fn times_out_with_a_count() {
        let dir = tempfile::tempdir().expect("tempdir");
        wait_for_maildir(dir.path(), 1, Duration::from_millis(20));
    }
}
