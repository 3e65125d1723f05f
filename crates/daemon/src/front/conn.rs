//! The front's connection to its client: plain TCP, then TLS after
//! STARTTLS, on a blocking socket with the session's timeouts.

use std::net::TcpStream;
use std::time::Duration;

use postern_smtp::TlsInfo;
use postern_tls::{Handshake, MaybeTls, ServerTls, TlsError};

/// The client connection.
pub type Conn = MaybeTls<TcpStream>;

/// What a completed handshake established.
pub struct Established {
    /// The TLS macros.
    pub info: TlsInfo,
    /// The certificate verification trace (LogLevel 14).
    pub trace: Vec<String>,
}

/// Sets both socket timeouts.
pub fn set_timeout(conn: &Conn, timeout: Duration) {
    if let Some(tcp) = conn.transport() {
        let _ = tcp.set_read_timeout(Some(timeout));
        let _ = tcp.set_write_timeout(Some(timeout));
    }
}

/// Performs the server side of the handshake within `timeout`
/// (Timeout.starttls). On failure the connection is gone.
pub fn start_tls(
    conn: &mut Conn,
    tls: &ServerTls,
    timeout: Duration,
) -> Result<Established, TlsError> {
    set_timeout(conn, timeout);
    let stream = conn.start_tls(|tcp| tls.session(tcp))?;
    // A blocking socket: the handshake completes or fails in one call,
    // but a WantRead/WantWrite from a timed-out read is a failure too.
    let established = match stream.handshake() {
        Ok(Handshake::Done) => Ok(Established {
            info: stream.info(),
            trace: stream.verify_trace(),
        }),
        Ok(Handshake::WantRead | Handshake::WantWrite) => {
            Err(TlsError::Handshake("timeout".into()))
        }
        Err(e) => Err(e),
    };
    if established.is_err() {
        // Half a handshake leaves nothing to talk over.
        *conn = MaybeTls::Closed;
    }
    established
}
