//! Control requests master has already authorised: listing the queue,
//! queue runs, hold/release/delete/requeue, verification, and local
//! submission (in `submit.rs`).

use std::os::fd::OwnedFd;

use postern_ipc::{
    Caller, ControlReply, ControlRequest, QueueAction, QueueEntry, QueueRecipient, QueueSelector,
    QueueToMaster, SelectorField, Sysexit,
};
use postern_queue::{ControlFile, QueueId, RecipientState};

use super::QueueRunner;
use crate::log;

fn failed(message: impl Into<String>, exit_code: Sysexit) -> ControlReply {
    ControlReply::Failed {
        message: message.into(),
        exit_code,
    }
}

fn done(message: impl Into<String>) -> ControlReply {
    ControlReply::Done {
        message: message.into(),
    }
}

fn state_name(state: RecipientState) -> &'static str {
    match state {
        RecipientState::Pending => "pending",
        RecipientState::Sent => "sent",
        RecipientState::Deferred => "deferred",
        RecipientState::Failed => "failed",
    }
}

/// Does a selector (`-qI`, `-qR`, `-qS`) pick this message?
fn selects(selector: &QueueSelector, control: &ControlFile) -> bool {
    let needle = selector.substring.to_ascii_lowercase();
    let has = |s: &str| s.to_ascii_lowercase().contains(&needle);
    let matched = match selector.field {
        SelectorField::QueueId => has(control.id.as_str()),
        SelectorField::Sender => has(&control.sender),
        SelectorField::Recipient => control.pending_recipients().any(|r| has(&r.address)),
    };
    matched != selector.negate
}

impl QueueRunner {
    /// Answers one request; the reply goes back to master.
    pub(super) fn control(
        &mut self,
        id: u64,
        caller: Caller,
        request: ControlRequest,
        fds: Vec<OwnedFd>,
    ) {
        let reply = match request {
            ControlRequest::ListQueue => self.list_queue(),
            ControlRequest::RunQueue { selector } => self.run_queue(selector.as_ref()),
            ControlRequest::Queue { action, queue_id } => {
                self.queue_action(action, &queue_id, &caller)
            }
            ControlRequest::Verify { addresses } => self.verify_for_tool(&caller, &addresses),
            ControlRequest::SmtpVerify { argument, expand } => {
                self.verify_for_bs(&caller, &argument, expand)
            }
            ControlRequest::Submit(submission) => match fds.into_iter().next() {
                // Read by a thread of its own; answered in `submissions`.
                Some(fd) => {
                    let limit = self.settings.config.submission_limit();
                    let file = std::fs::File::from(fd);
                    match self.readers.start(file, limit, id, caller, submission) {
                        Ok(()) => return,
                        Err(e) => failed(
                            format!("cannot queue the message now: {e}"),
                            Sysexit::TempFail,
                        ),
                    }
                }
                None => failed("no message", Sysexit::NoInput),
            },
        };
        self.send_control_reply(id, reply);
    }

    /// Submissions whose bytes were read (or that took too long): queued
    /// and answered.
    pub(super) fn submissions(&mut self) {
        for (pending, read) in self.readers.finished() {
            let reply = match read {
                Ok(raw) => self.submit(&pending.caller, &pending.submission, raw),
                Err(e) => failed(format!("cannot read the message: {e}"), Sysexit::IoErr),
            };
            match reply {
                // -v: answered once the first delivery attempt is over.
                ControlReply::Submitted { queue_id } if pending.submission.verbose => {
                    self.verbose.insert(queue_id, pending.request);
                }
                reply => self.send_control_reply(pending.request, reply),
            }
        }
        for late in self.readers.overdue() {
            log::err(&format!(
                "uid {}: the submitted message could not be read within {}s; refused",
                late.caller.uid,
                super::readers::READ_TIME.as_secs()
            ));
            let reply = failed(
                "the message could not be read in time; not queued",
                Sysexit::TempFail,
            );
            self.send_control_reply(late.request, reply);
        }
    }

    /// Sends a control answer; one too large for the channel (a listing of
    /// a huge queue) becomes a short failure, so the tool is never left
    /// waiting.
    pub(super) fn send_control_reply(&mut self, id: u64, reply: ControlReply) {
        let sent = self
            .master
            .send(&QueueToMaster::ControlReply { id, reply }, &[]);
        if let Err(postern_ipc::ChannelError::Frame(e)) = sent {
            let reply = failed(
                format!("the answer is too large to send: {e}"),
                Sysexit::Software,
            );
            let _ = self
                .master
                .send(&QueueToMaster::ControlReply { id, reply }, &[]);
        }
    }

    fn committed(&self) -> Vec<ControlFile> {
        let ids = self.spool.list().unwrap_or_default();
        let mut controls: Vec<ControlFile> = ids
            .iter()
            .filter_map(|id| self.spool.load(id).ok())
            .collect();
        controls.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        controls
    }

    fn list_queue(&self) -> ControlReply {
        let entries = self
            .committed()
            .into_iter()
            .map(|c| QueueEntry {
                size: self.spool.data_size(&c.id).unwrap_or(c.size),
                in_progress: self.schedule.is_busy(&c.id),
                queue_id: c.id.clone(),
                created: c.created,
                sender: c.sender.clone(),
                body: c.body,
                held: c.held,
                quarantine: c.quarantine.clone(),
                attempts: c.attempts,
                recipients: c
                    .recipients
                    .iter()
                    .filter(|r| r.state != RecipientState::Sent)
                    .map(|r| QueueRecipient {
                        address: r.address.clone(),
                        state: state_name(r.state).into(),
                        last_reply: r.last_reply.clone(),
                    })
                    .collect(),
            })
            .collect();
        ControlReply::Queue {
            directory: self.settings.config.queue_directory.display().to_string(),
            entries,
        }
    }

    fn run_queue(&mut self, selector: Option<&QueueSelector>) -> ControlReply {
        let picked: Vec<ControlFile> = self
            .committed()
            .into_iter()
            .filter(|c| !c.held && !c.is_finished())
            .filter(|c| selector.is_none_or(|s| selects(s, c)))
            .collect();
        if !picked.is_empty() {
            self.release_held();
        }
        for c in &picked {
            self.schedule
                .add_at(c.id.clone(), 0, super::schedule::domains_of(c));
        }
        log::info(
            log::Level::Deferred,
            &format!("queue run requested: {} messages", picked.len()),
        );
        done("")
    }

    fn queue_action(&mut self, action: QueueAction, id: &QueueId, caller: &Caller) -> ControlReply {
        let Ok(mut control) = self.spool.load(id) else {
            return failed(
                format!("{id}: no such message in the queue"),
                Sysexit::NoInput,
            );
        };
        if action != QueueAction::Show && self.schedule.is_busy(id) {
            return failed(
                format!("{id}: being delivered right now; try again"),
                Sysexit::TempFail,
            );
        }
        let by = &caller.user;
        let result = match action {
            QueueAction::Show => return done(self.show(&control)),
            QueueAction::Hold => {
                control.held = true;
                self.schedule.forget(id);
                self.spool
                    .update(id, &control)
                    .map(|()| format!("{id}: held"))
            }
            QueueAction::Release => self.try_now(control, "released"),
            QueueAction::Requeue => {
                for r in control
                    .recipients
                    .iter_mut()
                    .filter(|r| r.state != RecipientState::Sent)
                {
                    r.state = RecipientState::Pending;
                }
                self.try_now(control, "requeued")
            }
            QueueAction::Delete => {
                self.schedule.forget(id);
                self.spool.remove(id).map(|()| format!("{id}: deleted"))
            }
        };
        match result {
            Ok(message) => {
                log::notice(log::Level::Refusal, &format!("{message} by {by}"));
                done(message)
            }
            Err(e) => failed(format!("{id}: {e}"), Sysexit::IoErr),
        }
    }

    /// Unholds a message and schedules it now; says `<id>: <what>`.
    fn try_now(&mut self, mut control: ControlFile, what: &str) -> std::io::Result<String> {
        let id = control.id.clone();
        control.held = false;
        control.next_attempt = 0;
        self.schedule
            .add_at(id.clone(), 0, super::schedule::domains_of(&control));
        self.spool
            .update(&id, &control)
            .map(|()| format!("{id}: {what}"))
    }

    /// The control file as it is on disk, then the message's headers.
    fn show(&self, control: &ControlFile) -> String {
        let mut text = control.to_text();
        if let Ok(data) = self.spool.open_data(&control.id) {
            use std::io::{BufRead, BufReader};
            text.push('\n');
            for line in BufReader::new(data).lines().map_while(Result::ok).take(200) {
                let line = line.trim_end_matches('\r');
                if line.is_empty() {
                    break;
                }
                text.push_str(line);
                text.push('\n');
            }
        }
        text
    }
}
