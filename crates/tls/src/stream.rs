//! One TLS connection over any `Read + Write` transport: the handshake as
//! a step the caller repeats on readiness, then plain `Read`/`Write`.

use std::fmt;
use std::io::{self, Read, Write};

use openssl::ssl::{ErrorCode, SslStream};
use postern_smtp::{TlsInfo, Verify};

use crate::verify::{one_line, SharedLog};
use crate::TlsError;

/// Where a handshake stands after one [`TlsStream::handshake`] call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handshake {
    /// Finished: [`TlsStream::info`] is meaningful, data may flow.
    Done,
    /// Call again when the transport is readable.
    WantRead,
    /// Call again when the transport is writable.
    WantWrite,
}

/// A TLS session over the transport `S` (a socket, or anything else that
/// reads and writes bytes). Made by `ServerTls::session` or
/// `ClientTls::session`, not yet handshaken.
pub struct TlsStream<S> {
    inner: SslStream<S>,
    /// `None` when no certificate was asked for (TLSSrvOptions `V`).
    log: Option<SharedLog>,
}

impl<S> fmt::Debug for TlsStream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsStream")
            .field("version", &self.inner.ssl().version_str())
            .field("cert_requested", &self.log.is_some())
            .finish_non_exhaustive()
    }
}

impl<S: Read + Write> TlsStream<S> {
    pub(crate) fn new(inner: SslStream<S>, log: Option<SharedLog>) -> Self {
        TlsStream { inner, log }
    }

    /// Advances the handshake. On a blocking transport this returns `Done`
    /// or an error; on a non-blocking one it may ask to be called again
    /// when the transport is readable or writable. Calling it after `Done`
    /// returns `Done`.
    pub fn handshake(&mut self) -> Result<Handshake, TlsError> {
        let e = match self.inner.do_handshake() {
            Ok(()) => return Ok(Handshake::Done),
            Err(e) => e,
        };
        let want = if e.code() == ErrorCode::WANT_READ {
            Some(Handshake::WantRead)
        } else if e.code() == ErrorCode::WANT_WRITE {
            Some(Handshake::WantWrite)
        } else {
            None
        };
        let syscall = e.code() == ErrorCode::SYSCALL;
        match (want, e.into_io_error()) {
            // The transport would block (or a signal interrupted it): the
            // expected case on a non-blocking socket.
            (Some(want), Ok(io))
                if matches!(
                    io.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                Ok(want)
            }
            (Some(want), Err(_)) => Ok(want),
            // Any other transport error: the connection is gone.
            (_, Ok(io)) => Err(TlsError::Io(io)),
            (None, Err(e)) => Err(TlsError::Handshake(match e.ssl_error() {
                Some(stack) => crate::load::reason(stack),
                None if syscall => "connection closed by peer".to_string(),
                None => e.to_string(),
            })),
        }
    }

    /// The TLS macros of this connection, as sendmail names them:
    /// `{tls_version}`, `{cipher}`, `{cipher_bits}`, `{alg_bits}`,
    /// `{verify}`, `{cert_subject}`, `{cert_issuer}` (the last two one-line
    /// DNs, control characters removed, length capped, not yet
    /// xtext-encoded). Meaningful once the handshake is done.
    pub fn info(&self) -> TlsInfo {
        let ssl = self.inner.ssl();
        let (cipher, cipher_bits, alg_bits) = match ssl.current_cipher() {
            Some(c) => {
                let bits = c.bits();
                (
                    c.name().to_string(),
                    u32::try_from(bits.secret).unwrap_or(0),
                    u32::try_from(bits.algorithm).unwrap_or(0),
                )
            }
            None => (String::new(), 0, 0),
        };
        let peer = ssl.peer_certificate();
        TlsInfo {
            version: ssl.version_str().to_string(),
            cipher,
            cipher_bits,
            alg_bits,
            verify: match &self.log {
                Some(log) => log.verdict(ssl),
                None => Verify::Not,
            },
            cert_subject: peer.as_ref().map(|c| one_line(c.subject_name())),
            cert_issuer: peer.as_ref().map(|c| one_line(c.issuer_name())),
        }
    }

    /// Whether the peer's certificate names `host` (`mx.example.`,
    /// `[192.0.2.1]`): its subjectAltNames, or its CN when it has no DNS
    /// name (see `names.rs`). False without a certificate.
    pub fn peer_names_host(&self, host: &str) -> bool {
        self.inner
            .ssl()
            .peer_certificate()
            .is_some_and(|cert| crate::names::certificate_names(&cert, host))
    }

    /// The peer certificate's CN (sendmail's `{cn_subject}`), if any.
    pub fn peer_common_name(&self) -> Option<String> {
        let cert = self.inner.ssl().peer_certificate()?;
        crate::names::common_name(&cert)
    }

    /// The lines the verify callback wrote, one per certificate checked, in
    /// sendmail's LogLevel-14 format: `STARTTLS: TLS cert verify: depth=D
    /// <subject>, state=ok|fail, reason=<X509 error text>`. Empty when no
    /// certificate was asked for or none was presented.
    pub fn verify_trace(&self) -> Vec<String> {
        self.log.as_ref().map(SharedLog::trace).unwrap_or_default()
    }

    /// The transport.
    pub fn get_ref(&self) -> &S {
        self.inner.get_ref()
    }

    /// The transport, mutably (e.g. to change timeouts). Reading or writing
    /// it directly corrupts the TLS session.
    pub fn get_mut(&mut self) -> &mut S {
        self.inner.get_mut()
    }

    /// Sends close_notify, best effort: the peer may be gone already, and
    /// SMTP does not need the peer's close_notify (QUIT and `.` frame
    /// everything that matters).
    pub fn shutdown(&mut self) {
        let _ = self.inner.shutdown();
    }
}

/// Plain reads of decrypted data. A close_notify or the transport's EOF
/// reads as `Ok(0)`; on a non-blocking transport, OpenSSL's WANT_READ and
/// WANT_WRITE surface as [`io::ErrorKind::WouldBlock`].
impl<S: Read + Write> Read for TlsStream<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // The openssl crate's own mapping does exactly the above: ZERO_RETURN
        // and a bare EOF become Ok(0), WANT_* carry the transport's
        // WouldBlock, and a WANT_READ with no transport error (a post-
        // handshake message such as a session ticket) is retried.
        self.inner.read(buf)
    }
}

/// Plain writes, encrypted; WANT_* surface as `WouldBlock` as for reads.
/// Partial writes are enabled, and a retried write may pass a different
/// buffer (ENABLE_PARTIAL_WRITE, ACCEPT_MOVING_WRITE_BUFFER).
impl<S: Read + Write> Write for TlsStream<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
