//! The mail transaction: MAIL, RCPT, DATA, the end of the message, and the
//! answers that move it on.

use super::{replies, Answer, Envelope, Event, Mode, Output, Question, Session, SessionError};
use crate::address::{parse_forward_path, parse_reverse_path, Mailbox, ReversePath};
use crate::command::split_path_arg;
use crate::data::{DataReceiver, DataSummary};
use crate::params::{parse_mail_params, parse_rcpt_params, MailParams, ParamPolicy, RcptParams};
use crate::privacy::PrivacyFlags;
use crate::reply::Reply;

/// A transaction after its MAIL was accepted.
#[derive(Debug)]
pub(super) struct Transaction {
    reverse_path: ReversePath,
    /// The reverse path as the client wrote it (echoed in the reply).
    path_text: String,
    params: MailParams,
    recipients: Vec<(Mailbox, RcptParams)>,
    pub(super) auth_warnings: Vec<String>,
}

/// The question outstanding, with what is needed to act on its answer.
#[derive(Debug)]
pub(super) enum Waiting {
    Sender(Box<Transaction>),
    /// The recipient, its parameters, and its path as the client wrote
    /// it (echoed in the reply).
    Recipient(Mailbox, RcptParams, String),
    Vrfy,
    Expn,
    Etrn,
    OpenMessage,
    Commit,
    Auth,
    /// The mechanisms were asked for; then this command goes on.
    Mechanisms(Resume),
    /// HELO or EHLO (the name, whether EHLO) waits for the shell.
    Hello(String, bool),
    /// An unrecognised command waits for the shell; this is the 500.
    Unknown(Reply),
}

/// A command that waited for the AUTH mechanisms.
#[derive(Debug)]
pub(super) enum Resume {
    Ehlo(String),
    Auth(String),
}

impl Session {
    fn param_policy(&self) -> ParamPolicy {
        ParamPolicy {
            max_size: self.cfg.max_message_size,
            dsn: !self.cfg.privacy.contains(PrivacyFlags::NO_RECEIPTS),
            deliver_by_min: self.cfg.deliver_by_min,
        }
    }

    pub(super) fn mail(&mut self, arg: &str) {
        let privacy = self.cfg.privacy;
        if privacy.contains(PrivacyFlags::NEED_MAIL_HELO) && self.greeted.is_none() {
            return self.reply(replies::polite_people());
        }
        if self.tx.is_some() {
            return self.reply(replies::sender_already_specified());
        }
        if self.cfg.auth_required && self.authenticated.is_none() {
            return self.reply(replies::auth_required());
        }
        let Some((path_text, params_text)) = split_path_arg(arg, "FROM:") else {
            return self.path_arg_refused(arg, "FROM:");
        };
        let reverse_path = match parse_reverse_path(path_text) {
            Ok(path) => path,
            Err(e) => return self.reply(replies::bad_address(path_text, e, true)),
        };
        if let ReversePath::Mailbox(m) = &reverse_path {
            if m.domain.is_none() {
                return self.reply(replies::domain_required(path_text, &m.local));
            }
        }
        let mut params = match parse_mail_params(params_text, &self.param_policy()) {
            Ok(params) => params,
            Err(reply) => return self.reply(reply),
        };
        // RFC 4954 §5: an AUTH= from a client that did not authenticate
        // is not believed; the message goes on as if it said AUTH=<>.
        if self.authenticated.is_none() && params.auth.is_some() {
            params.auth = Some("<>".to_string());
        }
        let mut auth_warnings = Vec::new();
        if privacy.contains(PrivacyFlags::AUTH_WARNINGS) {
            match &self.greeted {
                None => auth_warnings.push(format!("{} didn't use HELO protocol", self.cfg.client)),
                Some(g) if literal_mismatch(&g.name, &self.cfg.client) => {
                    auth_warnings.push(format!("Host {} claimed to be {}", self.cfg.client, g.name))
                }
                Some(_) => {}
            }
        }
        let question = Question::Sender {
            path: reverse_path.clone(),
            params: params.clone(),
        };
        let tx = Transaction {
            reverse_path,
            path_text: path_text.to_string(),
            params,
            recipients: Vec::new(),
            auth_warnings,
        };
        self.ask(question, Waiting::Sender(Box::new(tx)));
    }

    pub(super) fn rcpt(&mut self, arg: &str) {
        self.throttle_rcpt();
        let Some(tx) = &self.tx else {
            return self.reply(replies::need_mail_before_rcpt());
        };
        let max = self.cfg.max_recipients as usize;
        let full = max > 0 && tx.recipients.len() >= max;
        let Some((path_text, params_text)) = split_path_arg(arg, "TO:") else {
            self.count_bad_rcpt();
            return self.path_arg_refused(arg, "TO:");
        };
        let path = match parse_forward_path(path_text) {
            Ok(path) => path,
            Err(e) => return self.rcpt_refused(replies::bad_address(path_text, e, false)),
        };
        if full {
            return self.rcpt_refused(replies::too_many_recipients());
        }
        let params = match parse_rcpt_params(params_text, &self.param_policy()) {
            Ok(params) => params,
            Err(reply) => return self.rcpt_refused(reply),
        };
        let question = Question::Recipient {
            path: path.clone(),
            params: params.clone(),
        };
        self.ask(
            question,
            Waiting::Recipient(path, params, path_text.to_string()),
        );
    }

    /// MAIL or RCPT whose argument is not `KEYWORD:path [params]`, in
    /// sendmail's words: a `<` never closed is `553 5.0.0 <path...
    /// Unbalanced '<'`; anything else is a syntax error naming the
    /// argument up to its colon, as the client wrote it (`scanning "TO"`).
    fn path_arg_refused(&mut self, arg: &str, keyword: &str) {
        let after_keyword = arg
            .get(..keyword.len())
            .filter(|head| head.eq_ignore_ascii_case(keyword))
            .map(|_| arg[keyword.len()..].trim_start_matches(' '));
        if let Some(path) = after_keyword.filter(|p| p.starts_with('<') && !p.contains('>')) {
            return self.reply(replies::unbalanced(path));
        }
        let word = arg.split(':').next().unwrap_or("").trim();
        self.bad(replies::syntax_scanning(word));
    }

    pub(super) fn data(&mut self) {
        match &self.tx {
            None => self.reply(replies::need_mail()),
            Some(tx) if tx.recipients.is_empty() => self.reply(replies::need_rcpt()),
            Some(_) => self.ask(Question::OpenMessage, Waiting::OpenMessage),
        }
    }

    /// The terminating dot arrived: refuse a message with bad line ends or
    /// over the size limit, or hand the envelope over for commit.
    pub(super) fn end_of_data(&mut self, summary: DataSummary) {
        let refusal = if summary.bare_lf {
            Some(replies::bare_lf_data())
        } else if summary.bare_cr {
            Some(replies::bare_cr_data())
        } else if summary.nul {
            Some(replies::nul_data())
        } else if summary.oversize {
            self.event(Event::MessageTooBig {
                size: summary.size,
                max: self.cfg.max_message_size,
            });
            Some(replies::message_too_big(self.cfg.max_message_size))
        } else {
            None
        };
        let Some(tx) = self.tx.take() else {
            return;
        };
        if let Some(reply) = refusal {
            if !summary.oversize {
                self.event(Event::BadLineEnds {
                    reply: reply.to_string(),
                });
            }
            self.outputs.push_back(Output::AbortMessage);
            return self.reply(reply);
        }
        let envelope = Envelope {
            helo: self.greeted.as_ref().map(|g| g.name.clone()),
            protocol: self.protocol(),
            reverse_path: tx.reverse_path,
            body: tx.params.body,
            mail_params: tx.params,
            recipients: tx.recipients,
            size: summary.size,
            auth_warnings: tx.auth_warnings,
            tls: self.tls.clone(),
            authenticated: self.authenticated.clone(),
        };
        self.ask(Question::Commit(Box::new(envelope)), Waiting::Commit);
    }

    /// Acts on the answer to the outstanding question.
    pub(super) fn resume(&mut self, waiting: Waiting, answer: Answer) -> Result<(), SessionError> {
        // A 421 from the shell (a mail filter's shutdown) closes the
        // channel, whatever was asked (RFC 5321 §3.8).
        if let Answer::Reply(reply) = &answer {
            if reply.code() == 421 && !matches!(waiting, Waiting::Mechanisms(_)) {
                self.tx = None;
                self.reply(reply.clone());
                self.close();
                return Ok(());
            }
        }
        match (waiting, answer) {
            (Waiting::Sender(tx), Answer::Accept) => {
                // Echoed as the client wrote it, as sendmail does.
                self.reply(replies::sender_ok(&tx.path_text));
                self.tx = Some(*tx);
            }
            (Waiting::Recipient(path, params, path_text), Answer::Accept) => {
                self.reply(replies::recipient_ok(&path_text));
                if let Some(tx) = &mut self.tx {
                    tx.recipients.push((path, params));
                }
            }
            (Waiting::OpenMessage, Answer::Accept) => {
                if self.traffic_before_response() {
                    // The file the shell opened is dropped before the
                    // session closes: nothing may follow Close.
                    self.outputs.push_back(Output::AbortMessage);
                    self.out_of_sync("DATA");
                    return Ok(());
                }
                self.reply(replies::enter_mail());
                // Sent before any message text is passed on: text already
                // buffered behind DATA (sendmail -bs, which does not
                // refuse pipelined input) must not reach the shell, nor
                // its commit be asked, ahead of the 354 that invites it.
                self.flush();
                self.mode = Mode::Data(DataReceiver::new(self.cfg.max_message_size));
            }
            (Waiting::Commit, Answer::Queued { queue_id }) => {
                self.reply(replies::accepted(queue_id.as_str()));
            }
            (Waiting::Recipient(..), Answer::Reply(reply)) if reply.code() >= 400 => {
                self.rcpt_refused(reply)
            }
            (Waiting::Hello(name, extended), Answer::Accept) => {
                self.hello_accepted(&name, extended)
            }
            // sendmail's milter HELO refusal: the greeting is answered,
            // then every command but QUIT, HELO, EHLO, NOOP and RSET gets
            // the refusal (its null server).
            (Waiting::Hello(name, extended), Answer::Reply(reply)) if reply.code() >= 400 => {
                self.null_server = Some(reply);
                self.hello_accepted(&name, extended)
            }
            (Waiting::Unknown(reply), Answer::Accept) => self.bad(reply),
            (Waiting::Unknown(_), Answer::Reply(reply)) if reply.code() >= 400 => self.bad(reply),
            (Waiting::Vrfy, answer) => self.verified(false, answer)?,
            (Waiting::Expn, answer) => self.verified(true, answer)?,
            (Waiting::Auth, answer) => self.authenticated(answer)?,
            (Waiting::Mechanisms(resume), Answer::AuthMechanisms { offered, tls_only }) => {
                self.cfg.auth_mechanisms = offered;
                self.cfg.auth_tls_only = tls_only;
                self.cfg.auth_from_shell = false;
                match resume {
                    Resume::Ehlo(name) => self.hello_accepted(&name, true),
                    Resume::Auth(arg) => self.auth(&arg),
                }
            }
            (
                Waiting::Sender(_)
                | Waiting::Recipient(..)
                | Waiting::OpenMessage
                | Waiting::Commit
                | Waiting::Etrn,
                Answer::Reply(reply),
            ) => self.reply(reply),
            _ => return Err(SessionError::UnexpectedAnswer),
        }
        Ok(())
    }
}

/// An address literal as HELO name (`[192.0.2.1]`, `[IPv6:::1]`) that is
/// not the client's address (the bracketed end of `client`, sendmail's
/// `$_`): sendmail's "Host … claimed to be …" authentication warning.
/// A host name is not checked: that would need DNS (sendmail checks it
/// only when built with PICKY_HELO_CHECK).
fn literal_mismatch(helo: &str, client: &str) -> bool {
    fn literal(text: &str) -> Option<std::net::IpAddr> {
        let inner = text.strip_prefix('[')?.strip_suffix(']')?;
        let inner = inner.strip_prefix("IPv6:").unwrap_or(inner);
        inner.parse().ok()
    }
    let Some(claimed) = literal(helo) else {
        return false;
    };
    let actual = client.rfind('[').and_then(|at| literal(&client[at..]));
    actual.is_some_and(|actual| actual != claimed)
}
