//! Group commit, off the event loop.
//!
//! A commit waits for the disk twice (`Spool::commit_batch`): about two
//! milliseconds in which one thread can do nothing else. Done on the event
//! loop, one message after another, that capped the whole server at a few
//! hundred messages a second whatever the number of clients, and held up
//! every other front meanwhile. So the commits go to a thread of their
//! own, which takes everything that arrived while it was busy as one
//! batch: the more clients commit at once, the more messages share each
//! flush. Every front still hears `Committed` only once its own message is
//! durable; the answers come back through the queue runner's waker.
//!
//! Deliveries' removals go the same way: they need no barrier of their
//! own (a removal lost in a crash is a duplicate delivery, never a lost
//! message), so they ride along with the next batch's.

use std::fs::File;
use std::io;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;

use mio::Waker;
use postern_queue::{ControlFile, Pending, QueueId, Spool};

use crate::log;

/// Messages committed together or not at all: one message and the
/// copies made for its lists' owners.
pub struct Job {
    /// Whose answer this is (the caller's number).
    pub ticket: u64,
    /// Each message's data file (complete, in `incoming/`) and control.
    pub messages: Vec<(File, ControlFile)>,
}

/// A job done.
pub struct Finished {
    pub ticket: u64,
    /// The job's control files, in the order given.
    pub controls: Vec<ControlFile>,
    /// `Ok` only when every message of the job is durable.
    pub result: io::Result<()>,
}

enum Work {
    Commit(Job),
    Remove(QueueId),
}

/// The committing thread, as the event loop sees it.
pub struct Committer {
    work: Sender<Work>,
    finished: Receiver<Finished>,
    in_flight: usize,
}

impl Committer {
    /// Starts the thread committing into `spool`; it wakes the event loop
    /// through `waker` whenever jobs are done.
    pub fn start(spool: Spool, waker: Arc<Waker>) -> io::Result<Committer> {
        let (work, work_rx) = mpsc::channel();
        let (finished_tx, finished) = mpsc::channel();
        std::thread::Builder::new()
            .name("commit".into())
            .spawn(move || run(&spool, &work_rx, &finished_tx, &waker))?;
        Ok(Committer {
            work,
            finished,
            in_flight: 0,
        })
    }

    /// Hands `job` over; its [`Finished`] comes back from
    /// [`Committer::finished`].
    pub fn commit(&mut self, job: Job) -> io::Result<()> {
        self.work
            .send(Work::Commit(job))
            .map_err(|_| io::Error::other("the commit thread is gone"))?;
        self.in_flight += 1;
        Ok(())
    }

    /// Removes a settled message, durably by the next batch.
    pub fn remove(&self, id: QueueId) -> io::Result<()> {
        self.work
            .send(Work::Remove(id))
            .map_err(|_| io::Error::other("the commit thread is gone"))
    }

    /// The jobs done since the last call.
    pub fn finished(&mut self) -> Vec<Finished> {
        let done: Vec<Finished> = self.finished.try_iter().collect();
        self.in_flight -= done.len();
        done
    }

    /// Jobs handed over and not yet finished.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }
}

/// The thread: one batch per turn, of everything waiting.
fn run(spool: &Spool, work: &Receiver<Work>, finished: &Sender<Finished>, waker: &Waker) {
    while let Ok(first) = work.recv() {
        let batch: Vec<Work> = std::iter::once(first).chain(work.try_iter()).collect();
        let mut jobs = Vec::new();
        let mut removals = 0;
        for w in batch {
            match w {
                Work::Commit(job) => jobs.push(job),
                Work::Remove(id) => {
                    removals += 1;
                    if let Err(e) = spool.remove_unsynced(&id) {
                        log::err(&format!("{id}: cannot remove delivered message: {e}"));
                    }
                }
            }
        }
        if jobs.is_empty() {
            if removals > 0 {
                if let Err(e) = spool.sync_names() {
                    log::err(&format!("queue: cannot sync removals: {e}"));
                }
            }
            continue;
        }
        let messages: usize = jobs.iter().map(|j| j.messages.len()).sum();
        if log::enabled(log::Level::Commands) {
            log::info(
                log::Level::Commands,
                &format!("queue: {messages} messages committed in one batch, {removals} removed"),
            );
        }
        for done in commit_jobs(spool, jobs) {
            if finished.send(done).is_err() {
                return;
            }
        }
        if let Err(e) = waker.wake() {
            log::err(&format!("queue runner: commit thread cannot wake: {e}"));
        }
    }
}

/// Commits `jobs` in one batch; a job with any message failed is undone
/// whole (its other messages removed again).
fn commit_jobs(spool: &Spool, jobs: Vec<Job>) -> Vec<Finished> {
    let pending: Vec<Pending<'_>> = jobs
        .iter()
        .flat_map(|job| &job.messages)
        .map(|(data, control)| Pending { data, control })
        .collect();
    let mut results = spool.commit_batch(&pending).into_iter();
    let mut undone = false;
    let finished: Vec<Finished> = jobs
        .into_iter()
        .map(|job| {
            let outcome: Vec<io::Result<()>> = results.by_ref().take(job.messages.len()).collect();
            let result = match outcome.into_iter().find_map(Result::err) {
                None => Ok(()),
                Some(e) => {
                    for (_, control) in &job.messages {
                        let _ = spool.remove_unsynced(&control.id);
                        let _ = spool.abort(&control.id);
                    }
                    undone = true;
                    Err(e)
                }
            };
            Finished {
                ticket: job.ticket,
                controls: job.messages.into_iter().map(|(_, c)| c).collect(),
                result,
            }
        })
        .collect();
    if undone {
        // The job's committed copies must not come back after a crash:
        // the client was told to try again.
        let _ = spool.sync_names();
    }
    finished
}
