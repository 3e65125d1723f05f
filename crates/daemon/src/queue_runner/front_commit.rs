//! A front's commit: the message checked again (the pipe at its end,
//! the size, every recipient against the relay policy for the client as
//! master saw it, the access map's DISCARD) and handed to the committer,
//! which answers the front once the message is durable.

use std::net::SocketAddr;

use mio::unix::SourceFd;
use mio::Token;
use postern_ipc::{MessageEnvelope, QueueToFront};
use postern_queue::{ControlFile, QueueId, RecipientEntry};
use postern_smtp::address::parse_mailbox;

use super::fronts::Disconnect;
use super::incoming::{Pumped, State};
use super::QueueRunner;
use crate::policy::{self, RelayVerdict};
use crate::{log, settings::Settings};

impl QueueRunner {
    pub(super) fn commit(
        &mut self,
        token: Token,
        queue_id: &QueueId,
        envelope: &MessageEnvelope,
    ) -> Result<(), Disconnect> {
        // A front may commit only the message it was given.
        let open = self
            .fronts
            .get(&token)
            .and_then(|f| f.message.as_ref())
            .is_some_and(|m| &m.id == queue_id);
        if !open {
            return Err(format!("commit of unknown message {queue_id}"));
        }
        // The front closed its end before asking: everything it wrote is
        // in the pipe (at most the pipe's capacity), and the pipe is at its
        // end. One turn must reach it; a front still writing is cut off.
        let front = self.fronts.get_mut(&token).ok_or_else(String::new)?;
        let mut message = front.message.take().expect("checked above");
        // Whatever the outcome, the transaction is over.
        front.in_transaction = false;
        if message.pump() == Pumped::Done {
            if let Some(fd) = message.pipe_fd() {
                let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
            }
        }
        let (client, daemon, peer, authenticated) = (
            policy::client_name(&front.peer),
            front.daemon.clone(),
            front.peer,
            front.authenticated.clone(),
        );
        match message.state() {
            State::Complete => {}
            State::Receiving => {
                self.forget_message(message);
                return Err("commit while the message was still being written".into());
            }
            State::TooBig => {
                self.forget_message(message);
                // A front that ignored the limit: sendmail's words for a
                // message found too big after its end (collect.c).
                let max = self.settings.config.max_message_size;
                return self.refuse(
                    token,
                    552,
                    "5.2.3",
                    &format!("Message exceeds maximum fixed size ({max})"),
                );
            }
            State::Failed(e) => {
                log::err(&format!("{}: cannot write the message: {e}", message.id));
                let full = e.raw_os_error() == Some(nix::libc::ENOSPC)
                    || e.raw_os_error() == Some(nix::libc::EDQUOT);
                self.forget_message(message);
                return if full {
                    self.refuse(token, 452, "4.3.1", "Insufficient system storage")
                } else {
                    self.refuse(token, 451, "4.3.0", "Queue write error; try again later")
                };
            }
        }
        message.close_pipe();
        let aliases = self.aliases.current();
        if authenticated.is_none() && self.settings.listener_requires_auth(&daemon) {
            self.forget_message(message);
            return Err(format!(
                "a message without AUTH on {daemon}, which requires it"
            ));
        }
        // A discarded message goes nowhere: its recipients need no right.
        let discard = if envelope.discard {
            Some("a mail filter".to_string())
        } else {
            discarded_by(&self.settings, peer, envelope)
        };
        let checked = match discard {
            Some(_) => Ok(None),
            None => check_recipients(
                &self.settings,
                aliases,
                peer,
                authenticated.is_some(),
                envelope,
            ),
        };
        match checked {
            Ok(None) => {}
            // Known at RCPT, gone now (or a front that never asked).
            Ok(Some(unknown)) => {
                self.forget_message(message);
                log::notice(
                    log::Level::Refusal,
                    &format!("<{unknown}>: unknown local user at commit"),
                );
                return self.refuse(token, 550, "5.1.1", &format!("<{unknown}>... User unknown"));
            }
            Err(why) => {
                self.forget_message(message);
                return Err(why);
            }
        }
        // The size is what arrived, not anything the front claims.
        let size = message.received();
        let id = message.id.clone();
        let mut control = match control_file(&id, envelope, size) {
            Ok(control) => control,
            Err(why) => {
                self.forget_message(message);
                return Err(why);
            }
        };
        control.client = client;
        control.auth = authenticated;
        if let Some(reason) = &envelope.quarantine {
            // A mail filter's quarantine: kept, not tried, until an
            // administrator releases it (`postern queue release`).
            control.held = true;
            control.quarantine = Some(
                reason
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(256)
                    .collect(),
            );
        }
        if let Some(why) = discard {
            // Accepted, and thrown away: the client must not learn that.
            log::info(
                log::Level::Received,
                &super::logline::from_line(&control, envelope.message_id.as_deref(), Some(&daemon)),
            );
            log::info(log::Level::Received, &format!("{id}: discarded ({why})"));
            self.forget_message(message);
            return self.reply(token, &QueueToFront::Committed { queue_id: id }, &[]);
        }
        // Answered once durable, with the others committing meanwhile.
        let handed_over = self.enqueue_for_front(
            token,
            message.into_file(),
            &control,
            envelope.message_id.as_deref(),
            &daemon,
        );
        if handed_over.is_err() {
            return self.refuse(token, 451, "4.3.0", "Queue write error; try again later");
        }
        if let Some(front) = self.fronts.get_mut(&token) {
            front.committing = true;
        }
        Ok(())
    }
}

/// The access map's `DISCARD` for the sender or any recipient: sendmail
/// discards the whole envelope then (cf.README: for check_rcpt "it
/// affects the entire envelope"). Decided here, not by the front.
fn discarded_by(
    settings: &Settings,
    peer: SocketAddr,
    envelope: &MessageEnvelope,
) -> Option<String> {
    use postern_config::AccessAction::Discard;
    let access = &settings.access;
    let host = peer.ip().is_loopback().then_some("localhost");
    if access.connect_action(host, peer.ip()) == Some(Discard) {
        return Some(format!("Connect:{}", peer.ip()));
    }
    if let Ok(sender) = parse_mailbox(&envelope.sender) {
        let domain = match &sender.domain {
            Some(postern_smtp::address::Domain::Name(d)) => Some(d.as_str()),
            _ => None,
        };
        if access.from_action(&sender.to_string(), domain) == Some(Discard) {
            return Some(format!("From:<{}>", envelope.sender));
        }
    }
    envelope.recipients.iter().find_map(|r| {
        let mailbox = parse_mailbox(&r.address).ok()?;
        let domain = match &mailbox.domain {
            Some(postern_smtp::address::Domain::Name(d)) => d.clone(),
            _ => return None,
        };
        (access.to_action(&r.address, &domain) == Some(Discard))
            .then(|| format!("To:<{}>", r.address))
    })
}

/// Every recipient must be one the front was allowed to accept from this
/// client, and no more of them than a session accepts: a front that
/// commits others has been taken over (`Err`). A local recipient must
/// also exist (`Ok(Some(address))` names one that does not), or a front
/// could queue mail for a bounce to carry anywhere.
fn check_recipients(
    settings: &Settings,
    aliases: &postern_config::Aliases,
    peer: SocketAddr,
    authenticated: bool,
    envelope: &MessageEnvelope,
) -> Result<Option<String>, Disconnect> {
    let limit = settings.config.recipient_cap();
    if envelope.recipients.len() > limit as usize {
        return Err(format!("{} recipients", envelope.recipients.len()));
    }
    for r in &envelope.recipients {
        let mailbox =
            parse_mailbox(&r.address).map_err(|e| format!("recipient {:?}: {e}", r.address))?;
        if mailbox.domain.is_none() {
            return Err(format!("unqualified recipient <{}>", r.address));
        }
        match policy::relay_verdict(settings, peer.ip(), authenticated, &mailbox) {
            RelayVerdict::Denied => {
                return Err(format!(
                    "committed a recipient it may not accept from this client: <{}>",
                    r.address
                ))
            }
            RelayVerdict::Local { name }
                if !policy::local_user_known(&name) && aliases.lookup(&name).is_none() =>
            {
                return Ok(Some(r.address.clone()))
            }
            RelayVerdict::Local { .. } | RelayVerdict::Relay => {}
        }
    }
    Ok(None)
}

/// Checks what a front sent and turns it into a control file. The control
/// file's own escaping keeps any byte harmless; the checks here refuse what
/// no honest front would send.
fn control_file(id: &QueueId, e: &MessageEnvelope, size: u64) -> Result<ControlFile, Disconnect> {
    let sane = |s: &str| s.len() <= 512 && !s.chars().any(char::is_control);
    if e.recipients.is_empty() || !sane(&e.sender) || !e.recipients.iter().all(|r| sane(&r.address))
    {
        return Err("implausible envelope".into());
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut control = ControlFile::new(id.clone(), now, e.sender.clone());
    control.envid = e.envid.clone();
    control.ret = e.ret;
    control.body = e.body;
    control.size = size;
    control.helo = e.helo.clone();
    control.protocol = e.protocol.clone();
    control.deliver_by = e.deliver_by;
    control.next_attempt = now;
    control.recipients = e
        .recipients
        .iter()
        .map(|r| {
            let mut entry = RecipientEntry::new(r.address.clone());
            entry.notify = r.notify;
            entry.orcpt = r.orcpt.clone();
            entry
        })
        .collect();
    Ok(control)
}
