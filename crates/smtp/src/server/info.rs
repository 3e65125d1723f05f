//! VRFY, EXPN, VERB, ETRN and HELP: the commands PrivacyOptions restricts.
//!
//! The order of the checks is sendmail's (`srvrsmtp.c` CMDVRFY/CMDEXPN):
//! every VRFY and EXPN counts towards the slowdown against address
//! harvesting, a disabled command is refused before the HELO requirement
//! is checked, and both before the command is logged and its argument
//! looked at. Who an address is, and what a list expands to, is the
//! shell's answer (the queue runner's, for a front).

use super::attack::Repeated;
use super::transaction::Waiting;
use super::{replies, Answer, Event, Question, Session, SessionError, VerifiedAddress};

use crate::privacy::PrivacyFlags;
use crate::reply::{EnhancedCode, Reply};

impl Session {
    pub(super) fn vrfy(&mut self, arg: &str) {
        self.verify_command(false, arg);
    }

    pub(super) fn expn(&mut self, arg: &str) {
        self.verify_command(true, arg);
    }

    /// VRFY or EXPN, in sendmail's order: count it (and slow down past
    /// MAXVRFYCOMMANDS), refuse it if PrivacyOptions say so, demand HELO,
    /// log it, check the argument, and ask.
    fn verify_command(&mut self, expn: bool, arg: &str) {
        let verb = if expn { "EXPN" } else { "VRFY" };
        let Some(slow) = self.repeated(Repeated::Verify, verb) else {
            return;
        };
        let privacy = self.cfg.privacy;
        let disabled = if expn {
            !privacy.expn_allowed()
        } else {
            privacy.contains(PrivacyFlags::NO_VRFY)
        };
        if disabled {
            self.pause(slow.before);
            self.refused(verb, arg);
            let reply = if expn {
                replies::not_allowed()
            } else {
                replies::cannot_vrfy()
            };
            return self.reply(reply);
        }
        let need_helo = if expn {
            PrivacyFlags::NEED_EXPN_HELO
        } else {
            PrivacyFlags::NEED_VRFY_HELO
        };
        if privacy.contains(need_helo) && self.greeted.is_none() {
            self.pause(slow.before);
            return self.reply(replies::introduce_yourself());
        }
        self.event(Event::Verify {
            verb,
            arg: arg.to_string(),
        });
        if arg.is_empty() {
            self.pause(slow.before);
            return self.bad(replies::argument_required());
        }
        if strip_brackets(arg).is_empty() {
            self.pause(slow.before);
            return self.reply(replies::nothing_to(verb));
        }
        // sendmail sleeps the rest between the lookup and its answer.
        self.pause(slow.before + slow.answer);
        let question = if expn {
            Question::Expn(arg.to_string())
        } else {
            Question::Vrfy(arg.to_string())
        };
        let waiting = if expn { Waiting::Expn } else { Waiting::Vrfy };
        self.ask(question, waiting);
    }

    /// The answer to VRFY or EXPN.
    pub(super) fn verified(&mut self, expn: bool, answer: Answer) -> Result<(), SessionError> {
        match answer {
            Answer::Reply(reply) => self.reply(reply),
            Answer::Addresses { addresses, .. } if addresses.is_empty() => {
                self.reply(replies::nothing_to(if expn { "EXPN" } else { "VRFY" }));
            }
            Answer::Addresses {
                addresses,
                definitive,
            } => {
                let code = if expn || definitive { 250 } else { 252 };
                let lines = addresses.iter().map(address_line).collect();
                self.reply(Reply::multi(code, Some(EnhancedCode::new(2, 1, 5)), lines));
            }
            _ => return Err(SessionError::UnexpectedAnswer),
        }
        Ok(())
    }

    pub(super) fn verb(&mut self) {
        if self.cfg.privacy.verb_allowed() {
            let Some(slow) = self.repeated(Repeated::Noise, "VERB") else {
                return;
            };
            self.pause(slow.before + slow.answer);
            self.verbose = true;
            self.reply(replies::verbose_mode());
        } else {
            self.reply(replies::verbose_unavailable());
        }
    }

    pub(super) fn etrn(&mut self, arg: &str) {
        if self.cfg.privacy.contains(PrivacyFlags::NO_ETRN) {
            self.refused("ETRN", arg);
            return self.reply(replies::not_allowed());
        }
        if arg.is_empty() {
            return self.bad(replies::parameter_required());
        }
        let Some(slow) = self.repeated(Repeated::Etrn, "ETRN") else {
            return;
        };
        self.pause(slow.before + slow.answer);
        if self.tx.is_some() {
            return self.reply(replies::etrn_in_transaction());
        }
        self.event(Event::Etrn {
            arg: arg.to_string(),
        });
        self.ask(Question::Etrn(arg.to_string()), Waiting::Etrn);
    }

    pub(super) fn help(&mut self, topic: &str) {
        let Some(help) = &self.cfg.help else {
            let reply = replies::help_not_implemented(&self.cfg.version);
            return self.reply(reply);
        };
        let lines = help.topic(topic);
        if lines.is_empty() {
            return self.reply(replies::help_unknown(topic));
        }
        // sendmail sends each help line as its own 214- line, then the end.
        let mut all = lines;
        all.push("End of HELP info".to_string());
        self.reply(Reply::multi(214, Some(EnhancedCode::new(2, 0, 0)), all));
    }

    fn refused(&mut self, verb: &'static str, arg: &str) {
        self.event(Event::Refused {
            verb,
            arg: arg.to_string(),
        });
    }
}

/// `Full Name <user@host>` or `<user@host>`, as sendmail's printvrfyaddr.
fn address_line(a: &VerifiedAddress) -> String {
    match &a.full_name {
        Some(name) => format!("{name} <{}>", a.address),
        None => format!("<{}>", a.address),
    }
}

fn strip_brackets(arg: &str) -> &str {
    arg.trim_start_matches('<').trim_end_matches('>').trim()
}
