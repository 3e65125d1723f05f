//! A connection that starts in clear text and may switch to TLS
//! (STARTTLS), on either side: the fronts' client connections and the
//! delivery client's connections to MXs.

use std::io::{self, Read, Write};

use crate::{TlsError, TlsStream};

/// Clear text, then TLS over the same transport.
pub enum MaybeTls<S> {
    /// Before STARTTLS.
    Plain(S),
    /// After STARTTLS: handshaking or carrying the session.
    Tls(Box<TlsStream<S>>),
    /// A switch to TLS failed: the transport is gone. Reads see the end,
    /// writes fail.
    Closed,
}

impl<S: Read + Write> MaybeTls<S> {
    /// The transport underneath (for timeouts and polling registration),
    /// `None` once closed.
    pub fn transport(&self) -> Option<&S> {
        match self {
            MaybeTls::Plain(s) => Some(s),
            MaybeTls::Tls(t) => Some(t.get_ref()),
            MaybeTls::Closed => None,
        }
    }

    /// The transport underneath, mutably.
    pub fn transport_mut(&mut self) -> Option<&mut S> {
        match self {
            MaybeTls::Plain(s) => Some(s),
            MaybeTls::Tls(t) => Some(t.get_mut()),
            MaybeTls::Closed => None,
        }
    }

    /// The TLS session, once STARTTLS began.
    pub fn tls_mut(&mut self) -> Option<&mut TlsStream<S>> {
        match self {
            MaybeTls::Tls(t) => Some(t),
            _ => None,
        }
    }

    /// Switches to TLS: `session` gets the transport itself, never a
    /// buffer, so nothing read in clear text can reach the handshake
    /// (CVE-2011-0411). The handshake is the caller's to drive. On error,
    /// or when the connection is not in clear text, it is closed.
    pub fn start_tls(
        &mut self,
        session: impl FnOnce(S) -> Result<TlsStream<S>, TlsError>,
    ) -> Result<&mut TlsStream<S>, TlsError> {
        let MaybeTls::Plain(transport) = std::mem::replace(self, MaybeTls::Closed) else {
            return Err(TlsError::Config(
                "STARTTLS on a connection that is not in clear text".into(),
            ));
        };
        *self = MaybeTls::Tls(Box::new(session(transport)?));
        Ok(self.tls_mut().expect("just set"))
    }
}

impl<S: Read + Write> Read for MaybeTls<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            MaybeTls::Plain(s) => s.read(buf),
            MaybeTls::Tls(t) => t.read(buf),
            MaybeTls::Closed => Ok(0),
        }
    }
}

impl<S: Read + Write> Write for MaybeTls<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            MaybeTls::Plain(s) => s.write(buf),
            MaybeTls::Tls(t) => t.write(buf),
            MaybeTls::Closed => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            MaybeTls::Plain(s) => s.flush(),
            MaybeTls::Tls(t) => t.flush(),
            MaybeTls::Closed => Ok(()),
        }
    }
}
