//! The socket under an outbound connection: TCP to a mail server, or a
//! Unix stream socket to an LMTP server on this host (Dovecot's
//! `/run/dovecot/lmtp`).
//!
//! Owns: connecting to an [`Endpoint`] without blocking, and the few
//! socket calls the connection makes (pending error, connected yet,
//! peek), the same for both kinds, so that `outbound.rs` does not care
//! which it has. TLS goes over either in principle; a Unix socket is
//! never given STARTTLS (`job.rs`).

use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;

use mio::event::Source;
use mio::net::{TcpStream, UnixStream};
use mio::{Interest, Registry, Token};

use crate::delivery::destination::Endpoint;

/// A connected (or connecting) stream socket.
#[derive(Debug)]
pub enum Socket {
    /// TCP.
    Tcp(TcpStream),
    /// A Unix stream socket.
    Unix(UnixStream),
}

impl Socket {
    /// Starts a non-blocking connect.
    pub fn connect(to: &Endpoint) -> io::Result<Socket> {
        match to {
            Endpoint::Tcp(addr) => TcpStream::connect(*addr).map(Socket::Tcp),
            Endpoint::Unix(path) => UnixStream::connect(path).map(Socket::Unix),
        }
    }

    /// The socket's pending error (`SO_ERROR`), such as a refused connect.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        match self {
            Socket::Tcp(s) => s.take_error(),
            Socket::Unix(s) => s.take_error(),
        }
    }

    /// `Ok` once connected; `NotConnected` while the connect is under way.
    pub fn check_connected(&self) -> io::Result<()> {
        match self {
            Socket::Tcp(s) => s.peer_addr().map(drop),
            Socket::Unix(s) => s.peer_addr().map(drop),
        }
    }

    /// Reads without consuming and without blocking (`WouldBlock` when
    /// nothing is there).
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.peek(buf),
            Socket::Unix(s) => {
                use nix::sys::socket::{recv, MsgFlags};
                recv(
                    s.as_raw_fd(),
                    buf,
                    MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT,
                )
                .map_err(io::Error::from)
            }
        }
    }
}

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.read(buf),
            Socket::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.write(buf),
            Socket::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Socket::Tcp(s) => s.flush(),
            Socket::Unix(s) => s.flush(),
        }
    }
}

impl Source for Socket {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        match self {
            Socket::Tcp(s) => s.register(registry, token, interest),
            Socket::Unix(s) => s.register(registry, token, interest),
        }
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        match self {
            Socket::Tcp(s) => s.reregister(registry, token, interest),
            Socket::Unix(s) => s.reregister(registry, token, interest),
        }
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        match self {
            Socket::Tcp(s) => s.deregister(registry),
            Socket::Unix(s) => s.deregister(registry),
        }
    }
}
