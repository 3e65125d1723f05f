//! The one step that puts a message in the queue, for SMTP (a front's
//! commit), local submission and the reports Postern makes itself (DSNs)
//! alike: the spool's atomic commit, the `from=` log line (not for a
//! report: sendmail logs its `DSN:` line instead), and the message's first
//! delivery attempt scheduled.

use std::fs::File;

use postern_queue::ControlFile;

use super::{logline, QueueRunner};
use crate::log;

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
        self.commit_to_spool(data, control)?;
        let message_id = message_id.map(loggable);
        log::info(
            log::Level::Received,
            &logline::from_line(control, message_id.as_deref(), daemon),
        );
        self.schedule_first_attempt(control);
        Ok(())
    }

    /// Commits a report Postern made (a DSN) as [`Self::enqueue`] commits a
    /// message, durably, and schedules it; no `from=` line.
    pub(super) fn enqueue_report(
        &mut self,
        data: &File,
        control: &ControlFile,
    ) -> std::io::Result<()> {
        self.commit_to_spool(data, control)?;
        self.schedule_first_attempt(control);
        Ok(())
    }

    fn commit_to_spool(&mut self, data: &File, control: &ControlFile) -> std::io::Result<()> {
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
