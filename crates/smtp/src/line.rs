//! The input buffer of a server session and its one line rule: a command
//! line ends at CR LF and nowhere else.
//!
//! A bare LF or a bare CR inside a line is kept in the line and reported,
//! never taken as a line end: that difference between two MTAs is what SMTP
//! smuggling (CVE-2023-51764 family) exploits.

use memchr::memmem;

/// What the next line of input is.
#[derive(Debug, PartialEq, Eq)]
pub enum NextLine {
    /// A complete line, CRLF removed.
    Line(Line),
    /// No CRLF yet; wait for more input.
    Incomplete,
    /// No CRLF within `MAX_BUFFERED_LINE` bytes: not SMTP.
    TooLong,
}

/// One command line.
#[derive(Debug, PartialEq, Eq)]
pub struct Line {
    /// The bytes before the CRLF.
    pub bytes: Vec<u8>,
    /// Length on the wire, CRLF included.
    pub wire_len: usize,
}

impl Line {
    /// A bare LF somewhere in the line.
    pub fn has_bare_lf(&self) -> bool {
        self.bytes.contains(&b'\n')
    }

    /// A bare CR somewhere in the line.
    pub fn has_bare_cr(&self) -> bool {
        self.bytes.contains(&b'\r')
    }
}

/// Bytes received and not yet consumed.
#[derive(Debug, Default)]
pub struct InputBuffer {
    bytes: Vec<u8>,
    start: usize,
}

impl InputBuffer {
    /// Appends received bytes.
    pub fn extend(&mut self, data: &[u8]) {
        if self.start > 0 && self.start == self.bytes.len() {
            self.bytes.clear();
            self.start = 0;
        }
        self.bytes.extend_from_slice(data);
    }

    /// The unconsumed bytes.
    pub fn pending(&self) -> &[u8] {
        &self.bytes[self.start..]
    }

    /// True when nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.start == self.bytes.len()
    }

    /// Marks `n` bytes as consumed, and reclaims space once half the
    /// buffer is consumed so that a long session does not grow it.
    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.bytes.len());
        if self.start == self.bytes.len() {
            self.bytes.clear();
            self.start = 0;
        } else if self.start > 4096 && self.start * 2 > self.bytes.len() {
            self.bytes.drain(..self.start);
            self.start = 0;
        }
    }

    /// Drops everything buffered and says how much that was.
    pub fn discard(&mut self) -> usize {
        let n = self.bytes.len() - self.start;
        self.bytes.clear();
        self.start = 0;
        n
    }

    /// Takes the next CRLF-terminated line, refusing to wait for one past
    /// `max_buffered` bytes.
    pub fn next_line(&mut self, max_buffered: usize) -> NextLine {
        let pending = self.pending();
        match memmem::find(pending, b"\r\n") {
            Some(end) => {
                let line = Line {
                    bytes: pending[..end].to_vec(),
                    wire_len: end + 2,
                };
                self.consume(end + 2);
                NextLine::Line(line)
            }
            None if pending.len() >= max_buffered => NextLine::TooLong,
            None => NextLine::Incomplete,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8]) -> Vec<Vec<u8>> {
        let mut buf = InputBuffer::default();
        buf.extend(input);
        let mut out = Vec::new();
        while let NextLine::Line(l) = buf.next_line(2048) {
            out.push(l.bytes);
        }
        out
    }

    #[test]
    fn only_crlf_ends_a_line() {
        assert_eq!(
            lines(b"NOOP\r\nQUIT\r\n"),
            vec![b"NOOP".to_vec(), b"QUIT".to_vec()]
        );
        assert_eq!(lines(b"NOOP\nQUIT\r\n"), vec![b"NOOP\nQUIT".to_vec()]);
        assert_eq!(lines(b"NOOP\rQUIT\r\n"), vec![b"NOOP\rQUIT".to_vec()]);
        assert_eq!(lines(b"NOOP\r\r\n"), vec![b"NOOP\r".to_vec()]);
        assert!(lines(b"NOOP\n").is_empty());
    }

    #[test]
    fn overlong_input_is_detected() {
        let mut buf = InputBuffer::default();
        buf.extend(&[b'a'; 100]);
        assert_eq!(buf.next_line(100), NextLine::TooLong);
        assert_eq!(buf.next_line(101), NextLine::Incomplete);
    }

    #[test]
    fn consumption_reclaims_space() {
        let mut buf = InputBuffer::default();
        for _ in 0..10_000 {
            buf.extend(b"NOOP\r\nNO");
            assert!(matches!(buf.next_line(2048), NextLine::Line(_)));
            buf.extend(b"OP\r\n");
            assert!(matches!(buf.next_line(2048), NextLine::Line(_)));
        }
        assert!(buf.bytes.capacity() < 65536);
    }
}
