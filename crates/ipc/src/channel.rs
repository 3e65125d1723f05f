//! A typed channel over a Unix stream socket: frames out, frames in, with
//! descriptors riding along. Works on blocking sockets (the front, which
//! waits for each answer) and on non-blocking ones driven by a mio loop
//! (master, queue runner, delivery client): [`Channel::try_recv`] returns
//! the next whole message, reading from the socket only as much as it
//! needs, and `flush` writes what it can.
//!
//! What a hostile peer cannot do to the receiving side (the queue runner
//! faces every front this way):
//!
//! - **grow its memory**: at most one maximal frame (header plus the
//!   channel's limit) is ever buffered; nothing more is read until a whole
//!   frame has been taken out, and a frame over the limit is refused from
//!   its header alone;
//! - **make it work quadratically**: frames are decoded from a read offset
//!   (the buffer is compacted at most once per frame, not shifted per
//!   frame), and each frame header is checked and its descriptors counted
//!   once, when it arrives, not on every read;
//! - **fill its descriptor table**: descriptors not accounted for by a
//!   frame header are bounded by [`MAX_WAITING_FDS`].
//!
//! Fairness between peers (how many frames one peer may have handled per
//! wake-up) is the caller's decision: it calls `try_recv` as often as it
//! is willing to, and may treat a peer with more waiting as hostile.

use std::collections::VecDeque;
use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::frame::{self, FrameError, HEADER_LEN};
use crate::scm_rights::{recv_with_fds, send_with_fds};

/// Why a channel failed. The channel is unusable afterwards.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// The peer closed its end (after every whole frame it sent was
    /// received).
    #[error("peer closed the channel")]
    Closed,
    /// A socket error.
    #[error("channel I/O: {0}")]
    Io(#[from] io::Error),
    /// The peer sent something that is not a frame of our catalogue.
    #[error("protocol violation: {0}")]
    Frame(#[from] FrameError),
    /// The first frame was not a matching Hello.
    #[error("peer speaks protocol version {0}, not {1}")]
    Version(u32, u32),
}

struct Outgoing {
    bytes: Vec<u8>,
    sent: usize,
    fds: Vec<OwnedFd>,
}

/// Received bytes not yet decoded, and what is known about them.
///
/// `bytes[start..]` is undecoded. Every frame header that begins before
/// `scanned` has been checked against the limit and its descriptors added
/// to `claimed`; `scanned` is where the next unchecked header begins (it
/// may lie beyond the end of `bytes` while a frame's body is still
/// arriving).
#[derive(Default)]
struct Incoming {
    bytes: Vec<u8>,
    start: usize,
    scanned: usize,
    claimed: usize,
    eof: bool,
}

/// Descriptors that may wait unclaimed: a peer sending more than its
/// frames account for is exhausting our descriptor table.
pub const MAX_WAITING_FDS: usize = 8;

/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 16 * 1024;
thread_local! {
    /// Where reads land before they are appended to a channel's buffer:
    /// one per thread, zeroed once. A fresh zeroed array on the stack for
    /// each read wrote 16 KiB every time, which in the front factory
    /// meant copying four stack pages after every fork (the fronts share
    /// them until the factory writes).
    static READ_SCRATCH: std::cell::RefCell<Box<[u8]>> =
        std::cell::RefCell::new(vec![0u8; READ_CHUNK].into_boxed_slice());
}

/// A buffer that grew past this is given back once it is empty, so that a
/// large frame from one of thousands of peers does not stay allocated.
const KEEP_CAPACITY: usize = 64 * 1024;

/// One end of a channel: sends `Out`, receives `In`.
pub struct Channel<Out, In> {
    stream: UnixStream,
    limit_in: usize,
    limit_out: usize,
    incoming: Incoming,
    fds: VecDeque<OwnedFd>,
    out: VecDeque<Outgoing>,
    accepts_fds: bool,
    _types: PhantomData<fn(Out) -> In>,
}

/// What one read from the socket brought.
enum Read {
    Bytes,
    WouldBlock,
    Eof,
}

impl<Out: Serialize, In: DeserializeOwned> Channel<Out, In> {
    /// Wraps a connected socket; frames larger than the limits are refused.
    pub fn new(stream: UnixStream, limit_out: usize, limit_in: usize) -> Self {
        Self {
            stream,
            limit_in,
            limit_out,
            incoming: Incoming::default(),
            fds: VecDeque::new(),
            out: VecDeque::new(),
            accepts_fds: true,
            _types: PhantomData,
        }
    }

    /// For channels whose peer never has a reason to send descriptors (a
    /// front): any descriptor that arrives is a protocol violation.
    pub fn refusing_fds(mut self) -> Self {
        self.accepts_fds = false;
        self
    }

    /// Frames queued and not yet written (a peer that does not read its
    /// replies makes this grow).
    pub fn unsent_frames(&self) -> usize {
        self.out.len()
    }

    /// Whole frames received and not yet taken out, counted up to `cap`
    /// (a peer that sends request after request without waiting for the
    /// answers has many; one that waits has at most one or two).
    pub fn whole_frames_waiting(&self, cap: usize) -> usize {
        let mut rest = &self.incoming.bytes[self.incoming.start..];
        let mut count = 0;
        while count < cap {
            match frame::header(rest, self.limit_in) {
                Ok(Some(head)) if rest.len() >= HEADER_LEN + head.len => {
                    rest = &rest[HEADER_LEN + head.len..];
                    count += 1;
                }
                _ => break,
            }
        }
        count
    }

    /// Bytes received and not yet decoded: never more than one maximal
    /// frame (its header plus the channel's limit).
    pub fn buffered_bytes(&self) -> usize {
        self.incoming.bytes.len() - self.incoming.start
    }

    /// The socket, for registering with a poller or setting timeouts.
    pub fn stream(&self) -> &UnixStream {
        &self.stream
    }

    /// Writes `msg` with `fds` as far as the socket takes it, and queues
    /// the rest (with duplicates of `fds` if none went yet: the caller
    /// keeps its own either way). On a blocking socket the whole frame is
    /// written before this returns.
    pub fn send(&mut self, msg: &Out, fds: &[BorrowedFd<'_>]) -> Result<(), ChannelError> {
        let bytes = frame::encode(msg, fds.len() as u8, self.limit_out)?;
        // With nothing queued before it, the frame goes straight out and
        // its descriptors are only borrowed; what the socket does not
        // take now is queued, with copies of the descriptors if none went.
        let queued_before = !self.out.is_empty();
        let taken = if queued_before {
            None
        } else {
            self.write_now(&bytes, fds)?
        };
        let sent = taken.unwrap_or(0);
        if sent == bytes.len() {
            return Ok(());
        }
        let fds = if sent == 0 {
            fds.iter()
                .map(|fd| fd.try_clone_to_owned())
                .collect::<io::Result<Vec<_>>>()?
        } else {
            Vec::new()
        };
        self.out.push_back(Outgoing { bytes, sent, fds });
        // A socket that just said it would block (or, with a send
        // timeout, blocked for the whole timeout) is not asked again now.
        if queued_before || taken.is_some() {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes what the socket takes of `bytes` now (the descriptors with
    /// the first byte); `None` when it would block.
    fn write_now(
        &self,
        bytes: &[u8],
        fds: &[BorrowedFd<'_>],
    ) -> Result<Option<usize>, ChannelError> {
        loop {
            match send_with_fds(self.stream.as_fd(), bytes, fds) {
                Ok(n) => return Ok(Some(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Writes queued frames; `Ok(true)` when nothing is left queued.
    pub fn flush(&mut self) -> Result<bool, ChannelError> {
        while let Some(front) = self.out.front_mut() {
            // Descriptors go with the first byte of their frame, so the
            // receiver has them by the time the frame is complete.
            let fds: Vec<BorrowedFd<'_>> = if front.sent == 0 {
                front.fds.iter().map(|fd| fd.as_fd()).collect()
            } else {
                Vec::new()
            };
            match send_with_fds(self.stream.as_fd(), &front.bytes[front.sent..], &fds) {
                Ok(n) => {
                    front.sent += n;
                    if front.sent == front.bytes.len() {
                        self.out.pop_front();
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(true)
    }

    /// True while frames wait to be written.
    pub fn wants_write(&self) -> bool {
        !self.out.is_empty()
    }

    /// The next whole message, reading from the socket as far as needed
    /// (never more than one maximal frame is buffered). `Ok(None)` when the
    /// socket has nothing more for now (non-blocking sockets);
    /// `Err(Closed)` once the peer closed and every whole frame it sent
    /// was returned.
    pub fn try_recv(&mut self) -> Result<Option<(In, Vec<OwnedFd>)>, ChannelError> {
        loop {
            if let Some(msg) = self.decode_buffered()? {
                return Ok(Some(msg));
            }
            if self.incoming.eof {
                return Err(ChannelError::Closed);
            }
            match self.read_some()? {
                Read::Bytes => {}
                Read::WouldBlock => return Ok(None),
                Read::Eof => self.incoming.eof = true,
            }
        }
    }

    /// Blocks until a whole message has arrived (blocking sockets only; on
    /// a socket with a read timeout, the timeout is an `Io` error).
    pub fn recv(&mut self) -> Result<(In, Vec<OwnedFd>), ChannelError> {
        match self.try_recv()? {
            Some(msg) => Ok(msg),
            None => Err(io::Error::from(io::ErrorKind::WouldBlock).into()),
        }
    }

    /// One read from the socket, into room the buffer bound leaves.
    fn read_some(&mut self) -> Result<Read, ChannelError> {
        let inc = &mut self.incoming;
        // Move the partial frame (if any) to the front: each frame's bytes
        // are moved at most once, when the frame before it was taken out.
        if inc.start > 0 {
            inc.bytes.drain(..inc.start);
            inc.scanned -= inc.start;
            inc.start = 0;
        }
        // A frame whose length is known is given exactly its size: growing
        // by doubling could leave twice the limit allocated per peer.
        if let Ok(Some(head)) = frame::header(&inc.bytes, self.limit_in) {
            let whole = HEADER_LEN + head.len;
            if inc.bytes.capacity() < whole {
                inc.bytes.reserve_exact(whole - inc.bytes.len());
            }
        }
        // Nothing whole is buffered (the caller decoded first) and a whole
        // frame of the maximal size fits, so there is room for one byte.
        let room = (HEADER_LEN + self.limit_in).saturating_sub(inc.bytes.len());
        let want = room.clamp(1, READ_CHUNK);
        let mut fds = Vec::new();
        let n = loop {
            let received = READ_SCRATCH.with_borrow_mut(|chunk| {
                let n = recv_with_fds(self.stream.as_fd(), &mut chunk[..want], &mut fds)?;
                inc.bytes.extend_from_slice(&chunk[..n]);
                Ok::<usize, io::Error>(n)
            });
            match received {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Read::WouldBlock),
                Err(e) if e.kind() == io::ErrorKind::TimedOut => return Err(e.into()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // A peer that exits without reading what we sent resets
                // the connection: that is a close, not an error to report.
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Ok(Read::Eof),
                Err(e) => return Err(e.into()),
            }
        };
        if !fds.is_empty() && !self.accepts_fds {
            return Err(FrameError::UnexpectedFds(fds.len()).into());
        }
        self.fds.extend(fds);
        if n == 0 {
            return Ok(Read::Eof);
        }
        self.account_new_headers()?;
        Ok(Read::Bytes)
    }

    /// Checks each frame header that has just become complete, once: its
    /// length against the limit (before the body is buffered), and its
    /// descriptor count, so that descriptors no frame claims are noticed.
    fn account_new_headers(&mut self) -> Result<(), FrameError> {
        let inc = &mut self.incoming;
        while let Some(head) = inc
            .bytes
            .get(inc.scanned..)
            .map(|rest| frame::header(rest, self.limit_in))
            .transpose()?
            .flatten()
        {
            inc.claimed += head.fds as usize;
            inc.scanned += HEADER_LEN + head.len;
        }
        let unclaimed = self.fds.len().saturating_sub(inc.claimed);
        if unclaimed > MAX_WAITING_FDS {
            return Err(FrameError::UnexpectedFds(unclaimed));
        }
        Ok(())
    }

    /// Takes the first buffered frame out, if it is whole.
    fn decode_buffered(&mut self) -> Result<Option<(In, Vec<OwnedFd>)>, ChannelError> {
        let inc = &mut self.incoming;
        let available = &inc.bytes[inc.start..];
        let Some(head) = frame::header(available, self.limit_in)? else {
            return Ok(None);
        };
        let end = HEADER_LEN + head.len;
        if available.len() < end {
            return Ok(None);
        }
        let wanted = head.fds as usize;
        if self.fds.len() < wanted {
            return Err(FrameError::MissingFds {
                claimed: head.fds,
                present: self.fds.len(),
            }
            .into());
        }
        let msg = frame::decode(&available[HEADER_LEN..end])?;
        inc.start += end;
        inc.claimed -= wanted;
        if inc.start == inc.bytes.len() {
            // Nothing partial is left, so nothing beyond was scanned.
            inc.start = 0;
            inc.scanned = 0;
            if inc.bytes.capacity() > KEEP_CAPACITY {
                inc.bytes = Vec::new();
            } else {
                inc.bytes.clear();
            }
        }
        let fds = self.fds.drain(..wanted).collect();
        Ok(Some((msg, fds)))
    }
}

impl<Out, In> AsRawFd for Channel<Out, In> {
    fn as_raw_fd(&self) -> RawFd {
        self.stream.as_raw_fd()
    }
}
