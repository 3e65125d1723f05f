//! Milter packets: a 32-bit big-endian length (the command byte and the
//! data), the command byte, the data. Strings inside are NUL-terminated.

use std::io::{self, Read, Write};

/// The most data a packet may carry unless negotiated higher
/// (libmilter's MILTER_MAX_DATA_SIZE); body chunks are cut to it.
pub const DEFAULT_MAX_DATA: usize = 65_535;
/// The largest packet we read at all, whatever was negotiated
/// (libmilter's MILTER_MDS_1M plus room for the command).
pub const HARD_MAX_DATA: usize = 1024 * 1024;

/// Commands the MTA sends (libmilter's `SMFIC_*`).
pub mod command {
    pub const ABORT: u8 = b'A';
    pub const BODY: u8 = b'B';
    pub const CONNECT: u8 = b'C';
    pub const MACRO: u8 = b'D';
    pub const BODY_EOB: u8 = b'E';
    pub const HELO: u8 = b'H';
    pub const QUIT_NEW_CONNECTION: u8 = b'K';
    pub const HEADER: u8 = b'L';
    pub const MAIL: u8 = b'M';
    pub const EOH: u8 = b'N';
    pub const OPTNEG: u8 = b'O';
    pub const QUIT: u8 = b'Q';
    pub const RCPT: u8 = b'R';
    pub const DATA: u8 = b'T';
    pub const UNKNOWN: u8 = b'U';
}

/// Replies a filter sends (libmilter's `SMFIR_*`).
pub mod reply {
    pub const ADD_RCPT: u8 = b'+';
    pub const DEL_RCPT: u8 = b'-';
    pub const ADD_RCPT_PAR: u8 = b'2';
    pub const SHUTDOWN: u8 = b'4';
    pub const ACCEPT: u8 = b'a';
    pub const REPLACE_BODY: u8 = b'b';
    pub const CONTINUE: u8 = b'c';
    pub const DISCARD: u8 = b'd';
    pub const CHANGE_FROM: u8 = b'e';
    pub const CONNECTION_FAIL: u8 = b'f';
    pub const ADD_HEADER: u8 = b'h';
    pub const INSERT_HEADER: u8 = b'i';
    pub const SET_SYMBOL_LIST: u8 = b'l';
    pub const CHANGE_HEADER: u8 = b'm';
    pub const PROGRESS: u8 = b'p';
    pub const QUARANTINE: u8 = b'q';
    pub const REJECT: u8 = b'r';
    pub const SKIP: u8 = b's';
    pub const TEMPFAIL: u8 = b't';
    pub const REPLY_CODE: u8 = b'y';
    pub const OPTNEG: u8 = b'O';
}

/// One packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    pub code: u8,
    pub data: Vec<u8>,
}

/// Why a packet could not be read.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("packet of {0} bytes is larger than {max}", max = HARD_MAX_DATA)]
    TooLarge(usize),
    #[error("empty packet (no command byte)")]
    Empty,
}

/// The bytes of a packet.
pub fn encode(code: u8, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + data.len());
    let len = u32::try_from(data.len() + 1).expect("milter packet over 4 GiB");
    out.extend_from_slice(&len.to_be_bytes());
    out.push(code);
    out.extend_from_slice(data);
    out
}

/// Writes one packet (one write call, so a packet is never interleaved).
pub fn write_packet(out: &mut impl Write, code: u8, data: &[u8]) -> io::Result<()> {
    out.write_all(&encode(code, data))?;
    out.flush()
}

/// Reads one packet, refusing one over [`HARD_MAX_DATA`] before
/// allocating for it.
pub fn read_packet(input: &mut impl Read) -> Result<Packet, WireError> {
    let mut len = [0u8; 4];
    input.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len) as usize;
    if len == 0 {
        return Err(WireError::Empty);
    }
    if len > HARD_MAX_DATA + 1 {
        return Err(WireError::TooLarge(len));
    }
    let mut buf = vec![0u8; len];
    input.read_exact(&mut buf)?;
    let code = buf[0];
    buf.remove(0);
    Ok(Packet { code, data: buf })
}

/// `s` with its terminating NUL, as the protocol's strings are. A NUL
/// inside would cut the string short at the filter: it is replaced.
pub fn c_string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend(s.iter().map(|&b| if b == 0 { b' ' } else { b }));
    out.push(0);
}

/// Splits NUL-terminated strings; `None` if the data does not end with
/// a NUL (a string cut short).
pub fn split_c_strings(data: &[u8]) -> Option<Vec<&[u8]>> {
    if data.is_empty() {
        return Some(Vec::new());
    }
    let body = data.strip_suffix(&[0])?;
    Some(body.split(|&b| b == 0).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_packet_round_trips() {
        let bytes = encode(command::HELO, b"client.example\0");
        assert_eq!(&bytes[..5], &[0, 0, 0, 16, b'H']);
        let p = read_packet(&mut &bytes[..]).unwrap();
        assert_eq!(p.code, b'H');
        assert_eq!(p.data, b"client.example\0");
    }

    #[test]
    fn oversized_and_empty_packets_are_refused_before_reading_them() {
        let huge = (HARD_MAX_DATA as u32 + 2).to_be_bytes();
        assert!(matches!(
            read_packet(&mut &huge[..]),
            Err(WireError::TooLarge(_))
        ));
        assert!(matches!(
            read_packet(&mut &[0u8, 0, 0, 0][..]),
            Err(WireError::Empty)
        ));
    }

    #[test]
    fn a_short_packet_is_an_io_error() {
        assert!(matches!(
            read_packet(&mut &[0u8, 0, 0, 9, b'c'][..]),
            Err(WireError::Io(_))
        ));
    }

    #[test]
    fn strings_are_nul_terminated_and_nuls_inside_replaced() {
        let mut out = Vec::new();
        c_string(&mut out, b"a\0b");
        assert_eq!(out, b"a b\0");
        assert_eq!(
            split_c_strings(b"X-A\0v\0").unwrap(),
            vec![&b"X-A"[..], &b"v"[..]]
        );
        assert_eq!(split_c_strings(b"unterminated"), None);
        assert_eq!(split_c_strings(b""), Some(vec![]));
    }
}
