//! SMTP AUTH (RFC 4954) for Postern: who is this client, by the
//! credentials it sent?
//!
//! What this crate owns: the SASL exchanges behind `AUTH`, and two places
//! to check credentials in, behind one trait ([`Authenticator`]):
//!
//! - [`DovecotAuth`] speaks Dovecot's authentication protocol (the
//!   "auth-client" socket, version 1.2), as Postfix and Exim do: Dovecot
//!   offers the mechanisms, runs them and checks the passwords; Postern
//!   only carries base64 back and forth.
//! - [`PasswdFile`] reads a passwd-file in Dovecot's format and runs PLAIN
//!   and LOGIN itself, for a small host that has no Dovecot.
//!
//! What it does not own: the SMTP side. The daemon parses `AUTH`, decides
//! whether a plaintext mechanism may be offered before TLS, turns each
//! [`Step`] into a reply (334, 235, 535, 501, 454) and logs. Nor does it
//! decide what an authenticated client may do (relaying is the daemon's).
//!
//! The one decision that shapes the crate: the API is blocking and
//! synchronous, one call per SMTP line. The daemon runs an authenticator
//! in a worker thread of its queue runner, so a slow Dovecot or a slow
//! password hash (Argon2 and bcrypt are slow on purpose) stalls that
//! thread and nothing else; in exchange every backend is a plain state
//! machine plus a socket or a file, with no event loop to share. Many
//! exchanges may be open at once (one per SMTP session), told apart by an
//! id the caller picks.
//!
//! Security posture: everything a client sends is hostile. It is decoded
//! and checked here before any backend sees it (base64 is validated and
//! re-encoded, mechanism names are matched against the offered list, no
//! client byte reaches Dovecot's line protocol unescaped), and no input
//! makes this crate panic. Reasons in [`Step`] hold no control
//! characters, so they may be logged or put into a reply as they are.

#![forbid(unsafe_code)]

mod dovecot;
mod passwd_file;
mod sasl;
mod schemes;
mod users;

use std::net::IpAddr;
use std::path::PathBuf;

pub use dovecot::DovecotAuth;
pub use passwd_file::PasswdFile;

/// A mechanism a backend offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mechanism {
    /// The name in upper case, as it goes into the EHLO keyword: `PLAIN`.
    pub name: String,
    /// The mechanism sends the password in clear (PLAIN, LOGIN): the
    /// daemon offers it only over TLS unless told otherwise.
    pub plaintext: bool,
}

/// Who is on the other end, as Dovecot is told it (`lip=`, `rip=`,
/// `secured`): its penalties, its `allow_nets` and its
/// `disable_plaintext_auth` depend on it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    /// Our address of the connection.
    pub local_ip: Option<IpAddr>,
    /// The client's address.
    pub remote_ip: Option<IpAddr>,
    /// TLS is on.
    pub secured: bool,
}

/// One step of an exchange: what the daemon answers to the client.
///
/// Every step but [`Step::Challenge`] ends the exchange: the id may be
/// used again afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send `334 <base64>` (the text is already base64; may be empty).
    Challenge(String),
    /// Authenticated as this user (authcid as the backend names it).
    Success {
        /// The user, as the backend names it.
        user: String,
    },
    /// Wrong credentials or refused mechanism: 535.
    Failure {
        /// Why, for the log (no control characters).
        reason: String,
    },
    /// Client's base64 could not be decoded / protocol violation: the
    /// daemon answers 501.
    Malformed,
    /// The backend is unavailable or failed temporarily (Dovecot down,
    /// file unreadable): 454.
    TemporaryFailure {
        /// Why, for the log (no control characters).
        reason: String,
    },
}

/// A place to check SMTP AUTH credentials in.
///
/// Calls block (see the crate doc). Bad client input never panics: it is
/// a [`Step::Malformed`] or a [`Step::Failure`].
pub trait Authenticator: Send {
    /// Mechanisms offered now (Dovecot: from its MECH lines, excluding
    /// private ones; file backend: PLAIN, LOGIN).
    fn mechanisms(&mut self) -> Result<Vec<Mechanism>, AuthError>;

    /// Starts exchange `id` (unique per open exchange, chosen by the
    /// caller; an id still open is cancelled first). `initial` is the
    /// base64 initial response as the client sent it after the mechanism
    /// name: `None` if absent, `Some("")` for `=` (`Some("=")` is taken
    /// the same way).
    fn start(
        &mut self,
        id: u32,
        mechanism: &str,
        initial: Option<&str>,
        client: &ClientInfo,
    ) -> Step;

    /// The client's base64 answer to a [`Step::Challenge`] of exchange
    /// `id`.
    fn respond(&mut self, id: u32, response: &str) -> Step;

    /// The client cancelled (`*`) or went away: forget exchange `id`.
    fn cancel(&mut self, id: u32);

    /// Problems found reading the backend's files since the last call
    /// (a passwd-file's bad lines), each handed out once, for the log.
    fn load_errors(&mut self) -> Vec<AuthError> {
        Vec::new()
    }
}

/// What went wrong outside an exchange: a backend that cannot be used,
/// or a line of the passwd-file that was skipped.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The passwd-file cannot be read.
    #[error("{}: {error}", path.display())]
    Read {
        /// The passwd-file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// A line of the passwd-file was skipped, or names a user who cannot
    /// log in (an unknown password scheme).
    #[error("{}:{line}: {message}", path.display())]
    Line {
        /// The passwd-file.
        path: PathBuf,
        /// 1-based.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
    /// Dovecot's auth socket cannot be reached, or did not complete the
    /// handshake.
    #[error("{}: {reason}", socket.display())]
    Unavailable {
        /// The auth-client socket.
        socket: PathBuf,
        /// Why.
        reason: String,
    },
}

/// Most exchanges open at once per authenticator: a caller that forgets
/// to cancel cannot make it grow without bound. Far above what one
/// daemon's sessions need.
const MAX_OPEN_EXCHANGES: usize = 4096;

/// `text` without control characters, and at most 200 characters long: a
/// reason from Dovecot or an error is safe in a log line and a reply.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_replaces_control_characters() {
        assert_eq!(printable("a\r\nb\tc\u{7f}"), "a  b c ");
        assert_eq!(printable(&"x".repeat(500)).len(), 200);
    }

    #[test]
    fn line_errors_name_file_and_line() {
        let e = AuthError::Line {
            path: "auth-users".into(),
            line: 3,
            message: "no password".into(),
        };
        assert_eq!(e.to_string(), "auth-users:3: no password");
    }
}
