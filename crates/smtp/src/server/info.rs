//! VRFY, EXPN, VERB, ETRN and HELP: the commands PrivacyOptions restricts.
//!
//! The order of the checks is sendmail's (`srvrsmtp.c` CMDVRFY/CMDEXPN):
//! a disabled command is refused before the HELO requirement is checked,
//! and both before the argument is looked at.

use super::transaction::Waiting;
use super::{replies, Answer, Event, Question, Session, SessionError, VerifiedAddress};
use crate::privacy::PrivacyFlags;
use crate::reply::{EnhancedCode, Reply};

impl Session {
    pub(super) fn vrfy(&mut self, arg: &str) {
        let privacy = self.cfg.privacy;
        if privacy.contains(PrivacyFlags::NO_VRFY) {
            self.refused("VRFY", arg);
            return self.reply(replies::cannot_vrfy());
        }
        if privacy.contains(PrivacyFlags::NEED_VRFY_HELO) && self.greeted.is_none() {
            return self.reply(replies::introduce_yourself());
        }
        if arg.is_empty() {
            return self.bad(replies::argument_required());
        }
        if strip_brackets(arg).is_empty() {
            return self.reply(replies::nothing_to("VRFY"));
        }
        self.ask(Question::Vrfy(arg.to_string()), Waiting::Vrfy);
    }

    pub(super) fn expn(&mut self, arg: &str) {
        let privacy = self.cfg.privacy;
        if !privacy.expn_allowed() {
            self.refused("EXPN", arg);
            return self.reply(replies::not_allowed());
        }
        if privacy.contains(PrivacyFlags::NEED_EXPN_HELO) && self.greeted.is_none() {
            return self.reply(replies::introduce_yourself());
        }
        if arg.is_empty() {
            return self.bad(replies::argument_required());
        }
        if strip_brackets(arg).is_empty() {
            return self.reply(replies::nothing_to("EXPN"));
        }
        self.ask(Question::Expn(arg.to_string()), Waiting::Expn);
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
