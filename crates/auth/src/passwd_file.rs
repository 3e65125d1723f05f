//! The passwd-file backend: PLAIN and LOGIN checked against a file in
//! Dovecot's passwd-file format, for a small host without Dovecot.
//!
//! It owns the file's freshness: the file is read again when its
//! modification time, size or inode changed (an editor that renames a new
//! file into place changes the inode), checked before every password
//! verification, so a changed password counts from the next attempt. A
//! file that cannot be read any more is a temporary failure (454), never
//! a silent fall back to the old contents: the administrator may have
//! removed a user on purpose. The parsing is [`crate::users`]'; the
//! exchanges are [`crate::sasl`]'.

use std::collections::HashMap;
use std::fs::{self, File, Metadata};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::SystemTime;

use crate::sasl::{self, Exchange, Next};
use crate::users::Users;
use crate::{AuthError, Authenticator, ClientInfo, Mechanism, Step, MAX_OPEN_EXCHANGES};

/// What identifies one version of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    size: u64,
    dev: u64,
    ino: u64,
}

impl Stamp {
    fn of(meta: &Metadata) -> Stamp {
        Stamp {
            modified: meta.modified().ok(),
            size: meta.len(),
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

/// SMTP AUTH against a passwd-file.
#[derive(Debug)]
pub struct PasswdFile {
    path: PathBuf,
    users: Users,
    stamp: Stamp,
    /// The errors of the version read last, until taken.
    errors: Vec<AuthError>,
    exchanges: HashMap<u32, Exchange>,
}

impl PasswdFile {
    /// Reads the passwd-file at `path` now, so that a missing or
    /// unreadable file shows at startup. Malformed lines do not make it
    /// fail: see [`PasswdFile::load_errors`].
    pub fn new(path: PathBuf) -> Result<PasswdFile, AuthError> {
        let (users, stamp, errors) = load(&path)?;
        Ok(PasswdFile {
            path,
            users,
            stamp,
            errors,
            exchanges: HashMap::new(),
        })
    }

    /// The skipped lines and users who cannot log in (each as
    /// `file:line: message`) of the file as read last, each handed out
    /// once: call it after [`PasswdFile::new`] and after any call, and
    /// log what it returns. When the file is read again, the errors of
    /// the new version replace those not taken yet.
    pub fn take_load_errors(&mut self) -> Vec<AuthError> {
        std::mem::take(&mut self.errors)
    }

    /// Reads the file again if it changed since the last time.
    fn refresh(&mut self) -> Result<(), AuthError> {
        let meta = fs::metadata(&self.path).map_err(|error| AuthError::Read {
            path: self.path.clone(),
            error,
        })?;
        if Stamp::of(&meta) != self.stamp {
            let (users, stamp, errors) = load(&self.path)?;
            self.users = users;
            self.stamp = stamp;
            self.errors = errors;
        }
        Ok(())
    }

    /// Carries out what the exchange `id` asked for next.
    fn proceed(&mut self, id: u32, next: Next) -> Step {
        match next {
            Next::Challenge(state, text) => {
                self.exchanges.insert(id, state);
                Step::Challenge(text)
            }
            Next::Verify { user, password } => {
                if let Err(e) = self.refresh() {
                    return Step::TemporaryFailure {
                        reason: crate::printable(&e.to_string()),
                    };
                }
                if self.users.check(&user, &password) {
                    Step::Success { user }
                } else {
                    // Unknown user and wrong password alike: the client
                    // learns nothing about which names exist.
                    Step::Failure {
                        reason: "authentication failed".into(),
                    }
                }
            }
            Next::Malformed => Step::Malformed,
            Next::Refused(reason) => Step::Failure {
                reason: reason.into(),
            },
        }
    }
}

impl Authenticator for PasswdFile {
    fn load_errors(&mut self) -> Vec<AuthError> {
        self.take_load_errors()
    }

    fn mechanisms(&mut self) -> Result<Vec<Mechanism>, AuthError> {
        Ok(sasl::MECHANISMS
            .iter()
            .map(|name| Mechanism {
                name: name.to_string(),
                plaintext: true,
            })
            .collect())
    }

    fn start(
        &mut self,
        id: u32,
        mechanism: &str,
        initial: Option<&str>,
        _client: &ClientInfo,
    ) -> Step {
        self.exchanges.remove(&id);
        if self.exchanges.len() >= MAX_OPEN_EXCHANGES {
            return Step::TemporaryFailure {
                reason: "too many authentication exchanges open".into(),
            };
        }
        let next = sasl::start(mechanism, initial);
        self.proceed(id, next)
    }

    fn respond(&mut self, id: u32, response: &str) -> Step {
        let Some(state) = self.exchanges.remove(&id) else {
            return Step::Failure {
                reason: "no authentication exchange in progress".into(),
            };
        };
        let next = sasl::respond(state, response);
        self.proceed(id, next)
    }

    fn cancel(&mut self, id: u32) {
        self.exchanges.remove(&id);
    }
}

/// Reads and parses the file; the stamp is the opened file's, so a
/// rename between the check and the read is seen at the next check.
fn load(path: &PathBuf) -> Result<(Users, Stamp, Vec<AuthError>), AuthError> {
    let read_error = |error| AuthError::Read {
        path: path.clone(),
        error,
    };
    let mut file = File::open(path).map_err(read_error)?;
    let stamp = Stamp::of(&file.metadata().map_err(read_error)?);
    let mut text = Vec::new();
    file.read_to_end(&mut text).map_err(read_error)?;
    let (users, errors) = Users::parse(path, &text);
    Ok((users, stamp, errors))
}
