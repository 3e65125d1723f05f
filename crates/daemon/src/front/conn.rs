//! The front's connection to its client: plain TCP, then TLS after
//! STARTTLS, on a blocking socket with the session's timeouts.

use std::io::ErrorKind;
use std::net::TcpStream;
use std::time::{Duration, Instant};

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

/// The greet pause: waits up to `wait` for the client to send anything,
/// without reading it (the session reads it once it has greeted), and
/// says how long into the wait the first byte came, `None` if none did.
/// The end of the connection is not traffic: it is found by the read
/// after the greeting, as sendmail finds it.
pub fn traffic_within(conn: &Conn, wait: Duration) -> Option<Duration> {
    let tcp = conn.transport()?;
    let start = Instant::now();
    let mut byte = [0u8; 1];
    loop {
        let left = wait.saturating_sub(start.elapsed());
        // A zero timeout would mean "block forever" to the socket.
        if left.is_zero() || tcp.set_read_timeout(Some(left)).is_err() {
            return None;
        }
        match tcp.peek(&mut byte) {
            Ok(0) => return None,
            Ok(_) => return Some(start.elapsed()),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            // Timed out (WouldBlock with SO_RCVTIMEO), or broken: no
            // traffic either way.
            Err(_) => return None,
        }
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
