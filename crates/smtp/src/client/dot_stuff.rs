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
//! - [`DotStuffer::finish`] writes `.` CRLF, preceded by CRLF when the body
//!   did not end with a line end, so the last line is never merged with the
//!   dot. An empty body is sent as just `.` CRLF.
//!
//! Input may be split anywhere, including between a CR and its LF and right
//! before a leading dot: the encoder remembers the two facts that matter
//! across a boundary (a CR is pending; we are at the start of a line).

/// Encodes a DATA body; one per message.
#[derive(Clone, Debug)]
pub struct DotStuffer {
    /// The next byte starts a line.
    at_line_start: bool,
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
            at_line_start: true,
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
                    if self.at_line_start && first == b'.' {
                        out.push(b'.');
                    }
                    self.at_line_start = false;
                    let end =
                        memchr::memchr2(b'\r', b'\n', &input[i..]).map_or(input.len(), |n| i + n);
                    out.extend_from_slice(&input[i..end]);
                    i = end;
                }
            }
        }
    }

    /// Ends the body: a line end if one is missing, then `.` CRLF.
    pub fn finish(mut self, out: &mut Vec<u8>) {
        if self.pending_cr || !self.at_line_start {
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
        self.at_line_start = true;
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
    fn end_of_body() {
        assert_eq!(enc(b""), b".\r\n");
        assert_eq!(enc(b"no newline"), b"no newline\r\n.\r\n");
        assert_eq!(enc(b"x\r"), b"x\r\n.\r\n");
        assert_eq!(enc(b"\r\n"), b"\r\n.\r\n");
    }
}
