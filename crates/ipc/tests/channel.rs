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
                queue_id: "h0UGn9P7001230".into(),
            },
            &[file.as_fd()],
        )
        .unwrap();
    let (msg, mut fds) = front.recv().unwrap();
    assert_eq!(
        msg,
        QueueToFront::Opened {
            queue_id: "h0UGn9P7001230".into()
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
                    queue_id: format!("q{i}"),
                },
                &[f.as_fd()],
            )
            .unwrap();
        queue
            .send(
                &QueueToFront::Committed {
                    queue_id: format!("q{i}"),
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
                queue_id: format!("q{i}")
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
        match queue.fill() {
            Ok(_) => while let Ok(Some(_)) = queue.try_recv() {},
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
            .send(&MasterToQueue::NewFront { connection: 1 }, &[f.as_fd()])
            .unwrap();
    }
    queue.stream().set_nonblocking(true).unwrap();
    loop {
        match queue.fill() {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => panic!("{e}"),
        }
    }
    let mut n = 0;
    while let Some((_, fds)) = queue.try_recv().unwrap() {
        assert_eq!(fds.len(), 1);
        n += 1;
    }
    assert_eq!(n, 40);
}
