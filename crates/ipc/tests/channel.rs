//! Channels over real socketpairs: messages and descriptors arrive intact,
//! and hostile peers are refused without a panic or a large allocation.

use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;

use postern_ipc::*;

fn pair() -> (FrontChannel, QueueFrontChannel) {
    let (a, b) = UnixStream::pair().unwrap();
    (front_channel(a), queue_front_channel(b))
}

#[test]
fn messages_round_trip_with_descriptors() {
    let (mut front, mut queue) = pair();
    front
        .send(
            &FrontToQueue::Hello {
                version: PROTOCOL_VERSION,
            },
            &[],
        )
        .unwrap();
    let (msg, fds) = queue.recv().unwrap();
    assert_eq!(
        msg,
        FrontToQueue::Hello {
            version: PROTOCOL_VERSION
        }
    );
    assert!(fds.is_empty());

    let mut file = tempfile_in_proc();
    file.write_all(b"message body").unwrap();
    queue
        .send(
            &QueueToFront::Opened {
                queue_id: "h0UGn9P7001230".parse().unwrap(),
            },
            &[file.as_fd()],
        )
        .unwrap();
    let (msg, mut fds) = front.recv().unwrap();
    assert_eq!(
        msg,
        QueueToFront::Opened {
            queue_id: "h0UGn9P7001230".parse().unwrap()
        }
    );
    assert_eq!(fds.len(), 1);
    let mut received = std::fs::File::from(fds.remove(0));
    received.seek(SeekFrom::Start(0)).unwrap();
    let mut text = String::new();
    received.read_to_string(&mut text).unwrap();
    assert_eq!(text, "message body");
}

#[test]
fn many_frames_in_one_read_keep_their_descriptors_in_order() {
    let (mut front, mut queue) = pair();
    let files: Vec<_> = (0..5)
        .map(|i| {
            let mut f = tempfile_in_proc();
            write!(f, "{i}").unwrap();
            f
        })
        .collect();
    for (i, f) in files.iter().enumerate() {
        queue
            .send(
                &QueueToFront::Opened {
                    queue_id: format!("h0UGn9P7{i:06}").parse().unwrap(),
                },
                &[f.as_fd()],
            )
            .unwrap();
        queue
            .send(
                &QueueToFront::Committed {
                    queue_id: format!("h0UGn9P7{i:06}").parse().unwrap(),
                },
                &[],
            )
            .unwrap();
    }
    for i in 0..5 {
        let (msg, mut fds) = front.recv().unwrap();
        assert_eq!(
            msg,
            QueueToFront::Opened {
                queue_id: format!("h0UGn9P7{i:06}").parse().unwrap()
            }
        );
        let mut f = std::fs::File::from(fds.remove(0));
        f.seek(SeekFrom::Start(0)).unwrap();
        let mut s = String::new();
        f.read_to_string(&mut s).unwrap();
        assert_eq!(s, i.to_string());
        assert!(matches!(
            front.recv().unwrap().0,
            QueueToFront::Committed { .. }
        ));
    }
}

#[test]
fn a_four_gib_length_prefix_is_refused_from_the_header() {
    let (mut raw, b) = UnixStream::pair().unwrap();
    let mut queue = queue_front_channel(b);
    raw.write_all(&[0xff, 0xff, 0xff, 0xff, 0]).unwrap();
    match queue.recv() {
        Err(ChannelError::Frame(frame::FrameError::TooLarge { len, .. })) => {
            assert_eq!(len, u32::MAX as usize)
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
}

#[test]
fn garbage_trailing_bytes_and_missing_fds_are_refused() {
    // Garbage body.
    let (mut raw, b) = UnixStream::pair().unwrap();
    let mut queue = queue_front_channel(b);
    raw.write_all(&[0, 0, 0, 4, 0, 0xde, 0xad, 0xbe, 0xef])
        .unwrap();
    assert!(matches!(
        queue.recv(),
        Err(ChannelError::Frame(frame::FrameError::Decode(_)))
    ));

    // A valid message followed by extra bytes inside the same frame.
    let (mut raw, b) = UnixStream::pair().unwrap();
    let mut queue = queue_front_channel(b);
    let mut frame = frame::encode(&FrontToQueue::OpenMessage, 0, 1024).unwrap();
    frame.push(0);
    let len = (frame.len() - frame::HEADER_LEN) as u32;
    frame[..4].copy_from_slice(&len.to_be_bytes());
    raw.write_all(&frame).unwrap();
    assert!(matches!(
        queue.recv(),
        Err(ChannelError::Frame(frame::FrameError::Trailing(1)))
    ));

    // A frame that claims a descriptor but carries none.
    let (mut raw, b) = UnixStream::pair().unwrap();
    let mut queue = queue_front_channel(b);
    raw.write_all(&frame::encode(&FrontToQueue::OpenMessage, 1, 1024).unwrap())
        .unwrap();
    assert!(matches!(
        queue.recv(),
        Err(ChannelError::Frame(frame::FrameError::MissingFds { .. }))
    ));

    // Too many descriptors claimed.
    let (mut raw, b) = UnixStream::pair().unwrap();
    let mut queue = queue_front_channel(b);
    raw.write_all(&[0, 0, 0, 1, 200, 0]).unwrap();
    assert!(matches!(
        queue.recv(),
        Err(ChannelError::Frame(frame::FrameError::TooManyFds(200)))
    ));
}

#[test]
fn a_vec_length_inside_the_body_cannot_force_a_huge_allocation() {
    let (mut raw, b) = UnixStream::pair().unwrap();
    let mut queue = queue_front_channel(b);
    // Commit's queue_id String claiming 2^62 bytes.
    let mut body = vec![0, 0, 0, 2];
    body.extend_from_slice(&(1u64 << 62).to_be_bytes());
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.push(0);
    frame.extend_from_slice(&body);
    raw.write_all(&frame).unwrap();
    assert!(matches!(
        queue.recv(),
        Err(ChannelError::Frame(frame::FrameError::Decode(_)))
    ));
}

#[test]
fn a_closed_peer_is_reported() {
    let (front, mut queue) = pair();
    drop(front);
    assert!(matches!(queue.recv(), Err(ChannelError::Closed)));
}

#[test]
fn peer_credentials_are_ours() {
    let (a, _b) = UnixStream::pair().unwrap();
    let p = peer(&a).unwrap();
    assert_eq!(p.pid as u32, std::process::id());
    assert_eq!(p.uid, nix::unistd::geteuid().as_raw());
}

fn tempfile_in_proc() -> std::fs::File {
    let dir = std::env::temp_dir();
    let path = dir.join(format!(
        "postern-ipc-test-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .unwrap();
    std::fs::remove_file(&path).unwrap();
    f
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

#[test]
fn a_front_may_not_send_descriptors() {
    let (a, b) = UnixStream::pair().unwrap();
    let mut front = front_channel(a);
    let mut queue = queue_front_channel(b);
    let f = tempfile_in_proc();
    front
        .send(&FrontToQueue::OpenMessage, &[f.as_fd()])
        .unwrap();
    assert!(matches!(
        queue.recv(),
        Err(ChannelError::Frame(frame::FrameError::UnexpectedFds(1)))
    ));
}

#[test]
fn unclaimed_descriptors_are_bounded() {
    // Frames that claim no descriptor but carry one each.
    let (a, b) = UnixStream::pair().unwrap();
    let mut queue = queue_delivery_channel(b);
    let f = tempfile_in_proc();
    let frame = frame::encode(
        &DeliveryToQueue::Hello {
            version: PROTOCOL_VERSION,
        },
        0,
        1024,
    )
    .unwrap();
    let mut result = Ok(());
    for _ in 0..20 {
        nix::sys::socket::sendmsg::<()>(
            std::os::fd::AsRawFd::as_raw_fd(&a),
            &[std::io::IoSlice::new(&frame)],
            &[nix::sys::socket::ControlMessage::ScmRights(&[
                std::os::fd::AsRawFd::as_raw_fd(&f),
            ])],
            nix::sys::socket::MsgFlags::empty(),
            None,
        )
        .unwrap();
        match queue.try_recv() {
            Ok(_) => {}
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    assert!(
        matches!(
            result,
            Err(ChannelError::Frame(frame::FrameError::UnexpectedFds(_)))
        ),
        "{result:?}"
    );
}

#[test]
fn a_burst_of_frames_with_descriptors_is_fine() {
    // Many NewFront frames, each with its descriptor, read before any is
    // decoded: every descriptor is accounted for by a frame.
    let (a, b) = UnixStream::pair().unwrap();
    let mut master = master_queue_channel(a);
    let mut queue = queue_master_channel(b);
    let files: Vec<_> = (0..40).map(|_| tempfile_in_proc()).collect();
    for f in &files {
        master
            .send(
                &MasterToQueue::NewFront {
                    connection: 1,
                    peer: "192.0.2.1:40000".parse().unwrap(),
                    daemon: "MTA".into(),
                },
                &[f.as_fd()],
            )
            .unwrap();
    }
    queue.stream().set_nonblocking(true).unwrap();
    let mut n = 0;
    while let Some((_, fds)) = queue.try_recv().unwrap() {
        assert_eq!(fds.len(), 1);
        n += 1;
    }
    assert_eq!(n, 40);
}

#[test]
fn frames_the_socket_cannot_take_yet_keep_their_descriptors() {
    // A frame goes straight to the socket when nothing waits before it,
    // its descriptors only borrowed; one the socket cannot take waits in
    // the channel with copies of them. Either way the receiver gets every
    // frame in order with its own file, though the sender closed each
    // file as soon as send returned.
    let (a, b) = UnixStream::pair().unwrap();
    let mut master = master_queue_channel(a);
    let mut queue = queue_master_channel(b);
    master.stream().set_nonblocking(true).unwrap();
    queue.stream().set_nonblocking(true).unwrap();
    let new_front = |connection: u64| MasterToQueue::NewFront {
        connection,
        peer: "192.0.2.1:40000".parse().unwrap(),
        daemon: "MTA".into(),
    };
    let mut fills = 0u64;
    while !master.wants_write() {
        master.send(&MasterToQueue::RunQueue, &[]).unwrap();
        fills += 1;
    }
    let files = 6u64;
    for n in 0..files {
        let mut file = tempfile_in_proc();
        write!(file, "file {n}").unwrap();
        master.send(&new_front(n), &[file.as_fd()]).unwrap();
    }
    let (mut runs, mut next) = (0u64, 0u64);
    while next < files {
        master.flush().unwrap();
        while let Some((msg, mut fds)) = queue.try_recv().unwrap() {
            match msg {
                MasterToQueue::RunQueue => {
                    assert!(fds.is_empty());
                    runs += 1;
                }
                MasterToQueue::NewFront { connection, .. } => {
                    assert_eq!((connection, fds.len()), (next, 1));
                    let mut file = std::fs::File::from(fds.remove(0));
                    let mut text = String::new();
                    file.seek(SeekFrom::Start(0)).unwrap();
                    file.read_to_string(&mut text).unwrap();
                    assert_eq!(text, format!("file {next}"));
                    next += 1;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    assert_eq!(runs, fills);
    assert!(!master.wants_write());
}

#[test]
fn a_flood_of_small_frames_is_decoded_within_the_buffer_bound() {
    // A compromised front streams valid frames as fast as it can. The
    // receiver never buffers more than one maximal frame, and decoding
    // each frame costs the same however many are waiting (no shifting of
    // the whole buffer per frame).
    let (a, b) = UnixStream::pair().unwrap();
    let mut queue = queue_front_channel(b);
    queue.stream().set_nonblocking(true).unwrap();
    let frames = 200_000;
    let writer = std::thread::spawn(move || {
        let mut a = a;
        let one = frame::encode(
            &FrontToQueue::Hello {
                version: PROTOCOL_VERSION,
            },
            0,
            FRONT_LIMIT,
        )
        .unwrap();
        let burst: Vec<u8> = one.iter().copied().cycle().take(one.len() * 1000).collect();
        for _ in 0..frames / 1000 {
            a.write_all(&burst).unwrap();
        }
    });
    let mut received = 0;
    let mut most_buffered = 0;
    while received < frames {
        match queue.try_recv() {
            Ok(Some(_)) => received += 1,
            Ok(None) => std::thread::yield_now(),
            Err(e) => panic!("after {received} frames: {e}"),
        }
        most_buffered = most_buffered.max(queue.buffered_bytes());
    }
    writer.join().unwrap();
    assert!(
        most_buffered <= frame::HEADER_LEN + FRONT_LIMIT,
        "{most_buffered} bytes buffered"
    );
}

#[test]
fn the_receiver_reads_no_further_than_one_maximal_frame_ahead() {
    // With a small limit, a peer that writes far more than a frame's worth
    // finds most of it still in the socket after one message was taken.
    let (mut a, b) = UnixStream::pair().unwrap();
    let limit = 64;
    let mut queue: Channel<QueueToFront, FrontToQueue> = Channel::new(b, REPLY_LIMIT, limit);
    queue.stream().set_nonblocking(true).unwrap();
    let one = frame::encode(&FrontToQueue::OpenMessage, 0, limit).unwrap();
    // One write: each small write costs a socket buffer of its own.
    a.write_all(&one.repeat(1000)).unwrap();
    assert_eq!(
        queue.try_recv().unwrap().unwrap().0,
        FrontToQueue::OpenMessage
    );
    assert!(queue.buffered_bytes() <= frame::HEADER_LEN + limit);
    let mut n = 1;
    while let Some((msg, _)) = queue.try_recv().unwrap() {
        assert_eq!(msg, FrontToQueue::OpenMessage);
        assert!(queue.buffered_bytes() <= frame::HEADER_LEN + limit);
        n += 1;
    }
    assert_eq!(n, 1000);
}

#[test]
fn a_frame_trickling_in_byte_by_byte_arrives_whole() {
    let (mut a, b) = UnixStream::pair().unwrap();
    let mut queue = queue_front_channel(b);
    queue.stream().set_nonblocking(true).unwrap();
    let msg = FrontToQueue::Etrn {
        argument: "example.org".into(),
    };
    let bytes = frame::encode(&msg, 0, FRONT_LIMIT).unwrap();
    for (i, byte) in bytes.iter().enumerate() {
        assert!(queue.try_recv().unwrap().is_none(), "early at byte {i}");
        a.write_all(&[*byte]).unwrap();
    }
    assert_eq!(queue.try_recv().unwrap().unwrap().0, msg);
}

#[test]
fn frames_sent_before_a_close_are_received_before_closed() {
    let (mut front, mut queue) = pair();
    front.send(&FrontToQueue::OpenMessage, &[]).unwrap();
    drop(front);
    assert_eq!(queue.recv().unwrap().0, FrontToQueue::OpenMessage);
    assert!(matches!(queue.recv(), Err(ChannelError::Closed)));
}
