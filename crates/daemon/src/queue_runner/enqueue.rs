//! The one step that puts a message in the queue, for SMTP (a front's
//! commit), local submission and the reports Postern makes itself (DSNs)
//! alike: the spool's atomic commit, the `from=` log line (not for a
//! report: sendmail logs its `DSN:` line instead), and the message's first
//! delivery attempt scheduled.

use std::fs::File;

use mio::Token;
use postern_ipc::QueueToFront;
use postern_queue::ControlFile;

use super::committer::Job;
use super::{logline, QueueRunner};
use crate::log;

/// A front's message handed to the committer: what is needed once it is
/// durable (or not).
pub struct AwaitingCommit {
    token: Token,
    message_id: Option<String>,
    daemon: String,
}

/// The longest Message-Id a log line carries: it comes from the message,
/// that is from the client.
const MESSAGE_ID_MAX: usize = 256;

impl QueueRunner {
    /// Commits `data` (the message file, complete) with `control`. On
    /// failure nothing of the message is left in the queue, so a client's
    /// retry cannot make a copy; the caller answers with a temporary error.
    /// `message_id` and `daemon` are for the log line only.
    pub(super) fn enqueue(
        &mut self,
        data: &File,
        control: &ControlFile,
        message_id: Option<&str>,
        daemon: Option<&str>,
    ) -> std::io::Result<()> {
        // Aliases are expanded now, as sendmail does at receipt; members
        // of a list with an owner get a message of their own
        // (`expansion.rs`), committed before the message itself so that
        // nothing the client is told is queued can be missing.
        let mut groups = self.expand_recipients(control);
        let main = groups.remove(0);
        let mut copies: Vec<ControlFile> = Vec::new();
        for group in groups {
            match self.commit_copy(data, group, main.id.as_str()) {
                Ok(copy) => copies.push(copy),
                Err(e) => {
                    log::err(&format!("{}: cannot queue a list's copy: {e}", main.id));
                    self.unqueue(&copies);
                    return Err(e);
                }
            }
        }
        if let Err(e) = self.commit_to_spool(data, &main) {
            self.unqueue(&copies);
            return Err(e);
        }
        let message_id = message_id.map(loggable);
        for c in std::iter::once(&main).chain(&copies) {
            log::info(
                log::Level::Received,
                &logline::from_line(c, message_id.as_deref(), daemon),
            );
            self.schedule_first_attempt(c);
        }
        Ok(())
    }

    /// [`Self::enqueue`] for a front's message, through the committer:
    /// the front holding `token` is answered once the message is durable
    /// ([`Self::commits_finished`]). `Err` when it could not be handed
    /// over, and then nothing of it is left.
    pub(super) fn enqueue_for_front(
        &mut self,
        token: Token,
        data: File,
        control: &ControlFile,
        message_id: Option<&str>,
        daemon: &str,
    ) -> std::io::Result<()> {
        let mut groups = self.expand_recipients(control);
        let main = groups.remove(0);
        // The copies first, as in `enqueue`; the main message last.
        let mut messages = Vec::with_capacity(groups.len() + 1);
        for group in groups {
            match self.copy_message(&data, group, main.id.as_str()) {
                Ok(copy) => messages.push(copy),
                Err(e) => {
                    log::err(&format!("{}: cannot queue a list's copy: {e}", main.id));
                    self.abort_all(&messages);
                    return Err(e);
                }
            }
        }
        messages.push((data, main));
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        let ids: Vec<ControlFile> = messages.iter().map(|(_, c)| c.clone()).collect();
        if let Err(e) = self.committer.commit(Job { ticket, messages }) {
            log::err(&format!("{}: queue commit failed: {e}", control.id));
            for c in &ids {
                let _ = self.spool.abort(&c.id);
            }
            return Err(e);
        }
        self.awaiting_commit.insert(
            ticket,
            AwaitingCommit {
                token,
                message_id: message_id.map(loggable),
                daemon: daemon.to_string(),
            },
        );
        Ok(())
    }

    /// The committer's results: each message logged and scheduled, and
    /// its front answered.
    pub(super) fn commits_finished(&mut self) {
        for done in self.committer.finished() {
            let Some(awaiting) = self.awaiting_commit.remove(&done.ticket) else {
                continue;
            };
            let token = awaiting.token;
            if let Some(front) = self.fronts.get_mut(&token) {
                front.committing = false;
            }
            let main = done.controls.last().expect("a job has its message");
            let answer = match done.result {
                Ok(()) => {
                    // The message first, then its copies, as `enqueue` logs.
                    let (main, copies) = done.controls.split_last().expect("checked");
                    for c in std::iter::once(main).chain(copies) {
                        log::info(
                            log::Level::Received,
                            &logline::from_line(
                                c,
                                awaiting.message_id.as_deref(),
                                Some(&awaiting.daemon),
                            ),
                        );
                        self.schedule_first_attempt(c);
                    }
                    let queue_id = main.id.clone();
                    self.reply(token, &QueueToFront::Committed { queue_id }, &[])
                }
                Err(e) => {
                    log::err(&format!("{}: queue commit failed: {e}", main.id));
                    self.refuse(token, 451, "4.3.0", "Queue write error; try again later")
                }
            };
            if let Err(why) = answer {
                self.drop_front(token, &why);
            }
        }
    }

    fn abort_all(&mut self, messages: &[(File, ControlFile)]) {
        for (_, c) in messages {
            let _ = self.spool.abort(&c.id);
        }
    }

    fn unqueue(&mut self, copies: &[ControlFile]) {
        for c in copies {
            let _ = self.spool.remove(&c.id);
        }
    }

    /// Commits a report Postern made (a DSN) as [`Self::enqueue`] commits a
    /// message, durably, and schedules it; no `from=` line.
    pub(super) fn enqueue_report(
        &mut self,
        data: &File,
        control: &ControlFile,
    ) -> std::io::Result<()> {
        // A report to a list (owner-list, postmaster) goes to its members;
        // its sender stays <>, whatever owners they have.
        let mut expanded = control.clone();
        expanded.recipients = self
            .expand_recipients(control)
            .into_iter()
            .flat_map(|c| c.recipients)
            .collect();
        self.commit_to_spool(data, &expanded)?;
        self.schedule_first_attempt(&expanded);
        Ok(())
    }

    pub(super) fn commit_to_spool(
        &mut self,
        data: &File,
        control: &ControlFile,
    ) -> std::io::Result<()> {
        let id = &control.id;
        if let Err(e) = self.spool.commit(id, data, control) {
            log::err(&format!("{id}: queue commit failed: {e}"));
            // The failure may come after the renames.
            let _ = self.spool.remove(id);
            let _ = self.spool.abort(id);
            return Err(e);
        }
        Ok(())
    }

    fn schedule_first_attempt(&mut self, control: &ControlFile) {
        if control.held {
            return;
        }
        self.schedule
            .add_at(control.id.clone(), 0, super::schedule::domains_of(control));
    }
}

/// A Message-Id as a log line may carry it: one line, bounded.
fn loggable(message_id: &str) -> String {
    message_id
        .chars()
        .filter(|c| !c.is_control())
        .take(MESSAGE_ID_MAX)
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn message_ids_are_logged_as_one_bounded_line() {
        assert_eq!(super::loggable("<a@b>\r\nX: y"), "<a@b>X: y");
        assert_eq!(super::loggable(&"x".repeat(1000)).len(), 256);
    }
}
