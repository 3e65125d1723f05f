//! The outbound write side: a write buffer, and the message body streamed
//! into it through a [`DotStuffer`] with bounded memory.
//!
//! Owns: [`OutBuf`] (bytes waiting for the socket) and [`BodyStream`]
//! (reads the message with `read_at` in [`CHUNK`]-sized pieces, only while
//! fewer than [`HIGH_WATER`] bytes wait, so a 100 MB message costs about
//! 256 KiB of memory per connection). Does not own: when to write or what
//! the session does (`outbound.rs`), or the SMTP body rules (the
//! `DotStuffer`: no bare CR or LF ever leaves, dots are doubled, a line
//! over 998 octets is broken with CRLF and a space, and the
//! terminator is written by `finish`).
//!
//! Security posture: the message is read only through the descriptor the
//! queue runner passed, by position, so no shared file offset is touched.

use std::io::{self, Write};

use postern_smtp::client::DotStuffer;

use super::message::Message;

/// Message bytes read per `read_at`.
pub const CHUNK: usize = 64 << 10;
/// The write buffer is topped up with body bytes while it holds less.
pub const HIGH_WATER: usize = 256 << 10;

/// Bytes waiting to be written.
#[derive(Debug, Default)]
pub struct OutBuf {
    buf: Vec<u8>,
    pos: usize,
}

impl OutBuf {
    /// Bytes not yet written.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Queues bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Forgets everything queued and frees the memory.
    pub fn clear(&mut self) {
        self.buf = Vec::new();
        self.pos = 0;
    }

    /// Writes until `w` would block or nothing is left; returns the bytes
    /// written. A write of 0 bytes is an error (`WriteZero`).
    pub fn write_to<W: Write>(&mut self, w: &mut W) -> io::Result<usize> {
        let mut written = 0;
        while self.pos < self.buf.len() {
            match w.write(&self.buf[self.pos..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.pos += n;
                    written += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos >= HIGH_WATER {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        Ok(written)
    }
}

/// The DATA body on its way out.
#[derive(Debug)]
pub struct BodyStream {
    /// `None` once the terminator is queued.
    stuffer: Option<DotStuffer>,
    offset: u64,
}

impl BodyStream {
    /// A body at its first byte.
    pub fn new() -> Self {
        Self {
            stuffer: Some(DotStuffer::new()),
            offset: 0,
        }
    }

    /// True once the terminating `.` CRLF is queued.
    pub fn is_finished(&self) -> bool {
        self.stuffer.is_none()
    }

    /// Queues encoded body bytes while `out` holds less than [`HIGH_WATER`],
    /// and the terminator at the end of the file.
    pub fn top_up(&mut self, data: &Message, out: &mut OutBuf) -> io::Result<()> {
        let mut chunk = Vec::new();
        while out.pending() < HIGH_WATER {
            let Some(stuffer) = self.stuffer.as_mut() else {
                break;
            };
            chunk.resize(CHUNK, 0);
            let n = data.read_at(&mut chunk, self.offset)?;
            if n == 0 {
                if let Some(stuffer) = self.stuffer.take() {
                    stuffer.finish(&mut out.buf);
                }
                break;
            }
            self.offset += n as u64;
            stuffer.encode(&chunk[..n], &mut out.buf);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A socket that takes at most `per_write` bytes, then blocks every
    /// other call.
    struct Slow {
        got: Vec<u8>,
        per_write: usize,
        block: bool,
    }

    impl Write for Slow {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.block = !self.block;
            if self.block {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(self.per_write);
            self.got.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn file(bytes: &[u8]) -> Message {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(bytes).unwrap();
        Message::new(f, bytes.len() as u64)
    }

    #[test]
    fn streams_the_dot_stuffed_body_with_bounded_memory() {
        let mut message = Vec::new();
        for i in 0..40_000 {
            message.extend_from_slice(format!(".{i}\r\nbare\nlf\r").as_bytes());
        }
        let data = file(&message);
        let mut body = BodyStream::new();
        let mut out = OutBuf::default();
        let mut sock = Slow {
            got: Vec::new(),
            per_write: 100_000,
            block: false,
        };
        let mut most = 0;
        while !(body.is_finished() && out.pending() == 0) {
            body.top_up(&data, &mut out).unwrap();
            most = most.max(out.buf.len());
            out.write_to(&mut sock).unwrap();
        }
        assert_eq!(sock.got, DotStuffer::encode_all(&message));
        // Below the mark plus one stuffed chunk (at most doubled), plus what
        // was written but not yet compacted away.
        assert!(most <= 2 * HIGH_WATER + 2 * CHUNK + 3, "{most}");
    }

    #[test]
    fn empty_body_is_just_the_terminator() {
        let mut body = BodyStream::new();
        let mut out = OutBuf::default();
        assert!(!body.is_finished());
        body.top_up(&file(b""), &mut out).unwrap();
        assert!(body.is_finished());
        assert_eq!(out.buf, b".\r\n");
    }

    #[test]
    fn write_zero_is_an_error() {
        struct Zero;
        impl Write for Zero {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Ok(0)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut out = OutBuf::default();
        out.push(b"QUIT\r\n");
        assert_eq!(
            out.write_to(&mut Zero).unwrap_err().kind(),
            io::ErrorKind::WriteZero
        );
        out.clear();
        assert_eq!(out.pending(), 0);
    }
}
