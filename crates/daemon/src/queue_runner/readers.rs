//! Reading locally submitted messages off the event loop.
//!
//! `sendmail` hands master a descriptor of the file it wrote the message
//! to, and master checks it is a regular file on a local file system. That
//! check cannot see everything (an overlay in a user namespace can put a
//! FUSE file behind a plain one), and a read that blocks on the event loop
//! would stop every front and delivery. So each submission is read by a
//! thread of its own, bounded in size, and answered within [`READ_TIME`]:
//! a read that takes longer fails the submission (the thread, if it never
//! returns, is abandoned with its descriptor). At most
//! [`MAX_READERS_PER_USER`] such threads per uid are alive at once, so a
//! user can stall only their own submissions.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Registry, Token, Waker};
use postern_ipc::{Caller, Submission};

/// How long reading one submitted message may take.
pub const READ_TIME: Duration = Duration::from_secs(30);
/// Reader threads one uid may have alive at once (a stuck one counts
/// until it returns).
pub const MAX_READERS_PER_USER: usize = 2;

/// A submission waiting for its bytes.
pub struct Pending {
    /// master's number for the control request.
    pub request: u64,
    /// Who submitted.
    pub caller: Caller,
    /// What they asked.
    pub submission: Submission,
    since: Instant,
}

/// The reader threads and what they were started for.
pub struct Readers {
    read_time: Duration,
    waker: Arc<Waker>,
    tx: Sender<(u64, io::Result<Vec<u8>>)>,
    rx: Receiver<(u64, io::Result<Vec<u8>>)>,
    pending: HashMap<u64, Pending>,
    alive: HashMap<u32, Arc<AtomicUsize>>,
    next: u64,
}

impl Readers {
    /// Readers whose results wake the poll `registry` with `token`, each
    /// given `read_time` ([`READ_TIME`]).
    pub fn new(registry: &Registry, token: Token, read_time: Duration) -> io::Result<Readers> {
        let (tx, rx) = mpsc::channel();
        Ok(Readers {
            read_time,
            waker: Arc::new(Waker::new(registry, token)?),
            tx,
            rx,
            pending: HashMap::new(),
            alive: HashMap::new(),
            next: 0,
        })
    }

    /// The waker the threads use, for other workers to share (mio allows
    /// one per poll).
    pub fn waker(&self) -> Arc<Waker> {
        Arc::clone(&self.waker)
    }

    /// Starts reading `file` (at most `limit` + 1 bytes, so that "too
    /// large" can be told). `Err` when the caller already has
    /// [`MAX_READERS_PER_USER`] readers alive.
    pub fn start(
        &mut self,
        file: File,
        limit: u64,
        request: u64,
        caller: Caller,
        submission: Submission,
    ) -> io::Result<()> {
        let alive = Arc::clone(self.alive.entry(caller.uid).or_default());
        if alive.load(Ordering::SeqCst) >= MAX_READERS_PER_USER {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "too many submissions of yours are being read",
            ));
        }
        let key = self.next;
        self.next += 1;
        let (tx, waker) = (self.tx.clone(), Arc::clone(&self.waker));
        alive.fetch_add(1, Ordering::SeqCst);
        let counted = Arc::clone(&alive);
        let spawned = std::thread::Builder::new()
            .name("submit-reader".into())
            .spawn(move || {
                let mut raw = Vec::new();
                let result = file.take(limit + 1).read_to_end(&mut raw).map(|_| raw);
                counted.fetch_sub(1, Ordering::SeqCst);
                // The event loop may have given up on us: then nobody
                // listens, which is fine.
                let _ = tx.send((key, result));
                let _ = waker.wake();
            });
        if let Err(e) = spawned {
            alive.fetch_sub(1, Ordering::SeqCst);
            return Err(e);
        }
        self.pending.insert(
            key,
            Pending {
                request,
                caller,
                submission,
                since: Instant::now(),
            },
        );
        Ok(())
    }

    /// Submissions whose bytes arrived (or whose read failed).
    pub fn finished(&mut self) -> Vec<(Pending, io::Result<Vec<u8>>)> {
        let mut done = Vec::new();
        while let Ok((key, result)) = self.rx.try_recv() {
            // Absent: it was given up on as overdue.
            if let Some(pending) = self.pending.remove(&key) {
                done.push((pending, result));
            }
        }
        done
    }

    /// Submissions whose read took longer than the read time: given up on.
    pub fn overdue(&mut self) -> Vec<Pending> {
        let late: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| p.since.elapsed() >= self.read_time)
            .map(|(k, _)| *k)
            .collect();
        late.into_iter()
            .filter_map(|k| self.pending.remove(&k))
            .collect()
    }

    /// When the oldest read is due, for the poll timeout.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.pending
            .values()
            .map(|p| p.since + self.read_time)
            .min()
    }

    /// True when no submission waits for its bytes.
    pub fn is_idle(&self) -> bool {
        self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use mio::{Events, Poll};

    use super::*;

    fn caller(uid: u32) -> Caller {
        Caller {
            uid,
            gid: uid,
            user: format!("u{uid}"),
            trusted: false,
        }
    }

    /// A "file" whose read blocks until `writer` writes or closes: what a
    /// FUSE file can do to a reader.
    fn stuck_file() -> (File, File) {
        let (read, write) = nix::unistd::pipe().unwrap();
        (File::from(read), File::from(write))
    }

    #[test]
    fn a_read_that_blocks_is_given_up_on_and_the_loop_never_waits() {
        let mut poll = Poll::new().unwrap();
        let mut readers =
            Readers::new(poll.registry(), Token(0), Duration::from_millis(200)).unwrap();
        let (file, _writer) = stuck_file();
        let started = Instant::now();
        readers
            .start(file, 1000, 7, caller(1000), Submission::default())
            .unwrap();
        // start() returned at once; nothing is finished, nothing overdue yet.
        assert!(started.elapsed() < Duration::from_millis(100));
        assert!(readers.finished().is_empty());
        let mut events = Events::with_capacity(4);
        let due = readers.next_deadline().unwrap();
        poll.poll(
            &mut events,
            Some(due.saturating_duration_since(Instant::now())),
        )
        .unwrap();
        let late = readers.overdue();
        assert_eq!(late.len(), 1);
        assert_eq!(late[0].request, 7);
        assert!(readers.is_idle());
    }

    #[test]
    fn a_finished_read_wakes_the_loop_with_the_bytes() {
        let mut poll = Poll::new().unwrap();
        let mut readers = Readers::new(poll.registry(), Token(3), READ_TIME).unwrap();
        let (file, mut writer) = stuck_file();
        readers
            .start(file, 1000, 1, caller(1000), Submission::default())
            .unwrap();
        writer.write_all(b"Subject: x\r\n\r\nbody\r\n").unwrap();
        drop(writer);
        let mut events = Events::with_capacity(4);
        poll.poll(&mut events, Some(Duration::from_secs(10)))
            .unwrap();
        assert!(events.iter().any(|e| e.token() == Token(3)));
        let done = readers.finished();
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].1.as_ref().unwrap(), b"Subject: x\r\n\r\nbody\r\n");
    }

    #[test]
    fn a_user_with_stuck_reads_stalls_only_their_own_submissions() {
        let poll = Poll::new().unwrap();
        let mut readers = Readers::new(poll.registry(), Token(0), READ_TIME).unwrap();
        let mut writers = Vec::new();
        for request in 0..MAX_READERS_PER_USER as u64 {
            let (file, writer) = stuck_file();
            writers.push(writer);
            readers
                .start(file, 10, request, caller(1000), Submission::default())
                .unwrap();
        }
        let (file, _w) = stuck_file();
        let refused = readers.start(file, 10, 99, caller(1000), Submission::default());
        assert_eq!(refused.unwrap_err().kind(), io::ErrorKind::WouldBlock);
        let (file, _w2) = stuck_file();
        readers
            .start(file, 10, 100, caller(1001), Submission::default())
            .unwrap();
        // Unblock the threads so the test leaves none behind.
        drop(writers);
        drop(_w);
        drop(_w2);
    }
}
