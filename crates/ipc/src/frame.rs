//! Framing: a 4-byte big-endian body length, a 1-byte descriptor count,
//! then the bincode 2 body. The length is checked against the channel's
//! limit before anything is allocated for it, and the body must decode to
//! exactly one message with no bytes left over (Postfix's ATTR_FLAG_STRICT).

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Bytes before the body.
pub const HEADER_LEN: usize = 5;
/// What a frame's buffer starts with: room for every message of the
/// connection path (an accepted connection, a front's report) without
/// growing.
const FIRST_CAPACITY: usize = 256;
/// Most descriptors one message carries.
pub const MAX_FDS_PER_FRAME: u8 = 2;
/// The bound bincode enforces on allocations while decoding; no channel
/// allows frames this large, so a length prefix inside a body that claims
/// more is refused before it allocates.
const DECODE_LIMIT: usize = 16 << 20;

fn config() -> bincode::config::Configuration<
    bincode::config::BigEndian,
    bincode::config::Fixint,
    bincode::config::Limit<DECODE_LIMIT>,
> {
    bincode::config::standard()
        .with_big_endian()
        .with_fixed_int_encoding()
        .with_limit::<DECODE_LIMIT>()
}

/// Why a frame was refused. Every one of these disconnects the peer.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The length prefix is over the channel's limit.
    #[error("frame of {len} bytes exceeds the limit of {limit}")]
    TooLarge {
        /// Claimed length.
        len: usize,
        /// The channel's limit.
        limit: usize,
    },
    /// More descriptors claimed than any message carries.
    #[error("frame claims {0} descriptors")]
    TooManyFds(u8),
    /// The descriptors a frame claims did not arrive with it.
    #[error("frame claims {claimed} descriptors but {present} arrived")]
    MissingFds {
        /// Claimed.
        claimed: u8,
        /// Present.
        present: usize,
    },
    /// Descriptors arrived that no frame of this channel carries.
    #[error("{0} unexpected descriptors")]
    UnexpectedFds(usize),
    /// The body is not one message of the expected type.
    #[error("undecodable frame: {0}")]
    Decode(String),
    /// The body decoded but bytes were left over.
    #[error("{0} trailing bytes after the message")]
    Trailing(usize),
    /// The message does not fit in a frame.
    #[error("cannot encode message: {0}")]
    Encode(String),
}

/// Encodes `msg` as one frame announcing `fds` descriptors.
pub fn encode<T: Serialize>(msg: &T, fds: u8, limit: usize) -> Result<Vec<u8>, FrameError> {
    if fds > MAX_FDS_PER_FRAME {
        return Err(FrameError::TooManyFds(fds));
    }
    // One buffer, the header's room first and the body encoded after it:
    // most messages fit the first allocation.
    let mut frame = Vec::with_capacity(FIRST_CAPACITY);
    frame.extend_from_slice(&[0; HEADER_LEN]);
    bincode::serde::encode_into_std_write(msg, &mut frame, config())
        .map_err(|e| FrameError::Encode(e.to_string()))?;
    let len = frame.len() - HEADER_LEN;
    if len > limit {
        return Err(FrameError::TooLarge { len, limit });
    }
    frame[..4].copy_from_slice(&(len as u32).to_be_bytes());
    frame[4] = fds;
    Ok(frame)
}

/// A complete frame's header, once enough bytes are buffered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Body length.
    pub len: usize,
    /// Descriptors carried.
    pub fds: u8,
}

/// Reads and checks the header at the start of `buf`; `Ok(None)` when
/// fewer than [`HEADER_LEN`] bytes are there.
pub fn header(buf: &[u8], limit: usize) -> Result<Option<Header>, FrameError> {
    let Some(head) = buf.get(..HEADER_LEN) else {
        return Ok(None);
    };
    let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
    if len > limit {
        return Err(FrameError::TooLarge { len, limit });
    }
    if head[4] > MAX_FDS_PER_FRAME {
        return Err(FrameError::TooManyFds(head[4]));
    }
    Ok(Some(Header { len, fds: head[4] }))
}

/// Decodes a body that must hold exactly one `T`.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    let (msg, used) = bincode::serde::decode_from_slice(body, config())
        .map_err(|e| FrameError::Decode(e.to_string()))?;
    if used != body.len() {
        return Err(FrameError::Trailing(body.len() - used));
    }
    Ok(msg)
}
