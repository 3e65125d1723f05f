//! Sending and receiving file descriptors beside bytes (`SCM_RIGHTS`).
//!
//! This is one of the two places in Postern with unsafe code: a descriptor
//! that arrives in a control message is a bare integer, and turning it into
//! an `OwnedFd` is a promise that nothing else owns it. The kernel just
//! installed it in our table for us alone, so the promise holds.
#![allow(unsafe_code)]

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};

/// Most descriptors one read may bring; more is a hostile peer.
pub const MAX_FDS_PER_READ: usize = 8;

/// Writes `data`, attaching `fds` to its first byte. Returns bytes written.
pub fn send_with_fds(
    socket: BorrowedFd<'_>,
    data: &[u8],
    fds: &[BorrowedFd<'_>],
) -> io::Result<usize> {
    let raw: Vec<RawFd> = fds.iter().map(|fd| fd.as_raw_fd()).collect();
    let iov = [IoSlice::new(data)];
    let cmsgs = [ControlMessage::ScmRights(&raw)];
    let cmsgs: &[ControlMessage] = if raw.is_empty() { &[] } else { &cmsgs };
    // MSG_NOSIGNAL: a dead peer is an error to handle, not a SIGPIPE.
    sendmsg::<()>(
        socket.as_raw_fd(),
        &iov,
        cmsgs,
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .map_err(io::Error::from)
}

/// Reads into `buf`, appending any descriptors that came with the bytes to
/// `fds`. Returns bytes read (0 at end of stream).
pub fn recv_with_fds(
    socket: BorrowedFd<'_>,
    buf: &mut [u8],
    fds: &mut Vec<OwnedFd>,
) -> io::Result<usize> {
    let mut iov = [IoSliceMut::new(buf)];
    let mut space = nix::cmsg_space!([RawFd; MAX_FDS_PER_READ]);
    let msg = recvmsg::<()>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(io::Error::from)?;
    let truncated = msg.flags.contains(MsgFlags::MSG_CTRUNC);
    for cmsg in msg.cmsgs().map_err(io::Error::from)? {
        if let ControlMessageOwned::ScmRights(received) = cmsg {
            for fd in received {
                // SAFETY: the kernel installed this descriptor for this
                // process in this very recvmsg call; nothing else owns it.
                fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    if truncated {
        // Descriptors beyond our space were closed by the kernel: the peer
        // sent more than any message carries.
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "too many descriptors in one read",
        ));
    }
    Ok(msg.bytes)
}
