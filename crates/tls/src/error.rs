//! What can go wrong building a TLS context or running a session.
//!
//! Errors about files name the file, because the operator has to fix that
//! file: the master logs the error and refuses to start (a configured but
//! unusable `ServerCertFile`, `ServerKeyFile` or `CRLFile`) where sendmail
//! would log `STARTTLS=server: file … unsafe` and quietly stop offering
//! STARTTLS.

use std::path::PathBuf;

/// An error from the TLS layer.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A configured certificate, key, CA or CRL file (or the `CACertPath`
    /// directory) is missing, unreadable or holds nothing usable.
    #[error("file {} unreadable: {reason}", file.display())]
    Unreadable {
        /// The file.
        file: PathBuf,
        /// Why, in words (the system error or what was missing in it).
        reason: String,
    },
    /// A private key file that group or others may access: sendmail's
    /// `file … unsafe` (TLS_KEYSFF), which refuses such keys.
    #[error("file {} unsafe: {reason}", file.display())]
    UnsafeKey {
        /// The key file.
        file: PathBuf,
        /// What is wrong with its permissions.
        reason: String,
    },
    /// The private key does not belong to the certificate.
    #[error("private key {} does not match certificate {}", key.display(), cert.display())]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// A private key that loads and matches its certificate but cannot
    /// make a signature that verifies with it (found at start, by the key
    /// holder's self-test).
    #[error("private key {} failed its self-test: {reason}", key.display())]
    SelfTest {
        /// The key file.
        key: PathBuf,
        /// What failed.
        reason: String,
    },
    /// A setting OpenSSL refused (an invalid `CipherList`, a certificate
    /// without its key), or OpenSSL could not set up a context or session.
    #[error("{0}")]
    Config(String),
    /// The TLS handshake failed (the peer's fault or a protocol mismatch).
    #[error("TLS handshake failed: {0}")]
    Handshake(String),
    /// The transport failed underneath TLS.
    #[error("I/O error during TLS: {0}")]
    Io(#[from] std::io::Error),
}

impl TlsError {
    /// An [`TlsError::Unreadable`] for `file`.
    pub(crate) fn unreadable(file: &std::path::Path, reason: impl Into<String>) -> Self {
        TlsError::Unreadable {
            file: file.to_path_buf(),
            reason: reason.into(),
        }
    }
}
