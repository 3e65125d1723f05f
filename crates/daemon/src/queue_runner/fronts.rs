//! Serving fronts: opening messages (a spool file and the pipe into it),
//! committing them durably, answering local-user questions and VRFY/EXPN
//! (`verify.rs`), and cleaning up after fronts that vanish or misbehave.
//!
//! What the queue runner records about a client comes from master (the
//! address `accept` returned, the listener's name), never from the front.
//! What the front says (the HELO name, the protocol) is recorded as the
//! client's claim. Every recipient a front commits is checked again
//! against the relay policy for that address, so a front that was taken
//! over cannot queue mail it was not allowed to accept.

use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;

use mio::unix::SourceFd;
use mio::{Interest, Token};
use postern_ipc::{
    queue_front_channel, ChannelError, FrontToQueue, MessageEnvelope, QueueFrontChannel,
    QueueToFront, PROTOCOL_VERSION,
};
use postern_queue::{ControlFile, QueueId, RecipientEntry};
use postern_smtp::address::parse_mailbox;
use postern_smtp::etrn;
use postern_smtp::server::etrn_unknown_group;

use super::incoming::{self, Incoming, Pumped, State};
use super::{QueueRunner, PIPE_BIT};
use crate::policy::{self, RelayVerdict};
use crate::{log, settings::Settings};

/// One front's channel, what master told us of its client, and the
/// message it is sending, if any.
pub struct FrontConn {
    channel: QueueFrontChannel,
    connection: u64,
    pub(super) peer: SocketAddr,
    pub(super) daemon: String,
    message: Option<Incoming>,
    /// Its Hello arrived; a second one is a violation.
    greeted: bool,
    /// ETRN requests so far.
    etrns: u32,
    /// MAIL FROM was accepted and the message is not yet committed or
    /// aborted: kept through a shutdown's grace period.
    in_transaction: bool,
    /// The AUTH identity, once the backend accepted the client's
    /// credentials (here, never from the front's word).
    pub(super) authenticated: Option<String>,
    /// The AUTH exchange in progress: its number and mechanism.
    pub(super) auth_exchange: Option<(u32, String)>,
    /// Failed AUTH attempts.
    pub(super) auth_failures: u32,
    /// Its message is with the committer: answered when durable, and kept
    /// through a shutdown until then.
    pub(super) committing: bool,
}

/// Why a front is disconnected.
type Disconnect = String;

/// Requests of one front handled in one turn; a front with more waits for
/// the next turn, after the others, so a busy front cannot hold them up.
const FRAMES_PER_TURN: usize = 8;

/// Whole requests that may wait behind the one being handled. An honest
/// front waits for each answer, so it has at most one waiting (an Abort,
/// which has no answer, and the next request); a front with more is
/// sending without reading and is cut off.
const MOST_WAITING_REQUESTS: usize = 3;

/// ETRN requests per connection that start a queue run.
const MAX_ETRN_RUNS: u32 = 8;

/// What a message may have beyond MaxMessageSize: the Received: header
/// the front puts first (its parts are bounded: HELO name, client, host
/// name, TLS line, one recipient).
const RECEIVED_ALLOWANCE: u64 = 8 << 10;

impl QueueRunner {
    pub(super) fn add_front(
        &mut self,
        connection: u64,
        peer: SocketAddr,
        daemon: String,
        fd: OwnedFd,
    ) {
        let stream = UnixStream::from(fd);
        if stream.set_nonblocking(true).is_err() {
            return;
        }
        let token = Token(self.next_token);
        self.next_token += 1;
        let mut channel = queue_front_channel(stream);
        let auth_mechanisms = self.auth.as_ref().map(|a| a.offered()).unwrap_or_default();
        let registered = self.poll.registry().register(
            &mut SourceFd(&std::os::fd::AsRawFd::as_raw_fd(&channel)),
            token,
            Interest::READABLE | Interest::WRITABLE,
        );
        if registered.is_err()
            || channel
                .send(
                    &QueueToFront::Hello {
                        version: PROTOCOL_VERSION,
                        auth_mechanisms,
                    },
                    &[],
                )
                .is_err()
        {
            return;
        }
        self.fronts.insert(
            token,
            FrontConn {
                channel,
                connection,
                peer,
                daemon,
                message: None,
                greeted: false,
                etrns: 0,
                in_transaction: false,
                authenticated: None,
                auth_exchange: None,
                auth_failures: 0,
                committing: false,
            },
        );
        // Frames may already be waiting: edge-triggered readiness would not
        // tell us about them again.
        self.front_ready(token);
    }

    pub(super) fn front_ready(&mut self, token: Token) {
        if let Err(why) = self.serve_front(token) {
            self.drop_front(token, &why);
        }
    }

    fn serve_front(&mut self, token: Token) -> Result<(), Disconnect> {
        let Some(front) = self.fronts.get_mut(&token) else {
            return Ok(());
        };
        front.channel.flush().map_err(|e| e.to_string())?;
        for _ in 0..FRAMES_PER_TURN {
            let Some(front) = self.fronts.get_mut(&token) else {
                return Ok(());
            };
            match front.channel.try_recv() {
                Ok(None) => return Ok(()),
                Ok(Some(_))
                    if front
                        .channel
                        .whole_frames_waiting(MOST_WAITING_REQUESTS + 1)
                        > MOST_WAITING_REQUESTS =>
                {
                    return Err("requests without waiting for the answers".into())
                }
                Ok(Some((request, _fds))) => self.front_request(token, request)?,
                Err(ChannelError::Closed) => return Err(String::new()),
                Err(e) => return Err(e.to_string()),
            }
        }
        // Maybe more is buffered, and no new readiness event would say so.
        self.fronts_with_more.push_back(token);
        Ok(())
    }

    /// Fronts that used up their turn: served again, after the others.
    pub(super) fn serve_fronts_with_more(&mut self) {
        for token in std::mem::take(&mut self.fronts_with_more) {
            self.front_ready(token);
        }
    }

    fn front_request(&mut self, token: Token, request: FrontToQueue) -> Result<(), Disconnect> {
        // An honest front waits for each answer; one that piles requests
        // up without reading would make our reply queue grow without end.
        if self
            .fronts
            .get(&token)
            .is_some_and(|f| f.channel.unsent_frames() > 4)
        {
            return Err("requests without reading the replies".into());
        }
        match request {
            FrontToQueue::Hello { version } if version == PROTOCOL_VERSION => {
                let front = self.fronts.get_mut(&token).ok_or_else(String::new)?;
                if std::mem::replace(&mut front.greeted, true) {
                    return Err("a second Hello".into());
                }
                Ok(())
            }
            FrontToQueue::Hello { version } => Err(format!("protocol version {version}")),
            FrontToQueue::Transaction => {
                let front = self.fronts.get_mut(&token).ok_or_else(String::new)?;
                front.in_transaction = true;
                Ok(())
            }
            FrontToQueue::Auth {
                mechanism,
                initial_response,
                tls,
            } => self.auth_start(token, mechanism, initial_response, tls),
            FrontToQueue::AuthResponse { response } => self.auth_respond(token, response),
            FrontToQueue::OpenMessage => self.open_message(token),
            FrontToQueue::Commit { queue_id, envelope } => self.commit(token, &queue_id, &envelope),
            FrontToQueue::Abort { queue_id } => {
                let matches = self
                    .fronts
                    .get(&token)
                    .and_then(|f| f.message.as_ref())
                    .is_some_and(|m| m.id == queue_id);
                if matches {
                    self.discard_message(token);
                }
                Ok(())
            }
            FrontToQueue::Etrn { argument } => {
                let privacy = self.settings.config.privacy;
                let listener = self.fronts.get(&token).map_or("", |f| f.daemon.as_str());
                if privacy.contains(postern_smtp::PrivacyFlags::NO_ETRN)
                    || self.settings.listener_modifiers(listener).contains('E')
                {
                    return Err("ETRN under noetrn".into());
                }
                let target = etrn::Target::parse(&argument);
                if let etrn::Target::QueueGroup(group) = target {
                    if !target.is_known_group() {
                        let refused = etrn_unknown_group(group);
                        return self.reply(
                            token,
                            &QueueToFront::Refused {
                                code: refused.code(),
                                enhanced: refused
                                    .enhanced()
                                    .map(|e| e.to_string())
                                    .unwrap_or_default(),
                                text: refused.lines().join(" "),
                            },
                            &[],
                        );
                    }
                }
                let front = self.fronts.get_mut(&token).ok_or_else(String::new)?;
                front.etrns += 1;
                // sendmail slows a client down after MAXETRNCOMMANDS (8);
                // here later ones start no run: they cannot force the
                // whole queue to be retried again and again.
                let messages = if front.etrns <= MAX_ETRN_RUNS {
                    self.schedule.run_matching_now(target)
                } else {
                    0
                };
                if messages > 0 {
                    self.release_held();
                }
                self.reply(token, &QueueToFront::EtrnStarted { messages }, &[])
            }
            FrontToQueue::LocalUser { name } => {
                // A password-database lookup on the event loop: fast with
                // files; a slow NSS source would slow every front.
                let known = self.local_name_known(&name);
                self.reply(token, &QueueToFront::LocalUser { known }, &[])
            }
            FrontToQueue::Verify { argument, expand } => {
                match self.verify_for_front(&argument, expand) {
                    Some(answer) => self.reply(token, &answer, &[]),
                    None => Err(format!(
                        "{} under PrivacyOptions that forbid it",
                        if expand { "EXPN" } else { "VRFY" }
                    )),
                }
            }
        }
    }

    /// RCPT's question: an alias, or a user whose mailbox is here.
    pub(super) fn local_name_known(&mut self, name: &str) -> bool {
        self.aliases.current().lookup(name).is_some() || policy::local_user_known(name)
    }

    pub(super) fn reply(
        &mut self,
        token: Token,
        msg: &QueueToFront,
        fds: &[std::os::fd::BorrowedFd<'_>],
    ) -> Result<(), Disconnect> {
        let front = self.fronts.get_mut(&token).ok_or_else(String::new)?;
        front.channel.send(msg, fds).map_err(|e| e.to_string())
    }

    pub(super) fn refuse(
        &mut self,
        token: Token,
        code: u16,
        enhanced: &str,
        text: &str,
    ) -> Result<(), Disconnect> {
        let msg = QueueToFront::Refused {
            code,
            enhanced: enhanced.into(),
            text: text.into(),
        };
        self.reply(token, &msg, &[])
    }

    fn open_message(&mut self, token: Token) -> Result<(), Disconnect> {
        // One message at a time per connection, as SMTP has it: a front
        // asking for more is trying to fill the disk or our fd table.
        if self.fronts.get(&token).is_some_and(|f| f.message.is_some()) {
            return Err("a second message while one is open".into());
        }
        let in_transaction = self.fronts.get(&token).is_some_and(|f| f.in_transaction);
        if self.shutting_down && !in_transaction {
            return self.refuse(token, 421, "4.3.2", "Shutting down");
        }
        let (id, file) = match self.spool.create(&mut self.ids) {
            Ok(created) => created,
            Err(e) => {
                log::err(&format!("cannot create a message file: {e}"));
                return self.refuse(token, 452, "4.3.1", "Insufficient system storage");
            }
        };
        let (read_end, write_end) = match incoming::pipe() {
            Ok(pipe) => pipe,
            Err(e) => {
                log::err(&format!("{id}: cannot make a pipe: {e}"));
                let _ = self.spool.abort(&id);
                return self.refuse(token, 451, "4.3.0", "Queue write error; try again later");
            }
        };
        let limit = match self.settings.config.max_message_size {
            0 => None,
            max => Some(max + RECEIVED_ALLOWANCE),
        };
        let message = Incoming::new(id.clone(), file, read_end, limit);
        let fd = message.pipe_fd().expect("a new message has its pipe");
        if let Err(e) = self.poll.registry().register(
            &mut SourceFd(&fd),
            Token(token.0 | PIPE_BIT),
            Interest::READABLE,
        ) {
            log::err(&format!("{id}: cannot watch the pipe: {e}"));
            let _ = self.spool.abort(&id);
            return self.refuse(token, 451, "4.3.0", "Queue write error; try again later");
        }
        if let Some(front) = self.fronts.get_mut(&token) {
            front.message = Some(message);
        }
        // The front gets the write end only; ours is dropped right after
        // the frame carried a copy, so the pipe ends when the front closes.
        self.reply(
            token,
            &QueueToFront::Opened {
                queue_id: id.clone(),
            },
            &[write_end.as_fd()],
        )
    }

    /// The pipe of `token`'s message is readable (or closed).
    pub(super) fn message_data(&mut self, token: Token) {
        self.pump(token);
    }

    /// Moves what arrived into the spool file, one turn's worth; closes
    /// the pipe once it is done with, and comes back to a pipe that may
    /// hold more (its readiness, edge-triggered, would not be told again).
    fn pump(&mut self, token: Token) {
        let Some(message) = self.fronts.get_mut(&token).and_then(|f| f.message.as_mut()) else {
            return;
        };
        match message.pump() {
            Pumped::Drained => {}
            Pumped::More => self.pipes_with_more.push_back(token),
            Pumped::Done => {
                if let Some(fd) = message.pipe_fd() {
                    let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
                }
                message.close_pipe();
            }
        }
    }

    /// Another turn for each pipe that had more than one turn's worth.
    pub(super) fn pump_pipes_with_more(&mut self) {
        for token in std::mem::take(&mut self.pipes_with_more) {
            self.pump(token);
        }
    }

    /// Messages that have not moved for longer than a session may pause
    /// (Timeout.datablock, and a minute): their fronts are cut off. A
    /// front cannot keep a spool file and a pipe open for ever.
    pub(super) fn drop_stalled_messages(&mut self) {
        let allowed = self.settings.config.timeouts.datablock + std::time::Duration::from_secs(60);
        let stalled: Vec<Token> = self
            .fronts
            .iter()
            .filter(|(_, f)| {
                f.message
                    .as_ref()
                    .is_some_and(|m| m.last_moved().elapsed() > allowed)
            })
            .map(|(t, _)| *t)
            .collect();
        for token in stalled {
            self.drop_front(token, "message stalled");
        }
    }

    fn commit(
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
        let discard = discarded_by(&self.settings, peer, envelope);
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

    /// Drops `token`'s message, if any: stops watching its pipe and
    /// removes its file.
    fn discard_message(&mut self, token: Token) {
        let Some(front) = self.fronts.get_mut(&token) else {
            return;
        };
        front.in_transaction = false;
        if let Some(message) = front.message.take() {
            self.forget_message(message);
        }
    }

    fn forget_message(&mut self, message: Incoming) {
        if let Some(fd) = message.pipe_fd() {
            let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
        }
        let _ = self.spool.abort(&message.id);
    }

    /// While shutting down: fronts without a transaction in progress are
    /// let go (their sessions answer 451 if they try to send), so the
    /// queue runner can exit once the transactions in progress are
    /// committed; past the grace period, every front is let go.
    pub(super) fn drop_idle_fronts(&mut self, grace_over: bool) {
        let idle: Vec<Token> = self
            .fronts
            .iter()
            .filter(|(_, f)| {
                grace_over
                    || (f.message.is_none()
                        && !f.in_transaction
                        && !f.committing
                        && !f.channel.wants_write())
            })
            .map(|(t, _)| *t)
            .collect();
        for token in idle {
            self.drop_front(token, if grace_over { "shutting down" } else { "" });
        }
    }

    /// Forgets a front, removing the message it never committed.
    pub(super) fn drop_front(&mut self, token: Token, why: &str) {
        self.discard_message(token);
        let Some(front) = self.fronts.remove(&token) else {
            return;
        };
        if let (Some(auth), Some((exchange, _))) = (&self.auth, &front.auth_exchange) {
            auth.cancel(*exchange);
        }
        if !why.is_empty() {
            log::warning(
                log::Level::Serious,
                &format!(
                    "front channel {} ({}): {why}; disconnecting",
                    front.connection,
                    policy::client_name(&front.peer)
                ),
            );
        }
        let _ = self
            .poll
            .registry()
            .deregister(&mut SourceFd(&std::os::fd::AsRawFd::as_raw_fd(
                &front.channel,
            )));
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
