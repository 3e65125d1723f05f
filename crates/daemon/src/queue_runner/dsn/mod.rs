//! Delivery status notifications: the reports the queue runner returns to
//! a message's sender (bounces, delay warnings, return receipts) and, when
//! the sender is `<>`, to the postmaster (sendmail's double bounce).
//!
//! A report is a new message in the spool, with its own queue ID, sender
//! `<>` and `G dsn` (or `G postmaster`) in its control file, delivered
//! through the same queue as any other. The order is what keeps every
//! recipient accounted for: the report is committed (fsynced, as any
//! message) before the original's control file stops owing it; a crash in
//! between sends it twice, never not at all.
//!
//! Owns: recording what a report needs of each attempt, Timeout.queuewarn
//! and Timeout.queuereturn, acting on DELIVERBY deadlines (failing the
//! recipients of an expired `BY=…;R`, the notice of `BY=…;N`), making and
//! queueing the reports, their log lines (`<id>: <report id>: DSN: …`,
//! `sender notify: …`, `postmaster notify: …`). Does not own: the NOTIFY
//! rules (`policy.rs`), when a DELIVERBY deadline falls (`deliver_by.rs`),
//! the report's text (`message.rs`), when a message is tried
//! (`schedule.rs`).

pub mod deliver_by;
pub mod message;
pub mod policy;

use std::io::{Read, Write};

use postern_ipc::{RecipientReport, RecipientStatus};
use postern_queue::{ControlFile, DsnDue, Generated, QueueId, RecipientEntry, RecipientState};
use postern_smtp::PrivacyFlags;

use super::{logline, QueueRunner};
use crate::log;
use message::{Action, Kind, Report, Returned};

/// The status a report gives a recipient that timed out in the queue.
const TIMED_OUT: &str = "4.4.7";
/// The status of a recipient whose DELIVERBY time (mode R) ran out
/// (RFC 2852 §4.1.3; sendmail's `dropenvelope`).
const DELIVERY_TIME_EXPIRED: &str = "5.4.7";

/// Why recipients still waiting in the queue were given up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// Timeout.queuereturn.
    Lifetime,
    /// The DELIVERBY deadline of a `BY=…;R` message.
    DeliverBy,
}

impl Expiry {
    fn status(self) -> &'static str {
        match self {
            Expiry::Lifetime => TIMED_OUT,
            Expiry::DeliverBy => DELIVERY_TIME_EXPIRED,
        }
    }
}

/// Writes down what a report about `entry` will need from the attempt
/// `report` describes, and which report (if any) it now owes.
pub fn note_attempt(
    entry: &mut RecipientEntry,
    report: &RecipientReport,
    sender: &str,
    privacy: PrivacyFlags,
    now: u64,
) {
    entry.status = Some(logline::dsn_code(report));
    entry.remote_mta = report
        .mailer_speaks_smtp()
        .then(|| remote_mta(&report.relay))
        .filter(|m| !m.is_empty());
    entry.diagnostic = report.peer.then(|| report.reply.clone());
    entry.command = report.command.clone().filter(|_| report.peer);
    entry.last_attempt = Some(now);
    entry.dsn = match report.status {
        RecipientStatus::PermFail => policy::failure_due(entry.notify),
        RecipientStatus::Sent => policy::success_due(
            entry.notify,
            report,
            sender.is_empty(),
            privacy.contains(PrivacyFlags::NO_RECEIPTS),
        ),
        RecipientStatus::TempFail => None,
    };
}

/// sendmail's `e_message` for a failure: the server's refusal in its own
/// words (`User unknown`); a failure Postern decided itself (a mailertable
/// `error:` entry, an unknown host) as sendmail's usrerr() writes it,
/// naming the address (`u@nouser.test... User unknown`).
fn failure_text(original: &ControlFile, r: &RecipientEntry) -> String {
    let words = message::failure_words(r.status.as_deref().unwrap_or("5.0.0"));
    match (&r.remote_mta, r.last_reply.as_deref()) {
        (None, Some(reply)) => {
            let text = match logline::split_coded_reply(reply) {
                Some((_, _, "")) => words,
                Some((_, _, text)) => text,
                None => reply,
            };
            format!(
                "{}... {}",
                message::printed_address(original, &r.address),
                text
            )
        }
        _ => words.to_string(),
    }
}

/// A control file written before Postern sent reports kept its failed
/// recipients for ever, unreported (they have no `status=`): they owe
/// their report now, as NOTIFY asks. Returns whether any did.
pub fn owe_reports_from_before_dsns(control: &mut ControlFile) -> bool {
    let mut any = false;
    for r in control
        .recipients
        .iter_mut()
        .filter(|r| r.state == RecipientState::Failed && r.status.is_none() && r.dsn.is_none())
    {
        r.status = Some(
            r.last_reply
                .as_deref()
                .and_then(|reply| {
                    reply
                        .split(' ')
                        .find(|w| postern_smtp::EnhancedCode::parse(w).is_some())
                })
                .unwrap_or("5.0.0")
                .to_string(),
        );
        r.dsn = policy::failure_due(r.notify);
        any = true;
    }
    any
}

/// sendmail's Remote-MTA: the host it talked to, from `relay=`
/// (`mx.example. [192.0.2.2]` → `mx.example`, `[127.0.0.1] [127.0.0.1]`
/// → `[127.0.0.1]`).
fn remote_mta(relay: &str) -> String {
    relay
        .split(' ')
        .next()
        .unwrap_or("")
        .trim_end_matches('.')
        .to_string()
}

fn local_offset() -> i32 {
    chrono::Local::now().offset().local_minus_utc()
}

impl QueueRunner {
    /// Timeout.queuereturn: recipients still deferred when the message
    /// is that old fail (status 4.4.7); a `BY=…;R` message past its
    /// deadline fails every recipient not yet delivered (5.4.7, taking
    /// precedence as in sendmail). Returns why, when any did.
    pub(super) fn expire(&mut self, control: &mut ControlFile, now: u64) -> Option<Expiry> {
        let lifetime = self.settings.config.timeouts.queuereturn.as_secs();
        let expiry = if deliver_by::return_due(control, now) {
            Expiry::DeliverBy
        } else if lifetime > 0 && now.saturating_sub(control.created) >= lifetime {
            Expiry::Lifetime
        } else {
            return None;
        };
        let mut any = false;
        for r in control.recipients.iter_mut().filter(|r| {
            r.state == RecipientState::Deferred
                || (expiry == Expiry::DeliverBy && r.state == RecipientState::Pending)
        }) {
            r.state = RecipientState::Failed;
            r.status = Some(expiry.status().into());
            r.diagnostic = None;
            r.command = None;
            r.dsn = policy::failure_due(r.notify);
            any = true;
        }
        any.then_some(expiry)
    }

    /// When the message must next be looked at for Timeout.queuewarn or
    /// Timeout.queuereturn, if that comes before `next`.
    pub(super) fn deadline_before(&self, control: &ControlFile, next: u64, now: u64) -> u64 {
        let timeouts = &self.settings.config.timeouts;
        let mut at = next;
        for (limit, pending) in [
            (timeouts.queuewarn.as_secs(), !control.warned),
            (timeouts.queuereturn.as_secs(), true),
        ] {
            let due = control.created.saturating_add(limit);
            if limit > 0 && pending && due > now {
                at = at.min(due);
            }
        }
        if let Some(due) = deliver_by::next_check(control).filter(|&due| due > now) {
            at = at.min(due);
        }
        at
    }

    /// Makes and queues every report `control` owes, and the delay
    /// warning when it is due; clears what was reported. `timed_out`:
    /// [`Self::expire`] failed recipients just now, and why. A report that
    /// cannot be queued stays owed (logged), to be tried again.
    pub(super) fn send_reports(
        &mut self,
        control: &mut ControlFile,
        now: u64,
        timed_out: Option<Expiry>,
    ) {
        self.report_failures(control, now, timed_out);
        self.report_successes(control, now);
        self.warn_of_delay(control, now);
    }

    fn report_failures(&mut self, control: &mut ControlFile, now: u64, timed_out: Option<Expiry>) {
        let owed = owed(control, DsnDue::Failed);
        if owed.is_empty() {
            return;
        }
        let id = control.id.clone();
        if control.generated == Some(Generated::Postmaster) {
            // A report to the postmaster that failed: nobody is left to
            // tell. sendmail drops it too; the log keeps the trace.
            log::err(&format!(
                "{id}: cannot deliver the postmaster notice to {}: dropped",
                control.recipients[owed[0]].address
            ));
            clear(control, &owed);
            return;
        }
        let lifetime = self.settings.config.timeouts.queuereturn.as_secs();
        let first = &control.recipients[owed[0]];
        let timed_out = timed_out.filter(|e| first.status.as_deref() == Some(e.status()));
        let by = control.deliver_by.map_or(0, |by| by.seconds);
        // sendmail's `e_message`: the log line's words.
        let text = match timed_out {
            Some(Expiry::Lifetime) => format!(
                "Cannot send message for {}",
                message::interval_words(lifetime)
            ),
            Some(Expiry::DeliverBy) => format!("delivery time expired {by}s"),
            None => failure_text(control, first),
        };
        let (kind, what) = match timed_out {
            _ if control.sender.is_empty() => (Kind::Postmaster, "postmaster notify"),
            Some(Expiry::Lifetime) => (
                Kind::Failure {
                    timed_out: Some(lifetime),
                },
                "sender notify",
            ),
            Some(Expiry::DeliverBy) => (Kind::DeliverByExpired { by }, "sender notify"),
            None => (Kind::Failure { timed_out: None }, "DSN"),
        };
        let recipients = owed.iter().map(|&i| (i, Action::Failed)).collect();
        if self.queue_report(control, kind, recipients, now, &format!("{what}: {text}")) {
            clear(control, &owed);
        }
    }

    fn report_successes(&mut self, control: &mut ControlFile, now: u64) {
        let mut owed: Vec<(usize, Action)> = Vec::new();
        for (i, r) in control.recipients.iter().enumerate() {
            match r.dsn {
                Some(DsnDue::Delivered) => owed.push((i, Action::Delivered)),
                Some(DsnDue::Relayed) => owed.push((i, Action::Relayed)),
                _ => {}
            }
        }
        if owed.is_empty() {
            return;
        }
        let indices: Vec<usize> = owed.iter().map(|(i, _)| *i).collect();
        if self.queue_report(control, Kind::Success, owed, now, "DSN: Return receipt") {
            clear(control, &indices);
        }
    }

    /// Timeout.queuewarn, or the deadline of a `BY=…;N` message: one
    /// warning per message (sendmail's: Timeout.queuewarn's when both are
    /// due), for the recipients still undelivered whose NOTIFY allows it;
    /// never to `<>`.
    fn warn_of_delay(&mut self, control: &mut ControlFile, now: u64) {
        let timeouts = &self.settings.config.timeouts;
        let (after, lifetime) = (timeouts.queuewarn.as_secs(), timeouts.queuereturn.as_secs());
        if control.warned {
            return;
        }
        let queuewarn_due = after > 0
            && now.saturating_sub(control.created) >= after
            && !(lifetime > 0 && after >= lifetime);
        let (kind, text) = if queuewarn_due {
            (
                Kind::Warning { after, lifetime },
                format!(
                    "Warning: could not send message for past {}",
                    message::interval_words(after)
                ),
            )
        } else if deliver_by::notice_due(control, now) {
            let by = control.deliver_by.map_or(0, |by| by.seconds);
            (
                Kind::DeliverByWarning { by, lifetime },
                format!("Warning: Delivery time ({by}s) exceeded"),
            )
        } else {
            return;
        };
        let delayed: Vec<(usize, Action)> = control
            .recipients
            .iter()
            .enumerate()
            .filter(|(_, r)| {
                matches!(r.state, RecipientState::Deferred | RecipientState::Pending)
                    && policy::wants_delay(r.notify)
            })
            .map(|(i, _)| (i, Action::Delayed))
            .collect();
        if control.sender.is_empty() || delayed.is_empty() {
            control.warned = true;
            return;
        }
        if self.queue_report(
            control,
            kind,
            delayed,
            now,
            &format!("sender notify: {text}"),
        ) {
            control.warned = true;
        }
    }

    /// Makes one report about `recipients` of `control`, commits it to the
    /// spool and logs `<id>: <report id>: <log_text>`. False when it could
    /// not be queued (logged).
    fn queue_report(
        &mut self,
        control: &ControlFile,
        kind: Kind,
        recipients: Vec<(usize, Action)>,
        now: u64,
        log_text: &str,
    ) -> bool {
        let id = control.id.clone();
        match self.try_queue_report(control, kind, &recipients, now) {
            Ok(report_id) => {
                log::info(log::Level::Query, &format!("{id}: {report_id}: {log_text}"));
                true
            }
            Err(e) => {
                log::err(&format!(
                    "{id}: cannot queue the delivery status notification: {e}"
                ));
                false
            }
        }
    }

    fn try_queue_report(
        &mut self,
        control: &ControlFile,
        kind: Kind,
        recipients: &[(usize, Action)],
        now: u64,
    ) -> std::io::Result<QueueId> {
        let privacy = self.settings.config.privacy;
        let host = self.settings.hostname.clone();
        let (to_address, to_header, generated) = match kind {
            Kind::Postmaster => {
                let pm = format!("postmaster@{host}");
                (pm.clone(), pm, Generated::Postmaster)
            }
            _ => (
                control.sender.clone(),
                message::printed_address(control, &control.sender),
                Generated::Dsn,
            ),
        };
        let mut original = Vec::new();
        self.spool
            .open_data(&control.id)?
            .take(control.size)
            .read_to_end(&mut original)?;
        let body_back = control.ret != Some(postern_queue::Ret::Hdrs)
            && !privacy.contains(PrivacyFlags::NO_BODY_RETURN);
        let returned = if body_back {
            Returned::Full(&original)
        } else {
            Returned::Headers(message::header_section(&original))
        };
        let (report_id, mut data) = self.spool.create(&mut self.ids)?;
        let version = format!("Postern {}", env!("CARGO_PKG_VERSION"));
        let report = Report {
            kind,
            hostname: &host,
            id: report_id.as_str(),
            original: control,
            recipients: recipients
                .iter()
                .map(|&(i, a)| (&control.recipients[i], a))
                .collect(),
            to: &to_header,
            now,
            utc_offset: local_offset(),
            returned,
            actual_recipient: !privacy.contains(PrivacyFlags::NO_ACTUAL_RECIPIENT),
            version: &version,
        };
        let bytes = report.build();
        if let Err(e) = data.write_all(&bytes) {
            let _ = self.spool.abort(&report_id);
            return Err(e);
        }
        let mut report_control = ControlFile::new(report_id.clone(), now, "");
        report_control.size = bytes.len() as u64;
        report_control.body = control.body;
        report_control.client = "localhost".into();
        report_control.generated = Some(generated);
        report_control.recipients = vec![RecipientEntry::new(to_address)];
        self.enqueue_report(&data, &report_control)?;
        Ok(report_id)
    }
}

/// Indices of the recipients owing a report `due`.
fn owed(control: &ControlFile, due: DsnDue) -> Vec<usize> {
    control
        .recipients
        .iter()
        .enumerate()
        .filter(|(_, r)| r.dsn == Some(due))
        .map(|(i, _)| i)
        .collect()
}

fn clear(control: &mut ControlFile, indices: &[usize]) {
    for &i in indices {
        control.recipients[i].dsn = None;
    }
}

#[cfg(test)]
mod note_tests {
    use super::*;

    #[test]
    fn failures_from_before_dsns_owe_their_report() {
        let text = "V1\nI 402A0000001230\nT 5\nS a@b\nN 1\nK 0\n\
                    r c@d\tstate=failed\tattempts=1\tnext=0\treply=550 5.1.1 <c@d>... User unknown\n\
                    r e@f\tstate=failed\tattempts=1\tnext=0\tnotify=NEVER\n\
                    r g@h\tstate=sent\tattempts=1\tnext=0\n";
        let mut cf = ControlFile::parse(text).unwrap();
        assert!(cf.is_settled());
        assert!(owe_reports_from_before_dsns(&mut cf));
        assert_eq!(cf.recipients[0].status.as_deref(), Some("5.1.1"));
        assert_eq!(cf.recipients[0].dsn, Some(DsnDue::Failed));
        assert_eq!(cf.recipients[1].dsn, None);
        assert!(!cf.is_settled());
        // Once noted, never again.
        assert!(!owe_reports_from_before_dsns(&mut cf));
    }

    #[test]
    fn remote_mta_is_the_host_talked_to() {
        assert_eq!(remote_mta("[127.0.0.1] [127.0.0.1]"), "[127.0.0.1]");
        assert_eq!(remote_mta("mx.example. [192.0.2.2]"), "mx.example");
        assert_eq!(remote_mta(""), "");
    }

    #[test]
    fn an_attempt_leaves_what_the_report_needs() {
        let mut e = RecipientEntry::new("u@b.test");
        let report = RecipientReport {
            address: "u@b.test".into(),
            status: RecipientStatus::PermFail,
            reply: "550 5.1.1 <u@b.test>: no".into(),
            relay: "[127.0.0.1] [127.0.0.1]".into(),
            mailer: "esmtp".into(),
            peer: true,
            dsn_passed_on: false,
            command: Some("RCPT To:<u@b.test>".into()),
            forwarded: Vec::new(),
        };
        note_attempt(&mut e, &report, "s@a.test", PrivacyFlags::default(), 7);
        assert_eq!(e.status.as_deref(), Some("5.1.1"));
        assert_eq!(e.remote_mta.as_deref(), Some("[127.0.0.1]"));
        assert_eq!(e.diagnostic.as_deref(), Some("550 5.1.1 <u@b.test>: no"));
        assert_eq!(e.command.as_deref(), Some("RCPT To:<u@b.test>"));
        assert_eq!((e.last_attempt, e.dsn), (Some(7), Some(DsnDue::Failed)));
        // Postern's own account (connection refused) is no Diagnostic-Code.
        let refused = RecipientReport {
            status: RecipientStatus::TempFail,
            reply: "451 4.4.1 Connection refused by [127.0.0.1]".into(),
            peer: false,
            command: None,
            forwarded: Vec::new(),
            ..report
        };
        note_attempt(&mut e, &refused, "s@a.test", PrivacyFlags::default(), 8);
        assert_eq!(e.status.as_deref(), Some("4.4.1"));
        assert_eq!((e.diagnostic.as_deref(), e.dsn), (None, None));
        assert_eq!(e.command, None);
    }
}
