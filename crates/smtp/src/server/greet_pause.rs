//! sendmail's greet pause (`FEATURE(greet_pause)`) and the "null server"
//! it turns a session into.
//!
//! An SMTP client must wait for the greeting before it speaks (RFC 5321
//! §4.3.1); spam engines that blast their commands at once do not. The
//! shell holds the greeting for the configured pause, watching the socket
//! without reading it, and tells [`Session::greet`] whether the client
//! spoke first. If it did, the session does what sendmail's `smtp()` does:
//! the greeting becomes `554 <host> ESMTP not accepting messages`, and
//! from then on every command but QUIT, HELO, EHLO, NOOP and RSET gets
//! `550 5.0.0 Command rejected`, the 26th such one closing the session
//! (MAXBADCOMMANDS). Commands the client sent early are answered in that
//! mode, in order.
//!
//! The access map's `Connect:` REJECT or ERROR (sendmail's check_relay)
//! makes the same null server from the start, with a normal greeting and
//! the map's reply (`550 5.7.1 Access denied`) for the refused commands.

use std::time::Duration;

use super::{replies, Event, Mode, Session};
use crate::command::Verb;
use crate::limits;

impl Session {
    /// The greet pause is over: `early` is how long into it the client
    /// sent its first bytes, `None` if it waited. Sends the greeting (or
    /// the refusal) and answers whatever was received meanwhile.
    pub fn greet(&mut self, early: Option<Duration>) {
        if !matches!(self.mode, Mode::GreetPause) {
            return;
        }
        self.mode = Mode::Commands;
        match early {
            None => self.reply(replies::greeting(
                self.cfg.greeting_code,
                &self.cfg.greeting,
            )),
            Some(after) => {
                self.null_server = Some(replies::command_rejected());
                self.event(Event::PreGreetingTraffic { after });
                self.reply(replies::not_accepting(&self.cfg.hostname));
            }
        }
        self.drive();
    }

    /// True when the client spoke before the greeting and its commands
    /// are refused.
    pub fn is_rejecting(&self) -> bool {
        self.null_server.is_some()
    }

    /// In a null server, refuses `verb` (true) unless sendmail lets it
    /// through: QUIT, HELO, EHLO, NOOP and RSET are processed normally.
    pub(super) fn null_server_refuses(&mut self, verb: Verb) -> bool {
        let Some(refusal) = self.null_server.clone() else {
            return false;
        };
        if matches!(
            verb,
            Verb::Quit | Verb::Helo | Verb::Ehlo | Verb::Noop | Verb::Rset
        ) {
            return false;
        }
        // sendmail counts these as bad commands before answering: the
        // one past MAXBADCOMMANDS gets the 421 instead of a 550.
        self.bad_commands += 1;
        if self.bad_commands > limits::BAD_COMMANDS {
            self.event(Event::TooManyBadCommands);
            let reply = replies::too_many_bad_commands(&self.cfg.hostname);
            self.reply(reply);
            self.close();
        } else {
            self.reply(refusal);
        }
        true
    }
}
