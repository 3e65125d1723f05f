//! STARTTLS (RFC 3207) and AUTH (RFC 4954).
//!
//! STARTTLS is where a plaintext attacker could inject commands that the
//! server then runs inside TLS (CVE-2011-0411): everything the client sent
//! behind STARTTLS is thrown away before the handshake, and anything that
//! arrives in plaintext while it runs makes `tls_started` fail.

use super::transaction::Waiting;
use super::{replies, Answer, Event, Mode, Question, Session, SessionError};
use crate::line::Line;
use crate::reply::Reply;

impl Session {
    pub(super) fn starttls(&mut self, arg: &str) {
        if self.tls.is_some() {
            return self.reply(replies::tls_already_active());
        }
        if !self.cfg.starttls {
            return self.reply(replies::tls_not_available());
        }
        if !arg.is_empty() {
            return self.reply(replies::no_parameters_allowed());
        }
        if self.tx.is_some() {
            return self.reply(replies::tls_in_transaction());
        }
        self.reply(replies::ready_to_start_tls());
        // At this point there must not be any pending plaintext.
        let bytes = self.input.discard();
        if bytes > 0 {
            self.event(Event::DiscardedAfterStartTls { bytes });
        }
        self.flush();
        self.outputs.push_back(super::Output::StartTls);
        self.mode = Mode::AwaitTls { stray: 0 };
    }

    /// The mechanisms EHLO offers now: under AuthOptions `p`, none that
    /// sends the password in clear before STARTTLS.
    pub(super) fn offered_mechanisms(&self) -> Vec<&str> {
        self.cfg
            .auth_mechanisms
            .iter()
            .filter(|m| self.tls.is_some() || !self.needs_tls(m))
            .map(String::as_str)
            .collect()
    }

    fn needs_tls(&self, mechanism: &str) -> bool {
        self.cfg
            .auth_tls_only
            .iter()
            .any(|m| m.eq_ignore_ascii_case(mechanism))
    }

    pub(super) fn auth(&mut self, arg: &str) {
        if self.cfg.auth_from_shell {
            let resume = super::transaction::Resume::Auth(arg.to_string());
            return self.ask(Question::AuthMechanisms, Waiting::Mechanisms(resume));
        }
        if self.cfg.auth_mechanisms.is_empty() {
            return self.reply(replies::auth_not_available());
        }
        if self.authenticated.is_some() {
            return self.reply(replies::already_authenticated());
        }
        if self.tx.is_some() {
            return self.reply(replies::auth_in_transaction());
        }
        let mut words = arg.split(' ').filter(|w| !w.is_empty());
        let mechanism = words.next().unwrap_or("").to_ascii_uppercase();
        let initial_response = words.next().map(|r| match r {
            "=" => String::new(),
            r => r.to_string(),
        });
        if words.next().is_some() {
            return self.bad(replies::no_parameters_allowed());
        }
        let offered = self
            .cfg
            .auth_mechanisms
            .iter()
            .any(|m| m.eq_ignore_ascii_case(&mechanism));
        if !offered {
            return self.reply(replies::auth_mechanism_unavailable(&mechanism));
        }
        if self.tls.is_none() && self.needs_tls(&mechanism) {
            return self.reply(replies::auth_encryption_required());
        }
        if let Some(text) = initial_response.as_deref().filter(|r| !is_base64(r)) {
            let reply = replies::auth_cannot_decode(text);
            return self.reply(reply);
        }
        self.ask(
            Question::Auth {
                mechanism,
                initial_response,
            },
            Waiting::Auth,
        );
    }

    /// A line answering a 334 challenge: `*` cancels (RFC 4954 §4).
    pub(super) fn auth_response(&mut self, line: Line) {
        self.mode = Mode::Commands;
        let text = String::from_utf8_lossy(&line.bytes).into_owned();
        if text == "*" {
            return self.reply(replies::auth_aborted());
        }
        if !is_base64(&text) {
            let reply = replies::auth_cannot_decode(&text);
            return self.reply(reply);
        }
        self.ask(Question::AuthResponse(text), Waiting::Auth);
    }

    /// The answer to AUTH or to a response line.
    pub(super) fn authenticated(&mut self, answer: Answer) -> Result<(), SessionError> {
        match answer {
            Answer::AuthChallenge(challenge) => {
                self.reply(Reply::plain(334, challenge));
                self.mode = Mode::AuthResponse;
            }
            Answer::AuthSuccess { identity } => {
                self.authenticated = Some(identity);
                self.reply(replies::authenticated());
            }
            Answer::AuthFailed(reply) => self.auth_failed(reply),
            Answer::Reply(reply) => self.reply(reply),
            _ => return Err(SessionError::UnexpectedAnswer),
        }
        Ok(())
    }

    /// A wrong password: each failure is answered a second later than the
    /// one before (guessing gets slower), and the last allowed one ends
    /// the session.
    fn auth_failed(&mut self, reply: Reply) {
        self.auth_failures += 1;
        self.pause(AUTH_FAILURE_DELAY * self.auth_failures.min(MAX_AUTH_DELAY_STEPS));
        self.reply(reply);
        let max = self.cfg.auth_max_failures;
        if max > 0 && self.auth_failures >= max {
            self.event(Event::TooManyAuthFailures {
                failures: self.auth_failures,
            });
            let reply = replies::too_many_auth_failures(&self.cfg.hostname);
            self.reply(reply);
            self.close();
        }
    }
}

/// The delay added per failed AUTH so far.
const AUTH_FAILURE_DELAY: std::time::Duration = std::time::Duration::from_secs(1);

/// The delay grows up to this many times [`AUTH_FAILURE_DELAY`].
const MAX_AUTH_DELAY_STEPS: u32 = 5;

/// RFC 4648 base64 as SASL sends it: the alphabet, `=` padding at the end
/// only, a length divisible by four. The empty string is valid.
fn is_base64(text: &str) -> bool {
    let body = text.trim_end_matches('=');
    text.len() % 4 == 0
        && text.len() - body.len() <= 2
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}
