//! A message arriving from a front: the read end of the pipe the front
//! writes into, and the spool file (`incoming/df<id>`) the bytes go to.
//!
//! The front never holds a descriptor of a spool file. It writes into a
//! pipe; the queue runner moves what arrives into the file (with
//! `splice`, so the bytes are not copied through user space) and counts
//! it against MaxMessageSize. At commit the pipe must be at its end (the
//! front closed it), and afterwards the queue runner's end is closed: a
//! committed message can no longer be changed by anything the front holds,
//! and the size on record is the number of bytes that arrived.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileExt;

use nix::errno::Errno;
use nix::fcntl::{fcntl, splice, FcntlArg, OFlag, SpliceFFlags};
use postern_queue::QueueId;

/// Bytes moved per call.
const CHUNK: usize = 64 << 10;
/// Calls per [`Incoming::pump`]: 1 MiB, then the other fronts get a turn
/// (a front that keeps its pipe full must not keep the queue runner).
const CHUNKS_PER_PUMP: usize = 16;

/// What a [`Incoming::pump`] left.
#[derive(Debug, PartialEq, Eq)]
pub enum Pumped {
    /// The pipe is drained for now: wait for it to be readable.
    Drained,
    /// The turn is over and bytes may be waiting: pump again soon.
    More,
    /// The pipe is done with (at its end, over the limit, or failed).
    Done,
}

/// Where a message stands.
#[derive(Debug)]
pub enum State {
    /// The front may still write.
    Receiving,
    /// The front closed the pipe: every byte is in the file.
    Complete,
    /// More than the limit arrived; the rest was refused.
    TooBig,
    /// Writing the file failed (a full disk, say).
    Failed(io::Error),
}

/// One message being received.
pub struct Incoming {
    /// Its queue id.
    pub id: QueueId,
    /// `incoming/df<id>`, open for reading and writing.
    pub file: File,
    pipe: Option<OwnedFd>,
    received: u64,
    limit: Option<u64>,
    state: State,
    use_splice: bool,
    last_moved: std::time::Instant,
}

/// A pipe for a front: the read end for the queue runner, the write end
/// for the front; both non-blocking (the front waits in its own poll
/// whenever the queue runner has not caught up).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    fcntl(&read, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
    // The write end goes to a front, whose seccomp filter does not let it
    // set flags: non-blocking from here, so that a queue runner that stops
    // reading costs the front a bounded wait (Timeout.queuereply, in its
    // poll), not a write that never returns.
    fcntl(&write, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
    Ok((read, write))
}

impl Incoming {
    /// The spool file, for the commit; the pipe is closed.
    pub fn into_file(self) -> File {
        self.file
    }

    /// A message whose bytes arrive on `pipe` (the read end), at most
    /// `limit` of them.
    pub fn new(id: QueueId, file: File, pipe: OwnedFd, limit: Option<u64>) -> Self {
        Self {
            id,
            file,
            pipe: Some(pipe),
            received: 0,
            limit,
            state: State::Receiving,
            use_splice: true,
            last_moved: std::time::Instant::now(),
        }
    }

    /// The pipe's descriptor while it is open (for the poller).
    pub fn pipe_fd(&self) -> Option<RawFd> {
        self.pipe.as_ref().map(AsRawFd::as_raw_fd)
    }

    /// Bytes that arrived.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Where the message stands.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// When bytes last arrived (or the message was opened).
    pub fn last_moved(&self) -> std::time::Instant {
        self.last_moved
    }

    /// Moves what the pipe holds into the file, at most
    /// [`CHUNKS_PER_PUMP`] chunks. On [`Pumped::Done`] the caller
    /// deregisters the pipe and calls [`Incoming::close_pipe`].
    pub fn pump(&mut self) -> Pumped {
        for _ in 0..CHUNKS_PER_PUMP {
            let (Some(pipe), State::Receiving) = (self.pipe.as_ref(), &self.state) else {
                return Pumped::Done;
            };
            let moved = if self.use_splice {
                let mut offset = self.received as i64;
                match splice(
                    pipe,
                    None,
                    &self.file,
                    Some(&mut offset),
                    CHUNK,
                    SpliceFFlags::SPLICE_F_NONBLOCK | SpliceFFlags::SPLICE_F_MOVE,
                ) {
                    // A file system that cannot splice: copy instead.
                    Err(Errno::EINVAL) => {
                        self.use_splice = false;
                        continue;
                    }
                    other => other.map_err(io::Error::from),
                }
            } else {
                copy(pipe, &self.file, self.received)
            };
            match moved {
                Ok(0) => self.state = State::Complete,
                Ok(n) => {
                    self.received += n as u64;
                    self.last_moved = std::time::Instant::now();
                    if self.limit.is_some_and(|limit| self.received > limit) {
                        self.state = State::TooBig;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Pumped::Drained,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => self.state = State::Failed(e),
            }
        }
        match self.state {
            State::Receiving => Pumped::More,
            _ => Pumped::Done,
        }
    }

    /// Closes the queue runner's end of the pipe: whatever the front
    /// writes from now on fails.
    pub fn close_pipe(&mut self) {
        self.pipe = None;
    }
}

/// The copy `splice` would have done, through a buffer.
fn copy(pipe: &OwnedFd, file: &File, at: u64) -> io::Result<usize> {
    let mut buf = vec![0u8; CHUNK];
    let n = nix::unistd::read(pipe, &mut buf)?;
    file.write_all_at(&buf[..n], at)?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_full_pipe_gets_one_turn_at_a_time() {
        let (mut m, front, _d) = message(None);
        // A writer that never stops.
        let writer = std::thread::spawn(move || {
            let mut front = front;
            let chunk = vec![b'x'; 64 << 10];
            while front.write_all(&chunk).is_ok() {}
        });
        let mut turns = 0;
        while m.received() < (4 << 20) as u64 {
            match m.pump() {
                Pumped::More => turns += 1,
                Pumped::Drained => std::thread::yield_now(),
                Pumped::Done => panic!("{:?}", m.state()),
            }
        }
        assert!(turns >= 1, "one pump took everything");
        m.close_pipe();
        writer.join().unwrap();
    }

    use std::io::Write;

    use super::*;

    fn message(limit: Option<u64>) -> (Incoming, File, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(dir.path().join("df"))
            .unwrap();
        let (read, write) = pipe().unwrap();
        // The tests write as a front does with its TimedPipe, which waits
        // for room: blocking writes wait the same way.
        fcntl(&write, FcntlArg::F_SETFL(OFlag::empty())).unwrap();
        let id: QueueId = "6AP8Cx00006826".parse().unwrap();
        (Incoming::new(id, file, read, limit), File::from(write), dir)
    }

    #[test]
    fn bytes_arrive_until_the_front_closes() {
        let (mut m, mut front, _d) = message(None);
        front.write_all(b"Subject: x\r\n\r\n").unwrap();
        assert_eq!(m.pump(), Pumped::Drained);
        assert!(matches!(m.state(), State::Receiving));
        front.write_all(b"body\r\n").unwrap();
        drop(front);
        assert_eq!(m.pump(), Pumped::Done);
        assert!(matches!(m.state(), State::Complete));
        assert_eq!(m.received(), 20);
        let mut text = String::new();
        io::Read::read_to_string(&mut &m.file, &mut text).unwrap();
        assert_eq!(text, "Subject: x\r\n\r\nbody\r\n");
    }

    #[test]
    fn past_the_limit_the_pipe_is_closed() {
        let (mut m, mut front, _d) = message(Some(10));
        front.write_all(b"0123456789AB").unwrap();
        assert_eq!(m.pump(), Pumped::Done);
        assert!(matches!(m.state(), State::TooBig));
        m.close_pipe();
        // The front's next write fails: nobody reads any more.
        assert!(front.write_all(b"more").is_err());
    }

    #[test]
    fn the_copy_fallback_moves_the_same_bytes() {
        let (mut m, mut front, _d) = message(None);
        m.use_splice = false;
        front.write_all(&[7u8; 60_000]).unwrap();
        drop(front);
        while m.pump() != Pumped::Done {}
        assert!(matches!(m.state(), State::Complete));
        assert_eq!(m.file.metadata().unwrap().len(), m.received());
    }
}
