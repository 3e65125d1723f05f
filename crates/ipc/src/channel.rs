//! A typed channel over a Unix stream socket: frames out, frames in, with
//! descriptors riding along. Works on blocking sockets (the front, which
//! waits for each answer) and on non-blocking ones driven by a mio loop
//! (master, queue runner, delivery client): `fill` reads what is there,
//! `try_recv` decodes whole frames, `flush` writes what it can.

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
    /// The peer closed its end.
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

/// One end of a channel: sends `Out`, receives `In`.
pub struct Channel<Out, In> {
    stream: UnixStream,
    limit_in: usize,
    limit_out: usize,
    buf: Vec<u8>,
    fds: VecDeque<OwnedFd>,
    out: VecDeque<Outgoing>,
    accepts_fds: bool,
    _types: PhantomData<fn(Out) -> In>,
}

/// Descriptors that may wait unclaimed: a peer sending more than its
/// frames account for is exhausting our descriptor table.
const MAX_WAITING_FDS: usize = 8;

impl<Out: Serialize, In: DeserializeOwned> Channel<Out, In> {
    /// Wraps a connected socket; frames larger than the limits are refused.
    pub fn new(stream: UnixStream, limit_out: usize, limit_in: usize) -> Self {
        Self {
            stream,
            limit_in,
            limit_out,
            buf: Vec::new(),
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

    /// The socket, for registering with a poller or setting timeouts.
    pub fn stream(&self) -> &UnixStream {
        &self.stream
    }

    /// Queues `msg` with `fds` (duplicated, so the caller keeps its own)
    /// and writes as much as the socket takes. On a blocking socket the
    /// whole frame is written before this returns.
    pub fn send(&mut self, msg: &Out, fds: &[BorrowedFd<'_>]) -> Result<(), ChannelError> {
        let bytes = frame::encode(msg, fds.len() as u8, self.limit_out)?;
        let fds = fds
            .iter()
            .map(|fd| fd.try_clone_to_owned())
            .collect::<io::Result<Vec<_>>>()?;
        self.out.push_back(Outgoing {
            bytes,
            sent: 0,
            fds,
        });
        self.flush()?;
        Ok(())
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

    /// One read from the socket. `Ok(0)` means it would block; end of
    /// stream is `Err(Closed)`.
    pub fn fill(&mut self) -> Result<usize, ChannelError> {
        let mut chunk = [0u8; 16 * 1024];
        let mut fds = Vec::new();
        loop {
            match recv_with_fds(self.stream.as_fd(), &mut chunk, &mut fds) {
                Ok(0) => return Err(ChannelError::Closed),
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    if !fds.is_empty() && !self.accepts_fds {
                        return Err(FrameError::UnexpectedFds(fds.len()).into());
                    }
                    self.fds.extend(fds);
                    let unclaimed = self.fds.len().saturating_sub(self.claimed_fds());
                    if unclaimed > MAX_WAITING_FDS {
                        return Err(FrameError::UnexpectedFds(unclaimed).into());
                    }
                    // A frame over the limit is refused as soon as its
                    // header is here, before the buffer grows towards it.
                    frame::header(&self.buf, self.limit_in)?;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(0),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // A peer that exits without reading what we sent resets
                // the connection: that is a close, not an error to report.
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                    return Err(ChannelError::Closed)
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Descriptors the buffered frames account for (a frame's count is
    /// known once its header is here). Frames read in a burst, before the
    /// caller decodes them, hold their descriptors legitimately.
    fn claimed_fds(&self) -> usize {
        let mut claimed = 0;
        let mut at = 0;
        while let Some(head) = self
            .buf
            .get(at..)
            .and_then(|rest| frame::header(rest, usize::MAX).ok().flatten())
        {
            claimed += head.fds as usize;
            at += HEADER_LEN + head.len;
        }
        claimed
    }

    /// The next complete message, if one is buffered.
    pub fn try_recv(&mut self) -> Result<Option<(In, Vec<OwnedFd>)>, ChannelError> {
        let Some(head) = frame::header(&self.buf, self.limit_in)? else {
            return Ok(None);
        };
        if self.buf.len() < HEADER_LEN + head.len {
            return Ok(None);
        }
        if self.fds.len() < head.fds as usize {
            return Err(FrameError::MissingFds {
                claimed: head.fds,
                present: self.fds.len(),
            }
            .into());
        }
        let msg = frame::decode(&self.buf[HEADER_LEN..HEADER_LEN + head.len])?;
        self.buf.drain(..HEADER_LEN + head.len);
        let fds = self.fds.drain(..head.fds as usize).collect();
        Ok(Some((msg, fds)))
    }

    /// Blocks until a whole message has arrived (blocking sockets only).
    pub fn recv(&mut self) -> Result<(In, Vec<OwnedFd>), ChannelError> {
        loop {
            if let Some(msg) = self.try_recv()? {
                return Ok(msg);
            }
            if self.fill()? == 0 {
                return Err(io::Error::from(io::ErrorKind::WouldBlock).into());
            }
        }
    }
}

impl<Out, In> AsRawFd for Channel<Out, In> {
    fn as_raw_fd(&self) -> RawFd {
        self.stream.as_raw_fd()
    }
}
