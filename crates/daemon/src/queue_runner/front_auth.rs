//! A front's AUTH requests: handed to the backend's worker (`auth.rs`),
//! its steps passed back, and the outcome kept here, where the front
//! cannot change it. A front that keeps failing past AuthMaxFailures (its
//! session should have closed) is cut off.

use mio::Token;
use postern_auth::{ClientInfo, Step};
use postern_ipc::QueueToFront;

use super::QueueRunner;
use crate::{log, policy};

type Disconnect = String;

impl QueueRunner {
    pub(super) fn auth_start(
        &mut self,
        token: Token,
        mechanism: String,
        initial_response: Option<String>,
        tls: bool,
    ) -> Result<(), Disconnect> {
        let daemon = self.fronts.get(&token).map(|f| f.daemon.clone());
        let listener_allows =
            daemon.is_some_and(|d| !self.settings.listener_modifiers(&d).contains('A'));
        let Some(auth) = self.auth.as_mut().filter(|_| listener_allows) else {
            return self.refuse(token, 503, "5.3.3", "AUTH not available");
        };
        let Some(offered) = auth.offered().into_iter().find(|m| m.name == mechanism) else {
            return self.refuse(
                token,
                504,
                "5.3.3",
                &format!("AUTH mechanism {mechanism} not available"),
            );
        };
        if offered.plaintext && !tls && self.settings.config.auth.options.no_plaintext {
            return self.refuse(
                token,
                538,
                "5.7.11",
                "Encryption required for requested authentication mechanism",
            );
        }
        let front = self.fronts.get_mut(&token).ok_or_else(String::new)?;
        if front.authenticated.is_some() {
            return Err("AUTH after authenticating".into());
        }
        let client = ClientInfo {
            local_ip: None,
            remote_ip: Some(front.peer.ip()),
            secured: tls,
        };
        if let Some((earlier, _)) = front.auth_exchange.take() {
            auth.cancel(earlier);
        }
        let exchange = auth.begin(token, mechanism.clone(), initial_response, client);
        front.auth_exchange = Some((exchange, mechanism));
        Ok(())
    }

    pub(super) fn auth_respond(
        &mut self,
        token: Token,
        response: String,
    ) -> Result<(), Disconnect> {
        let front = self.fronts.get(&token).ok_or_else(String::new)?;
        let (Some(auth), Some((exchange, _))) = (&self.auth, &front.auth_exchange) else {
            return Err("an AUTH response outside an exchange".into());
        };
        auth.respond(token, *exchange, response);
        Ok(())
    }

    /// Passes the worker's finished steps on to their fronts.
    pub(super) fn auth_finished(&mut self) {
        let Some(auth) = &self.auth else {
            return;
        };
        for done in auth.finished() {
            if let Err(why) = self.auth_step(done.token, done.exchange, done.step) {
                self.drop_front(done.token, &why);
            }
        }
    }

    fn auth_step(&mut self, token: Token, exchange: u32, step: Step) -> Result<(), Disconnect> {
        let max_failures = self.settings.config.auth.max_failures;
        let Some(front) = self.fronts.get_mut(&token) else {
            return Ok(());
        };
        // A step of an exchange the front has since given up.
        let Some((current, mechanism)) = front.auth_exchange.clone() else {
            return Ok(());
        };
        if current != exchange {
            return Ok(());
        }
        let client = policy::client_name(&front.peer);
        if !matches!(step, Step::Challenge(_)) {
            front.auth_exchange = None;
        }
        match step {
            Step::Challenge(challenge) => {
                self.reply(token, &QueueToFront::AuthChallenge { challenge }, &[])
            }
            Step::Success { user } => {
                front.authenticated = Some(user.clone());
                log::info(
                    log::Level::Authentication,
                    &format!(
                        "AUTH=server, relay={client}, authid={}, mech={mechanism}, bits=0",
                        log_safe(&user)
                    ),
                );
                self.reply(token, &QueueToFront::AuthSuccess { user }, &[])
            }
            Step::Failure { reason } => {
                front.auth_failures += 1;
                let failures = front.auth_failures;
                log::notice(
                    log::Level::Authentication,
                    &format!(
                        "AUTH failure ({mechanism}): {}, relay={client}",
                        log_safe(&reason)
                    ),
                );
                if max_failures > 0 && failures > max_failures {
                    return Err(format!("{failures} failed AUTH attempts"));
                }
                self.reply(token, &QueueToFront::AuthFailed, &[])
            }
            Step::Malformed => {
                front.auth_failures += 1;
                log::notice(
                    log::Level::Authentication,
                    &format!("AUTH failure ({mechanism}): malformed response, relay={client}"),
                );
                self.refuse(token, 501, "5.5.2", "AUTH aborted")
            }
            Step::TemporaryFailure { reason } => {
                log::err(&format!(
                    "AUTH ({mechanism}) for {client}: {}",
                    log_safe(&reason)
                ));
                self.refuse(token, 454, "4.7.0", "Temporary authentication failure")
            }
        }
    }
}

/// A backend's or client's text as one bounded log line.
fn log_safe(text: &str) -> String {
    text.chars()
        .take(200)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}
