//! Postern's TLS layer: STARTTLS for the fronts (server) and the delivery
//! client, in sendmail's terms.
//!
//! # What this crate owns
//!
//! - **Every OpenSSL call in Postern.** No other crate depends on `openssl`;
//!   they see [`ServerTls`], [`ClientTls`], [`TlsStream`], [`MaybeTls`] and
//!   [`postern_smtp::TlsInfo`].
//! - Building the contexts from the configuration's [`TlsFiles`]
//!   (`ServerCertFile`, `ServerKeyFile`, `ClientCertFile`, `ClientKeyFile`,
//!   `CACertFile`, `CACertPath`, `CRLFile`, `CipherList`, `TLSSrvOptions`),
//!   with sendmail's checks: a key file that group or others may access is
//!   refused (`file … unsafe`), as is a key that does not match its
//!   certificate. TLS 1.2 is the minimum.
//! - Running one TLS session over any `Read + Write` transport and reporting
//!   what it established as sendmail's macros (`{tls_version}`, `{cipher}`,
//!   `{cipher_bits}`, `{alg_bits}`, `{verify}`, `{cert_subject}`,
//!   `{cert_issuer}`) for the `Received:` header and the log lines, plus the
//!   per-certificate verify trace sendmail logs at LogLevel 14.
//!
//! # What it does not
//!
//! - Sockets, polling and timeouts (`Timeout.starttls`): the caller drives
//!   [`TlsStream::handshake`] on readiness. The crate knows nothing of mio.
//! - The SMTP side of STARTTLS: discarding plaintext buffered before the
//!   handshake (CVE-2011-0411) and resetting the session afterwards belong
//!   to `postern_smtp`'s session and the front shell. Hand [`ServerTls::session`]
//!   the raw socket, never a buffered reader that may hold plaintext.
//! - Policy on `{verify}` (rulesets, `tls_rcpt`), DANE, MTA-STS.
//! - Reloading: on SIGHUP the caller builds new contexts.
//!
//! # The decision that shapes it: record, don't abort
//!
//! The certificate verify callback always accepts. sendmail completes the
//! handshake whatever the peer's certificate is and reports the outcome as
//! `{verify}` (`OK`, `FAIL`, `NO`, `NOT`); what to do about it is policy,
//! decided later with the SMTP session in hand. Aborting in the callback
//! would turn every MX with a certificate we cannot verify into a failed
//! handshake for opportunistic STARTTLS, and leave nothing to report. So
//! the callback writes down the verdict and the trace lines, and
//! [`TlsStream::info`] turns them into `{verify}`. See `verify.rs`.
//!
//! # Built before fork, used in a chroot
//!
//! The master builds the contexts once, before any fork; fronts run
//! chrooted in an empty directory where no configured file exists. So
//! every file is read at build time, including each certificate in
//! `CACertPath` (OpenSSL would otherwise look the hashed directory up
//! lazily, during verification, and find nothing in the chroot). See
//! `load.rs`.
//!
//! # Security posture
//!
//! `#![deny(unsafe_code)]`, allowed in one module, `delegate/ffi.rs`: the
//! OpenSSL key methods that ask the key holder for signatures, which
//! `openssl-sys` does not bind. No privileges are needed or changed here.
//! Nothing the peer sends may panic: certificate names are cleaned of
//! control characters and capped before they reach logs or headers, the
//! trace is bounded, and no lock is unwrapped.

#![deny(unsafe_code)]
#![warn(missing_docs)]

mod context;
mod delegate;
mod error;
mod holder;
mod load;
mod maybe;
mod names;
mod stream;
mod verify;

pub use context::{ClientTls, ServerTls};
pub use delegate::{
    delegated_key, set_process_signer, with_thread_signer, KeyFingerprint, KeySigner, SignOp,
};
pub use error::TlsError;
pub use holder::{KeyLoadError, KeyStore, LocalSigner};
pub use maybe::MaybeTls;
pub use postern_config::{TlsFiles, TlsSrvOptions};
pub use postern_smtp::{TlsInfo, Verify};
pub use stream::{Handshake, TlsStream};

/// Where a context's private keys are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keys {
    /// Read from the key files into this process: `--check-config`, the
    /// key holder's own checks, and tests.
    Load,
    /// Nowhere in this process: each key is made from its certificate's
    /// public key and signs through the process's [`KeySigner`], a
    /// socket to the key holder. What the daemon's contexts use, so that
    /// no network-facing process holds a private key.
    AskHolder,
}
