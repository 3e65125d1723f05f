//! The queue runner: the only process that touches the spool.
//!
//! Security posture: runs as QueueOwner, the only user that can open
//! QueueDirectory. Everything that reaches it over a front channel is
//! untrusted (a front faces the network): a front may commit only the
//! message files it was given, a malformed or oversized frame disconnects
//! that front (its unfinished files are removed) and is logged, and the
//! queue runner itself never stops for a front's misbehaviour.
//!
//! Its main is a checklist: lock the spool, recover it, tell master it is
//! ready, then serve fronts, dispatch due messages to the delivery client
//! and record the results, on one mio loop.

mod auth;
mod committer;
mod control;
mod dsn;
mod enqueue;
mod expansion;
mod front_auth;
mod front_commit;
mod fronts;
mod incoming;
mod logline;
mod readers;
mod schedule;
mod submit;
mod verify;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use postern_ipc::{
    ChannelError, MasterToQueue, QueueDeliveryChannel, QueueMasterChannel, QueueToDelivery,
    QueueToMaster, PROTOCOL_VERSION,
};
use postern_queue::{QueueIdGenerator, Spool, SyncMethod};

use crate::log;
use crate::privsep::Dropped;
use crate::settings::Settings;

const MASTER: Token = Token(0);
const DELIVERY: Token = Token(1);
/// A worker thread finished: a reader (`readers.rs`), the AUTH
/// backend (`auth.rs`) or the committer (`committer.rs`). mio allows one
/// waker per poll: they share it.
const READERS: Token = Token(2);
/// Fronts get tokens from here on.
const FIRST_FRONT: usize = 3;
/// A front's token with this bit set stands for its message pipe.
const PIPE_BIT: usize = 1 << 62;

/// The queue runner's state.
pub struct QueueRunner {
    settings: Settings,
    /// The aliases, re-read when the file changes (`crate::aliases`).
    aliases: crate::aliases::AliasTable,
    spool: Spool,
    ids: QueueIdGenerator,
    poll: Poll,
    master: QueueMasterChannel,
    delivery: QueueDeliveryChannel,
    fronts: HashMap<Token, fronts::FrontConn>,
    next_token: usize,
    schedule: schedule::Schedule,
    shutting_down: bool,
    /// `sendmail -v` submissions waiting for their first delivery attempt:
    /// message → the control request to answer with the transcript.
    verbose: HashMap<postern_queue::QueueId, u64>,
    /// Local submissions being read off the event loop.
    readers: readers::Readers,
    /// The AUTH backend's worker, when AUTH is configured.
    auth: Option<auth::Auth>,
    /// The thread committing fronts' messages in batches.
    committer: committer::Committer,
    /// Fronts' commits handed to it, by ticket.
    awaiting_commit: HashMap<u64, enqueue::AwaitingCommit>,
    next_ticket: u64,
    /// Message pipes that had more than one turn's worth waiting.
    pipes_with_more: std::collections::VecDeque<Token>,
    /// Fronts that had more requests than one turn's worth.
    fronts_with_more: std::collections::VecDeque<Token>,
    /// When stalled messages were last looked for.
    last_sweep: std::time::Instant,
    /// When the shutdown began: fronts still holding a message this long
    /// after are cut off ([`SHUTDOWN_GRACE`]).
    shutdown_since: Option<std::time::Instant>,
}

/// How long a shutdown (a reload, a stop) waits for fronts in the middle
/// of a message before it cuts them off: a front must not be able to keep
/// the old queue runner, and so the reload, waiting.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Runs the queue runner; returns the exit code.
pub fn run(
    _dropped: Dropped,
    settings: Settings,
    master: QueueMasterChannel,
    delivery: QueueDeliveryChannel,
) -> i32 {
    match start(settings, master, delivery) {
        Ok(mut runner) => runner.serve(),
        Err(e) => {
            log::crit(&format!("queue runner: {e}"));
            1
        }
    }
}

fn start(
    settings: Settings,
    mut master: QueueMasterChannel,
    mut delivery: QueueDeliveryChannel,
) -> std::io::Result<QueueRunner> {
    let sync = match settings.config.queue_sync {
        postern_config::QueueSync::Syncfs => SyncMethod::Syncfs,
        postern_config::QueueSync::Fsync => SyncMethod::Fsync,
    };
    let spool = Spool::open(&settings.config.queue_directory)?.with_sync(sync);
    lock_spool(&spool)?;
    let recovery = spool.recover()?;
    for path in &recovery.removed {
        log::notice(
            log::Level::Refusal,
            &format!("removed unfinished queue file {}", path.display()),
        );
    }
    for path in &recovery.corrupt {
        log::err(&format!(
            "corrupt control file moved aside: {}",
            path.display()
        ));
    }
    let poll = Poll::new()?;
    for (channel, token) in [(master.stream(), MASTER), (delivery.stream(), DELIVERY)] {
        channel.set_nonblocking(true)?;
        poll.registry().register(
            &mut SourceFd(&channel.as_raw_fd()),
            token,
            Interest::READABLE | Interest::WRITABLE,
        )?;
    }
    let hello = PROTOCOL_VERSION;
    master
        .send(&QueueToMaster::Hello { version: hello }, &[])
        .map_err(io)?;
    delivery
        .send(&QueueToDelivery::Hello { version: hello }, &[])
        .map_err(io)?;
    let readers = readers::Readers::new(poll.registry(), READERS, readers::READ_TIME)?;
    let auth = auth::Auth::start(&settings, readers.waker());
    let committer = committer::Committer::start(spool.clone(), readers.waker())?;
    let mut runner = QueueRunner {
        auth,
        committer,
        awaiting_commit: HashMap::new(),
        next_ticket: 0,
        aliases: crate::aliases::AliasTable::open(&settings.config.alias_path()),
        readers,
        pipes_with_more: std::collections::VecDeque::new(),
        fronts_with_more: std::collections::VecDeque::new(),
        last_sweep: std::time::Instant::now(),
        shutdown_since: None,
        ids: QueueIdGenerator::new(std::process::id()),
        schedule: schedule::Schedule::default(),
        settings,
        spool,
        poll,
        master,
        delivery,
        fronts: HashMap::new(),
        next_token: FIRST_FRONT,
        shutting_down: false,
        verbose: HashMap::new(),
    };
    let queued = runner.load_queue(&recovery.committed);
    runner
        .master
        .send(&QueueToMaster::Ready { queued }, &[])
        .map_err(io)?;
    log::info(
        log::Level::EndOfJob,
        &format!("queue runner ready: {queued} messages in the queue"),
    );
    Ok(runner)
}

fn io(e: ChannelError) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

/// One queue runner per spool: a second one (a restart racing the exit of
/// the old one) waits here until the old one is gone.
fn lock_spool(spool: &Spool) -> std::io::Result<()> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(spool.root().join("lock"))?;
    let lock = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| std::io::Error::from(e))?;
    // Held for the life of the process; the kernel releases it at exit.
    std::mem::forget(lock);
    Ok(())
}

impl QueueRunner {
    fn serve(&mut self) -> i32 {
        let mut events = Events::with_capacity(256);
        loop {
            let reads_due = self
                .readers
                .next_deadline()
                .map(|at| at.saturating_duration_since(std::time::Instant::now()));
            let more_to_pump = (!self.pipes_with_more.is_empty()
                || !self.fronts_with_more.is_empty())
            .then_some(Duration::ZERO);
            let timeout = [self.schedule.next_due_in(), reads_due, more_to_pump]
                .into_iter()
                .flatten()
                .min()
                .map(|d| d.min(Duration::from_secs(5)));
            if let Err(e) = self
                .poll
                .poll(&mut events, timeout.or(Some(Duration::from_secs(5))))
            {
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                log::crit(&format!("queue runner: poll: {e}"));
                return 1;
            }
            for event in events.iter() {
                let token = event.token();
                let result = match token {
                    MASTER => self.master_ready(),
                    DELIVERY => self.delivery_ready(),
                    // Handled below, with the overdue ones.
                    READERS => Ok(()),
                    _ if token.0 & PIPE_BIT != 0 => {
                        self.message_data(Token(token.0 & !PIPE_BIT));
                        Ok(())
                    }
                    _ => {
                        self.front_ready(token);
                        Ok(())
                    }
                };
                if let Err(code) = result {
                    return code;
                }
            }
            self.pump_pipes_with_more();
            self.serve_fronts_with_more();
            self.auth_finished();
            self.commits_finished();
            self.submissions();
            self.dispatch_due();
            if self.last_sweep.elapsed() >= Duration::from_secs(5) {
                self.last_sweep = std::time::Instant::now();
                self.drop_stalled_messages();
            }
            if self.shutting_down {
                let since = *self
                    .shutdown_since
                    .get_or_insert_with(std::time::Instant::now);
                self.drop_idle_fronts(since.elapsed() > SHUTDOWN_GRACE);
            }
            if self.shutting_down
                && self.schedule.in_flight() == 0
                && self.fronts.is_empty()
                && self.committer.in_flight() == 0
                && self.readers.is_idle()
            {
                let _ = self.delivery.send(&QueueToDelivery::Shutdown, &[]);
                log::info(log::Level::EndOfJob, "queue runner: shut down");
                return 0;
            }
        }
    }

    /// Messages from master: new fronts, queue runs, shutdown.
    fn master_ready(&mut self) -> Result<(), i32> {
        let _ = self.master.flush();
        loop {
            match self.master.try_recv() {
                Ok(None) => return Ok(()),
                Ok(Some((
                    MasterToQueue::NewFront {
                        connection,
                        peer,
                        daemon,
                    },
                    mut fds,
                ))) => match fds.pop() {
                    Some(fd) => self.add_front(connection, peer, daemon, fd),
                    None => log::err("queue runner: NewFront without a descriptor"),
                },
                Ok(Some((MasterToQueue::RunQueue, _))) => {
                    self.release_held();
                    self.schedule.run_all_now();
                }
                Ok(Some((
                    MasterToQueue::Control {
                        id,
                        caller,
                        request,
                    },
                    fds,
                ))) => self.control(id, caller, request, fds),
                Ok(Some((MasterToQueue::Shutdown, _))) => self.shutting_down = true,
                Ok(Some((MasterToQueue::Hello { version }, _))) if version == PROTOCOL_VERSION => {}
                Ok(Some((MasterToQueue::Hello { version }, _))) => {
                    log::crit(&format!("queue runner: master speaks protocol {version}"));
                    return Err(1);
                }
                // master is gone: so are we (it will start a new pair).
                Err(ChannelError::Closed) => return Err(0),
                Err(e) => {
                    log::err(&format!("queue runner: master channel: {e}"));
                    return Err(1);
                }
            }
        }
    }
}
