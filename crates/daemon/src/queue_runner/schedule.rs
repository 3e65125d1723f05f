//! When each message is tried, handing due messages to the delivery client,
//! and recording what it reports.

use postern_ipc::LocalTarget;
use postern_queue::TargetKind;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::os::fd::AsFd;
use std::time::Duration;

use postern_ipc::{
    ChannelError, DeliveryJob, DeliveryReport, DeliveryToQueue, EnvelopeRecipient, QueueToDelivery,
    RecipientStatus, PROTOCOL_VERSION,
};
use postern_queue::{BodyType, ControlFile, QueueId, RecipientState};
use postern_smtp::etrn::Target;

use super::{dsn, logline, QueueRunner};
use crate::log;

/// Jobs handed to the delivery client at once.
pub(super) const MAX_IN_FLIGHT: usize = 200;
/// The longest wait between two attempts.
const MAX_BACKOFF: u64 = 4 * 3600;

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The retry schedule, in memory; the control files hold the truth.
#[derive(Default)]
pub struct Schedule {
    due: BTreeSet<(u64, QueueId)>,
    when: HashMap<QueueId, u64>,
    /// Recipient domains per message, for ETRN.
    domains: HashMap<QueueId, Vec<String>>,
    busy: HashSet<QueueId>,
    jobs: HashMap<u64, (QueueId, u64)>,
    next_job: u64,
}

impl Schedule {
    /// Schedules `id` at `at` (unix seconds).
    pub fn add_at(&mut self, id: QueueId, at: u64, domains: Vec<String>) {
        if let Some(old) = self.when.insert(id.clone(), at) {
            self.due.remove(&(old, id.clone()));
        }
        self.due.insert((at, id.clone()));
        self.domains.insert(id, domains);
    }

    /// How long until the next message is due, if any is waiting.
    pub fn next_due_in(&self) -> Option<Duration> {
        let (at, _) = self.due.iter().next()?;
        Some(Duration::from_secs(at.saturating_sub(now())))
    }

    fn pop_due(&mut self, now: u64) -> Option<QueueId> {
        let first = self.due.iter().next().cloned()?;
        if first.0 > now {
            return None;
        }
        self.due.remove(&first);
        self.when.remove(&first.1);
        Some(first.1)
    }

    /// Everything waiting is due now (`runq`, SIGHUP of the queue).
    pub fn run_all_now(&mut self) {
        let ids: Vec<QueueId> = self.when.keys().cloned().collect();
        for id in ids {
            let domains = self.domains.remove(&id).unwrap_or_default();
            self.add_at(id, 0, domains);
        }
    }

    /// ETRN: the messages `target` names are due now: those with a
    /// recipient at `host`, or in `@domain` and its subdomains, or, for
    /// the queue group (`#mqueue`), all of them. Returns how many.
    pub fn run_matching_now(&mut self, target: Target<'_>) -> u32 {
        let (domain, subdomains) = match target {
            Target::Node(host) => (host.to_ascii_lowercase(), false),
            Target::Domain(domain) => (domain.to_ascii_lowercase(), true),
            Target::QueueGroup(_) => {
                let all = self.when.len() as u32;
                self.run_all_now();
                return all;
            }
        };
        let matching: Vec<QueueId> = self
            .when
            .keys()
            .filter(|id| {
                self.domains.get(*id).is_some_and(|ds| {
                    ds.iter()
                        .any(|d| *d == domain || (subdomains && d.ends_with(&format!(".{domain}"))))
                })
            })
            .cloned()
            .collect();
        for id in &matching {
            let domains = self.domains.remove(id).unwrap_or_default();
            self.add_at(id.clone(), 0, domains);
        }
        matching.len() as u32
    }

    /// Jobs the delivery client is working on.
    pub fn in_flight(&self) -> usize {
        self.jobs.len()
    }

    /// True while the delivery client works on `id`.
    pub fn is_busy(&self, id: &QueueId) -> bool {
        self.busy.contains(id)
    }

    /// Takes `id` off the schedule (held or deleted).
    pub fn forget(&mut self, id: &QueueId) {
        if let Some(at) = self.when.remove(id) {
            self.due.remove(&(at, id.clone()));
        }
        self.domains.remove(id);
    }
}

pub(super) fn domains_of(control: &ControlFile) -> Vec<String> {
    control
        .pending_recipients()
        .filter_map(|r| {
            r.address
                .rsplit_once('@')
                .map(|(_, d)| d.to_ascii_lowercase())
        })
        .collect()
}

/// The wait before attempt `attempts + 1`: MinQueueAge, doubling, at most 4h.
fn backoff(min: Duration, attempts: u32) -> u64 {
    let base = min.as_secs().max(1);
    base.saturating_mul(1u64 << attempts.saturating_sub(1).min(20))
        .min(MAX_BACKOFF)
}

impl QueueRunner {
    /// A queue run was asked for: the delivery client tries the servers it
    /// holds back as unreachable again (see `QueueToDelivery::ReleaseHeld`).
    pub(super) fn release_held(&mut self) {
        if let Err(e) = self.delivery.send(&QueueToDelivery::ReleaseHeld, &[]) {
            log::err(&format!(
                "queue runner: cannot reach the delivery client: {e}"
            ));
        }
    }
}

impl QueueRunner {
    /// Puts the messages found at startup on the schedule.
    pub(super) fn load_queue(&mut self, ids: &[QueueId]) -> u32 {
        let mut count = 0;
        for id in ids {
            let loaded = self.spool.load(id).map(|mut control| {
                if dsn::owe_reports_from_before_dsns(&mut control) {
                    if let Err(e) = self.spool.update(id, &control) {
                        log::err(&format!("{id}: cannot update control file: {e}"));
                    }
                }
                control
            });
            match loaded {
                // A message still owing reports (a crash came between
                // them) is looked at again now: see `dispatch`.
                Ok(control) if !control.is_settled() && !control.held => {
                    let at = if control.is_finished() {
                        0
                    } else {
                        control.next_attempt
                    };
                    self.schedule.add_at(id.clone(), at, domains_of(&control));
                    count += 1;
                }
                Ok(_) => count += 1,
                Err(e) => log::err(&format!("{id}: cannot read control file: {e}")),
            }
        }
        count
    }

    /// Hands due messages to the delivery client.
    pub(super) fn dispatch_due(&mut self) {
        let now = now();
        while self.schedule.in_flight() < MAX_IN_FLIGHT && !self.shutting_down {
            let Some(id) = self.schedule.pop_due(now) else {
                return;
            };
            if self.schedule.busy.contains(&id) {
                continue;
            }
            if let Err(e) = self.dispatch(&id) {
                log::err(&format!("{id}: cannot start delivery: {e}"));
            }
        }
    }

    fn dispatch(&mut self, id: &QueueId) -> std::io::Result<()> {
        let control = self
            .spool
            .load(id)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        if control.held {
            return Ok(());
        }
        if control.is_finished() {
            // Nothing to deliver, but reports owed: send them.
            if control.reports_owed() {
                self.conclude(control, now());
            }
            return Ok(());
        }
        if dsn::deliver_by::return_due(&control, now()) {
            // BY=…;R past its deadline: no more attempts; `conclude`
            // fails what is left and returns the message.
            self.conclude(control, now());
            return Ok(());
        }
        let data = self.spool.open_data(id)?;
        self.schedule.next_job += 1;
        let job = self.schedule.next_job;
        let msg = QueueToDelivery::Deliver(DeliveryJob {
            job,
            queue_id: id.clone(),
            sender: control.sender.clone(),
            recipients: control
                .pending_recipients()
                .map(|r| EnvelopeRecipient {
                    address: r.address.clone(),
                    notify: r.notify,
                    orcpt: r.orcpt.clone(),
                    target: r.target.map(|t| match t.kind {
                        TargetKind::File => LocalTarget::File {
                            uid: t.uid,
                            gid: t.gid,
                        },
                        TargetKind::Program => LocalTarget::Program {
                            uid: t.uid,
                            gid: t.gid,
                        },
                    }),
                })
                .collect(),
            envid: control.envid.clone(),
            ret: control.ret,
            eight_bit: control.body == Some(BodyType::EightBitMime),
            size: control.size,
            arrival: control.created,
            deliver_by: control.deliver_by,
            verbose: self.verbose.contains_key(id),
            through: if control.through_mta {
                self.settings.mta_listener()
            } else {
                None
            },
        });
        self.delivery
            .send(&msg, &[data.as_fd()])
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        self.schedule.busy.insert(id.clone());
        self.schedule.jobs.insert(job, (id.clone(), now()));
        Ok(())
    }

    /// Reports from the delivery client.
    pub(super) fn delivery_ready(&mut self) -> Result<(), i32> {
        let fail = |e: ChannelError| {
            log::err(&format!("queue runner: delivery channel: {e}"));
            1
        };
        self.delivery.flush().map_err(fail)?;
        loop {
            match self.delivery.try_recv() {
                Ok(None) => return Ok(()),
                Ok(Some((DeliveryToQueue::Done(report), _))) => self.record(report),
                Ok(Some((DeliveryToQueue::Hello { version }, _)))
                    if version == PROTOCOL_VERSION => {}
                Ok(Some((DeliveryToQueue::Hello { version }, _))) => {
                    log::crit(&format!("delivery client speaks protocol {version}"));
                    return Err(1);
                }
                Err(e) => return Err(fail(e)),
            }
        }
    }

    /// Records a job's results in the control file and logs each recipient.
    fn record(&mut self, report: DeliveryReport) {
        let Some((id, started)) = self.schedule.jobs.remove(&report.job) else {
            log::err(&format!("report for unknown job {}", report.job));
            return;
        };
        self.schedule.busy.remove(&id);
        let mut control = match self.spool.load(&id) {
            Ok(control) => control,
            Err(e) => return log::err(&format!("{id}: cannot read control file: {e}")),
        };
        let now = now();
        let privacy = self.settings.config.privacy;
        let mut forwards = Vec::new();
        for r in &report.recipients {
            let Some(entry) = control.recipients.iter_mut().find(|e| {
                e.address == r.address
                    && matches!(e.state, RecipientState::Pending | RecipientState::Deferred)
            }) else {
                continue;
            };
            entry.attempts += 1;
            // A deferral as mailq shows it after `Deferred: `; a failure
            // with its code, for the transcript in the bounce.
            entry.last_reply = Some(match r.status {
                RecipientStatus::PermFail => r.reply.clone(),
                _ => logline::status_text(r),
            });
            entry.state = match r.status {
                RecipientStatus::Sent => RecipientState::Sent,
                RecipientStatus::TempFail => RecipientState::Deferred,
                RecipientStatus::PermFail => RecipientState::Failed,
            };
            dsn::note_attempt(entry, r, &control.sender, privacy, now);
            if r.status == RecipientStatus::Sent && !r.forwarded.is_empty() {
                forwards.push((entry.clone(), r.forwarded.clone()));
            }
            let level = match r.status {
                RecipientStatus::Sent => log::Level::Delivered,
                RecipientStatus::TempFail => log::Level::Deferred,
                RecipientStatus::PermFail => log::Level::DeliveryFailure,
            };
            let pri =
                logline::priority(control.size, control.recipients.len(), control.attempts + 1);
            log::info(level, &logline::to_line(&control, r, now, started, pri));
        }
        control.attempts += 1;
        if let Some(request) = self.verbose.remove(&id) {
            self.answer_verbose(request, &id, &report, &control);
        }
        for (from, forwarded) in forwards {
            self.add_forwarded(&mut control, &from, &forwarded);
        }
        self.conclude(control, now);
    }

    /// `sendmail -v`: the expansion (`staff... aliased to root, bob`), the
    /// dialogue, then what happened to each recipient, in sendmail's words
    /// (`<rcpt>... Sent (…)`, `bob... forwarded to x`).
    fn answer_verbose(
        &mut self,
        request: u64,
        id: &QueueId,
        report: &DeliveryReport,
        control: &ControlFile,
    ) {
        let mut lines = expansion_lines(control);
        lines.extend(report.transcript.iter().cloned());
        // The delivery client wrote the fate of SMTP recipients into the
        // dialogue; the others (local, routing errors) are told here.
        for r in report.recipients.iter().filter(|r| !r.mailer_speaks_smtp()) {
            lines.push(match r.status {
                RecipientStatus::Sent => format!("{}... Sent", r.address),
                RecipientStatus::TempFail => {
                    format!("{}... Deferred: {}", r.address, logline::status_text(r))
                }
                RecipientStatus::PermFail => format!("{}... {}", r.address, r.reply),
            });
        }
        for r in report.recipients.iter().filter(|r| !r.forwarded.is_empty()) {
            let to: Vec<String> = r.forwarded.iter().map(forward_words).collect();
            lines.push(format!("{}... forwarded to {}", r.address, to.join(", ")));
        }
        // sendmail's exit status after interactive delivery: that of the
        // failure (a deferral is a success: the message is queued).
        let exit_code = report
            .recipients
            .iter()
            .find(|r| r.status == RecipientStatus::PermFail)
            .map_or(postern_ipc::Sysexit::Ok, |r| {
                match logline::dsn_code(r).as_str() {
                    "5.1.1" => postern_ipc::Sysexit::NoUser,
                    "5.1.2" => postern_ipc::Sysexit::NoHost,
                    _ => postern_ipc::Sysexit::Unavailable,
                }
            });
        let reply = postern_ipc::ControlReply::Transcript {
            queue_id: id.clone(),
            lines,
            exit_code,
        };
        self.send_control_reply(request, reply);
    }

    /// After an attempt: gives up on recipients past Timeout.queuereturn
    /// or a `BY=…;R` deadline,
    /// sends the reports due (they are in the spool before the message
    /// stops owing them), then removes the message once every recipient
    /// is settled, or saves it and schedules its next attempt.
    pub(super) fn conclude(&mut self, mut control: ControlFile, now: u64) {
        let id = control.id.clone();
        let timed_out = self.expire(&mut control, now);
        self.send_reports(&mut control, now, timed_out);
        if control.is_settled() {
            // Durable with the committer's next batch.
            let removed = self
                .committer
                .remove(id.clone())
                .or_else(|_| self.spool.remove(&id));
            if let Err(e) = removed {
                log::err(&format!("{id}: cannot remove delivered message: {e}"));
            }
            // sendmail's end-of-job line (LogLevel 14 in its samples).
            log::info(
                log::Level::Diagnostic,
                &format!(
                    "{id}: done; delay={}, ntries={}",
                    logline::interval(now.saturating_sub(control.created)),
                    control.attempts
                ),
            );
            return;
        }
        // Still something to deliver, or a report that could not be
        // queued (tried again then).
        let retry = now + backoff(self.settings.config.min_queue_age, control.attempts.max(1));
        control.next_attempt = if control.is_finished() {
            retry
        } else {
            self.deadline_before(&control, retry, now)
        };
        self.schedule
            .add_at(id.clone(), control.next_attempt, domains_of(&control));
        if let Err(e) = self.spool.update(&id, &control) {
            log::err(&format!("{id}: cannot update control file: {e}"));
        }
    }
}

/// sendmail -v's lines for the aliases a message's recipients came from,
/// in order: `staff@mx.test... aliased to root@mx.test, bob@example.com`.
fn expansion_lines(control: &ControlFile) -> Vec<String> {
    let mut by_alias: Vec<(&str, Vec<&str>)> = Vec::new();
    for r in &control.recipients {
        let Some(alias) = r.alias.as_deref() else {
            continue;
        };
        match by_alias.iter_mut().find(|(a, _)| *a == alias) {
            Some((_, members)) => members.push(&r.address),
            None => by_alias.push((alias, vec![&r.address])),
        }
    }
    by_alias
        .into_iter()
        .map(|(alias, members)| format!("{alias}... aliased to {}", members.join(", ")))
        .collect()
}

/// A `.forward` target as sendmail -v names it.
fn forward_words(f: &postern_ipc::Forward) -> String {
    match f {
        postern_ipc::Forward::Address(a) => a.clone(),
        postern_ipc::Forward::File { path, .. } => path.display().to_string(),
        postern_ipc::Forward::Program { command, .. } => format!("|{command}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_min_queue_age_up_to_four_hours() {
        let min = Duration::from_secs(60);
        assert_eq!(backoff(min, 1), 60);
        assert_eq!(backoff(min, 2), 120);
        assert_eq!(backoff(min, 5), 960);
        assert_eq!(backoff(min, 40), MAX_BACKOFF);
        assert_eq!(backoff(Duration::ZERO, 1), 1);
    }

    #[test]
    fn etrn_matches_domains_and_subdomains() {
        let mut s = Schedule::default();
        let id = |n: &str| n.parse::<QueueId>().unwrap();
        s.add_at(
            id("h0UGn9P7001230"),
            10_000_000_000,
            vec!["example.org".into()],
        );
        s.add_at(
            id("h0UGn9P8001230"),
            10_000_000_000,
            vec!["mx.example.org".into()],
        );
        let run = |s: &mut Schedule, arg: &str| s.run_matching_now(Target::parse(arg));
        assert_eq!(run(&mut s, "Example.ORG"), 1);
        assert_eq!(run(&mut s, "@example.org"), 2);
        assert_eq!(run(&mut s, "other.net"), 0);
        assert!(s.pop_due(now()).is_some());
    }

    #[test]
    fn etrn_for_the_queue_group_runs_everything() {
        let mut s = Schedule::default();
        let id = |n: &str| n.parse::<QueueId>().unwrap();
        s.add_at(id("h0UGn9P7001230"), 10_000_000_000, vec!["a.test".into()]);
        s.add_at(id("h0UGn9P8001230"), 10_000_000_000, vec!["b.test".into()]);
        assert!(s.pop_due(now()).is_none());
        assert_eq!(s.run_matching_now(Target::parse("#mqueue")), 2);
        assert!(s.pop_due(now()).is_some());
        assert!(s.pop_due(now()).is_some());
    }
}
