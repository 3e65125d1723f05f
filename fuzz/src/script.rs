//! The input of the session targets: the peer's bytes, as they arrive,
//! with the shell's own doings written between them.
//!
//! `0xFE` followed by a letter is an event (the TLS handshake finished, a
//! timeout, …; each target says which letters it knows); `0xFE 0xFE` is
//! one `0xFE` byte of the stream. The bytes between two events arrive in
//! one read, so `0xFE c` (an event no target acts on) only cuts a read in
//! two. A byte SMTP never needs was chosen so that seeds stay readable.

/// One read, or one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Bytes that arrive in one read (never empty).
    Read(Vec<u8>),
    /// The event letter after `0xFE`.
    Event(u8),
}

/// The escape byte.
pub const ESCAPE: u8 = 0xFE;

/// Splits a stream into reads and events.
pub fn pieces(stream: &[u8]) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut read = Vec::new();
    let mut bytes = stream.iter().copied();
    while let Some(b) = bytes.next() {
        if b != ESCAPE {
            read.push(b);
            continue;
        }
        match bytes.next() {
            Some(ESCAPE) => read.push(ESCAPE),
            Some(letter) => {
                if !read.is_empty() {
                    out.push(Piece::Read(std::mem::take(&mut read)));
                }
                out.push(Piece::Event(letter));
            }
            None => {}
        }
    }
    if !read.is_empty() {
        out.push(Piece::Read(read));
    }
    out
}

/// A fixed-size head of knobs, read from the start of the input; what the
/// input lacks reads as zero.
pub struct Knobs<'a> {
    bytes: &'a [u8],
}

impl<'a> Knobs<'a> {
    /// The first `n` bytes of `data` are knobs; the rest is returned too.
    pub fn split(data: &'a [u8], n: usize) -> (Knobs<'a>, &'a [u8]) {
        let n = n.min(data.len());
        (Knobs { bytes: &data[..n] }, &data[n..])
    }

    /// Knob byte `i`.
    pub fn byte(&self, i: usize) -> u8 {
        self.bytes.get(i).copied().unwrap_or(0)
    }

    /// Bit `bit` of knob byte `i`.
    pub fn bit(&self, i: usize, bit: u8) -> bool {
        self.byte(i) & (1 << bit) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_cut_reads() {
        assert_eq!(
            pieces(b"EHLO x\r\n\xfetQUIT\xfe\xfe\r\n\xfe"),
            vec![
                Piece::Read(b"EHLO x\r\n".to_vec()),
                Piece::Event(b't'),
                Piece::Read(b"QUIT\xfe\r\n".to_vec()),
            ]
        );
    }
}
