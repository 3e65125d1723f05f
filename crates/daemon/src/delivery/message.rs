//! The message a job delivers: the read-only descriptor the queue runner
//! passed, and the length that was committed, which is all that is ever
//! read. Nothing can change a committed message (the queue runner closed
//! the front's pipe at commit); reading exactly the committed length makes
//! delivery independent of that promise all the same.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// A committed message, read by position.
#[derive(Debug)]
pub struct Message {
    file: File,
    size: u64,
}

impl Message {
    /// The message in `file`, `size` bytes long as committed.
    pub fn new(file: File, size: u64) -> Self {
        Self { file, size }
    }

    /// The committed length.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The descriptor, to pass on to a local delivery agent.
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(&self.file)
    }

    /// Reads at `offset`, never past the committed length; 0 at its end.
    /// A file shorter than its committed length is an error (the spool was
    /// damaged): the message is not delivered truncated.
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let left = self.size.saturating_sub(offset);
        if left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        loop {
            match self.file.read_at(&mut buf[..want], offset) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "message file ends at {offset} bytes, {} were committed",
                            self.size
                        ),
                    ))
                }
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn file(bytes: &[u8]) -> File {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(bytes).unwrap();
        f
    }

    #[test]
    fn reads_stop_at_the_committed_length() {
        let m = Message::new(file(b"committed|appended later"), 9);
        let mut buf = [0u8; 64];
        assert_eq!(m.read_at(&mut buf, 0).unwrap(), 9);
        assert_eq!(&buf[..9], b"committed");
        assert_eq!(m.read_at(&mut buf, 9).unwrap(), 0);
    }

    #[test]
    fn a_truncated_file_is_an_error() {
        let m = Message::new(file(b"short"), 100);
        let mut buf = [0u8; 64];
        assert_eq!(m.read_at(&mut buf, 0).unwrap(), 5);
        let e = m.read_at(&mut buf, 5).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }
}
