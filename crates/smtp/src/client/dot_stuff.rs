//! The streaming DATA body encoder: message bytes in, wire bytes out.
//!
//! Owns: line-end canonicalisation, dot-stuffing and the end-of-data marker
//! for an outbound DATA body. Does not own: reading the message, headers,
//! 8-bit conversion, or deciding when the body may be sent (`session.rs`).
//!
//! The rule (RFC 5321 §4.5.2; REFERENCE §4.2, SMTP smuggling):
//! - The output contains no bare CR and no bare LF, ever. CRLF stays CRLF; a
//!   bare LF becomes CRLF; a bare CR (one not directly followed by LF) becomes
//!   CRLF. So `CR CR LF` becomes two line ends, and none of the smuggling
//!   variants (`LF . LF`, `CR . CR`, `CR LF . CR CR LF` …) can reach the
//!   receiver as anything but ordinary lines.
//! - A `.` at the start of a line (the first byte of the body, or the byte
//!   after a line end as canonicalised above) is sent as `..`.
//! - A line longer than [`LINE_LIMIT`] octets (RFC 5321 §4.5.3.1.6: 998
//!   before the CRLF) is broken, as Postfix's `smtp_line_length_limit`
//!   does: CRLF and a space go in after the 998th octet, so a broken header
//!   line is a folded one and a MIME part is least damaged. The count is of
//!   the message's octets, before dot-stuffing (which the receiver undoes).
//!   A line within the limit is never changed.
//! - [`DotStuffer::finish`] writes `.` CRLF, preceded by CRLF when the body
//!   did not end with a line end, so the last line is never merged with the
//!   dot. An empty body is sent as just `.` CRLF.
//!
//! Input may be split anywhere, including between a CR and its LF and right
//! before a leading dot: the encoder remembers the two facts that matter
//! across a boundary (a CR is pending; how long the line is so far).

/// The longest line sent, CRLF not counted (RFC 5321 §4.5.3.1.6).
pub const LINE_LIMIT: usize = 998;

/// Encodes a DATA body; one per message.
#[derive(Clone, Debug)]
pub struct DotStuffer {
    /// Octets of the current line so far; 0 at the start of a line.
    line_len: usize,
    /// The last byte seen was a CR whose fate depends on the next byte.
    pending_cr: bool,
}

impl Default for DotStuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl DotStuffer {
    /// An encoder at the start of the body.
    pub fn new() -> Self {
        Self {
            line_len: 0,
            pending_cr: false,
        }
    }

    /// Encodes the next chunk of the message, appending wire bytes to `out`.
    pub fn encode(&mut self, input: &[u8], out: &mut Vec<u8>) {
        out.reserve(input.len() + input.len() / 64 + 2);
        let mut i = 0;
        while i < input.len() {
            if self.pending_cr {
                // CRLF, or a bare CR: either way one line end goes out.
                self.pending_cr = false;
                self.line_end(out);
                if input[i] == b'\n' {
                    i += 1;
                    continue;
                }
            }
            match input[i] {
                b'\r' => {
                    self.pending_cr = true;
                    i += 1;
                }
                b'\n' => {
                    self.line_end(out);
                    i += 1;
                }
                first => {
                    if self.line_len == 0 && first == b'.' {
                        out.push(b'.');
                    }
                    if self.line_len == LINE_LIMIT {
                        // The continuation starts with a space: never a dot.
                        out.extend_from_slice(b"\r\n ");
                        self.line_len = 1;
                    }
                    let end =
                        memchr::memchr2(b'\r', b'\n', &input[i..]).map_or(input.len(), |n| i + n);
                    let end = end.min(i + (LINE_LIMIT - self.line_len));
                    out.extend_from_slice(&input[i..end]);
                    self.line_len += end - i;
                    i = end;
                }
            }
        }
    }

    /// Ends the body: a line end if one is missing, then `.` CRLF.
    pub fn finish(mut self, out: &mut Vec<u8>) {
        if self.pending_cr || self.line_len > 0 {
            self.line_end(out);
        }
        out.extend_from_slice(b".\r\n");
    }

    /// Encodes a whole body at once, terminator included.
    pub fn encode_all(body: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(body.len() + 5);
        let mut stuffer = Self::new();
        stuffer.encode(body, &mut out);
        stuffer.finish(&mut out);
        out
    }

    fn line_end(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"\r\n");
        self.line_len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(body: &[u8]) -> Vec<u8> {
        DotStuffer::encode_all(body)
    }

    #[test]
    fn leading_dots_are_doubled() {
        assert_eq!(enc(b".\r\n"), b"..\r\n.\r\n");
        assert_eq!(enc(b"a\r\n.b\r\n..c\r\n"), b"a\r\n..b\r\n...c\r\n.\r\n");
        assert_eq!(enc(b"a.b\r\n"), b"a.b\r\n.\r\n");
    }

    #[test]
    fn line_ends_are_canonical() {
        assert_eq!(enc(b"a\nb\rc\r\n"), b"a\r\nb\r\nc\r\n.\r\n");
        assert_eq!(enc(b"a\r\r\n"), b"a\r\n\r\n.\r\n");
        assert_eq!(enc(b"a\n.\nb"), b"a\r\n..\r\nb\r\n.\r\n");
        assert_eq!(enc(b"a\r.\rb\r"), b"a\r\n..\r\nb\r\n.\r\n");
    }

    #[test]
    fn long_lines_are_broken_after_998_octets_with_crlf_space() {
        let line = |n: usize| vec![b'x'; n];
        let exactly = [line(998), b"\r\n".to_vec()].concat();
        assert_eq!(enc(&exactly), [exactly.clone(), b".\r\n".to_vec()].concat());
        let long = [line(2500), b"\r\n".to_vec()].concat();
        let want = [
            line(998),
            b"\r\n ".to_vec(),
            line(997),
            b"\r\n ".to_vec(),
            line(505),
            b"\r\n.\r\n".to_vec(),
        ]
        .concat();
        assert_eq!(enc(&long), want);
        // A leading dot is doubled on the wire but counts once.
        let dotted = [b".".to_vec(), line(998)].concat();
        assert_eq!(
            enc(&dotted),
            [b"..".to_vec(), line(997), b"\r\n x\r\n.\r\n".to_vec()].concat()
        );
    }

    #[test]
    fn a_long_line_split_across_chunks_breaks_at_the_same_place() {
        let message = [vec![b'y'; 3000], b"\r\nshort\r\n".to_vec()].concat();
        let whole = enc(&message);
        for size in [1, 7, 997, 998, 999, 1000, 4096] {
            let mut out = Vec::new();
            let mut stuffer = DotStuffer::new();
            for chunk in message.chunks(size) {
                stuffer.encode(chunk, &mut out);
            }
            stuffer.finish(&mut out);
            assert_eq!(out, whole, "chunks of {size}");
        }
    }

    #[test]
    fn end_of_body() {
        assert_eq!(enc(b""), b".\r\n");
        assert_eq!(enc(b"no newline"), b"no newline\r\n.\r\n");
        assert_eq!(enc(b"x\r"), b"x\r\n.\r\n");
        assert_eq!(enc(b"\r\n"), b"\r\n.\r\n");
    }
}
