//! The queue runner in process, against fronts over real channels: the
//! harness here; hostile fronts in `fronts.rs`; what it answers and runs
//! for honest ones (local users, ETRN, reports, VRFY/EXPN) in
//! `requests.rs`.

use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::thread;
use std::time::Duration;

use postern_ipc::*;

struct Harness {
    master: MasterQueueChannel,
    delivery: Option<DeliveryChannel>,
    runner: Option<thread::JoinHandle<i32>>,
    spool: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

fn start() -> Harness {
    start_with("")
}

fn start_with(config: &str) -> Harness {
    start_with_spool(config, |_| {})
}

/// As [`start_with`], with `prepare` given the spool before the queue
/// runner starts (what an earlier run left).
fn start_with_spool(config: &str, prepare: impl FnOnce(&std::path::Path)) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let settings = crate::settings::for_tests(dir.path(), config);
    std::fs::create_dir_all(&spool).unwrap();
    prepare(&spool);
    let (m_ours, m_theirs) = UnixStream::pair().unwrap();
    let (d_theirs, d_ours) = UnixStream::pair().unwrap();
    let runner = thread::spawn(move || {
        super::run(
            crate::privsep::unprivileged_for_tests(),
            settings,
            queue_master_channel(m_theirs),
            queue_delivery_channel(d_theirs),
        )
    });
    let mut master = master_queue_channel(m_ours);
    master
        .send(
            &MasterToQueue::Hello {
                version: PROTOCOL_VERSION,
            },
            &[],
        )
        .unwrap();
    assert!(matches!(
        master.recv().unwrap().0,
        QueueToMaster::Hello { .. }
    ));
    assert!(matches!(
        master.recv().unwrap().0,
        QueueToMaster::Ready { .. }
    ));
    Harness {
        master,
        delivery: Some(delivery_channel(d_ours)),
        runner: Some(runner),
        spool,
        _dir: dir,
    }
}

impl Harness {
    /// A new front channel for a client outside the relay networks,
    /// handed to the queue runner as master would.
    fn front(&mut self) -> UnixStream {
        self.front_for(OUTSIDER)
    }

    /// A new front channel for a client at `peer`.
    fn front_for(&mut self, peer: &str) -> UnixStream {
        let (ours, theirs) = UnixStream::pair().unwrap();
        self.master
            .send(
                &MasterToQueue::NewFront {
                    connection: 1,
                    peer: peer.parse().unwrap(),
                    daemon: "MTA".into(),
                },
                &[theirs.as_fd()],
            )
            .unwrap();
        ours.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        ours
    }

    fn incoming(&self) -> usize {
        std::fs::read_dir(self.spool.join("incoming")).map_or(0, |d| d.count())
    }

    /// Waits (bounded: no event says "file removed") until `incoming/` is
    /// empty again: a cut-off front's message files are gone.
    fn assert_incoming_removed(&self, whose: &str) {
        let removed = postern_testkit::poll_until(Duration::from_secs(10), || {
            (self.incoming() == 0).then_some(())
        });
        assert!(removed.is_some(), "{whose} message files were left behind");
    }

    /// The committed messages' control files.
    fn committed(&self) -> Vec<String> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(self.spool.join("queue")).unwrap() {
            let path = entry.unwrap().path();
            if path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("qf")
            {
                found.push(std::fs::read_to_string(path).unwrap());
            }
        }
        found
    }

    /// The data file of a committed message.
    fn data(&self, queue_id: &QueueId) -> Vec<u8> {
        std::fs::read(self.spool.join("queue").join(format!("df{queue_id}"))).unwrap()
    }
}

const OUTSIDER: &str = "192.0.2.1:40000";

fn envelope_to(rcpt: &str) -> MessageEnvelope {
    MessageEnvelope {
        sender: "x@example.net".into(),
        recipients: vec![EnvelopeRecipient {
            address: rcpt.into(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// Opens a message on `front` and returns its id and the pipe's write end.
fn open(front: &mut FrontChannel) -> (QueueId, std::fs::File) {
    front.send(&FrontToQueue::OpenMessage, &[]).unwrap();
    let (reply, mut fds) = front.recv().unwrap();
    let QueueToFront::Opened { queue_id } = reply else {
        panic!("{reply:?}")
    };
    (queue_id, std::fs::File::from(fds.remove(0)))
}

fn commit(front: &mut FrontChannel, queue_id: &QueueId, rcpt: &str) {
    front
        .send(
            &FrontToQueue::Commit {
                queue_id: queue_id.clone(),
                envelope: Box::new(envelope_to(rcpt)),
            },
            &[],
        )
        .unwrap();
}

impl Drop for Harness {
    fn drop(&mut self) {
        // A committed message may be out for delivery, and nobody here
        // delivers it: the delivery client "dies", and the queue runner
        // with it, instead of waiting for the report.
        self.delivery = None;
        let _ = self.master.send(&MasterToQueue::Shutdown, &[]);
        if let Some(runner) = self.runner.take() {
            let _ = runner.join();
        }
    }
}

/// A front for an outside client that has exchanged Hello.
fn good_front(h: &mut Harness) -> FrontChannel {
    good_front_for(h, OUTSIDER)
}

/// A front for a client at `peer` that has exchanged Hello.
fn good_front_for(h: &mut Harness, peer: &str) -> FrontChannel {
    let mut front = front_channel(h.front_for(peer));
    front
        .send(
            &FrontToQueue::Hello {
                version: PROTOCOL_VERSION,
            },
            &[],
        )
        .unwrap();
    assert!(matches!(
        front.recv().unwrap().0,
        QueueToFront::Hello { .. }
    ));
    front
}

/// Reads until the queue runner closes our end.
fn assert_disconnected(mut stream: UnixStream) {
    let mut buf = [0u8; 4096];
    loop {
        match std::io::Read::read(&mut stream, &mut buf) {
            Ok(0) => return,
            Ok(_) => continue,
            // Closed with our bytes unread.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return,
            Err(e) => panic!("expected a disconnect, got {e}"),
        }
    }
}

fn assert_still_serving(h: &mut Harness) {
    let mut front = good_front(h);
    front.send(&FrontToQueue::OpenMessage, &[]).unwrap();
    let (reply, fds) = front.recv().unwrap();
    assert!(matches!(reply, QueueToFront::Opened { .. }), "{reply:?}");
    assert_eq!(fds.len(), 1);
}

mod fronts;
mod requests;
