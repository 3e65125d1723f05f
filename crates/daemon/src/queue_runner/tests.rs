//! The queue runner against hostile fronts, in process: a front channel
//! that sends garbage or a 4 GiB length prefix is disconnected and its
//! unfinished files removed, while the queue runner goes on serving others.

use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::thread;
use std::time::Duration;

use postern_ipc::*;

struct Harness {
    master: MasterQueueChannel,
    _delivery: DeliveryChannel,
    runner: Option<thread::JoinHandle<i32>>,
    spool: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

fn start() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let settings = crate::settings::for_tests(dir.path(), "");
    std::fs::create_dir_all(&spool).unwrap();
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
        _delivery: delivery_channel(d_ours),
        runner: Some(runner),
        spool,
        _dir: dir,
    }
}

impl Harness {
    /// A new front channel, handed to the queue runner as master would.
    fn front(&mut self) -> UnixStream {
        let (ours, theirs) = UnixStream::pair().unwrap();
        self.master
            .send(
                &MasterToQueue::NewFront { connection: 1 },
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
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = self.master.send(&MasterToQueue::Shutdown, &[]);
        if let Some(runner) = self.runner.take() {
            let _ = runner.join();
        }
    }
}

fn good_front(h: &mut Harness) -> FrontChannel {
    let mut front = front_channel(h.front());
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

#[test]
fn garbage_disconnects_the_front_and_removes_its_files() {
    let mut h = start();
    let mut front = good_front(&mut h);
    front.send(&FrontToQueue::OpenMessage, &[]).unwrap();
    assert!(matches!(
        front.recv().unwrap().0,
        QueueToFront::Opened { .. }
    ));
    assert_eq!(h.incoming(), 1);
    let mut raw = front.stream().try_clone().unwrap();
    raw.write_all(&[0, 0, 0, 8, 0, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4])
        .unwrap();
    assert_disconnected(raw);
    // No event says "file removed": poll, bounded.
    let cleaned = postern_testkit::poll_until(Duration::from_secs(10), || {
        (h.incoming() == 0).then_some(())
    });
    assert!(
        cleaned.is_some(),
        "the hostile front's message file was left behind"
    );
    assert_still_serving(&mut h);
}

#[test]
fn a_four_gib_length_prefix_disconnects_without_allocating() {
    let mut h = start();
    let mut raw = h.front();
    raw.write_all(&[0xff, 0xff, 0xff, 0xff, 0]).unwrap();
    assert_disconnected(raw);
    assert_still_serving(&mut h);
}

#[test]
fn a_front_cannot_commit_a_message_it_was_not_given() {
    let mut h = start();
    let mut a = good_front(&mut h);
    a.send(&FrontToQueue::OpenMessage, &[]).unwrap();
    let QueueToFront::Opened { queue_id } = a.recv().unwrap().0 else {
        panic!()
    };
    let mut b = good_front(&mut h);
    let envelope = MessageEnvelope {
        sender: "x@example.net".into(),
        recipients: vec![EnvelopeRecipient {
            address: "y@mx.test".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    b.send(
        &FrontToQueue::Commit {
            queue_id,
            envelope: Box::new(envelope),
        },
        &[],
    )
    .unwrap();
    assert_disconnected(b.stream().try_clone().unwrap());
    assert!(!Path::new(&h.spool.join("queue"))
        .read_dir()
        .unwrap()
        .any(|e| e.unwrap().file_name().to_string_lossy().starts_with("qf")));
    assert_still_serving(&mut h);
}

#[test]
fn one_message_file_at_a_time_per_front() {
    let mut h = start();
    let mut front = good_front(&mut h);
    front.send(&FrontToQueue::OpenMessage, &[]).unwrap();
    assert!(matches!(
        front.recv().unwrap().0,
        QueueToFront::Opened { .. }
    ));
    front.send(&FrontToQueue::OpenMessage, &[]).unwrap();
    assert_disconnected(front.stream().try_clone().unwrap());
    let cleaned = postern_testkit::poll_until(Duration::from_secs(10), || {
        (h.incoming() == 0).then_some(())
    });
    assert!(
        cleaned.is_some(),
        "the greedy front's files were left behind"
    );
    assert_still_serving(&mut h);
}

#[test]
fn the_front_gets_a_write_only_descriptor() {
    let mut h = start();
    let mut front = good_front(&mut h);
    front.send(&FrontToQueue::OpenMessage, &[]).unwrap();
    let (reply, mut fds) = front.recv().unwrap();
    assert!(matches!(reply, QueueToFront::Opened { .. }));
    let mut file = std::fs::File::from(fds.remove(0));
    file.write_all(b"Subject: x\r\n").unwrap();
    let mut buf = [0u8; 4];
    assert!(
        std::io::Read::read(&mut file, &mut buf).is_err(),
        "the front could read its message file"
    );
}
