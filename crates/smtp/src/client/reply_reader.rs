//! Incremental parser of server replies: bytes in, [`ServerReply`] values out.
//!
//! Owns: framing reply lines, joining the lines of a multi-line reply, checking
//! the three-digit code and extracting the enhanced status code (RFC 2034).
//! Does not own: what a reply means for the session (that is `session.rs`).
//!
//! Security posture: every byte comes from a peer we do not trust. OpenSMTPD's
//! CVE-2020-8794 was an out-of-bounds read in exactly this job, so the parser is
//! bounded ([`MAX_LINES`] lines per reply, [`MAX_LINE_LEN`] bytes per line) and
//! every violation is a [`ReplyError`], never a panic. Once an error is returned
//! the reader is poisoned and keeps returning it: after a framing error nothing
//! later on the connection can be trusted.
//!
//! Line endings: CRLF is what RFC 5321 requires, but a bare LF is also accepted
//! as the end of a reply line. This is the receiving side of replies, a reply is
//! never relayed as a line to anyone else, and Postfix's and sendmail's clients
//! are equally lenient here. A CR that is not directly before the LF (including
//! `CR CR LF`) and NUL are refused: no server needs them, and refusing them means
//! reply text can never carry a line break into a log, a DSN or a control file.

use crate::reply::EnhancedCode;
use std::fmt;

/// Most lines accepted in one reply (sendmail's EHLO reply has about 15).
pub const MAX_LINES: usize = 100;
/// Most bytes accepted in one reply line, code included, line end excluded
/// (sendmail's MAXLINE).
pub const MAX_LINE_LEN: usize = 2048;
/// Most bytes one complete reply can take on the wire.
pub const MAX_REPLY_BYTES: usize = MAX_LINES * (MAX_LINE_LEN + 2);

/// Why a reply could not be parsed. Always the server's fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    /// A line longer than [`MAX_LINE_LEN`].
    #[error("reply line longer than {MAX_LINE_LEN} bytes")]
    LineTooLong,
    /// A reply with more than [`MAX_LINES`] lines.
    #[error("reply with more than {MAX_LINES} lines")]
    TooManyLines,
    /// A line that does not start with three digits and ` `, `-` or the line end.
    #[error("malformed reply line")]
    Malformed,
    /// A code outside 200–599.
    #[error("reply code {0} out of range")]
    CodeOutOfRange(u16),
    /// The lines of one multi-line reply carry different codes.
    #[error("multi-line reply mixes codes {first} and {then}")]
    MixedCodes {
        /// The code of the first line.
        first: u16,
        /// The first different code.
        then: u16,
    },
    /// NUL, or a CR that does not end the line.
    #[error("reply line contains NUL or a bare CR")]
    ForbiddenByte,
}

/// One complete reply from the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerReply {
    /// The three-digit code, 200–599.
    pub code: u16,
    /// The enhanced status code at the start of the first line, if there is
    /// one whose class matches the code's first digit (RFC 3463 §2).
    pub enhanced: Option<EnhancedCode>,
    /// The text of each line after the code and separator, as received
    /// (enhanced code included); invalid UTF-8 is replaced.
    pub lines: Vec<String>,
}

impl ServerReply {
    /// A reply the client makes up itself (connection lost, protocol error).
    /// `text` should not contain line breaks; they are replaced by spaces.
    pub fn synthetic(code: u16, enhanced: EnhancedCode, text: &str) -> Self {
        let text = text.replace(['\r', '\n'], " ");
        Self {
            code,
            enhanced: Some(enhanced),
            lines: vec![format!("{enhanced} {text}")],
        }
    }

    /// The lines joined by one space, with a leading enhanced code stripped
    /// from each. A space, not a newline: the text goes into logs and
    /// line-oriented queue files.
    pub fn text(&self) -> String {
        let class = self.code / 100;
        let parts: Vec<&str> = self
            .lines
            .iter()
            .map(|line| match split_enhanced(line, class) {
                Some((_, rest)) => rest,
                None => line.as_str(),
            })
            .collect();
        parts.join(" ")
    }

    /// 2xx.
    pub fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// 4xx.
    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }

    /// 5xx.
    pub fn is_permanent(&self) -> bool {
        (500..600).contains(&self.code)
    }

    /// 4xx or 5xx.
    pub fn is_failure(&self) -> bool {
        self.is_transient() || self.is_permanent()
    }

    /// The reply as wire lines without line ends (`250-a`, `250 b`), for a
    /// transcript.
    pub fn wire_lines(&self) -> Vec<String> {
        let last = self.lines.len().saturating_sub(1);
        self.lines
            .iter()
            .enumerate()
            .map(|(i, text)| {
                let sep = if i == last { ' ' } else { '-' };
                format!("{}{sep}{text}", self.code)
            })
            .collect()
    }
}

/// `"5.7.1 text"` → the code and `"text"`, if the class matches.
fn split_enhanced(line: &str, class: u16) -> Option<(EnhancedCode, &str)> {
    let (head, rest) = match line.find(' ') {
        Some(i) => (&line[..i], &line[i + 1..]),
        None => (line, ""),
    };
    let code = EnhancedCode::parse(head)?;
    (u16::from(code.class) == class).then_some((code, rest))
}

/// Turns bytes into replies; feed with [`ReplyReader::feed`], drain with
/// [`ReplyReader::next_reply`].
#[derive(Default)]
pub struct ReplyReader {
    buf: Vec<u8>,
    /// Start of the unparsed bytes in `buf`.
    pos: usize,
    /// Code and lines of a multi-line reply seen so far.
    partial: Option<(u16, Vec<String>)>,
    failed: Option<ReplyError>,
}

impl fmt::Debug for ReplyReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplyReader")
            .field("buffered", &self.buffered_len())
            .field("failed", &self.failed)
            .finish()
    }
}

impl ReplyReader {
    /// An empty reader.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes received from the server.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.pos > 0 && self.pos * 2 >= self.buf.len() {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received but not yet returned as part of a complete reply
    /// (unparsed bytes, or lines of an unfinished multi-line reply).
    pub fn has_buffered(&self) -> bool {
        self.buffered_len() > 0 || self.partial.is_some()
    }

    /// Number of unparsed bytes.
    pub fn buffered_len(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The next complete reply, `Ok(None)` if more bytes are needed.
    pub fn next_reply(&mut self) -> Result<Option<ServerReply>, ReplyError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        match self.parse() {
            Err(e) => {
                self.failed = Some(e.clone());
                Err(e)
            }
            ok => ok,
        }
    }

    fn parse(&mut self) -> Result<Option<ServerReply>, ReplyError> {
        loop {
            let rest = &self.buf[self.pos..];
            let Some(nl) = memchr::memchr(b'\n', rest) else {
                // A full line plus the CR of its CRLF is still legal.
                let legal = rest.len() <= MAX_LINE_LEN
                    || (rest.len() == MAX_LINE_LEN + 1 && rest.last() == Some(&b'\r'));
                if !legal {
                    return Err(ReplyError::LineTooLong);
                }
                return Ok(None);
            };
            let mut line = &rest[..nl];
            self.pos += nl + 1;
            if let Some(stripped) = line.strip_suffix(b"\r") {
                line = stripped;
            }
            if line.len() > MAX_LINE_LEN {
                return Err(ReplyError::LineTooLong);
            }
            let (code, last, text) = parse_line(line)?;
            let (first, mut lines) = self.partial.take().unwrap_or((code, Vec::new()));
            if code != first {
                return Err(ReplyError::MixedCodes { first, then: code });
            }
            if lines.len() == MAX_LINES {
                return Err(ReplyError::TooManyLines);
            }
            lines.push(text);
            if !last {
                self.partial = Some((code, lines));
                continue;
            }
            let enhanced = split_enhanced(&lines[0], code / 100).map(|(e, _)| e);
            return Ok(Some(ServerReply {
                code,
                enhanced,
                lines,
            }));
        }
    }
}

/// One line without its line end → (code, is last line, text).
fn parse_line(line: &[u8]) -> Result<(u16, bool, String), ReplyError> {
    if line.len() < 3 || !line[..3].iter().all(u8::is_ascii_digit) {
        return Err(ReplyError::Malformed);
    }
    let code = line[..3]
        .iter()
        .fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    if !(200..=599).contains(&code) {
        return Err(ReplyError::CodeOutOfRange(code));
    }
    let last = match line.get(3) {
        None | Some(b' ') => true,
        Some(b'-') => false,
        Some(_) => return Err(ReplyError::Malformed),
    };
    let text = line.get(4..).unwrap_or_default();
    if text.iter().any(|&b| b == 0 || b == b'\r') {
        return Err(ReplyError::ForbiddenByte);
    }
    Ok((code, last, String::from_utf8_lossy(text).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(input: &[u8]) -> Result<Vec<ServerReply>, ReplyError> {
        let mut r = ReplyReader::new();
        r.feed(input);
        let mut out = Vec::new();
        while let Some(reply) = r.next_reply()? {
            out.push(reply);
        }
        Ok(out)
    }

    #[test]
    fn single_line_with_enhanced_code() {
        let r = all(b"550 5.1.1 <x@y>... User unknown\r\n").unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].code, 550);
        assert_eq!(r[0].enhanced, Some(EnhancedCode::new(5, 1, 1)));
        assert_eq!(r[0].text(), "<x@y>... User unknown");
    }

    #[test]
    fn multi_line_and_bare_code_last_line() {
        let r = all(b"250-mx.example Hello\r\n250-8BITMIME\r\n250\r\n").unwrap();
        assert_eq!(r[0].lines, ["mx.example Hello", "8BITMIME", ""]);
        assert_eq!(r[0].enhanced, None);
        assert_eq!(r[0].wire_lines()[2], "250 ");
    }

    #[test]
    fn enhanced_code_of_other_class_is_text() {
        let r = all(b"250 5.1.1 odd\r\n").unwrap();
        assert_eq!(r[0].enhanced, None);
        assert_eq!(r[0].text(), "5.1.1 odd");
    }

    #[test]
    fn bare_lf_is_accepted_but_bare_cr_is_not() {
        assert_eq!(all(b"220 hi\n").unwrap()[0].lines, ["hi"]);
        assert_eq!(all(b"220 a\rb\r\n"), Err(ReplyError::ForbiddenByte));
        assert_eq!(all(b"220 a\r\r\n"), Err(ReplyError::ForbiddenByte));
        assert_eq!(all(b"220 a\0\r\n"), Err(ReplyError::ForbiddenByte));
    }

    #[test]
    fn partial_input_waits() {
        let mut r = ReplyReader::new();
        r.feed(b"250-a\r\n25");
        assert_eq!(r.next_reply(), Ok(None));
        assert!(r.has_buffered());
        r.feed(b"0 b\r");
        assert_eq!(r.next_reply(), Ok(None));
        r.feed(b"\n");
        assert_eq!(r.next_reply().unwrap().unwrap().lines, ["a", "b"]);
        assert!(!r.has_buffered());
    }

    #[test]
    fn malformed_lines() {
        for bad in [
            &b"25\r\n"[..],
            b"abc hi\r\n",
            b"250x\r\n",
            b"\r\n",
            b"2500 x\r\n",
        ] {
            assert_eq!(all(bad), Err(ReplyError::Malformed), "{bad:?}");
        }
        assert_eq!(all(b"199 x\r\n"), Err(ReplyError::CodeOutOfRange(199)));
        assert_eq!(all(b"600 x\r\n"), Err(ReplyError::CodeOutOfRange(600)));
        assert_eq!(
            all(b"250-a\r\n251 b\r\n"),
            Err(ReplyError::MixedCodes {
                first: 250,
                then: 251
            })
        );
    }

    #[test]
    fn limits() {
        let mut ok = b"250 ".to_vec();
        ok.resize(MAX_LINE_LEN, b'x');
        ok.extend_from_slice(b"\r\n");
        assert!(all(&ok).is_ok());
        let mut long = b"250 ".to_vec();
        long.resize(MAX_LINE_LEN + 1, b'x');
        assert_eq!(all(&long), Err(ReplyError::LineTooLong), "before the LF");
        long.extend_from_slice(b"\r\n");
        assert_eq!(all(&long), Err(ReplyError::LineTooLong));

        let hundred = "250-x\r\n".repeat(MAX_LINES - 1) + "250 x\r\n";
        assert_eq!(all(hundred.as_bytes()).unwrap()[0].lines.len(), MAX_LINES);
        let more = "250-x\r\n".repeat(MAX_LINES) + "250 x\r\n";
        assert_eq!(all(more.as_bytes()), Err(ReplyError::TooManyLines));
    }

    #[test]
    fn poisoned_after_error() {
        let mut r = ReplyReader::new();
        r.feed(b"xyz\r\n250 ok\r\n");
        assert!(r.next_reply().is_err());
        assert!(r.next_reply().is_err());
    }

    #[test]
    fn synthetic_reply_text() {
        let r = ServerReply::synthetic(421, EnhancedCode::new(4, 4, 2), "Connection\r\nlost");
        assert_eq!(r.lines, ["4.4.2 Connection  lost"]);
        assert_eq!(r.text(), "Connection  lost");
    }
}
