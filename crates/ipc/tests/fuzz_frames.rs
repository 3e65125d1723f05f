//! No byte sequence makes a receiving channel panic.

use std::io::Write;
use std::os::unix::net::UnixStream;

use postern_ipc::*;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn hostile_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let (mut raw, b) = UnixStream::pair().unwrap();
        let mut queue = queue_front_channel(b);
        raw.write_all(&bytes).unwrap();
        drop(raw);
        // Drain until the channel reports an error or end of stream.
        for _ in 0..1000 {
            match queue.recv() {
                Ok(_) => continue,
                Err(_) => break,
            }
        }
    }

    #[test]
    fn envelopes_round_trip(
        sender in ".{0,40}",
        rcpts in proptest::collection::vec(".{0,40}", 0..20),
        id in "[0-9A-Za-z]{14}",
    ) {
        let (a, b) = UnixStream::pair().unwrap();
        let mut front = front_channel(a);
        let mut queue = queue_front_channel(b);
        let envelope = MessageEnvelope {
            sender,
            recipients: rcpts.into_iter().map(|address| EnvelopeRecipient { address, ..Default::default() }).collect(),
            ..Default::default()
        };
        let msg = FrontToQueue::Commit { queue_id: id.parse().unwrap(), envelope: Box::new(envelope) };
        front.send(&msg, &[]).unwrap();
        prop_assert_eq!(queue.recv().unwrap().0, msg);
    }
}

/// A queue ID is checked as the frame is decoded: one that could name a
/// path outside the spool never reaches the queue runner's code.
#[test]
fn path_like_queue_ids_are_refused_at_decoding() {
    let good: postern_ipc::QueueId = "6AP8Cx00006826".parse().unwrap();
    let body = &postern_ipc::frame::encode(&FrontToQueue::Abort { queue_id: good }, 0, 1 << 10)
        .unwrap()[postern_ipc::frame::HEADER_LEN..];
    let at = body
        .windows(14)
        .position(|w| w == b"6AP8Cx00006826")
        .unwrap();
    // Same length as a real ID, so only the check itself can refuse them.
    for evil in [b"../../etc/pass", b"6AP8Cx0000682/", b"6AP8Cx0000682\0"] {
        let mut forged = body.to_vec();
        forged[at..at + 14].copy_from_slice(evil);
        let decoded = postern_ipc::frame::decode::<FrontToQueue>(&forged);
        assert!(
            decoded.is_err(),
            "{:?} decoded as {decoded:?}",
            String::from_utf8_lossy(evil)
        );
    }
}
