//! Per-job bookkeeping: one [`Job`] per `Deliver` frame, from routing to the
//! `Done` report.
//!
//! Owns: routing every recipient of a job, settling the `error:` ones at
//! once, grouping the local ones by mailbox ([`LocalGroup`]: one local
//! delivery agent each) and the remote ones by target ([`Pending`]:
//! one host, port and mailer), turning a target with its servers into an
//! SMTP session ([`SessionPlan`], the next servers kept as its fallback;
//! a session per target, so one message to one destination is one
//! transaction), building each session's
//! envelope (DSN parameters included), and collecting one
//! [`RecipientReport`] per recipient until the job is complete. Does not
//! own: the event loop (`mod.rs`) or the sockets (`outbound.rs`).
//!
//! STARTTLS: every session is opportunistic when the client TLS context
//! exists (master always builds it). With `TLSFallbacktoClear` the plan
//! also carries what it takes to run the same envelope again without
//! STARTTLS ([`SessionPlan::in_clear`]) after a failed handshake.
//!
//! The invariant the queue runner relies on: every recipient of the job is
//! reported exactly once, in the job's order. [`Job::record`] refuses a
//! second result for a recipient, and [`Job::into_report`] is only called
//! when [`Job::is_complete`].

use std::fs::File;
use std::rc::Rc;

use postern_config::TlsRequirement;
use postern_ipc::{DeliveryJob, DeliveryReport, RecipientReport, RecipientStatus};
use postern_smtp::client::{ClientConfig, ClientSession, Envelope, Protocol, StartTlsPolicy};
use postern_tls::ClientTls;

use super::destination::{Candidate, Endpoint, NoServer};
use super::envelope::envelope;
use super::message::Message;
use super::route::{self, Route, Target};
use super::tls_policy::{self, TlsPolicy};
use crate::log;
use crate::settings::Settings;

/// One job in flight.
pub struct Job {
    /// The job as the queue runner sent it.
    pub job: DeliveryJob,
    /// The message, read-only, shared with the job's sessions.
    pub data: Rc<Message>,
    results: Vec<Option<RecipientReport>>,
    /// The SMTP dialogue of its sessions, when the job asked for it.
    transcript: Vec<String>,
    /// Per recipient, the address its RCPT gives when it is not the
    /// recipient's own (a local user handed to LMTP as `user@$j`).
    rcpt_as: Vec<Option<String>>,
}

/// One SMTP session to be run for some recipients of a job.
pub struct SessionPlan {
    /// The loop's key for the job.
    pub job_key: u64,
    /// The message's queue id, for log lines.
    pub queue_id: postern_ipc::QueueId,
    /// Where to connect.
    pub addr: Endpoint,
    /// sendmail's `relay=` text.
    pub relay: String,
    /// sendmail's `mailer=`.
    pub mailer: String,
    /// The job's recipient indices, in envelope order.
    pub indices: Vec<usize>,
    /// The session, waiting for its greeting.
    pub session: ClientSession,
    /// The message.
    pub data: Rc<Message>,
    /// The client TLS context; `None` when the session never sends
    /// STARTTLS.
    pub tls: Option<ClientTls>,
    /// The host as sendmail names it, `mx.example.` or `[192.0.2.1]`: to
    /// TLS (SNI for a name), in `STARTTLS=client` lines and in the texts
    /// of failures (`Connection refused by [127.0.0.1]`).
    pub host: String,
    /// `TLSFallbacktoClear`: the session's configuration and envelope, to
    /// run it again without STARTTLS after a failed handshake. Never for a
    /// server with a `TLS_Srv:` requirement.
    pub clear_retry: Option<(ClientConfig, Envelope)>,
    /// The access map's `TLS_Srv:` requirement for this server: the
    /// session stops after the hello for it to be checked.
    pub tls_requirement: Option<TlsRequirement>,
    /// Keep the SMTP dialogue for the report (`sendmail -v`).
    pub verbose: bool,
    /// The recipients' addresses, in envelope order, as `sendmail -v`'s
    /// lines name them.
    pub addresses: Vec<String>,
    /// The servers to try next when this one cannot be reached or does
    /// not greet (the next address, the next MX), in order.
    pub fallback: Vec<Candidate>,
    /// The envelope, for a connection kept open from an earlier message
    /// to run it instead of `session`.
    pub envelope: Envelope,
}

/// Local recipients of a job with one mailbox: one agent writes it once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalGroup {
    /// The mailbox (user) name; for a file or program, its address.
    pub user: String,
    /// The job's recipient indices.
    pub indices: Vec<usize>,
    /// A file or program target (one recipient).
    pub target: Option<postern_ipc::LocalTarget>,
}

/// Remote recipients of a job with one target, waiting for its servers.
#[derive(Clone, Debug)]
pub struct Pending {
    /// Where they go.
    pub target: Target,
    /// The job's recipient indices.
    pub indices: Vec<usize>,
}

impl SessionPlan {
    /// The same delivery as a new session that never sends STARTTLS
    /// (sendmail's `TLSFallbacktoClear`); `None` when the plan has no
    /// clear-text retry (the option is off, or this is the retry).
    pub fn in_clear(&mut self) -> Option<SessionPlan> {
        let (mut config, envelope) = self.clear_retry.take()?;
        config.starttls = StartTlsPolicy::Never;
        // Both were validated when this plan's session was made.
        let session = ClientSession::new(config, envelope.clone()).ok()?;
        Some(SessionPlan {
            job_key: self.job_key,
            queue_id: self.queue_id.clone(),
            addr: self.addr.clone(),
            relay: self.relay.clone(),
            mailer: self.mailer.clone(),
            indices: self.indices.clone(),
            session,
            data: Rc::clone(&self.data),
            tls: None,
            host: self.host.clone(),
            verbose: self.verbose,
            addresses: self.addresses.clone(),
            clear_retry: None,
            tls_requirement: None,
            fallback: self.fallback.clone(),
            envelope,
        })
    }
}

impl Job {
    /// A job with no results yet.
    pub fn new(job: DeliveryJob, data: File) -> Job {
        let data = Message::new(data, job.size);
        let results = vec![None; job.recipients.len()];
        Job {
            rcpt_as: vec![None; job.recipients.len()],
            job,
            data: Rc::new(data),
            results,
            transcript: Vec::new(),
        }
    }

    /// Adds a session's dialogue (`sendmail -v`).
    pub fn add_transcript(&mut self, lines: Vec<String>) {
        self.transcript.extend(lines);
    }

    /// Records the result for recipient `index`; a second result for the
    /// same recipient is a bug and is ignored.
    pub fn record(&mut self, index: usize, report: RecipientReport) {
        match self.results.get_mut(index) {
            Some(slot @ None) => *slot = Some(report),
            _ => debug_assert!(false, "recipient {index} reported twice or out of range"),
        }
    }

    /// Every recipient has a result.
    pub fn is_complete(&self) -> bool {
        self.results.iter().all(Option::is_some)
    }

    /// The report for the queue runner; call only when complete.
    pub fn into_report(self) -> DeliveryReport {
        let recipients = self
            .results
            .into_iter()
            .zip(&self.job.recipients)
            .map(|(r, rcpt)| {
                r.unwrap_or_else(|| {
                    report(
                        &rcpt.address,
                        RecipientStatus::TempFail,
                        "451 4.3.0 Internal error: no result".into(),
                        "",
                        "",
                    )
                })
            })
            .collect();
        DeliveryReport {
            job: self.job.job,
            queue_id: self.job.queue_id,
            recipients,
            transcript: self.transcript,
        }
    }

    /// Defers the recipients of `plan` with `reply` without a connection:
    /// Postern's own account (a server held back after it was found
    /// unreachable).
    pub fn defer(&mut self, plan: &SessionPlan, reply: &str) {
        for &i in &plan.indices {
            let a = self.job.recipients[i].address.clone();
            let r = report(
                &a,
                RecipientStatus::TempFail,
                reply.to_string(),
                &plan.relay,
                &plan.mailer,
            );
            self.record(i, r);
        }
    }

    /// Gives every recipient without a result this one (shutdown).
    pub fn fail_unresolved(&mut self, status: RecipientStatus, reply: &str) {
        for (slot, rcpt) in self.results.iter_mut().zip(&self.job.recipients) {
            slot.get_or_insert_with(|| report(&rcpt.address, status, reply.to_string(), "", ""));
        }
    }

    /// Routes every recipient: failed ones are settled now; the local ones
    /// come back grouped by mailbox, the remote ones by target, for the
    /// loop to hand to agents and to resolve.
    pub fn start(&mut self, settings: &Settings) -> (Vec<LocalGroup>, Vec<Pending>) {
        let mut local: Vec<LocalGroup> = Vec::new();
        let mut by_target: Vec<Pending> = Vec::new();
        for i in 0..self.job.recipients.len() {
            let address = self.job.recipients[i].address.clone();
            if let Some(target) = self.job.recipients[i].target {
                // A file or program an alias named: an agent of its own.
                local.push(LocalGroup {
                    user: address,
                    indices: vec![i],
                    target: Some(target),
                });
                continue;
            }
            let route = match self.job.through {
                Some(mta) => route::through(mta),
                None => route::route(settings, &address),
            };
            match route {
                Route::Local { user } => {
                    match local
                        .iter_mut()
                        .find(|g| g.user == user && g.target.is_none())
                    {
                        Some(g) => g.indices.push(i),
                        None => local.push(LocalGroup {
                            user,
                            indices: vec![i],
                            target: None,
                        }),
                    }
                }
                Route::Fail {
                    status,
                    reply,
                    mailer,
                } => self.record(i, report(&address, status, reply, "", &mailer)),
                Route::Remote(target) => group(&mut by_target, target, i),
                Route::Lmtp { target, rcpt } => {
                    if rcpt != address {
                        self.rcpt_as[i] = Some(rcpt);
                    }
                    group(&mut by_target, target, i);
                }
            }
        }
        (local, by_target)
    }

    /// What master is asked for, for `group`'s agent.
    pub fn local_request(&self, group: &LocalGroup) -> postern_ipc::LocalRequest {
        postern_ipc::LocalRequest {
            queue_id: self.job.queue_id.clone(),
            user: group.user.clone(),
            target: group.target,
            sender: self.job.sender.clone(),
            recipients: group
                .indices
                .iter()
                .map(|&i| self.job.recipients[i].address.clone())
                .collect(),
            size: self.data.size(),
        }
    }

    /// `group`'s agent reported (`None`: it ended without a report).
    pub fn settle_local(&mut self, group: &LocalGroup, outcome: Option<postern_ipc::AgentReport>) {
        let outcome = outcome.unwrap_or_else(|| {
            postern_ipc::AgentReport::new(
                RecipientStatus::TempFail,
                "451 4.3.0 Local delivery agent ended without a report",
            )
        });
        if outcome.status != RecipientStatus::Sent {
            log::warning(
                log::Level::Failure,
                &format!(
                    "{}: local delivery to {} failed: {}",
                    self.job.queue_id, group.user, outcome.reply
                ),
            );
        }
        for &i in &group.indices {
            let address = self.job.recipients[i].address.clone();
            let reply = match outcome.status {
                RecipientStatus::Sent if !outcome.forwarded.is_empty() => {
                    let what = outcome
                        .reply
                        .strip_prefix("250 2.0.0 ")
                        .unwrap_or("Forwarded");
                    format!("250 2.0.0 <{address}>... {what}")
                }
                RecipientStatus::Sent => {
                    // "Delivered", and what the agent added (a .forward
                    // it did not follow, and why).
                    let more = outcome
                        .reply
                        .strip_prefix("250 2.0.0 Delivered")
                        .unwrap_or("");
                    format!("250 2.0.0 <{address}>... Delivered{more}")
                }
                _ => outcome.reply.clone(),
            };
            let mailer = match group.target {
                None => "local",
                Some(postern_ipc::LocalTarget::File { .. }) => "*file*",
                Some(postern_ipc::LocalTarget::Program { .. }) => "prog",
            };
            let mut r = report(&address, outcome.status, reply, "local", mailer);
            r.forwarded = outcome.forwarded.clone();
            self.record(i, r);
        }
    }

    /// The session for `pending` once its servers are known: the first of
    /// `servers` now, the others kept for when it cannot be reached. With
    /// no server, every recipient of `pending` gets `NoServer`'s reply.
    pub fn plan(
        &mut self,
        job_key: u64,
        settings: &Settings,
        pending: Pending,
        servers: Result<Vec<Candidate>, NoServer>,
    ) -> Option<SessionPlan> {
        let Pending {
            target,
            mut indices,
        } = pending;
        indices.sort_unstable();
        let servers = servers.and_then(|s| {
            (!s.is_empty()).then_some(s).ok_or(NoServer {
                status: RecipientStatus::TempFail,
                reply: "451 4.4.3 No address to connect to".into(),
            })
        });
        match servers {
            Ok(mut servers) => {
                let first = servers.remove(0);
                self.plan_server(job_key, settings, indices, target.mailer, first, servers)
            }
            Err(no) => {
                log::info(
                    log::Level::Failure,
                    &format!("{}: {}", self.job.queue_id, no.reply),
                );
                for i in indices {
                    let a = self.job.recipients[i].address.clone();
                    let r = report(&a, no.status, no.reply.clone(), "", &target.mailer);
                    self.record(i, r);
                }
                None
            }
        }
    }

    /// The session for `indices` with `server`; `fallback` are the
    /// servers to try next, in order.
    pub fn plan_server(
        &mut self,
        job_key: u64,
        settings: &Settings,
        indices: Vec<usize>,
        mailer: String,
        server: Candidate,
        fallback: Vec<Candidate>,
    ) -> Option<SessionPlan> {
        let tls = match &server.addr {
            Endpoint::Tcp(addr) => tls_policy::for_server(settings, &server.host, addr.ip()),
            // A socket on this host: nothing to encrypt against.
            Endpoint::Unix(_) => TlsPolicy {
                try_tls: false,
                requirement: None,
            },
        };
        let addresses = indices
            .iter()
            .map(|&i| self.job.recipients[i].address.clone())
            .collect();
        let protocol = if Target::is_lmtp(&mailer) {
            Protocol::Lmtp
        } else {
            Protocol::Smtp
        };
        match self.session(settings, &indices, &tls, protocol) {
            Ok((session, config, envelope)) => Some(SessionPlan {
                job_key,
                queue_id: self.job.queue_id.clone(),
                addr: server.addr,
                relay: server.relay,
                mailer,
                indices,
                session,
                data: Rc::clone(&self.data),
                tls: settings.tls.client.clone(),
                host: server.host.tls_name(),
                clear_retry: (settings.tls.client.is_some()
                    && settings.config.tls_fallback_to_clear
                    && tls.requirement.is_none())
                .then_some((config, envelope.clone())),
                tls_requirement: tls.requirement,
                verbose: self.job.verbose,
                addresses,
                fallback,
                envelope,
            }),
            Err((status, reply)) => {
                for i in indices {
                    let a = self.job.recipients[i].address.clone();
                    self.record(i, report(&a, status, reply.clone(), &server.relay, &mailer));
                }
                None
            }
        }
    }

    /// The SMTP session for the recipients `indices`, with the
    /// configuration and envelope it was made from.
    fn session(
        &self,
        settings: &Settings,
        indices: &[usize],
        tls: &TlsPolicy,
        protocol: Protocol,
    ) -> Result<(ClientSession, ClientConfig, Envelope), (RecipientStatus, String)> {
        let config = ClientConfig {
            protocol,
            helo_name: settings.hostname.clone(),
            // ClientCertFile/ClientKeyFile live in the context.
            starttls: if settings.tls.client.is_some() && tls.try_tls {
                StartTlsPolicy::Opportunistic
            } else {
                StartTlsPolicy::Never
            },
            already_tls: false,
            check_tls: tls.requirement.is_some(),
            // A connection stays open for the next message to the same
            // server, except where its dialogue is wanted (sendmail -v)
            // or a TLS requirement judged this one connection.
            keep_open: settings.config.connection_cache_size > 0
                && !self.job.verbose
                && tls.requirement.is_none(),
        };
        if let Err(e) = config.validate() {
            return Err((
                RecipientStatus::TempFail,
                format!("451 4.3.5 Bad host name: {e}"),
            ));
        }
        let mut envelope = envelope(&self.job, indices);
        for (r, &i) in envelope.recipients.iter_mut().zip(indices) {
            if let Some(rcpt) = &self.rcpt_as[i] {
                r.address.clone_from(rcpt);
            }
        }
        match ClientSession::new(config.clone(), envelope.clone()) {
            Ok(session) => Ok((session, config, envelope)),
            Err(e) => Err((
                RecipientStatus::PermFail,
                format!("501 5.5.4 Invalid envelope: {e}"),
            )),
        }
    }
}

/// Adds recipient `i` to the session for `target`, or starts one.
fn group(by_target: &mut Vec<Pending>, target: Target, i: usize) {
    match by_target.iter_mut().find(|p| p.target == target) {
        Some(p) => p.indices.push(i),
        None => by_target.push(Pending {
            target,
            indices: vec![i],
        }),
    }
}

fn report(
    address: &str,
    status: RecipientStatus,
    reply: String,
    relay: &str,
    mailer: &str,
) -> RecipientReport {
    RecipientReport {
        address: address.to_string(),
        status,
        reply,
        relay: relay.to_string(),
        mailer: mailer.to_string(),
        // Routing errors, local deliveries: Postern's own words.
        peer: false,
        dsn_passed_on: false,
        command: None,
        forwarded: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::route::Host;
    use crate::delivery::tests::{job, settings_with};
    use std::io::Write;

    #[test]
    fn routes_settle_local_and_error_recipients_and_group_remote_ones() {
        let table = "a.test esmtp:[127.0.0.1]:2525\nb.test esmtp:[127.0.0.1]:2525\n\
                     c.test relay:[127.0.0.1]:2525\nd.test error:5.7.1:550 No\n";
        let (_dir, settings) = settings_with(table, "");
        let mut data = tempfile::tempfile().unwrap();
        data.write_all(b"Subject: x\r\n\r\nbody\r\n").unwrap();
        let j = job(
            7,
            &[
                "u@a.test",
                "root@local.test",
                "v@b.test",
                "w@c.test",
                "x@d.test",
                "../x@local.test",
            ],
        );
        let mut job = Job::new(j, data);
        let (local, pending) = job.start(&settings);
        // The local recipient goes to an agent, for its own mailbox.
        assert_eq!(
            local,
            [LocalGroup {
                user: "root".into(),
                indices: vec![1],
                target: None,
            }]
        );
        let request = job.local_request(&local[0]);
        assert_eq!(
            (request.user.as_str(), request.recipients.as_slice()),
            ("root", ["root@local.test".to_string()].as_slice())
        );
        job.settle_local(
            &local[0],
            Some(postern_ipc::AgentReport::new(
                RecipientStatus::Sent,
                "250 2.0.0 Delivered",
            )),
        );
        let plans: Vec<SessionPlan> = pending
            .into_iter()
            .filter_map(|p| {
                let Host::Literal(ip) = p.target.host else {
                    panic!("a literal route");
                };
                let servers = Ok(crate::delivery::destination::literal(ip, p.target.port));
                job.plan(1, &settings, p, servers)
            })
            .collect();
        // a.test and b.test share a session; c.test has another mailer.
        let groups: Vec<_> = plans
            .iter()
            .map(|p| (p.indices.clone(), p.mailer.as_str(), p.relay.as_str()))
            .collect();
        assert_eq!(
            groups,
            [
                (vec![0, 2], "esmtp", "[127.0.0.1] [127.0.0.1]"),
                (vec![3], "relay", "[127.0.0.1] [127.0.0.1]")
            ]
        );
        assert!(!job.is_complete());
        let results = &job.results;
        let root = results[1].as_ref().unwrap();
        assert_eq!(
            (root.status, root.reply.as_str()),
            (
                RecipientStatus::Sent,
                "250 2.0.0 <root@local.test>... Delivered"
            )
        );
        assert_eq!(
            (root.relay.as_str(), root.mailer.as_str()),
            ("local", "local")
        );
        let x = results[4].as_ref().unwrap();
        assert_eq!(
            (x.status, x.reply.as_str(), x.mailer.as_str()),
            (RecipientStatus::PermFail, "550 5.7.1 No", "error")
        );
        let bad = results[5].as_ref().unwrap();
        assert_eq!(bad.status, RecipientStatus::PermFail);
        assert_eq!(bad.reply, "553 5.1.3 <../x@local.test>... Invalid address");
        job.fail_unresolved(RecipientStatus::TempFail, "451 4.3.2 x");
        assert!(job.is_complete());
        let report = job.into_report();
        assert_eq!((report.job, report.recipients.len()), (7, 6));
        assert_eq!(report.recipients[0].reply, "451 4.3.2 x");
    }

    #[test]
    fn an_agent_that_ends_without_a_report_defers_its_recipients() {
        let (_dir, settings) = settings_with("", "");
        let mut job = Job::new(job(1, &["root@local.test"]), tempfile::tempfile().unwrap());
        let (local, remote) = job.start(&settings);
        assert!(remote.is_empty());
        job.settle_local(&local[0], None);
        let r = job.into_report().recipients.remove(0);
        assert_eq!(r.status, RecipientStatus::TempFail);
        assert_eq!(
            r.reply,
            "451 4.3.0 Local delivery agent ended without a report"
        );
    }
}
