//! Serving fronts: opening messages (a spool file and the pipe into it),
//! committing them (`front_commit.rs`), answering local-user questions and VRFY/EXPN
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
    queue_front_channel, ChannelError, FrontToQueue, QueueFrontChannel, QueueToFront,
    PROTOCOL_VERSION,
};
use postern_smtp::etrn;
use postern_smtp::server::etrn_unknown_group;

use super::incoming::{self, Incoming, Pumped};
use super::{QueueRunner, PIPE_BIT};
use crate::log;
use crate::policy;

/// One front's channel, what master told us of its client, and the
/// message it is sending, if any.
pub struct FrontConn {
    channel: QueueFrontChannel,
    connection: u64,
    pub(super) peer: SocketAddr,
    pub(super) daemon: String,
    pub(super) message: Option<Incoming>,
    /// Its Hello arrived; a second one is a violation.
    greeted: bool,
    /// ETRN requests so far.
    etrns: u32,
    /// MAIL FROM was accepted and the message is not yet committed or
    /// aborted: kept through a shutdown's grace period.
    pub(super) in_transaction: bool,
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
pub(super) type Disconnect = String;

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

    pub(super) fn forget_message(&mut self, message: Incoming) {
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
