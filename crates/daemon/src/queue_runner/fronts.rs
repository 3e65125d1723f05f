//! Serving fronts: opening message files, committing them durably, and
//! cleaning up after fronts that vanish or misbehave.

use std::collections::HashMap;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

use mio::unix::SourceFd;
use mio::{Interest, Token};
use postern_ipc::{
    queue_front_channel, ChannelError, FrontToQueue, MessageEnvelope, QueueFrontChannel,
    QueueToFront, PROTOCOL_VERSION,
};
use postern_queue::{BodyType, ControlFile, DeliverBy, QueueId, RecipientEntry, Ret};

use super::{logline, QueueRunner};
use crate::log;

/// One front's channel and the message files it holds open.
pub struct FrontConn {
    channel: QueueFrontChannel,
    connection: u64,
    open: HashMap<String, File>,
    /// Its Hello arrived; a second one is a violation.
    greeted: bool,
}

/// Why a front is disconnected.
type Disconnect = String;

/// Requests one front may have handled per wake-up. An honest front waits
/// for each answer, so it never has more than three in flight (its Hello,
/// an Abort, one request); a front with more is flooding the queue runner
/// and is cut off, so that it cannot hold up the other fronts.
const FRAMES_PER_WAKEUP: usize = 8;

impl QueueRunner {
    pub(super) fn add_front(&mut self, connection: u64, fd: OwnedFd) {
        let stream = UnixStream::from(fd);
        if stream.set_nonblocking(true).is_err() {
            return;
        }
        let token = Token(self.next_token);
        self.next_token += 1;
        let mut channel = queue_front_channel(stream);
        let registered = self.poll.registry().register(
            &mut SourceFd(&channel.as_raw_fd()),
            token,
            Interest::READABLE | Interest::WRITABLE,
        );
        if registered.is_err()
            || channel
                .send(
                    &QueueToFront::Hello {
                        version: PROTOCOL_VERSION,
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
                open: HashMap::new(),
                greeted: false,
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
        for handled in 0.. {
            let Some(front) = self.fronts.get_mut(&token) else {
                return Ok(());
            };
            match front.channel.try_recv() {
                Ok(None) => return Ok(()),
                Ok(Some(_)) if handled == FRAMES_PER_WAKEUP => {
                    return Err(format!("more than {FRAMES_PER_WAKEUP} requests at once"))
                }
                Ok(Some((request, _fds))) => self.front_request(token, request)?,
                Err(ChannelError::Closed) => return Err(String::new()),
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(())
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
            FrontToQueue::OpenMessage => self.open_message(token),
            FrontToQueue::Commit { queue_id, envelope } => self.commit(token, &queue_id, &envelope),
            FrontToQueue::Abort { queue_id } => {
                if let Some(front) = self.fronts.get_mut(&token) {
                    if front.open.remove(&queue_id).is_some() {
                        if let Ok(id) = queue_id.parse::<QueueId>() {
                            let _ = self.spool.abort(&id);
                        }
                    }
                }
                Ok(())
            }
            FrontToQueue::Etrn { argument } => {
                let messages = self.schedule.run_matching_now(&argument);
                self.reply(token, &QueueToFront::EtrnStarted { messages }, &[])
            }
        }
    }

    fn reply(
        &mut self,
        token: Token,
        msg: &QueueToFront,
        fds: &[std::os::fd::BorrowedFd<'_>],
    ) -> Result<(), Disconnect> {
        let front = self.fronts.get_mut(&token).ok_or_else(String::new)?;
        front.channel.send(msg, fds).map_err(|e| e.to_string())
    }

    fn refuse(
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
        if self.fronts.get(&token).is_some_and(|f| !f.open.is_empty()) {
            return Err("a second message file while one is open".into());
        }
        if self.shutting_down {
            return self.refuse(token, 421, "4.3.2", "Shutting down");
        }
        let (id, file) = match self.spool.create(&mut self.ids) {
            Ok(created) => created,
            Err(e) => {
                log::err(&format!("cannot create a message file: {e}"));
                return self.refuse(
                    token,
                    452,
                    "4.4.5",
                    "Insufficient disk space; try again later",
                );
            }
        };
        // The front gets a write-only descriptor of its own; ours, opened
        // for reading and writing, is the one that is fsynced at commit.
        let writer = match self.spool.open_for_writing(&id) {
            Ok(writer) => writer,
            Err(e) => {
                log::err(&format!("{id}: cannot open the message file: {e}"));
                let _ = self.spool.abort(&id);
                return self.refuse(token, 451, "4.3.0", "Queue write error; try again later");
            }
        };
        self.reply(
            token,
            &QueueToFront::Opened {
                queue_id: id.to_string(),
            },
            &[writer.as_fd()],
        )?;
        if let Some(front) = self.fronts.get_mut(&token) {
            front.open.insert(id.to_string(), file);
        }
        Ok(())
    }

    fn commit(
        &mut self,
        token: Token,
        queue_id: &str,
        envelope: &MessageEnvelope,
    ) -> Result<(), Disconnect> {
        // A front may commit only a file it was given.
        let file = self
            .fronts
            .get_mut(&token)
            .and_then(|f| f.open.remove(queue_id))
            .ok_or_else(|| format!("commit of unknown message {queue_id:?}"))?;
        let id: QueueId = queue_id
            .parse()
            .map_err(|_| format!("bad queue id {queue_id:?}"))?;
        // The size is the file's, not what the front claims.
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        let control = match control_file(&id, envelope, size) {
            Ok(control) => control,
            Err(why) => {
                let _ = self.spool.abort(&id);
                return Err(why);
            }
        };
        if let Err(e) = self.spool.commit(&id, &file, &control) {
            log::err(&format!("{id}: queue commit failed: {e}"));
            // The failure may come after the renames: take the message out
            // of the queue too, or the client's retry would make a copy.
            let _ = self.spool.remove(&id);
            let _ = self.spool.abort(&id);
            return self.refuse(token, 451, "4.3.0", "Queue write error; try again later");
        }
        log::info(5, &logline::from_line(queue_id, envelope, size));
        self.schedule
            .add_at(id.clone(), 0, super::schedule::domains_of(&control));
        self.reply(
            token,
            &QueueToFront::Committed {
                queue_id: id.to_string(),
            },
            &[],
        )
    }

    /// While shutting down: fronts without a message in progress are let
    /// go (their sessions answer 451 if they try to send), so the queue
    /// runner can exit once the messages in progress are committed.
    pub(super) fn drop_idle_fronts(&mut self) {
        let idle: Vec<Token> = self
            .fronts
            .iter()
            .filter(|(_, f)| f.open.is_empty() && !f.channel.wants_write())
            .map(|(t, _)| *t)
            .collect();
        for token in idle {
            self.drop_front(token, "");
        }
    }

    /// Forgets a front, removing the files it never committed.
    fn drop_front(&mut self, token: Token, why: &str) {
        let Some(mut front) = self.fronts.remove(&token) else {
            return;
        };
        if !why.is_empty() {
            log::warning(
                1,
                &format!("front channel {}: {why}; disconnecting", front.connection),
            );
        }
        let _ = self
            .poll
            .registry()
            .deregister(&mut SourceFd(&front.channel.as_raw_fd()));
        for (queue_id, _) in front.open.drain() {
            if let Ok(id) = queue_id.parse::<QueueId>() {
                let _ = self.spool.abort(&id);
            }
        }
    }
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
    control.ret = match e.ret.as_deref() {
        Some("FULL") => Some(Ret::Full),
        Some("HDRS") => Some(Ret::Hdrs),
        _ => None,
    };
    control.body = match e.body.as_deref() {
        Some("8BITMIME") => Some(BodyType::EightBitMime),
        Some("7BIT") => Some(BodyType::SevenBit),
        _ => None,
    };
    control.size = size;
    control.helo = e.helo.clone();
    control.client = e.client.clone();
    control.protocol = e.protocol.clone();
    control.auth = e.auth.clone();
    control.deliver_by = e.deliver_by.as_deref().and_then(parse_deliver_by);
    control.next_attempt = now;
    control.recipients = e
        .recipients
        .iter()
        .map(|r| {
            let mut entry = RecipientEntry::new(r.address.clone());
            entry.notify = r.notify.clone();
            entry.orcpt = r.orcpt.clone();
            entry
        })
        .collect();
    Ok(control)
}

fn parse_deliver_by(text: &str) -> Option<DeliverBy> {
    let (secs, mode) = text.split_once(';')?;
    Some(DeliverBy {
        seconds: secs.parse().ok()?,
        return_on_expiry: mode.starts_with('R'),
        trace: mode.ends_with('T'),
    })
}
