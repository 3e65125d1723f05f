//! The receiving end of a channel fed arbitrary bytes over a real
//! socketpair: the queue runner's end of a front's channel (a front is
//! the process an attacker may have taken over) or master's end of the
//! control socket (any local user may connect).
//!
//! Input: one selector byte (which channel), then what the peer writes
//! before it closes.
//!
//! Asserts, beyond "does not panic": never more than one maximal frame
//! is buffered; every message received is, re-encoded, exactly the next
//! bytes the peer sent; the channel reports the peer's close only when
//! what is left is less than a whole frame, and refuses the stream only
//! when a frame in what is left is bad.
#![no_main]

use std::io::Write;
use std::os::unix::net::UnixStream;

use libfuzzer_sys::fuzz_target;
use postern_ipc::frame::{self, HEADER_LEN};
use postern_ipc::*;
use serde::de::DeserializeOwned;
use serde::Serialize;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, stream)) = data.split_first() else {
        return;
    };
    let (mut peer, ours) = UnixStream::pair().expect("socketpair");
    // Small inputs: the whole stream fits in the socket buffer, so one
    // thread can write it all before reading.
    peer.write_all(stream).expect("write");
    drop(peer);
    if selector % 2 == 0 {
        drain(queue_front_channel(ours), stream, FRONT_LIMIT);
    } else {
        drain(control_channel(ours), stream, CONTROL_REQUEST_LIMIT);
    }
});

fn drain<Out, In>(mut channel: Channel<Out, In>, sent: &[u8], limit: usize)
where
    Out: Serialize,
    In: Serialize + DeserializeOwned + std::fmt::Debug,
{
    let mut at = 0;
    loop {
        let result = channel.try_recv();
        assert!(channel.buffered_bytes() <= HEADER_LEN + limit);
        match result {
            Ok(Some((message, fds))) => {
                assert!(fds.is_empty(), "descriptors nobody sent");
                let bytes = frame::encode(&message, 0, limit).expect("encodes");
                assert!(
                    sent[at..].starts_with(&bytes),
                    "{message:?} is not what was sent"
                );
                at += bytes.len();
            }
            Ok(None) => panic!("a closed blocking socket would block"),
            Err(ChannelError::Closed) => {
                return assert!(
                    whole_frame(&sent[at..], limit).is_none(),
                    "frame left unread"
                )
            }
            Err(ChannelError::Frame(e)) => {
                return assert!(bad_frame_ahead::<In>(&sent[at..], limit), "refused: {e}")
            }
            Err(e) => panic!("{e}"),
        }
    }
}

/// The first whole frame of `bytes` (header and body), if there is one.
fn whole_frame(bytes: &[u8], limit: usize) -> Option<&[u8]> {
    let head = frame::header(bytes, limit).ok()??;
    bytes.get(..HEADER_LEN + head.len)
}

/// True when a frame in `bytes` is over the limit, claims descriptors
/// (none were sent) or does not decode.
fn bad_frame_ahead<In: DeserializeOwned>(mut bytes: &[u8], limit: usize) -> bool {
    loop {
        let head = match frame::header(bytes, limit) {
            Err(_) => return true,
            Ok(None) => return false,
            Ok(Some(head)) => head,
        };
        if head.fds > 0 {
            return true;
        }
        let Some(body) = bytes.get(HEADER_LEN..HEADER_LEN + head.len) else {
            return false;
        };
        if frame::decode::<In>(body).is_err() {
            return true;
        }
        bytes = &bytes[HEADER_LEN + head.len..];
    }
}
