//! The two contexts: the server's (STARTTLS offered by a front) and the
//! client's (STARTTLS used by the delivery client). Each is built once from
//! the configuration, before any fork, and cloned cheaply into sessions
//! (an `SslContext` is reference counted). SIGHUP builds new ones; an old
//! context stays valid for the sessions that hold it.

use std::fmt;
use std::io::{Read, Write};
use std::net::IpAddr;

use openssl::ssl::{
    ErrorCode, Ssl, SslContext, SslContextBuilder, SslMethod, SslMode, SslOptions, SslStream,
    SslVerifyMode,
};
use postern_config::TlsFiles;

use crate::load::{self, openssl_failure};
use crate::verify::SharedLog;
use crate::{Keys, TlsError, TlsStream};

/// The server side of STARTTLS.
#[derive(Clone)]
pub struct ServerTls {
    ctx: SslContext,
    /// Ask the client for a certificate (not TLSSrvOptions `V`).
    request_cert: bool,
}

/// The client side of STARTTLS.
#[derive(Clone)]
pub struct ClientTls {
    ctx: SslContext,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls")
            .field("request_cert", &self.request_cert)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTls").finish_non_exhaustive()
    }
}

impl ServerTls {
    /// Builds the server context from `ServerCertFile`/`ServerKeyFile`,
    /// `CACertFile`/`CACertPath`, `CRLFile`, `CipherList` and
    /// `TLSSrvOptions`.
    ///
    /// `Ok(None)` when neither `ServerCertFile` nor `ServerKeyFile` is set:
    /// STARTTLS is not offered. (`TLSSrvOptions C`, a server without a
    /// certificate, would need anonymous ciphers; Postern does not offer
    /// those, so it too means no STARTTLS.) An error when they are set but
    /// unusable: only one of the two given, a file unreadable, the key
    /// accessible to group or others, the key not the certificate's, a bad
    /// CA file, CRL or `CipherList`.
    pub fn from_files(files: &TlsFiles, keys: Keys) -> Result<Option<ServerTls>, TlsError> {
        let pairs = load::server_pairs(files)?;
        if pairs.is_empty() {
            return Ok(None);
        }
        let mut ctx = builder(SslMethod::tls_server())?;
        // Client-initiated renegotiation only costs the server CPU.
        ctx.set_options(SslOptions::NO_RENEGOTIATION);
        // Our cipher order, not the client's: the strongest suite both
        // sides have, whatever order a weak client lists them in.
        ctx.set_options(SslOptions::CIPHER_SERVER_PREFERENCE);
        load::common(&mut ctx, files, keys == Keys::AskHolder)?;
        let mut leaves = Vec::new();
        for (cert, key) in &pairs {
            leaves.extend(load::cert_and_key(&mut ctx, cert, key, keys)?);
        }
        load::trust(&mut ctx, files, true)?;
        load::build_chains(&mut ctx, &leaves);
        // Without a session id context OpenSSL refuses to resume a session
        // once client certificates are requested.
        ctx.set_session_id_context(b"postern")
            .map_err(openssl_failure)?;
        Ok(Some(ServerTls {
            ctx: ctx.build(),
            request_cert: !files.srv_options.no_client_cert_request,
        }))
    }

    /// A server session over `stream`, not yet handshaken: drive it with
    /// [`TlsStream::handshake`]. Unless TLSSrvOptions has `V`, the client is
    /// asked for a certificate; whatever it sends (or not), the handshake
    /// goes on and [`TlsStream::info`] reports `{verify}`.
    pub fn session<S: Read + Write>(&self, stream: S) -> Result<TlsStream<S>, TlsError> {
        let mut ssl = Ssl::new(&self.ctx).map_err(openssl_failure)?;
        ssl.set_accept_state();
        let log = if self.request_cert {
            let log = SharedLog::default();
            log.install(&mut ssl);
            Some(log)
        } else {
            ssl.set_verify(SslVerifyMode::NONE);
            None
        };
        let inner = SslStream::new(ssl, stream).map_err(openssl_failure)?;
        Ok(TlsStream::new(inner, log))
    }
}

impl ServerTls {
    /// One handshake with ourselves over a socket pair, so that what
    /// OpenSSL prepares on its first use (the algorithms fetched from its
    /// providers, the key's Montgomery forms) is prepared here, once:
    /// done before forking, every front inherits it instead of repeating
    /// it for its one handshake. Both sides run in this thread, each
    /// taking a step while the other waits for its bytes: a thread for
    /// the client would leave its stack behind in the caller (the front
    /// factory), two more mappings that every fork copies.
    pub fn warm_up(&self) -> Result<(), TlsError> {
        let (server_end, client_end) = std::os::unix::net::UnixStream::pair()
            .map_err(|e| TlsError::Config(format!("socket pair: {e}")))?;
        for end in [&server_end, &client_end] {
            end.set_nonblocking(true)
                .map_err(|e| TlsError::Config(format!("socket pair: {e}")))?;
        }
        let mut client =
            SslContextBuilder::new(SslMethod::tls_client()).map_err(openssl_failure)?;
        client.set_verify(SslVerifyMode::NONE);
        let client = client.build();
        let mut client = SslStream::new(Ssl::new(&client).map_err(openssl_failure)?, client_end)
            .map_err(openssl_failure)?;
        let mut server = self.session(server_end)?;
        let (mut client_done, mut server_done) = (false, false);
        // A TLS 1.3 handshake takes two flights each way; the bound only
        // stops a loop that would otherwise never end.
        for _ in 0..WARM_UP_STEPS {
            if !client_done {
                client_done = match client.connect() {
                    Ok(()) => true,
                    Err(e) if matches!(e.code(), ErrorCode::WANT_READ | ErrorCode::WANT_WRITE) => {
                        false
                    }
                    Err(e) => return Err(TlsError::Config(format!("warm-up client: {e}"))),
                };
            }
            if !server_done {
                server_done = matches!(server.handshake()?, crate::Handshake::Done);
            }
            if client_done && server_done {
                return Ok(());
            }
        }
        Err(TlsError::Config("warm-up handshake did not finish".into()))
    }
}

/// Steps of each side the warm-up handshake may take.
const WARM_UP_STEPS: usize = 16;

impl ClientTls {
    /// Builds the client context from `CACertFile`/`CACertPath`, `CRLFile`,
    /// `CipherList` and, when both are set, `ClientCertFile`/
    /// `ClientKeyFile` (checked as the server's pair is; one without the
    /// other is an error). The trust store is only what the configuration
    /// names, never the system's default store, as in sendmail.
    pub fn from_files(files: &TlsFiles, keys: Keys) -> Result<ClientTls, TlsError> {
        let mut ctx = builder(SslMethod::tls_client())?;
        // sendmail's default ClientSSLOptions include SSL_OP_NO_TICKET.
        ctx.set_options(SslOptions::NO_TICKET);
        load::common(&mut ctx, files, false)?;
        let mut leaves = Vec::new();
        for (cert, key) in load::client_pairs(files)? {
            leaves.extend(load::cert_and_key(&mut ctx, &cert, &key, keys)?);
        }
        load::trust(&mut ctx, files, false)?;
        load::build_chains(&mut ctx, &leaves);
        Ok(ClientTls { ctx: ctx.build() })
    }

    /// A client session over `stream` to `server_name`, not yet
    /// handshaken. `server_name` goes out as SNI when it is a DNS name
    /// (not an address literal such as `[192.0.2.1]`). The server's
    /// certificate chain is verified against the configured CAs and the
    /// result reported as `{verify}`, but a failure does not stop the
    /// handshake, and the name in the certificate is not compared with
    /// `server_name`: like sendmail, policy decides what `FAIL` means.
    pub fn session<S: Read + Write>(
        &self,
        stream: S,
        server_name: &str,
    ) -> Result<TlsStream<S>, TlsError> {
        let mut ssl = Ssl::new(&self.ctx).map_err(openssl_failure)?;
        ssl.set_connect_state();
        if let Some(name) = sni_name(server_name) {
            ssl.set_hostname(name).map_err(openssl_failure)?;
        }
        let log = SharedLog::default();
        log.install(&mut ssl);
        let inner = SslStream::new(ssl, stream).map_err(openssl_failure)?;
        Ok(TlsStream::new(inner, Some(log)))
    }
}

/// A context builder with the settings both roles share.
fn builder(method: SslMethod) -> Result<SslContextBuilder, TlsError> {
    let mut ctx = SslContextBuilder::new(method).map_err(openssl_failure)?;
    ctx.set_options(
        SslOptions::ALL
            | SslOptions::NO_COMPRESSION
            // SMTP frames its own data (QUIT, the final `.`), so a peer
            // that closes without close_notify cannot truncate a message
            // unnoticed; treat that EOF as the end of the stream.
            | SslOptions::IGNORE_UNEXPECTED_EOF,
    );
    // Non-blocking writes may be retried with a different buffer (a Rust
    // Vec moves) and may be partial.
    ctx.set_mode(SslMode::ACCEPT_MOVING_WRITE_BUFFER | SslMode::ENABLE_PARTIAL_WRITE);
    Ok(ctx)
}

/// The name to send as SNI: a DNS name without its trailing dot; `None`
/// for an address literal (`192.0.2.1`, `[192.0.2.1]`, `[IPv6:…]`) or an
/// empty name, which RFC 6066 does not allow in SNI.
fn sni_name(server_name: &str) -> Option<&str> {
    let name = server_name.trim_end_matches('.');
    if name.is_empty() || name.starts_with('[') || name.parse::<IpAddr>().is_ok() {
        return None;
    }
    // A configured name of this shape is a mistake, not a host; not SNI.
    if name.contains(|c: char| c.is_whitespace() || c == '\0' || c == '/') {
        return None;
    }
    Some(name)
}

#[cfg(test)]
mod tests {
    use super::sni_name;

    #[test]
    fn sni_only_for_dns_names() {
        assert_eq!(sni_name("mx.example.org."), Some("mx.example.org"));
        assert_eq!(sni_name("mx.example.org"), Some("mx.example.org"));
        assert_eq!(sni_name("[192.0.2.1]"), None);
        assert_eq!(sni_name("192.0.2.1"), None);
        assert_eq!(sni_name("2001:db8::1"), None);
        assert_eq!(sni_name("[IPv6:2001:db8::1]"), None);
        assert_eq!(sni_name(""), None);
        assert_eq!(sni_name("."), None);
    }
}
