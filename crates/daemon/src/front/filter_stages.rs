//! The front's questions as the mail filters see them: HELO, MAIL, RCPT
//! (after Postern's own checks passed), and the end of the message, whose
//! changes are made before the commit.
//!
//! A filter may add recipients; it is trusted no further than the client
//! was: an added recipient goes through the same relay and local-user
//! checks as a RCPT from this client, and one that would be refused is
//! dropped and logged (sendmail checks nothing; Postern's queue runner
//! would take such a commit for a front that was taken over).

use postern_ipc::{EnvelopeRecipient, MessageEnvelope};
use postern_milter::edit::Message;
use postern_smtp::address::{parse_forward_path, parse_reverse_path, ReversePath};
use postern_smtp::server::{Answer, Session};

use super::filters::{Decision, EnvelopeChanges};
use super::message::Held;
use super::questions::Front;
use crate::log::{self, Level};
use crate::policy::{self, RelayVerdict};

fn bare(address: &str) -> &str {
    address.trim().trim_start_matches('<').trim_end_matches('>')
}

impl Front<'_> {
    /// HELO or EHLO: a refusal makes the session sendmail's null server.
    pub(super) fn filter_hello(&mut self, session: &Session, name: &str) -> Answer {
        if let Some(tls) = session.tls() {
            self.filters.values().set_tls(tls);
        }
        match self.filters.helo(name) {
            Decision::Go | Decision::Discard => Answer::Accept,
            Decision::Refuse(r) => Answer::Reply(r),
        }
    }

    /// A command Postern does not know: a filter may answer it.
    pub(super) fn filter_unknown(&mut self, line: &str) -> Answer {
        match self.filters.unknown(line) {
            Decision::Go | Decision::Discard => Answer::Accept,
            Decision::Refuse(r) => Answer::Reply(r),
        }
    }

    /// MAIL, once the access map let it through; `Some` refuses it.
    pub(super) fn filter_sender(
        &mut self,
        path: &ReversePath,
        params: &[String],
    ) -> Option<Answer> {
        if !self.filters.any() {
            return None;
        }
        let address = match path {
            ReversePath::Null => String::new(),
            ReversePath::Mailbox(m) => m.to_string(),
        };
        let local = match path {
            ReversePath::Mailbox(m) => matches!(
                policy::relay_verdict(self.settings, self.peer_ip, true, m),
                RelayVerdict::Local { .. }
            ),
            ReversePath::Null => false,
        };
        self.filters.values().forget_transaction();
        self.filters.values().set_sender(&address, local);
        match self.filters.mail(&address, params) {
            Decision::Go => None,
            Decision::Discard => {
                self.discard = true;
                None
            }
            Decision::Refuse(r) => Some(Answer::Reply(r)),
        }
    }

    /// RCPT, once Postern accepted it: a refusal takes it back.
    pub(super) fn filter_recipient(
        &mut self,
        path: &postern_smtp::address::Mailbox,
        params: &[String],
    ) -> Answer {
        if !self.filters.any() {
            return Answer::Accept;
        }
        let qualified = policy::qualify(path, &self.settings.hostname);
        let local = matches!(
            policy::relay_verdict(self.settings, self.peer_ip, self.authenticated, &qualified),
            RelayVerdict::Local { .. }
        );
        self.filters
            .values()
            .set_recipient(&qualified.to_string(), local);
        match self.filters.rcpt(&path.to_string(), params) {
            Decision::Go => Answer::Accept,
            Decision::Discard => {
                self.discard = true;
                Answer::Accept
            }
            Decision::Refuse(r) => {
                self.recipients.pop();
                Answer::Reply(r)
            }
        }
    }

    /// End of message: the filters see the client's header section and
    /// body, their changes are made, and the message Postern writes is
    /// returned (head first), or the refusal for the client.
    pub(super) fn filter_message(
        &mut self,
        held: Held,
        envelope: &mut MessageEnvelope,
    ) -> Result<Vec<u8>, Answer> {
        let mut message = Message::parse(&held.head, false);
        let user = Message::parse(&held.text, true);
        message.headers.extend(user.headers);
        message.body = user.body;
        if let Some(id) = message
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("Message-Id"))
        {
            let id = String::from_utf8_lossy(&id.value).trim().to_string();
            self.filters.values().set("msg_id", id);
        }
        let (decision, changes) = self.filters.end_of_message(&mut message);
        match decision {
            Decision::Go => {}
            Decision::Discard => self.discard = true,
            Decision::Refuse(r) => return Err(Answer::Reply(r)),
        }
        self.change_envelope(envelope, changes);
        if envelope.recipients.is_empty() {
            // Every recipient removed: nothing to deliver, as discarded.
            self.discard = true;
        }
        Ok(message.to_bytes())
    }

    fn change_envelope(&mut self, envelope: &mut MessageEnvelope, changes: EnvelopeChanges) {
        let queue_id = self.queue_id().unwrap_or("NOQUEUE").to_string();
        for gone in &changes.deleted {
            let gone = bare(gone);
            envelope
                .recipients
                .retain(|r| !r.address.eq_ignore_ascii_case(gone));
        }
        for (added, _args) in &changes.added {
            let Ok(mailbox) = parse_forward_path(&format!("<{}>", bare(added))) else {
                log::notice(
                    Level::Refusal,
                    &format!("{queue_id}: Milter add: rcpt: {added}: not an address, ignored"),
                );
                continue;
            };
            match self.recipient(&mailbox) {
                Answer::Accept => {
                    let address = policy::qualify(&mailbox, &self.settings.hostname).to_string();
                    envelope.recipients.push(EnvelopeRecipient {
                        address,
                        notify: None,
                        orcpt: None,
                        target: None,
                    });
                }
                Answer::Reply(r) => log::notice(
                    Level::Refusal,
                    &format!("{queue_id}: Milter add: rcpt: {added}: refused ({r}), ignored"),
                ),
                _ => {}
            }
        }
        if let Some((sender, _args)) = &changes.sender {
            match parse_reverse_path(&format!("<{}>", bare(sender))) {
                Ok(ReversePath::Null) => envelope.sender = String::new(),
                Ok(ReversePath::Mailbox(m)) => envelope.sender = m.to_string(),
                Err(_) => log::notice(
                    Level::Refusal,
                    &format!("{queue_id}: Milter chgfrom: {sender}: not an address, ignored"),
                ),
            }
        }
        envelope.quarantine = changes.quarantine;
    }
}
