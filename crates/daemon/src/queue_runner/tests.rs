//! The queue runner against hostile fronts, in process: a front channel
//! that sends garbage, a 4 GiB length prefix, a flood of frames, an
//! oversized message, or a recipient it may not accept is disconnected
//! (or refused) and its unfinished files removed, while the queue runner
//! goes on serving others; a committed message cannot be changed.

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
    let (queue_id, _pipe) = open(&mut a);
    let mut b = good_front(&mut h);
    commit(&mut b, &queue_id, "y@mx.test");
    assert_disconnected(b.stream().try_clone().unwrap());
    assert!(h.committed().is_empty());
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
fn the_front_gets_only_the_write_end_of_a_pipe() {
    let mut h = start();
    let mut front = good_front(&mut h);
    let (_, mut pipe) = open(&mut front);
    pipe.write_all(b"Subject: x\r\n").unwrap();
    let mut buf = [0u8; 4];
    assert!(
        std::io::Read::read(&mut pipe, &mut buf).is_err(),
        "the front could read back"
    );
    let meta = pipe.metadata().unwrap();
    assert!(
        std::os::unix::fs::FileTypeExt::is_fifo(&meta.file_type()),
        "not a pipe"
    );
}

#[test]
fn a_committed_message_is_what_arrived_and_nothing_the_front_holds_changes_it() {
    let mut h = start();
    let mut front = good_front(&mut h);
    let (queue_id, mut pipe) = open(&mut front);
    pipe.write_all(b"Subject: kept\r\n\r\nbody\r\n").unwrap();
    drop(pipe);
    commit(&mut front, &queue_id, "postmaster@mx.test");
    let (reply, _) = front.recv().unwrap();
    assert!(matches!(reply, QueueToFront::Committed { .. }), "{reply:?}");
    assert_eq!(h.data(&queue_id), b"Subject: kept\r\n\r\nbody\r\n");
    let control = &h.committed()[0];
    // The client as master saw it, never anything the front said.
    assert!(control.contains("\nC [192.0.2.1]\n"), "{control}");
}

#[test]
fn a_front_keeping_its_pipe_open_cannot_commit() {
    // A front that kept a copy of the write end could go on writing after
    // 250: the commit is refused and the front cut off.
    let mut h = start();
    let mut front = good_front(&mut h);
    let (queue_id, mut pipe) = open(&mut front);
    pipe.write_all(b"Subject: x\r\n\r\nbody\r\n").unwrap();
    let kept = pipe.try_clone().unwrap();
    drop(pipe);
    commit(&mut front, &queue_id, "postmaster@mx.test");
    assert_disconnected(front.stream().try_clone().unwrap());
    assert!(h.committed().is_empty());
    drop(kept);
    assert_still_serving(&mut h);
}

#[test]
fn max_message_size_is_enforced_by_the_queue_runner() {
    let mut h = start_with("O MaxMessageSize=10000\n");
    let mut front = good_front(&mut h);
    let (queue_id, mut pipe) = open(&mut front);
    // A front that ignores the limit: 1 MB. The queue runner stops reading
    // past the limit, so the writes fail.
    let writer = std::thread::spawn(move || {
        let chunk = vec![b'x'; 64 << 10];
        let mut written = 0usize;
        while written < 1 << 20 {
            if pipe.write_all(&chunk).is_err() {
                return written;
            }
            written += chunk.len();
        }
        written
    });
    let written = writer.join().unwrap();
    assert!(written < 1 << 20, "the queue runner took {written} bytes");
    commit(&mut front, &queue_id, "postmaster@mx.test");
    let (reply, _) = front.recv().unwrap();
    assert_eq!(
        reply,
        QueueToFront::Refused {
            code: 552,
            enhanced: "5.2.3".into(),
            text: "Message exceeds maximum fixed size (10000)".into()
        }
    );
    assert!(h.committed().is_empty());
    assert_eq!(h.incoming(), 0);
}

#[test]
fn recipients_are_checked_again_at_commit() {
    // A front taken over cannot queue a relay recipient for an outsider.
    let mut h = start();
    let mut front = good_front(&mut h);
    let (queue_id, pipe) = open(&mut front);
    drop(pipe);
    commit(&mut front, &queue_id, "victim@example.com");
    assert_disconnected(front.stream().try_clone().unwrap());
    assert!(h.committed().is_empty());
    // Hidden in a local part at a local domain: the same.
    let mut front = good_front(&mut h);
    let (queue_id, pipe) = open(&mut front);
    drop(pipe);
    commit(&mut front, &queue_id, "\"victim@example.com\"@mx.test");
    assert_disconnected(front.stream().try_clone().unwrap());
    assert!(h.committed().is_empty());
    // From loopback, relaying is allowed.
    let mut front = good_front_for(&mut h, "127.0.0.1:40000");
    let (queue_id, pipe) = open(&mut front);
    drop(pipe);
    commit(&mut front, &queue_id, "victim@example.com");
    assert!(matches!(
        front.recv().unwrap().0,
        QueueToFront::Committed { .. }
    ));
}

#[test]
fn a_flooding_front_is_cut_off_and_others_are_served() {
    let mut h = start();
    let mut hostile = h.front();
    let hello = frame::encode(
        &FrontToQueue::Hello {
            version: PROTOCOL_VERSION,
        },
        0,
        FRONT_LIMIT,
    )
    .unwrap();
    // Valid frames, as fast as the socket takes them.
    let flood: Vec<u8> = hello
        .iter()
        .copied()
        .cycle()
        .take(hello.len() * 5000)
        .collect();
    let _ = hostile.write_all(&flood);
    assert_disconnected(hostile);
    let etrn = frame::encode(
        &FrontToQueue::Etrn {
            argument: "example.org".into(),
        },
        0,
        FRONT_LIMIT,
    )
    .unwrap();
    let greedy = good_front(&mut h);
    let burst: Vec<u8> = etrn.iter().copied().cycle().take(etrn.len() * 50).collect();
    let mut raw = greedy.stream().try_clone().unwrap();
    raw.write_all(&burst).unwrap();
    assert_disconnected(raw);
    drop(greedy);
    assert_still_serving(&mut h);
}

/// A front that waits for each answer is never taken for a flooder,
/// however fast it asks (each answer may reach it, and its next request
/// arrive, before the queue runner's turn is over), nor when an Abort,
/// which has no answer, travels with the next request.
#[test]
fn a_fast_honest_front_is_served_in_turns_and_never_cut_off() {
    let mut h = start();
    let mut front = good_front(&mut h);
    for name in (0..300).map(|i| if i % 2 == 0 { "root" } else { "nobody-here" }) {
        front
            .send(&FrontToQueue::LocalUser { name: name.into() }, &[])
            .unwrap();
        let (reply, _) = front.recv().unwrap();
        assert!(matches!(reply, QueueToFront::LocalUser { .. }), "{reply:?}");
    }
    let (queue_id, _pipe) = open(&mut front);
    let mut together = frame::encode(&FrontToQueue::Abort { queue_id }, 0, FRONT_LIMIT).unwrap();
    together.extend(frame::encode(&FrontToQueue::OpenMessage, 0, FRONT_LIMIT).unwrap());
    front
        .stream()
        .try_clone()
        .unwrap()
        .write_all(&together)
        .unwrap();
    let (reply, fds) = front.recv().unwrap();
    assert!(matches!(reply, QueueToFront::Opened { .. }), "{reply:?}");
    assert_eq!(fds.len(), 1);
}

#[test]
fn local_users_are_answered_from_the_password_database() {
    let mut h = start();
    let mut front = good_front(&mut h);
    for (name, known) in [
        ("root", true),
        ("postmaster", true),
        ("no-such-user-here", false),
    ] {
        front
            .send(&FrontToQueue::LocalUser { name: name.into() }, &[])
            .unwrap();
        assert_eq!(
            front.recv().unwrap().0,
            QueueToFront::LocalUser { known },
            "{name}"
        );
    }
}

#[test]
fn a_front_cannot_queue_for_an_unknown_local_user() {
    // The bounce of such a message would carry the attacker's text to
    // any address: refused at commit, as at RCPT.
    let mut h = start();
    let mut front = good_front(&mut h);
    let (queue_id, pipe) = open(&mut front);
    drop(pipe);
    commit(&mut front, &queue_id, "no-such-user-here@mx.test");
    assert_eq!(
        front.recv().unwrap().0,
        QueueToFront::Refused {
            code: 550,
            enhanced: "5.1.1".into(),
            text: "<no-such-user-here@mx.test>... User unknown".into()
        }
    );
    assert!(h.committed().is_empty());
    assert_eq!(h.incoming(), 0);
}

#[test]
fn etrn_is_refused_under_noetrn_and_bounded_otherwise() {
    let mut h = start_with("O PrivacyOptions=noetrn\n");
    let mut front = good_front(&mut h);
    front
        .send(
            &FrontToQueue::Etrn {
                argument: "example.org".into(),
            },
            &[],
        )
        .unwrap();
    assert_disconnected(front.stream().try_clone().unwrap());

    let mut h = start();
    let mut front = good_front(&mut h);
    for _ in 0..20 {
        front
            .send(
                &FrontToQueue::Etrn {
                    argument: "example.org".into(),
                },
                &[],
            )
            .unwrap();
        assert!(matches!(
            front.recv().unwrap().0,
            QueueToFront::EtrnStarted { .. }
        ));
    }
}

#[test]
fn etrn_for_a_queue_group_runs_the_queue_or_names_the_unknown_group() {
    let mut h = start();
    let mut front = good_front(&mut h);
    let mut ask = |argument: &str| {
        front
            .send(
                &FrontToQueue::Etrn {
                    argument: argument.into(),
                },
                &[],
            )
            .unwrap();
        front.recv().unwrap().0
    };
    assert!(matches!(ask("#mqueue"), QueueToFront::EtrnStarted { .. }));
    assert_eq!(
        ask("#nosuch"),
        QueueToFront::Refused {
            code: 459,
            enhanced: "4.5.4".into(),
            text: "Queue nosuch unknown".into()
        }
    );
    assert!(matches!(
        ask("@example.org"),
        QueueToFront::EtrnStarted { .. }
    ));
}

/// A crash after a report was committed but before the original stopped
/// owing it (or a control file from before reports existed): at the next
/// start the report is made and queued, and only then does the original
/// leave the queue. A report may come twice, never not at all.
#[test]
fn reports_owed_when_the_runner_stopped_are_sent_at_the_next_start() {
    use postern_queue::{
        ControlFile, DsnDue, QueueIdGenerator, RecipientEntry, RecipientState, Spool,
    };
    let mut original_id = None;
    let mut h = start_with_spool("", |dir| {
        let spool = Spool::open(dir).unwrap();
        let (id, mut data) = spool.create(&mut QueueIdGenerator::new(1)).unwrap();
        let text = b"Subject: lost?\r\n\r\nbody\r\n";
        data.write_all(text).unwrap();
        let mut control = ControlFile::new(id.clone(), 1_700_000_000, "s@example.org");
        control.size = text.len() as u64;
        control.client = "localhost [127.0.0.1]".into();
        control.protocol = "ESMTP".into();
        let mut r = RecipientEntry::new("u@b.test");
        r.state = RecipientState::Failed;
        r.status = Some("5.1.1".into());
        r.diagnostic = Some("550 5.1.1 <u@b.test>: unknown".into());
        r.remote_mta = Some("[192.0.2.9]".into());
        r.dsn = Some(DsnDue::Failed);
        control.recipients.push(r);
        spool.commit(&id, &data, &control).unwrap();
        original_id = Some(id);
    });
    let original_id = original_id.unwrap();
    let delivery = h.delivery.as_mut().unwrap();
    delivery
        .stream()
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let (job, fds) = loop {
        match delivery.recv().unwrap() {
            (QueueToDelivery::Deliver(job), fds) => break (job, fds),
            _ => continue,
        }
    };
    assert_eq!(job.sender, "");
    let to: Vec<&str> = job.recipients.iter().map(|r| r.address.as_str()).collect();
    assert_eq!(to, ["s@example.org"]);
    let mut report = String::new();
    std::io::Read::read_to_string(
        &mut std::fs::File::from(fds.into_iter().next().unwrap()),
        &mut report,
    )
    .unwrap();
    assert!(report.contains("\r\nFinal-Recipient: RFC822; u@b.test\r\nX-Actual-Recipient: rfc822; u@b.test\r\nAction: failed\r\nStatus: 5.1.1\r\n"), "{report}");
    assert!(
        report.contains("\r\nSubject: lost?\r\n\r\nbody\r\n"),
        "{report}"
    );
    // The report is in the queue; the original is gone. The report may
    // be handed to delivery before the original is removed, so wait for
    // the removal (no event tells the test of it).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut committed = h.committed();
    while committed.len() > 1 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        committed = h.committed();
    }
    assert_eq!(committed.len(), 1, "{committed:?}");
    assert!(committed[0].contains("\nG dsn\n"), "{}", committed[0]);
    assert!(!committed[0].contains(original_id.as_str()));
}

/// A postmaster notice (a double bounce) that failed is logged and
/// dropped: no third report, and it leaves the queue.
#[test]
fn a_failed_postmaster_notice_is_dropped_not_bounced() {
    use postern_queue::{
        ControlFile, DsnDue, Generated, QueueIdGenerator, RecipientEntry, RecipientState, Spool,
    };
    let h = start_with_spool("", |dir| {
        let spool = Spool::open(dir).unwrap();
        let (id, mut data) = spool.create(&mut QueueIdGenerator::new(2)).unwrap();
        data.write_all(b"Subject: notice\r\n\r\nx\r\n").unwrap();
        let mut control = ControlFile::new(id.clone(), 1_700_000_000, "");
        control.generated = Some(Generated::Postmaster);
        let mut r = RecipientEntry::new("postmaster@mx.test");
        r.state = RecipientState::Failed;
        r.dsn = Some(DsnDue::Failed);
        control.recipients.push(r);
        spool.commit(&id, &data, &control).unwrap();
    });
    postern_testkit::poll_until(Duration::from_secs(10), || {
        h.committed().is_empty().then_some(())
    })
    .unwrap_or_else(|| panic!("still queued: {:?}", h.committed()));
}

/// VRFY and EXPN over the channel: the password database's answer, and
/// a front that asks what PrivacyOptions forbid is cut off, as for ETRN.
#[test]
fn vrfy_and_expn_are_answered_unless_privacyoptions_forbid_them() {
    let mut h = start();
    let mut front = good_front(&mut h);
    let ask = |front: &mut FrontChannel, argument: &str, expand: bool| {
        front
            .send(
                &FrontToQueue::Verify {
                    argument: argument.into(),
                    expand,
                },
                &[],
            )
            .unwrap();
        front.recv().unwrap().0
    };
    match ask(&mut front, "root", false) {
        QueueToFront::Verified {
            addresses,
            definitive: true,
        } => assert_eq!(
            addresses.iter().map(|a| &a.address[..]).collect::<Vec<_>>(),
            ["root@mx.test"]
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        ask(&mut front, "no-such-user-here", true),
        QueueToFront::Refused {
            code: 550,
            enhanced: "5.1.1".into(),
            text: "no-such-user-here... User unknown".into(),
        }
    );
    for (privacy, expand) in [("novrfy", false), ("noexpn", true), ("goaway", true)] {
        let mut h = start_with(&format!("O PrivacyOptions={privacy}\n"));
        let mut front = good_front(&mut h);
        front
            .send(
                &FrontToQueue::Verify {
                    argument: "root".into(),
                    expand,
                },
                &[],
            )
            .unwrap();
        assert_disconnected(front.stream().try_clone().unwrap());
        assert_still_serving(&mut h);
    }
}
