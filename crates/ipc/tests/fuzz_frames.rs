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
    fn envelopes_round_trip(sender in ".{0,40}", rcpts in proptest::collection::vec(".{0,40}", 0..20)) {
        let (a, b) = UnixStream::pair().unwrap();
        let mut front = front_channel(a);
        let mut queue = queue_front_channel(b);
        let envelope = MessageEnvelope {
            sender,
            recipients: rcpts.into_iter().map(|address| EnvelopeRecipient { address, ..Default::default() }).collect(),
            ..Default::default()
        };
        let msg = FrontToQueue::Commit { queue_id: "x".into(), envelope: Box::new(envelope) };
        front.send(&msg, &[]).unwrap();
        prop_assert_eq!(queue.recv().unwrap().0, msg);
    }
}
