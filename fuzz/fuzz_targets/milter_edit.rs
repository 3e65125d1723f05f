//! The message as mail filters change it (`crates/milter/src/edit.rs`):
//! a client's message split into header section and body, changes a
//! filter asked for (decoded from packet bytes, so only what
//! `response::decode` lets through) applied, the message written back.
//!
//! Input: a count byte, then that many changes (a length byte and that
//! many bytes of packet: a response code and its data), then the message.
//!
//! Asserts, beyond "does not panic": the written message parses back to
//! itself (writing is stable after one pass); after the changes, it
//! parses back to exactly the headers the changes left (a header value
//! cannot smuggle in a header line of its own) and to the same body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postern_milter::edit::Message;
use postern_milter::response::{decode, Response};
use postern_milter::wire::Packet;

fuzz_target!(|data: &[u8]| {
    let Some((&count, mut rest)) = data.split_first() else {
        return;
    };
    let mut changes = Vec::new();
    for _ in 0..count % 8 {
        let Some((&len, tail)) = rest.split_first() else {
            return;
        };
        let len = (len as usize).min(tail.len());
        let (packet, tail) = tail.split_at(len);
        rest = tail;
        if let Some((&code, data)) = packet.split_first() {
            if let Ok(Response::Modification(m)) = decode(&Packet {
                code,
                data: data.to_vec(),
            }) {
                changes.push(m);
            }
        }
    }
    let message = Message::parse(rest, true);
    let written = message.to_bytes();
    let again = Message::parse(&written, true);
    assert_eq!(again.to_bytes(), written, "writing is not stable");

    let mut changed = again;
    for (i, change) in changes.iter().enumerate() {
        changed.apply(change, i % 2 == 0, i == 0);
    }
    changed.normalise_body();
    let out = changed.to_bytes();
    let back = Message::parse(&out, true);
    assert_eq!(
        back.headers.len(),
        changed.headers.len(),
        "a change added or lost header lines:\n{}",
        String::from_utf8_lossy(&out)
    );
    for (a, b) in back.headers.iter().zip(&changed.headers) {
        assert_eq!(a.name.trim_end(), b.name.trim_end());
        assert_eq!(a.value, b.value);
    }
    assert_eq!(back.body, changed.body);
});
