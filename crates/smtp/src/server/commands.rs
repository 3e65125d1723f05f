//! Command dispatch, and the commands that need no question answered:
//! HELO, EHLO, RSET, NOOP, QUIT and the bad-command accounting.

use super::attack::Repeated;
use super::{replies, Event, Greeted, Session};
use crate::command::{split_command, Verb};
use crate::limits;
use crate::line::Line;
use crate::privacy::PrivacyFlags;
use crate::reply::Reply;

impl Session {
    /// Handles one complete command line.
    pub(super) fn command(&mut self, line: Line) {
        if line.has_bare_lf() {
            return self.bad(replies::bare_lf_command());
        }
        if line.has_bare_cr() {
            return self.bad(replies::bare_cr_command());
        }
        let text = String::from_utf8_lossy(&line.bytes).into_owned();
        if self.cfg.trace_commands {
            self.event(Event::Command(text.clone()));
        }
        let Some(cmd) = split_command(&text).filter(|_| text.is_ascii() && !text.contains('\0'))
        else {
            let shown = self.reflect(&text);
            let reply = replies::unrecognized(&shown);
            if self.cfg.ask_unknown {
                // The mail filters see it first (sendmail's milter_unknown).
                let waiting = super::transaction::Waiting::Unknown(reply);
                return self.ask(super::Question::Unknown(text), waiting);
            }
            return self.bad(reply);
        };
        if line.wire_len > cmd.spec.max_line {
            return self.bad(replies::line_too_long());
        }
        let arg = cmd.arg;
        if self.null_server_refuses(cmd.spec.verb) {
            return;
        }
        match cmd.spec.verb {
            Verb::Helo => self.hello(arg, false),
            Verb::Ehlo => self.hello(arg, true),
            Verb::Mail => self.mail(arg),
            Verb::Rcpt => self.rcpt(arg),
            Verb::Data => self.data(),
            Verb::Rset => {
                self.tx = None;
                self.reply(replies::reset());
            }
            Verb::Noop => {
                if let Some(slow) = self.repeated(Repeated::Noise, "NOOP") {
                    self.pause(slow.before + slow.answer);
                    self.reply(replies::ok());
                }
            }
            Verb::Quit => {
                let reply = replies::closing(&self.cfg.hostname);
                self.reply(reply);
                self.close();
            }
            Verb::Vrfy => self.vrfy(arg),
            Verb::Expn => self.expn(arg),
            Verb::Help => self.help(arg),
            Verb::Verb => self.verb(),
            Verb::Etrn => self.etrn(arg),
            Verb::StartTls => self.starttls(arg),
            Verb::Auth => self.auth(arg),
        }
    }

    /// The client's own text as it may appear in a reply: `(suppressed)`
    /// under `noreflection`, as sendmail's SHOWCMDINREPLY does.
    fn reflect(&self, text: &str) -> String {
        if self.cfg.privacy.contains(PrivacyFlags::NO_REFLECTION) {
            "(suppressed)".to_string()
        } else {
            text.chars().take(limits::COMMAND_LINE).collect()
        }
    }

    /// Sends a reply to a command that was not SMTP, and ends the session
    /// at sendmail's MAXBADCOMMANDS.
    pub(super) fn bad(&mut self, reply: Reply) {
        self.reply(reply);
        self.bad_commands += 1;
        if self.bad_commands >= limits::BAD_COMMANDS {
            self.event(Event::TooManyBadCommands);
            let reply = replies::too_many_bad_commands(&self.cfg.hostname);
            self.reply(reply);
            self.close();
        }
    }

    /// A command that must be the last of a pipelined group had more input
    /// queued behind it: refuse and close (sendmail 8.18 and Postfix 3.9 do
    /// the same), so that a client cannot race ahead of our replies.
    pub(super) fn out_of_sync(&mut self, phase: &'static str) -> bool {
        if !self.traffic_before_response() {
            return false;
        }
        self.event(Event::PipeliningViolation { phase });
        self.reply(replies::protocol_error());
        self.close();
        true
    }

    /// Input is waiting behind a command that must end its group.
    pub(super) fn traffic_before_response(&self) -> bool {
        !self.input.is_empty() && self.cfg.pipelining_sync
    }

    pub(super) fn hello(&mut self, arg: &str, extended: bool) {
        let verb = if extended { "EHLO" } else { "HELO" };
        // Counted before the argument is looked at, as sendmail does.
        let Some(slow) = self.repeated(Repeated::Hello, "HELO/EHLO") else {
            return;
        };
        self.pause(slow.before + slow.answer);
        if arg.is_empty() {
            return self.bad(replies::helo_requires_domain(verb));
        }
        if !valid_helo_name(arg) {
            return self.bad(replies::invalid_domain_name());
        }
        if self.out_of_sync(verb) {
            return;
        }
        if self.cfg.ask_hello {
            let waiting = super::transaction::Waiting::Hello(arg.to_string(), extended);
            return self.ask(
                super::Question::Hello {
                    name: arg.to_string(),
                    extended,
                },
                waiting,
            );
        }
        self.hello_accepted(arg, extended);
    }

    /// HELO or EHLO once counted, checked and, when asked, accepted by
    /// the shell (the mail filters).
    pub(super) fn hello_accepted(&mut self, arg: &str, extended: bool) {
        if extended && self.cfg.auth_from_shell {
            let resume = super::transaction::Resume::Ehlo(arg.to_string());
            return self.ask(
                super::Question::AuthMechanisms,
                super::transaction::Waiting::Mechanisms(resume),
            );
        }
        // A new HELO/EHLO resets any transaction (RFC 5321 §4.1.4).
        self.tx = None;
        self.greeted = Some(Greeted {
            name: arg.to_string(),
            extended,
        });
        let hello = replies::hello(&self.cfg.hostname, &self.cfg.client);
        if extended && self.null_server.is_some() {
            // sendmail's null server offers no extension but this one.
            let lines = vec![hello, "ENHANCEDSTATUSCODES".to_string()];
            self.reply(Reply::multi(250, None, lines));
        } else if extended {
            let mut lines = vec![hello];
            lines.extend(self.ehlo_keywords());
            self.reply(Reply::multi(250, None, lines));
        } else {
            self.reply(Reply::plain(250, hello));
        }
    }

    /// The EHLO keywords in sendmail's order and under sendmail's conditions.
    fn ehlo_keywords(&self) -> Vec<String> {
        let cfg = &self.cfg;
        let privacy = cfg.privacy;
        let mut k = vec!["ENHANCEDSTATUSCODES".to_string(), "PIPELINING".to_string()];
        if privacy.expn_allowed() {
            k.push("EXPN".into());
        }
        if privacy.verb_allowed() {
            k.push("VERB".into());
        }
        k.push("8BITMIME".into());
        k.push(match cfg.max_message_size {
            0 => "SIZE".into(),
            n => format!("SIZE {n}"),
        });
        if !privacy.contains(PrivacyFlags::NO_RECEIPTS) {
            k.push("DSN".into());
        }
        if !privacy.contains(PrivacyFlags::NO_ETRN) {
            k.push("ETRN".into());
        }
        let mechanisms = self.offered_mechanisms();
        if !mechanisms.is_empty() && self.authenticated.is_none() {
            k.push(format!("AUTH {}", mechanisms.join(" ")));
        }
        if cfg.starttls && self.tls.is_none() {
            k.push("STARTTLS".into());
        }
        match cfg.deliver_by_min {
            Some(n) if n > 0 => k.push(format!("DELIVERBY {n}")),
            Some(_) => k.push("DELIVERBY".into()),
            None => {}
        }
        k.push("HELP".into());
        k
    }
}

/// sendmail's HELO check: alphanumerics and `[].-_#:` only, at most MAXNAME.
fn valid_helo_name(name: &str) -> bool {
    name.len() <= limits::HELO_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"[].-_#:".contains(&b))
}
