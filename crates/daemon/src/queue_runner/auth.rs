//! SMTP AUTH for fronts, answered off the event loop.
//!
//! A front cannot check a password: it is jailed where neither Dovecot's
//! socket nor the `auth-users` file can be reached, and it is the process
//! a network attacker talks to. The queue runner does it for the front,
//! and so it knows, without asking the front, which sessions
//! authenticated: those may relay, and their messages record the
//! identity. A hash verification (bcrypt, Argon2) or Dovecot's reply can
//! take a while, so the backend runs in a worker thread of its own; its
//! answers come back through the queue runner's waker.
//!
//! The backend: Dovecot's authentication service when `AuthDovecotSocket`
//! is set, else the `auth-users` side table when it exists, else none
//! (no AUTH offered).

use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mio::{Token, Waker};
use postern_auth::{Authenticator, ClientInfo, Mechanism, Step};
use postern_config::AuthSettings;
use postern_ipc::AuthMechanism;

use crate::log;
use crate::settings::Settings;

/// How often the backend's mechanisms are asked again (Dovecot may have
/// been reconfigured or restarted).
const REFRESH: Duration = Duration::from_secs(60);

/// One exchange's step, for the front holding `token`.
pub struct Finished {
    pub token: Token,
    pub exchange: u32,
    pub step: Step,
}

enum Job {
    Start {
        token: Token,
        exchange: u32,
        mechanism: String,
        initial: Option<String>,
        client: ClientInfo,
    },
    Respond {
        token: Token,
        exchange: u32,
        response: String,
    },
    Cancel {
        exchange: u32,
    },
}

/// The worker thread and what it last said it offers.
pub struct Auth {
    jobs: Sender<Job>,
    results: Receiver<Finished>,
    offered: Arc<Mutex<Vec<AuthMechanism>>>,
    next_exchange: u32,
}

/// The configured backend, if any.
fn backend(settings: &Settings) -> Option<(Box<dyn Authenticator>, String)> {
    let config = &settings.config;
    if let Some(socket) = &config.auth.dovecot_socket {
        let name = format!("Dovecot at {}", socket.display());
        return Some((
            Box::new(postern_auth::DovecotAuth::new(socket.clone())),
            name,
        ));
    }
    let users: PathBuf = config.table_path("auth-users");
    if !users.exists() {
        return None;
    }
    match postern_auth::PasswdFile::new(users.clone()) {
        Ok(file) => Some((Box::new(file), users.display().to_string())),
        Err(e) => {
            log::err(&format!("AUTH: {e}"));
            None
        }
    }
}

impl Auth {
    /// Starts the worker for the configured backend; `None` when there is
    /// none, or AuthMechanisms is empty.
    pub fn start(settings: &Settings, waker: Arc<Waker>) -> Option<Auth> {
        if settings.config.auth.mechanisms.is_empty() {
            return None;
        }
        let (backend, name) = backend(settings)?;
        let (jobs, job_rx) = mpsc::channel();
        let (result_tx, results) = mpsc::channel();
        let offered = Arc::new(Mutex::new(Vec::new()));
        let mut worker = Worker {
            backend,
            config: settings.config.auth.clone(),
            offered: Arc::clone(&offered),
            results: result_tx,
            waker,
        };
        // The first answer before any front asks: a client's first EHLO
        // must show the mechanisms (Dovecot answers on a local socket, at
        // once or with an error).
        worker.refresh();
        let spawned = std::thread::Builder::new()
            .name("auth".into())
            .spawn(move || worker.run(job_rx));
        if let Err(e) = spawned {
            log::err(&format!("queue runner: cannot start AUTH ({name}): {e}"));
            return None;
        }
        log::info(
            log::Level::EndOfJob,
            &format!("queue runner: AUTH checked by {name}"),
        );
        Some(Auth {
            jobs,
            results,
            offered,
            next_exchange: 0,
        })
    }

    /// The mechanisms a new front may offer now.
    pub fn offered(&self) -> Vec<AuthMechanism> {
        self.offered.lock().map(|o| o.clone()).unwrap_or_default()
    }

    /// Starts an exchange for the front `token`; returns its number.
    pub fn begin(
        &mut self,
        token: Token,
        mechanism: String,
        initial: Option<String>,
        client: ClientInfo,
    ) -> u32 {
        self.next_exchange = self.next_exchange.wrapping_add(1);
        let exchange = self.next_exchange;
        let _ = self.jobs.send(Job::Start {
            token,
            exchange,
            mechanism,
            initial,
            client,
        });
        exchange
    }

    /// The client's answer to a challenge of `exchange`.
    pub fn respond(&self, token: Token, exchange: u32, response: String) {
        let _ = self.jobs.send(Job::Respond {
            token,
            exchange,
            response,
        });
    }

    /// Forgets `exchange` (a new AUTH, or the front went away).
    pub fn cancel(&self, exchange: u32) {
        let _ = self.jobs.send(Job::Cancel { exchange });
    }

    /// Steps the worker finished since the last call.
    pub fn finished(&self) -> Vec<Finished> {
        self.results.try_iter().collect()
    }
}

struct Worker {
    backend: Box<dyn Authenticator>,
    config: AuthSettings,
    offered: Arc<Mutex<Vec<AuthMechanism>>>,
    results: Sender<Finished>,
    waker: Arc<Waker>,
}

impl Worker {
    fn run(mut self, jobs: Receiver<Job>) {
        loop {
            match jobs.recv_timeout(REFRESH) {
                Ok(job) => self.job(job),
                Err(RecvTimeoutError::Timeout) => self.refresh(),
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    fn job(&mut self, job: Job) {
        let (token, exchange, step) = match job {
            Job::Start {
                token,
                exchange,
                mechanism,
                initial,
                client,
            } => {
                let step = if self.offers(&mechanism) {
                    self.backend
                        .start(exchange, &mechanism, initial.as_deref(), &client)
                } else {
                    Step::TemporaryFailure {
                        reason: format!("mechanism {mechanism} not available now"),
                    }
                };
                (token, exchange, step)
            }
            Job::Respond {
                token,
                exchange,
                response,
            } => (token, exchange, self.backend.respond(exchange, &response)),
            Job::Cancel { exchange } => {
                self.backend.cancel(exchange);
                return;
            }
        };
        if matches!(step, Step::TemporaryFailure { .. }) {
            // Dovecot went away, perhaps with other mechanisms now.
            self.refresh();
        }
        let _ = self.results.send(Finished {
            token,
            exchange,
            step,
        });
        let _ = self.waker.wake();
    }

    fn offers(&self, mechanism: &str) -> bool {
        self.offered
            .lock()
            .is_ok_and(|o| o.iter().any(|m| m.name == mechanism))
    }

    fn refresh(&mut self) {
        for e in self.backend.load_errors() {
            log::err(&format!("AUTH: {e}"));
        }
        let offered = match self.backend.mechanisms() {
            Ok(backend) => offerable(&self.config, &backend),
            Err(e) => {
                log::err(&format!("AUTH backend: {e}"));
                Vec::new()
            }
        };
        if let Ok(mut o) = self.offered.lock() {
            *o = offered;
        }
    }
}

/// What a session may offer: AuthMechanisms, in its order, that the
/// backend has, without those AuthOptions `a`, `d` or `y` exclude.
pub fn offerable(config: &AuthSettings, backend: &[Mechanism]) -> Vec<AuthMechanism> {
    let options = &config.options;
    config
        .mechanisms
        .iter()
        .filter_map(|name| backend.iter().find(|m| &m.name == name))
        .filter(|m| {
            let risks = Risks::of(&m.name);
            !(options.no_active && risks.active
                || options.no_dictionary && risks.dictionary
                || options.no_anonymous && risks.anonymous)
        })
        .map(|m| AuthMechanism {
            name: m.name.clone(),
            plaintext: m.plaintext,
        })
        .collect()
}

/// What a mechanism is open to, as Cyrus SASL's security flags say
/// (which sendmail's AuthOptions letters select on).
struct Risks {
    active: bool,
    dictionary: bool,
    anonymous: bool,
}

impl Risks {
    fn of(name: &str) -> Risks {
        let (active, dictionary, anonymous) = match name {
            "ANONYMOUS" => (true, true, true),
            "GSSAPI" | "GS2-KRB5" | "KERBEROS_V4" | "EXTERNAL" => (false, false, false),
            "DIGEST-MD5" => (false, true, false),
            n if n.starts_with("SCRAM-") => (false, true, false),
            // PLAIN, LOGIN, CRAM-MD5, NTLM, and anything unknown.
            _ => (true, true, false),
        };
        Risks {
            active,
            dictionary,
            anonymous,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mech(name: &str, plaintext: bool) -> Mechanism {
        Mechanism {
            name: name.into(),
            plaintext,
        }
    }

    #[test]
    fn offered_in_the_configured_order_and_filtered() {
        let backend = [
            mech("PLAIN", true),
            mech("LOGIN", true),
            mech("CRAM-MD5", false),
            mech("DIGEST-MD5", false),
        ];
        let mut config = AuthSettings {
            mechanisms: vec!["DIGEST-MD5".into(), "CRAM-MD5".into(), "GSSAPI".into()],
            ..AuthSettings::default()
        };
        let names = |c: &AuthSettings| -> Vec<String> {
            offerable(c, &backend).into_iter().map(|m| m.name).collect()
        };
        assert_eq!(names(&config), ["DIGEST-MD5", "CRAM-MD5"]);
        config.options = postern_config::AuthOptions::parse("a").unwrap();
        assert_eq!(names(&config), ["DIGEST-MD5"]);
        config.options = postern_config::AuthOptions::parse("d").unwrap();
        assert!(names(&config).is_empty());
        config.mechanisms = vec!["LOGIN".into(), "PLAIN".into()];
        config.options = postern_config::AuthOptions::default();
        let offered = offerable(&config, &backend);
        assert_eq!(offered[0].name, "LOGIN");
        assert!(offered[0].plaintext);
    }
}
