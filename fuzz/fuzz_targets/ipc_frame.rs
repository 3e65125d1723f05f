//! The IPC frame decoder and the whole message catalogue: every type a
//! process decodes from another, with the limit of the channel it comes
//! on.
//!
//! Input: one selector byte (which message type), then one frame: the
//! 5-byte header and the body.
//!
//! Asserts, beyond "does not panic": a header over the limit, or
//! claiming more descriptors than a frame carries, is refused; a body
//! that decodes re-encodes to exactly the bytes it came from (the
//! decoder is strict: one encoding per message, nothing left over) and
//! decodes again to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postern_ipc::frame::{self, HEADER_LEN, MAX_FDS_PER_FRAME};
use postern_ipc::*;
use serde::de::DeserializeOwned;
use serde::Serialize;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, frame)) = data.split_first() else {
        return;
    };
    match selector % 16 {
        0 => check::<FrontToQueue>(frame, FRONT_LIMIT),
        1 => check::<QueueToFront>(frame, REPLY_LIMIT),
        2 => check::<MasterToQueue>(frame, MASTER_LIMIT),
        3 => check::<QueueToMaster>(frame, MASTER_LIMIT),
        4 => check::<QueueToDelivery>(frame, DELIVERY_LIMIT),
        5 => check::<DeliveryToQueue>(frame, DELIVERY_LIMIT),
        6 => check::<MasterToFactory>(frame, REPLY_LIMIT),
        7 => check::<FactoryToMaster>(frame, REPLY_LIMIT),
        8 => check::<ControlHello>(frame, CONTROL_REQUEST_LIMIT),
        9 => check::<ControlReply>(frame, MASTER_LIMIT),
        10 => check::<DeliveryToMaster>(frame, LOCAL_LIMIT),
        11 => check::<MasterToDelivery>(frame, LOCAL_LIMIT),
        12 => check::<AgentJob>(frame, LOCAL_LIMIT),
        _ => check::<AgentReport>(frame, LOCAL_LIMIT),
    }
});

fn check<T>(bytes: &[u8], limit: usize)
where
    T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let head = match frame::header(bytes, limit) {
        Ok(Some(head)) => head,
        Ok(None) => return assert!(bytes.len() < HEADER_LEN),
        Err(_) => {
            let len = u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize;
            return assert!(len > limit || bytes[4] > MAX_FDS_PER_FRAME);
        }
    };
    assert!(head.len <= limit && head.fds <= MAX_FDS_PER_FRAME);
    let Some(body) = bytes.get(HEADER_LEN..HEADER_LEN + head.len) else {
        return;
    };
    let Ok(message) = frame::decode::<T>(body) else {
        return;
    };
    let again = frame::encode(&message, head.fds, limit).expect("a decoded message encodes");
    assert_eq!(
        again,
        &bytes[..HEADER_LEN + head.len],
        "{message:?} re-encoded"
    );
    assert_eq!(frame::decode::<T>(&again[HEADER_LEN..]).ok(), Some(message));
}
