//! The front's connection to its client: plain TCP, then TLS after
//! STARTTLS. The handshake reads the raw socket, never a buffer, so no
//! plaintext the client sent before it can end up inside TLS.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use postern_smtp::TlsInfo;
use postern_tls::{Handshake, ServerTls, TlsError, TlsStream};

/// The client connection.
pub enum Conn {
    /// Before STARTTLS.
    Plain(TcpStream),
    /// After a completed handshake.
    Tls(Box<TlsStream<TcpStream>>),
    /// Only while switching from one to the other.
    Switching,
}

/// What a completed handshake established.
pub struct Established {
    /// The TLS macros.
    pub info: TlsInfo,
    /// The certificate verification trace (LogLevel 14).
    pub trace: Vec<String>,
}

impl Conn {
    fn tcp(&self) -> Option<&TcpStream> {
        match self {
            Conn::Plain(s) => Some(s),
            Conn::Tls(s) => Some(s.get_ref()),
            Conn::Switching => None,
        }
    }

    /// Sets both socket timeouts.
    pub fn set_timeout(&self, timeout: Duration) {
        if let Some(tcp) = self.tcp() {
            let _ = tcp.set_read_timeout(Some(timeout));
            let _ = tcp.set_write_timeout(Some(timeout));
        }
    }

    /// Performs the server side of the handshake within `timeout`
    /// (Timeout.starttls). On failure the connection is gone.
    pub fn start_tls(
        &mut self,
        tls: &ServerTls,
        timeout: Duration,
    ) -> Result<Established, TlsError> {
        let Conn::Plain(tcp) = std::mem::replace(self, Conn::Switching) else {
            return Err(TlsError::Config(
                "STARTTLS on a connection that is not plain".into(),
            ));
        };
        let _ = tcp.set_read_timeout(Some(timeout));
        let _ = tcp.set_write_timeout(Some(timeout));
        let mut stream = tls.session(tcp)?;
        // A blocking socket: the handshake completes or fails in one call,
        // but a WantRead/WantWrite from a timed-out read is a failure too.
        match stream.handshake()? {
            Handshake::Done => {}
            Handshake::WantRead | Handshake::WantWrite => {
                return Err(TlsError::Handshake("timeout".into()));
            }
        }
        let established = Established {
            info: stream.info(),
            trace: stream.verify_trace(),
        };
        *self = Conn::Tls(Box::new(stream));
        Ok(established)
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
            Conn::Switching => Ok(0),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
            Conn::Switching => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
            Conn::Switching => Ok(()),
        }
    }
}
