//! The mail transaction of a [`ClientSession`]: MAIL, RCPT…, DATA and what
//! each reply means for each recipient.
//!
//! Owns: command order with and without PIPELINING (RFC 2920) and the
//! per-recipient bookkeeping. Does not own: greeting, EHLO, STARTTLS or the
//! end of the session (`session.rs`).

use super::commands;
use super::envelope::Envelope;
use super::extensions::Extensions;
use super::outcome::ClientOutput;
use super::reply_reader::ServerReply;
use super::session::{ClientSession, State};
use crate::reply::EnhancedCode;

/// A transaction reply we are waiting for.
#[derive(Clone, Copy, Debug)]
pub(super) enum Expect {
    Mail,
    Rcpt(usize),
    Data,
}

#[derive(Clone, Debug)]
pub(super) enum Rcpt {
    Pending,
    Accepted,
    Resolved(ServerReply),
}

impl ClientSession {
    pub(super) fn on_transaction_reply(&mut self, reply: ServerReply) {
        let Some(expect) = self.expect.pop_front() else {
            return self.fail_protocol("reply without a command");
        };
        if !(reply.is_positive() || reply.is_failure() || reply.code == 354) {
            return self.fail_protocol(&format!("unexpected reply {}", reply.code));
        }
        match expect {
            Expect::Mail if reply.is_positive() => {
                if !self.pipelined {
                    self.send_rcpt(0);
                }
            }
            Expect::Mail if reply.is_failure() => {
                let ext = self.extensions.clone().unwrap_or_default();
                let mail = commands::mail(&self.envelope, &ext);
                self.resolve_unresolved_by(&reply, &mail);
                if !self.pipelined {
                    self.quit();
                }
            }
            Expect::Rcpt(i) if !reply.is_positive() && !reply.is_failure() => {
                self.fail_protocol(&format!("unexpected reply {} to RCPT #{i}", reply.code));
            }
            Expect::Rcpt(i) => {
                // After a refused MAIL every recipient is resolved already,
                // and the replies to pipelined RCPTs mean nothing.
                if matches!(self.rcpts[i], Rcpt::Pending) {
                    self.rcpts[i] = if reply.is_positive() {
                        Rcpt::Accepted
                    } else {
                        let ext = self.extensions.clone().unwrap_or_default();
                        self.resolved_by[i] =
                            Some(commands::rcpt(&self.envelope.recipients[i], &ext));
                        Rcpt::Resolved(reply)
                    };
                }
                if !self.pipelined {
                    self.after_rcpt(i);
                }
            }
            Expect::Data if reply.code == 354 => {
                if self.any_accepted() {
                    self.state = State::Body;
                    if !self.unsolicited() {
                        self.output.push_back(ClientOutput::SendBody);
                    }
                } else {
                    self.fail_protocol("354 to DATA with no accepted recipient");
                }
            }
            Expect::Data if reply.is_failure() => {
                self.resolve_unresolved_by(&reply, "DATA");
                self.quit();
            }
            _ => self.fail_protocol(&format!("unexpected reply {}", reply.code)),
        }
    }

    pub(super) fn start_transaction(&mut self) {
        let ext = self.extensions.clone().unwrap_or_default();
        if let (Some(limit), Some(size)) = (ext.size, self.envelope.size_hint) {
            if limit > 0 && size > limit {
                let text = format!("Message size exceeds fixed maximum message size ({limit})");
                let reply = ServerReply::synthetic(552, EnhancedCode::new(5, 3, 4), &text);
                self.resolve_unresolved(&reply);
                return self.quit();
            }
        }
        if let Some(text) = deliver_by_refusal(&self.envelope, &ext) {
            let reply = ServerReply::synthetic(554, EnhancedCode::new(5, 4, 7), &text);
            self.resolve_unresolved(&reply);
            return self.quit();
        }
        self.state = State::Transaction;
        self.pipelined = ext.pipelining;
        self.expect.clear();
        self.expect.push_back(Expect::Mail);
        let mut cmds = vec![commands::mail(&self.envelope, &ext)];
        if self.pipelined {
            for (i, r) in self.envelope.recipients.iter().enumerate() {
                cmds.push(commands::rcpt(r, &ext));
                self.expect.push_back(Expect::Rcpt(i));
            }
            cmds.push("DATA".into());
            self.expect.push_back(Expect::Data);
        }
        self.send(cmds);
    }

    fn send_rcpt(&mut self, i: usize) {
        let ext = self.extensions.clone().unwrap_or_default();
        let cmd = commands::rcpt(&self.envelope.recipients[i], &ext);
        self.expect.push_back(Expect::Rcpt(i));
        self.send(vec![cmd]);
    }

    /// Without pipelining: the next RCPT, DATA, or QUIT when nobody was
    /// accepted.
    fn after_rcpt(&mut self, i: usize) {
        if i + 1 < self.rcpts.len() {
            self.send_rcpt(i + 1);
        } else if self.any_accepted() {
            self.expect.push_back(Expect::Data);
            self.send(vec!["DATA".into()]);
        } else {
            self.quit();
        }
    }

    fn any_accepted(&self) -> bool {
        self.rcpts.iter().any(|r| matches!(r, Rcpt::Accepted))
    }
}

/// RFC 2852 §4.1.4, as sendmail's `deliver.c` words it: a message to be
/// returned (mode R) is not handed to a server that does not offer
/// DELIVERBY, nor to one whose minimum by-time is more than the time left
/// (or when no time is left at all).
fn deliver_by_refusal(envelope: &Envelope, ext: &Extensions) -> Option<String> {
    let by = envelope.deliver_by.filter(|by| by.return_on_expiry)?;
    let Some(min) = ext.deliver_by else {
        return Some("Server does not support Deliver By".into());
    };
    let min = i64::try_from(min).unwrap_or(i64::MAX);
    (by.seconds < min || by.seconds <= 0).then(|| {
        format!(
            "Message can't be delivered in time; {} < {}",
            by.seconds,
            min.max(1)
        )
    })
}
