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

/// How much longer than asked a socket timeout may be left: what a line
/// has left of its timeout shrinks by the microseconds between the end of
/// the last line and the next read, which is no reason to set it again.
const TIMEOUT_SLACK: Duration = Duration::from_millis(50);

/// The client socket's timeouts as last set, so that they are set only
/// when they change: set before every reply and every read, they cost
/// four system calls a command.
#[derive(Debug, Default)]
pub struct Timeouts {
    set: Option<Duration>,
}

impl Timeouts {
    /// Makes both timeouts `timeout` (or at most [`TIMEOUT_SLACK`] more).
    pub fn apply(&mut self, conn: &Conn, timeout: Duration) {
        if !self.covers(timeout) {
            set_timeout(conn, timeout);
            self.set = Some(timeout);
        }
    }

    /// Whether the timeouts as set will do for `timeout`.
    fn covers(&self, timeout: Duration) -> bool {
        self.set
            .is_some_and(|set| set >= timeout && set - timeout <= TIMEOUT_SLACK)
    }

    /// After something else set them (the greet pause, STARTTLS).
    pub fn forget(&mut self) {
        self.set = None;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeout_is_set_again_only_when_it_changes() {
        let secs = Duration::from_secs;
        let mut timeouts = Timeouts::default();
        assert!(!timeouts.covers(secs(300)));
        timeouts.set = Some(secs(300));
        assert!(timeouts.covers(secs(300)));
        // What a line has left, a moment after the last one ended.
        assert!(timeouts.covers(secs(300) - Duration::from_micros(700)));
        // Well into a line that is coming in pieces: shorter.
        assert!(!timeouts.covers(secs(200)));
        // Longer (the DATA timeout after a command's): never cut short.
        assert!(!timeouts.covers(secs(3600)));
        timeouts.forget();
        assert!(!timeouts.covers(secs(300)));
    }
}
