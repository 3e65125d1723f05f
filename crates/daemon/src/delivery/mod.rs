//! The delivery client: takes jobs from the queue runner, delivers them
//! (outbound SMTP; local mailboxes through agents master starts) and
//! reports one result per recipient.
//!
//! Owns: the one event loop of the process ([`run`]): the channel to the
//! queue runner, every outbound connection, their deadlines, and the cap
//! on concurrent connections ([`MAX_CONNECTIONS`], the rest wait in line).
//! Does not own: routing (`route.rs`), mailbox writes (the local delivery
//! agent, `local/`, which master starts on this client's request and which
//! reports back on a socket this client made: [`MAX_AGENTS`] at once), one
//! connection's state machine (`outbound.rs`), a job's bookkeeping
//! (`job.rs`), or anything about the queue: retries, bounces and the `to=`
//! log lines belong to the queue runner.
//!
//! The loop, as a checklist: say Hello and expect the peer's; then, until
//! told to stop, wait on the channel and the sockets with the earliest
//! deadline as the poll timeout; a `Deliver` is routed at once (`error:`
//! recipients are settled on the spot, local ones go to agents, remote
//! ones become sessions); a finished job is reported with `Done`; `Shutdown` stops new
//! work and the process exits once the jobs in flight are reported.
//!
//! Security posture: runs as RunAsUser after master dropped privileges (the
//! [`Dropped`] argument proves it). It never opens the spool: a message is
//! read only through the read-only descriptor that came with its job, with
//! positional reads. Everything from the queue runner is checked (Hello
//! first, one descriptor per job) and a violation ends the process (exit 1;
//! master restarts the pair); the queue runner's end going away ends it
//! too (exit 0).

mod agents;
mod body;
mod destination;
mod envelope;
mod job;
pub(crate) mod message;
mod outbound;
mod resolver;
mod results;
pub mod route;
#[cfg(test)]
pub(crate) mod tests;
mod tls_policy;

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};
use postern_ipc::{
    ChannelError, DeliveryChannel, DeliveryJob, DeliveryMasterChannel, DeliveryToMaster,
    DeliveryToQueue, QueueToDelivery, RecipientStatus, PROTOCOL_VERSION,
};

use self::agents::Agent;
use self::destination::Myself;
use self::job::{Job, LocalGroup, Pending, SessionPlan};
use self::outbound::{Outbound, ReuseKey};
use self::resolver::Resolver;
use crate::log;
use crate::privsep::Dropped;
use crate::settings::Settings;

/// Outbound connections open at once; further sessions wait their turn.
pub const MAX_CONNECTIONS: usize = 100;
/// Connections to one server at once (Postfix's
/// `default_destination_concurrency_limit`); more sessions for it wait
/// for one of them to be free.
pub const MAX_PER_SERVER: usize = 20;
/// How long an idle connection beyond `ConnectionCacheSize` is kept after
/// its message, for more mail to its server (`trim_idle_connections`).
pub const BURST_GRACE: Duration = Duration::from_secs(1);
/// Local delivery agents running at once; more wait their turn.
pub const MAX_AGENTS: usize = 16;
/// The longest a server that could not be reached is held back.
const MAX_HOLD: Duration = Duration::from_secs(60);

const CHANNEL: Token = Token(0);
/// The resolver thread has answers.
const RESOLVER: Token = Token(usize::MAX);

/// Runs the delivery client until `Shutdown` (exit 0), the queue runner's
/// end closing (exit 0), or a protocol violation or I/O failure (exit 1).
pub fn run(
    dropped: Dropped,
    settings: Settings,
    channel: DeliveryChannel,
    master: DeliveryMasterChannel,
) -> i32 {
    log::info(
        log::Level::EndOfJob,
        &format!("delivery client started, uid {}", dropped.uid),
    );
    let mut client = match Client::new(settings, channel, master) {
        Ok(client) => client,
        Err(e) => {
            log::err(&format!("delivery client: cannot start: {e}"));
            return 1;
        }
    };
    match client.run() {
        Ok(code) => code,
        Err(e) => {
            log::err(&format!("delivery client: {e}"));
            1
        }
    }
}

struct Client {
    settings: Settings,
    poll: Poll,
    channel: DeliveryChannel,
    channel_interest: Interest,
    hello: bool,
    shutting_down: bool,
    jobs: HashMap<u64, Job>,
    next_job: u64,
    conns: HashMap<Token, (Outbound, Option<Interest>)>,
    next_token: usize,
    waiting: VecDeque<SessionPlan>,
    resolver: Resolver,
    /// Lookups in flight: the job's key and the recipients waiting.
    lookups: HashMap<u64, (u64, Pending)>,
    next_lookup: u64,
    myself: Myself,
    /// Servers that refused or timed out a connection, until when, and
    /// the reply their sessions get meanwhile without trying.
    unreachable: HashMap<destination::Endpoint, (Instant, String)>,
    /// master, asked for local delivery agents (blocking: a request is a
    /// few hundred bytes and master reads at once).
    master: DeliveryMasterChannel,
    /// Agents running, by the token of the socket they report on.
    agents: HashMap<Token, Agent>,
    /// Local deliveries waiting for an agent: the job's key and the group.
    agents_waiting: VecDeque<(u64, LocalGroup)>,
}

impl Client {
    fn new(
        settings: Settings,
        channel: DeliveryChannel,
        master: DeliveryMasterChannel,
    ) -> io::Result<Client> {
        channel.stream().set_nonblocking(true)?;
        let poll = Poll::new()?;
        let fd = channel.as_raw_fd();
        poll.registry()
            .register(&mut SourceFd(&fd), CHANNEL, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), RESOLVER)?);
        let resolver = Resolver::start(&settings.config.name_servers, move || {
            // A failed wake-up only delays the answer to the next event.
            let _ = waker.wake();
        })?;
        let myself = Myself::new(&settings);
        Ok(Client {
            master,
            agents: HashMap::new(),
            agents_waiting: VecDeque::new(),
            resolver,
            lookups: HashMap::new(),
            next_lookup: 0,
            myself,
            unreachable: HashMap::new(),
            settings,
            poll,
            channel,
            channel_interest: Interest::READABLE,
            hello: false,
            shutting_down: false,
            jobs: HashMap::new(),
            next_job: 0,
            conns: HashMap::new(),
            next_token: 1,
            waiting: VecDeque::new(),
        })
    }

    fn run(&mut self) -> io::Result<i32> {
        let hello = DeliveryToQueue::Hello {
            version: PROTOCOL_VERSION,
        };
        if let Err(e) = self.channel.send(&hello, &[]) {
            return Ok(channel_failed(e));
        }
        let hello = DeliveryToMaster::Hello {
            version: PROTOCOL_VERSION,
        };
        if let Err(e) = self.master.send(&hello, &[]) {
            log::err(&format!("delivery client: master channel: {e}"));
            return Ok(1);
        }
        let mut events = Events::with_capacity(256);
        loop {
            if self.shutting_down && self.jobs.is_empty() && !self.channel.wants_write() {
                log::info(log::Level::EndOfJob, "delivery client: shut down");
                return Ok(0);
            }
            self.update_channel_interest()?;
            let timeout = self.poll_timeout(Instant::now());
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            for event in events.iter() {
                if event.token() == CHANNEL {
                    if let Some(code) = self.on_channel() {
                        return Ok(code);
                    }
                } else if event.token() == RESOLVER {
                    self.on_answers();
                } else if self.agents.contains_key(&event.token()) {
                    self.on_agent(event.token())?;
                } else if let Some((conn, _)) = self.conns.get_mut(&event.token()) {
                    conn.on_ready(Instant::now());
                    self.settle(event.token())?;
                }
            }
            self.expire(Instant::now())?;
            self.start_agents()?;
            self.start_waiting()?;
            if let Err(e) = self.channel.flush() {
                return Ok(channel_failed(e));
            }
        }
    }

    /// Reads and acts on every complete frame from the queue runner;
    /// `Some(code)` ends the process.
    fn on_channel(&mut self) -> Option<i32> {
        if let Err(e) = self.channel.flush() {
            return Some(channel_failed(e));
        }
        loop {
            let (msg, fds) = match self.channel.try_recv() {
                Ok(Some(frame)) => frame,
                Ok(None) => return None,
                Err(e) => return Some(channel_failed(e)),
            };
            if let Err(why) = self.on_message(msg, fds) {
                log::err(&format!("delivery client: queue runner: {why}"));
                return Some(1);
            }
        }
    }

    /// One frame; `Err` is a protocol violation.
    fn on_message(&mut self, msg: QueueToDelivery, mut fds: Vec<OwnedFd>) -> Result<(), String> {
        let expected_fds = usize::from(matches!(msg, QueueToDelivery::Deliver(_)));
        if fds.len() != expected_fds {
            return Err(format!(
                "{} descriptors with a frame that takes {expected_fds}",
                fds.len()
            ));
        }
        match msg {
            QueueToDelivery::Hello { version } if !self.hello => {
                if version != PROTOCOL_VERSION {
                    return Err(format!(
                        "protocol version {version}, ours is {PROTOCOL_VERSION}"
                    ));
                }
                self.hello = true;
                Ok(())
            }
            _ if !self.hello => Err("first frame is not Hello".into()),
            QueueToDelivery::Hello { .. } => Err("second Hello".into()),
            QueueToDelivery::Shutdown => {
                log::info(
                    log::Level::EndOfJob,
                    "delivery client: shutting down after the jobs in flight",
                );
                self.shutting_down = true;
                Ok(())
            }
            QueueToDelivery::ReleaseHeld => {
                self.unreachable.clear();
                Ok(())
            }
            QueueToDelivery::Deliver(job) => {
                let data = File::from(fds.remove(0));
                self.start_job(job, data);
                Ok(())
            }
        }
    }

    fn start_job(&mut self, job: DeliveryJob, data: File) {
        let key = self.next_job;
        self.next_job += 1;
        let mut job = Job::new(job, data);
        if self.shutting_down {
            job.fail_unresolved(
                RecipientStatus::TempFail,
                "451 4.3.2 Delivery client shutting down",
            );
            self.jobs.insert(key, job);
        } else {
            let (local, pending) = job.start(&self.settings);
            self.jobs.insert(key, job);
            self.agents_waiting
                .extend(local.into_iter().map(|group| (key, group)));
            for p in pending {
                self.find_servers(key, p);
            }
        }
        self.report_if_complete(key);
    }

    /// A literal's or a socket's session starts now; a name is asked of
    /// the resolver.
    fn find_servers(&mut self, key: u64, pending: Pending) {
        match destination::question(&pending.target) {
            None => {
                let servers = destination::direct(&pending.target).unwrap_or_default();
                self.plan(key, pending, Ok(servers));
            }
            Some(question) => {
                self.next_lookup += 1;
                self.resolver.ask(self.next_lookup, question);
                self.lookups.insert(self.next_lookup, (key, pending));
            }
        }
    }

    /// The resolver answered: each waiting target gets its session or its
    /// failure.
    fn on_answers(&mut self) {
        for (id, answer) in self.resolver.answers() {
            let Some((key, pending)) = self.lookups.remove(&id) else {
                continue;
            };
            let servers =
                destination::candidates(&self.settings, &self.myself, &pending.target, answer);
            self.plan(key, pending, servers);
            self.report_if_complete(key);
        }
    }

    fn plan(
        &mut self,
        key: u64,
        pending: Pending,
        servers: Result<Vec<destination::Candidate>, destination::NoServer>,
    ) {
        if let Some(job) = self.jobs.get_mut(&key) {
            if let Some(plan) = job.plan(key, &self.settings, pending, servers) {
                self.waiting.push_back(plan);
            }
        }
    }

    /// Starts the waiting sessions that can start: on an idle connection
    /// to their server, else on a new one while under both caps; a server
    /// held back sends its sessions to their next server, or defers them.
    /// The others keep their place in line.
    fn start_waiting(&mut self) -> io::Result<()> {
        let now = Instant::now();
        self.unreachable.retain(|_, (until, _)| *until > now);
        let mut held = VecDeque::new();
        while let Some(plan) = self.waiting.pop_front() {
            if let Some((_, reply)) = self.unreachable.get(&plan.addr) {
                let reply = reply.clone();
                self.pass_over(plan, &reply);
                continue;
            }
            let key = ReuseKey::of(&plan);
            let idle = self
                .conns
                .iter()
                .find(|(_, (c, _))| c.idle_with(&key))
                .map(|(t, _)| *t);
            let plan = match idle {
                Some(token) => {
                    let (conn, _) = self.conns.get_mut(&token).expect("found above");
                    let result = conn.reuse(plan, now);
                    self.settle(token)?;
                    match result {
                        Ok(()) => continue,
                        // It had closed: a new connection instead.
                        Err(plan) => *plan,
                    }
                }
                None => plan,
            };
            let to_server = self
                .conns
                .values()
                .filter(|(c, _)| *c.addr() == plan.addr && !c.is_closed())
                .count();
            if self.conns.len() >= MAX_CONNECTIONS {
                self.retire_an_idle_connection(now)?;
                held.push_back(plan);
                continue;
            }
            if to_server >= MAX_PER_SERVER {
                held.push_back(plan);
                continue;
            }
            let token = Token(self.next_token);
            self.next_token += 1;
            let config = &self.settings.config;
            let conn =
                Outbound::start(plan, &config.timeouts, config.connection_cache_timeout, now);
            self.conns.insert(token, (conn, None));
            self.settle(token)?;
        }
        self.waiting = held;
        self.trim_idle_connections(now)
    }

    /// Keeps at most `ConnectionCacheSize` idle connections for their
    /// idle time: beyond that many, the ones idle longest go, but none
    /// sooner than [`BURST_GRACE`] after its message.
    ///
    /// Why the grace: mail for one server tends to come in bursts (a
    /// list's message, a busy client's), committed a few at a time, a
    /// millisecond or two apart. Closing every connection but two
    /// between those batches opened a new connection for more than half
    /// of the messages of a 10-client benchmark run (1,079 connects for
    /// 2,000 messages), each with its TCP handshake, greeting, EHLO and
    /// QUIT on both sides. Postfix keeps connections on demand the same
    /// way (`smtp_connection_cache_on_demand`).
    fn trim_idle_connections(&mut self, now: Instant) -> io::Result<()> {
        let mut idle: Vec<(Instant, Token)> = self
            .conns
            .iter()
            .filter_map(|(t, (c, _))| Some((c.idle_since()?, *t)))
            .collect();
        let keep = self.settings.config.connection_cache_size as usize;
        if idle.len() <= keep {
            return Ok(());
        }
        let excess = idle.len() - keep;
        idle.sort();
        for (since, token) in idle.into_iter().take(excess) {
            let Some((conn, _)) = self.conns.get_mut(&token) else {
                continue;
            };
            let until = since + BURST_GRACE;
            if now < until {
                conn.retire_by(until);
            } else {
                conn.retire(now);
                self.settle(token)?;
            }
        }
        Ok(())
    }

    /// A session for a server held back: its next server, or the
    /// server's reply for its recipients.
    fn pass_over(&mut self, mut plan: SessionPlan, reply: &str) {
        let key = plan.job_key;
        let Some(job) = self.jobs.get_mut(&key) else {
            return;
        };
        if plan.fallback.is_empty() {
            job.defer(&plan, reply);
        } else {
            let next = plan.fallback.remove(0);
            let rest = std::mem::take(&mut plan.fallback);
            let indices = std::mem::take(&mut plan.indices);
            let mailer = std::mem::take(&mut plan.mailer);
            if let Some(next) = job.plan_server(key, &self.settings, indices, mailer, next, rest) {
                self.waiting.push_front(next);
            }
        }
        self.report_if_complete(key);
    }

    /// At the cap with sessions waiting: an idle connection makes room.
    fn retire_an_idle_connection(&mut self, now: Instant) -> io::Result<()> {
        let idle = self
            .conns
            .iter()
            .find(|(_, (c, _))| c.is_idle())
            .map(|(t, _)| *t);
        if let Some(token) = idle {
            if let Some((conn, _)) = self.conns.get_mut(&token) {
                conn.retire(now);
            }
            self.settle(token)?;
        }
        Ok(())
    }

    /// After a connection did something: pass on its results, fix its
    /// registration, drop it once closed. A clear-text retry after a failed
    /// STARTTLS handshake (`TLSFallbacktoClear`) goes to the head of the
    /// line, so it starts in this turn of the loop.
    fn settle(&mut self, token: Token) -> io::Result<()> {
        let Some((conn, registered)) = self.conns.get_mut(&token) else {
            return Ok(());
        };
        let key = conn.job_key();
        // Before the results: a fallback drops this server's.
        let fallback = conn.take_fallback();
        let results = conn.take_results();
        let transcript = conn.take_transcript();
        if !transcript.is_empty() {
            if let Some(job) = self.jobs.get_mut(&key) {
                job.add_transcript(transcript);
            }
        }
        if let Some(retry) = conn.take_retry() {
            self.waiting.push_front(retry);
        }

        if let Some(reply) = conn.unreachable() {
            // The whole destination waits, not each of its messages.
            let hold = self
                .settings
                .config
                .min_queue_age
                .clamp(Duration::from_secs(1), MAX_HOLD);
            self.unreachable.insert(
                conn.addr().clone(),
                (Instant::now() + hold, reply.to_string()),
            );
        }
        let wanted = conn.interest();
        if conn.is_closed() {
            if let (Some(stream), Some(_)) = (conn.stream_mut(), *registered) {
                // Dropping the stream right after closes it.
                let _ = self.poll.registry().deregister(stream);
            }
            self.conns.remove(&token);
        } else if let (Some(stream), Some(wanted)) = (conn.stream_mut(), wanted) {
            match *registered {
                None => self.poll.registry().register(stream, token, wanted)?,
                Some(r) if r != wanted => self.poll.registry().reregister(stream, token, wanted)?,
                Some(_) => {}
            }
            *registered = Some(wanted);
        }
        if let Some((indices, mailer, mut rest)) = fallback {
            if let Some(job) = self.jobs.get_mut(&key) {
                let next = rest.remove(0);
                if let Some(plan) =
                    job.plan_server(key, &self.settings, indices, mailer, next, rest)
                {
                    self.waiting.push_front(plan);
                }
            }
            self.report_if_complete(key);
        }
        if let Some(results) = results {
            if let Some(job) = self.jobs.get_mut(&key) {
                for (i, report) in results {
                    job.record(i, report);
                }
            }
            self.report_if_complete(key);
        }
        Ok(())
    }

    fn report_if_complete(&mut self, key: u64) {
        if !self.jobs.get(&key).is_some_and(Job::is_complete) {
            return;
        }
        let Some(job) = self.jobs.remove(&key) else {
            return;
        };
        let report = job.into_report();
        // A send error shows again on the next flush or read, which ends the loop.
        let _ = self.channel.send(&DeliveryToQueue::Done(report), &[]);
    }

    /// Calls every connection whose deadline passed.
    fn expire(&mut self, now: Instant) -> io::Result<()> {
        let due: Vec<Token> = self
            .conns
            .iter()
            .filter(|(_, (c, _))| c.deadline().is_some_and(|d| d <= now))
            .map(|(t, _)| *t)
            .collect();
        for token in due {
            if let Some((conn, _)) = self.conns.get_mut(&token) {
                conn.on_timeout(now);
            }
            self.settle(token)?;
        }
        Ok(())
    }

    fn poll_timeout(&self, now: Instant) -> Option<Duration> {
        self.conns
            .values()
            .filter_map(|(c, _)| c.deadline())
            .min()
            .map(|d| d.saturating_duration_since(now))
    }

    fn update_channel_interest(&mut self) -> io::Result<()> {
        let wanted = if self.channel.wants_write() {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        if wanted != self.channel_interest {
            let fd = self.channel.as_raw_fd();
            self.poll
                .registry()
                .reregister(&mut SourceFd(&fd), CHANNEL, wanted)?;
            self.channel_interest = wanted;
        }
        Ok(())
    }
}

/// The exit code for a channel failure: the queue runner going away is a
/// normal end (master restarts the pair); anything else is logged.
fn channel_failed(e: ChannelError) -> i32 {
    match e {
        ChannelError::Closed => 0,
        ChannelError::Io(ref io)
            if matches!(
                io.kind(),
                io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
            ) =>
        {
            0
        }
        e => {
            log::err(&format!("delivery client: queue runner channel: {e}"));
            1
        }
    }
}
