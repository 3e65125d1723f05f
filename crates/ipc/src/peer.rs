//! Who is at the other end of a Unix socket (`SO_PEERCRED`), as the kernel
//! saw it when the connection was made: the only credential the control
//! socket trusts.

use std::io;
use std::os::unix::net::UnixStream;

use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};

/// The peer's process and ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer {
    /// Process id.
    pub pid: i32,
    /// Effective user id.
    pub uid: u32,
    /// Effective group id.
    pub gid: u32,
}

/// Reads the peer credentials of a connected Unix socket.
pub fn peer(stream: &UnixStream) -> io::Result<Peer> {
    let creds = getsockopt(stream, PeerCredentials).map_err(io::Error::from)?;
    Ok(Peer {
        pid: creds.pid(),
        uid: creds.uid(),
        gid: creds.gid(),
    })
}
