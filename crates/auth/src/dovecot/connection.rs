//! One connection to Dovecot's auth-client socket: connect and handshake,
//! send a line, read a line by a deadline. Blocking, with every wait
//! bounded: a Dovecot that stops answering costs a worker thread at most
//! the deadline, never forever.
//!
//! Writing to a socket Dovecot closed fails with EPIPE rather than
//! killing the process, because Rust programs start with SIGPIPE ignored.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use super::protocol::{self, Handshake, MechInfo};

/// Longest line accepted from Dovecot. Its own limit is 16 384 bytes
/// (GSSAPI's tokens are the largest); past four times that it is not
/// talking the protocol.
const MAX_LINE: usize = 65_536;

/// An open, handshaken connection.
#[derive(Debug)]
pub(crate) struct Connection {
    stream: UnixStream,
    /// Bytes read but not yet returned as a line.
    pending: Vec<u8>,
    mechanisms: Vec<MechInfo>,
}

impl Connection {
    /// Connects to `socket` and completes the handshake within `timeout`.
    pub(crate) fn open(socket: &Path, timeout: Duration) -> io::Result<Connection> {
        let deadline = Instant::now() + timeout;
        let stream = UnixStream::connect(socket)?;
        // A Dovecot that stops reading must not block a write for ever
        // either; our lines are small, so this is the handshake's budget.
        stream.set_write_timeout(Some(timeout))?;
        let mut connection = Connection {
            stream,
            pending: Vec::new(),
            mechanisms: Vec::new(),
        };
        connection.send(&protocol::handshake(std::process::id()))?;
        let mut handshake = Handshake::default();
        loop {
            let line = connection.read_line(deadline)?;
            let done = handshake
                .feed(&line)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            if done {
                break;
            }
        }
        connection.mechanisms = handshake.into_mechanisms();
        Ok(connection)
    }

    /// The mechanisms Dovecot listed in its handshake.
    pub(crate) fn mechanisms(&self) -> &[MechInfo] {
        &self.mechanisms
    }

    /// Sends `text`, one or more whole lines.
    pub(crate) fn send(&mut self, text: &str) -> io::Result<()> {
        self.stream.write_all(text.as_bytes())
    }

    /// The next line (without its LF), waiting until `deadline` at most.
    /// Not UTF-8 is replaced, not refused: only base64, numbers and
    /// reasons matter, and reasons are sanitised later anyway.
    pub(crate) fn read_line(&mut self, deadline: Instant) -> io::Result<String> {
        loop {
            if let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=end).collect();
                return Ok(String::from_utf8_lossy(&line[..end]).into_owned());
            }
            if self.pending.len() > MAX_LINE {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "Dovecot sent a line longer than 64 KiB",
                ));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "Dovecot did not answer in time",
                ));
            }
            self.stream.set_read_timeout(Some(left))?;
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "Dovecot closed the connection",
                    ))
                }
                Ok(n) => self.pending.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // A read timeout shows as WouldBlock on Linux; the
                // deadline check above turns it into TimedOut.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }
}
