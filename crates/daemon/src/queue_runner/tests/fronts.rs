//! The queue runner against hostile fronts, in process: a front channel
//! that sends garbage, a 4 GiB length prefix, a flood of frames, an
//! oversized message, or a recipient it may not accept is disconnected
//! (or refused) and its unfinished files removed, while the queue runner
//! goes on serving others; a committed message cannot be changed.

use super::*;

#[test]
fn garbage_disconnects_the_front_and_removes_its_files() {
    let mut h = start();
    let mut front = good_front(&mut h);
    open(&mut front);
    assert_eq!(h.incoming(), 1);
    let mut raw = front.stream().try_clone().unwrap();
    raw.write_all(&[0, 0, 0, 8, 0, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4])
        .unwrap();
    assert_disconnected(raw);
    h.assert_incoming_removed("the hostile front's");
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
    open(&mut front);
    front.send(&FrontToQueue::OpenMessage, &[]).unwrap();
    assert_disconnected(front.stream().try_clone().unwrap());
    h.assert_incoming_removed("the greedy front's");
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
