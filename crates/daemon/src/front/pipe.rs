//! The write end of a message pipe, with a bound on each wait.
//!
//! The queue runner hands the front a non-blocking pipe (a front's seccomp
//! filter does not let it change descriptor flags). When the pipe is full
//! (the queue runner is behind, stopped or stuck on its disk) the front
//! waits for room in `poll`, at most `Timeout.queuereply` at a time; past
//! that the write fails, the message is abandoned and the client hears
//! `451 4.3.0` after its final dot instead of a session that never ends.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

/// A pipe's write end whose writes wait at most `timeout` for room.
pub struct TimedPipe {
    file: File,
    timeout: Duration,
}

impl TimedPipe {
    /// Wraps `file`, a non-blocking pipe (a blocking one simply blocks).
    pub fn new(file: File, timeout: Duration) -> Self {
        Self { file, timeout }
    }

    /// Waits for room in the pipe; `TimedOut` if none came in time.
    fn wait_writable(&self) -> io::Result<()> {
        let deadline = Instant::now() + self.timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the queue runner stopped reading the message",
                ));
            }
            let mut fds = [PollFd::new(self.file.as_fd(), PollFlags::POLLOUT)];
            match poll(
                &mut fds,
                PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX),
            ) {
                Ok(0) | Err(nix::errno::Errno::EINTR) => {}
                Ok(_) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
    }
}

impl Write for TimedPipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        loop {
            match self.file.write(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.wait_writable()?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => return other,
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::OwnedFd;

    fn nonblocking_pipe() -> (OwnedFd, File) {
        let (read, write) = nix::unistd::pipe().unwrap();
        nix::fcntl::fcntl(
            &write,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )
        .unwrap();
        (read, File::from(write))
    }

    #[test]
    fn a_reader_that_never_reads_ends_the_write_after_the_timeout() {
        let (_read, write) = nonblocking_pipe();
        let mut pipe = TimedPipe::new(write, Duration::from_millis(200));
        let started = std::time::Instant::now();
        let err = pipe.write_all(&vec![b'x'; 1 << 20]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_millis(200));
    }

    #[test]
    fn a_slow_reader_gets_everything() {
        let (read, write) = nonblocking_pipe();
        let reader = std::thread::spawn(move || {
            let mut read = File::from(read);
            let mut all = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                std::thread::sleep(Duration::from_millis(1));
                match io::Read::read(&mut read, &mut chunk).unwrap() {
                    0 => return all,
                    n => all.extend_from_slice(&chunk[..n]),
                }
            }
        });
        let message: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let mut pipe = TimedPipe::new(write, Duration::from_secs(30));
        pipe.write_all(&message).unwrap();
        drop(pipe);
        assert_eq!(reader.join().unwrap(), message);
    }
}
