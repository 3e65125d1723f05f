//! The Dovecot backend: SMTP AUTH carried to Dovecot's auth-client
//! socket, the way Postfix's `xsasl_dovecot_server` and Exim do it.
//! Dovecot offers the mechanisms, runs them, and checks the credentials
//! against whatever passdb it has; we pass base64 back and forth.
//!
//! What this module owns: the connection's life and the mapping of the
//! caller's exchange ids to Dovecot's request ids. Dovecot's ids are ours,
//! fresh for every request, so a late answer to a cancelled or timed-out
//! request can never be taken for the answer to a new one, and a caller
//! reusing an id cannot confuse Dovecot (which disconnects a client that
//! sends a duplicate id, as it does for an unknown mechanism: hence only
//! mechanisms from Dovecot's own list are ever sent).
//!
//! The connection is made lazily, at the first call that needs it, and
//! made again when it broke: a request that finds the connection dead
//! (Dovecot restarted) is sent once more on a new one. An exchange that
//! was half-way on a connection that broke is lost with it (Dovecot kept
//! its state) and answers a temporary failure. Each `DovecotAuth` holds
//! one connection; several in one process may share a Dovecot (they send
//! the same `CPID`, which Dovecot 2.3 accepts on the auth-client socket:
//! tests/dovecot.rs checks it).

mod connection;
mod protocol;

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use connection::Connection;

use crate::{
    printable, sasl, AuthError, Authenticator, ClientInfo, Mechanism, Step, MAX_OPEN_EXCHANGES,
};

/// How long connecting and the handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one request may wait for Dovecot's answer. Dovecot delays a
/// failed login by `auth_failure_delay` (2 s by default) and a client
/// address with many failures by up to 15 s more: 30 s covers both.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// An exchange waiting for the client's answer to a challenge.
#[derive(Debug, Clone, Copy)]
struct Open {
    /// Dovecot's request id.
    request: u32,
    /// The connection it lives on.
    generation: u64,
}

/// SMTP AUTH through Dovecot's auth-client socket.
#[derive(Debug)]
pub struct DovecotAuth {
    socket: PathBuf,
    connection: Option<Connection>,
    /// Counts connections made: an exchange of an older one is lost.
    generation: u64,
    exchanges: HashMap<u32, Open>,
    /// The last request id used on any connection.
    last_request: u32,
    handshake_timeout: Duration,
    request_timeout: Duration,
}

impl DovecotAuth {
    /// An authenticator for the auth-client socket at `socket`
    /// (`/var/spool/postfix/private/auth`, `/run/dovecot/auth-client`, …).
    /// Nothing is connected yet.
    pub fn new(socket: PathBuf) -> DovecotAuth {
        DovecotAuth {
            socket,
            connection: None,
            generation: 0,
            exchanges: HashMap::new(),
            last_request: 0,
            handshake_timeout: HANDSHAKE_TIMEOUT,
            request_timeout: REQUEST_TIMEOUT,
        }
    }

    /// Other limits for connecting with its handshake (10 s by default)
    /// and for one request's answer (30 s).
    pub fn with_timeouts(mut self, handshake: Duration, request: Duration) -> DovecotAuth {
        self.handshake_timeout = handshake;
        self.request_timeout = request;
        self
    }

    /// The connection, made now if there is none.
    fn connect(&mut self) -> Result<&mut Connection, AuthError> {
        let connection =
            match self.connection.take() {
                Some(connection) => connection,
                None => {
                    let connection = Connection::open(&self.socket, self.handshake_timeout)
                        .map_err(|e| AuthError::Unavailable {
                            socket: self.socket.clone(),
                            reason: printable(&e.to_string()),
                        })?;
                    self.generation += 1;
                    connection
                }
            };
        Ok(self.connection.insert(connection))
    }

    /// Tells Dovecot to forget `open`, if it still lives on this
    /// connection.
    fn forget(&mut self, open: Open) {
        if open.generation != self.generation {
            return;
        }
        if let Some(connection) = self.connection.as_mut() {
            if connection.send(&protocol::cancel(open.request)).is_err() {
                self.disconnect();
            }
        }
    }

    /// Drops the connection: the next call makes a new one.
    fn disconnect(&mut self) {
        self.connection = None;
    }

    /// A request id not used before on this object (0 is skipped: Dovecot
    /// takes it for a missing id).
    fn next_request(&mut self) -> u32 {
        self.last_request = self.last_request.wrapping_add(1).max(1);
        self.last_request
    }

    /// Sends `line` (a request for `request`) and waits for its answer,
    /// skipping answers to requests given up on before.
    fn send_and_wait(&mut self, request: u32, line: &str) -> io::Result<protocol::Reply> {
        let deadline = Instant::now() + self.request_timeout;
        let connection = self
            .connection
            .as_mut()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "not connected"))?;
        connection.send(line)?;
        loop {
            let line = connection.read_line(deadline)?;
            match protocol::Reply::parse(&line) {
                Some(reply) if reply.id() == request => return Ok(reply),
                _ => {}
            }
        }
    }

    /// Turns Dovecot's answer into the next step of exchange `id`.
    fn proceed(&mut self, id: u32, request: u32, reply: protocol::Reply) -> Step {
        let continues = matches!(reply, protocol::Reply::Cont { .. });
        let step = reply.into_step();
        let open = Open {
            request,
            generation: self.generation,
        };
        match step {
            Step::Challenge(_) => {
                self.exchanges.insert(id, open);
            }
            // A challenge we refused to pass on: Dovecot still waits.
            _ if continues => self.forget(open),
            _ => {}
        }
        step
    }

    /// The temporary failure for a request that failed on the connection,
    /// which is dropped: after an error or a timeout its state is unknown.
    fn broken(&mut self, error: &io::Error) -> Step {
        self.disconnect();
        Step::TemporaryFailure {
            reason: printable(&format!("{}: {error}", self.socket.display())),
        }
    }
}

/// The connection was there but is not any more (Dovecot restarted or
/// closed it): worth one more try on a new one. A timeout is not: Dovecot
/// is there but slow, and asking again would double the wait.
fn is_broken(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::UnexpectedEof
    )
}

impl Authenticator for DovecotAuth {
    fn mechanisms(&mut self) -> Result<Vec<Mechanism>, AuthError> {
        Ok(self
            .connect()?
            .mechanisms()
            .iter()
            .filter(|m| !m.private)
            .map(|m| Mechanism {
                name: m.name.clone(),
                plaintext: m.plaintext,
            })
            .collect())
    }

    fn start(
        &mut self,
        id: u32,
        mechanism: &str,
        initial: Option<&str>,
        client: &ClientInfo,
    ) -> Step {
        self.cancel(id);
        if self.exchanges.len() >= MAX_OPEN_EXCHANGES {
            return Step::TemporaryFailure {
                reason: "too many authentication exchanges open".into(),
            };
        }
        // Checked and re-encoded here: only canonical base64 goes on.
        let initial = match initial.map(sasl::decode) {
            None => None,
            Some(Some(bytes)) => Some(sasl::encode(&bytes)),
            Some(None) => return Step::Malformed,
        };
        let mut retried = false;
        loop {
            let was_connected = self.connection.is_some();
            let connection = match self.connect() {
                Ok(c) => c,
                Err(e) => {
                    return Step::TemporaryFailure {
                        reason: e.to_string(),
                    }
                }
            };
            // Dovecot's own name for it, and only if it is offered.
            let Some(name) = connection
                .mechanisms()
                .iter()
                .find(|m| !m.private && m.name.eq_ignore_ascii_case(mechanism))
                .map(|m| m.name.clone())
            else {
                return Step::Failure {
                    reason: "mechanism not offered".into(),
                };
            };
            let request = self.next_request();
            let line = protocol::auth(request, &name, client, initial.as_deref());
            match self.send_and_wait(request, &line) {
                Ok(reply) => return self.proceed(id, request, reply),
                // A connection that was already open may have died since
                // (Dovecot restarted): once more on a fresh one.
                Err(e) if is_broken(&e) && was_connected && !retried => {
                    self.disconnect();
                    retried = true;
                }
                Err(e) => return self.broken(&e),
            }
        }
    }

    fn respond(&mut self, id: u32, response: &str) -> Step {
        let Some(open) = self.exchanges.remove(&id) else {
            return Step::Failure {
                reason: "no authentication exchange in progress".into(),
            };
        };
        let on_this_connection = self.connection.is_some() && open.generation == self.generation;
        let Some(bytes) = sasl::decode(response) else {
            // The exchange ends here (501): Dovecot need not wait for it.
            self.forget(open);
            return Step::Malformed;
        };
        if !on_this_connection {
            return Step::TemporaryFailure {
                reason: "the connection to Dovecot was lost during the exchange".into(),
            };
        }
        let line = protocol::cont(open.request, &sasl::encode(&bytes));
        match self.send_and_wait(open.request, &line) {
            Ok(reply) => self.proceed(id, open.request, reply),
            Err(e) => self.broken(&e),
        }
    }

    fn cancel(&mut self, id: u32) {
        if let Some(open) = self.exchanges.remove(&id) {
            self.forget(open);
        }
    }
}
