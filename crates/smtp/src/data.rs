//! The DATA phase: where a message ends, dot-unstuffing, and what is wrong
//! with its line ends.
//!
//! The end-of-data rule, in full: the message ends at a line that holds a
//! single `.`, where a line ends only at CR LF. Hence `CR LF . CR LF` (or
//! `. CR LF` as the very first line) ends it, and nothing else does:
//! `LF . LF`, `LF . CR LF`, `CR LF . LF`, `CR . CR`, `CR LF . CR CR LF` are all
//! message text. A bare LF, a bare CR or a NUL anywhere in the message is
//! noted, and the session refuses the message once it has ended, so that the
//! text a smuggler hid after a bogus terminator never reaches the queue nor
//! runs as commands (SMTP smuggling, CVE-2023-51764/51765/51766). A line
//! whose first character is `.` loses that dot (RFC 5321 §4.5.2).
//!
//! The receiver streams: it is fed whatever arrived and writes the
//! unstuffed text to a caller's buffer, keeping only a few bits of state
//! across calls, so chunk boundaries can fall anywhere.

use memchr::memchr2;

/// Where the scanner stands between two bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Position {
    /// At the start of a line.
    LineStart,
    /// After a `.` at the start of a line.
    Dot,
    /// After `.` CR at the start of a line.
    DotCr,
    /// Inside a line.
    Mid,
    /// After a CR inside a line.
    Cr,
}

/// What was found in a finished message.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DataSummary {
    /// Octets of the message after unstuffing (what SIZE counts).
    pub size: u64,
    /// The message was larger than the limit; the excess was not passed on.
    pub oversize: bool,
    /// A LF not preceded by CR.
    pub bare_lf: bool,
    /// A CR not followed by LF.
    pub bare_cr: bool,
    /// A NUL byte.
    pub nul: bool,
}

/// Streams one message from the DATA phase.
#[derive(Debug)]
pub struct DataReceiver {
    position: Position,
    max_size: u64,
    summary: DataSummary,
}

/// Result of one [`DataReceiver::feed`] call.
#[derive(Debug, PartialEq, Eq)]
pub struct Fed {
    /// Input bytes consumed; the rest belongs to the commands after the message.
    pub consumed: usize,
    /// The end-of-data line was seen.
    pub done: bool,
}

impl DataReceiver {
    /// A receiver for a message of at most `max_size` octets (0: no limit).
    pub fn new(max_size: u64) -> Self {
        Self {
            position: Position::LineStart,
            max_size,
            summary: DataSummary::default(),
        }
    }

    /// What has been seen so far.
    pub fn summary(&self) -> DataSummary {
        self.summary
    }

    /// Scans `input`, appending message text to `out`, and stops right
    /// after the end-of-data line if it is in `input`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Fed {
        let mut i = 0;
        while i < input.len() {
            if self.position == Position::Mid {
                // Fast path: copy plain text up to the next CR or LF at once.
                let run = memchr2(b'\r', b'\n', &input[i..]).unwrap_or(input.len() - i);
                self.emit(&input[i..i + run], out);
                i += run;
                if i == input.len() {
                    break;
                }
            }
            let b = input[i];
            i += 1;
            if self.step(b, out) {
                return Fed {
                    consumed: i,
                    done: true,
                };
            }
        }
        Fed {
            consumed: input.len(),
            done: false,
        }
    }

    /// Handles one byte; true when it completed the end-of-data line.
    fn step(&mut self, b: u8, out: &mut Vec<u8>) -> bool {
        use Position::*;
        match (self.position, b) {
            (LineStart, b'.') => self.position = Dot,
            (DotCr, b'\n') => return true,
            (DotCr, _) => {
                // ".\r" then something other than LF: the dot was stuffing,
                // the CR is bare, and the byte is ordinary line content.
                self.summary.bare_cr = true;
                self.emit(b"\r", out);
                self.position = Mid;
                return self.step(b, out);
            }
            (Dot, b'\r') => self.position = DotCr,
            (Dot, _) => {
                // A stuffed dot: drop it and take the byte as line content.
                self.position = Mid;
                return self.step(b, out);
            }
            (Cr, b'\n') => {
                self.emit(b"\r\n", out);
                self.position = LineStart;
            }
            (Cr, _) => {
                self.summary.bare_cr = true;
                self.emit(b"\r", out);
                self.position = Mid;
                return self.step(b, out);
            }
            (LineStart | Mid, b'\r') => self.position = Cr,
            (LineStart | Mid, _) => {
                if b == b'\n' {
                    self.summary.bare_lf = true;
                }
                self.emit(&[b], out);
                self.position = Mid;
            }
        }
        false
    }

    fn emit(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        if bytes.is_empty() {
            return;
        }
        if memchr::memchr(0, bytes).is_some() {
            self.summary.nul = true;
        }
        let before = self.summary.size;
        self.summary.size = before.saturating_add(bytes.len() as u64);
        if self.max_size == 0 || self.summary.size <= self.max_size {
            out.extend_from_slice(bytes);
        } else {
            // Keep scanning for the end, but pass nothing more on.
            if before < self.max_size {
                let room = (self.max_size - before) as usize;
                out.extend_from_slice(&bytes[..room]);
            }
            self.summary.oversize = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds everything at once; returns (message, consumed, done, summary).
    fn run(input: &[u8]) -> (Vec<u8>, usize, bool, DataSummary) {
        let mut rx = DataReceiver::new(0);
        let mut out = Vec::new();
        let fed = rx.feed(input, &mut out);
        (out, fed.consumed, fed.done, rx.summary())
    }

    #[test]
    fn ends_only_at_crlf_dot_crlf() {
        let (msg, consumed, done, s) = run(b"Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n");
        assert!(done);
        assert_eq!(msg, b"Subject: x\r\n\r\nbody\r\n");
        assert_eq!(consumed, 23);
        assert_eq!(
            s,
            DataSummary {
                size: 20,
                ..DataSummary::default()
            }
        );
    }

    #[test]
    fn empty_message() {
        let (msg, consumed, done, _) = run(b".\r\n");
        assert!(done);
        assert!(msg.is_empty());
        assert_eq!(consumed, 3);
    }

    #[test]
    fn dots_are_unstuffed() {
        let (msg, _, done, _) = run(b"..leading\r\n...\r\n. \r\n.\r\n");
        assert!(done);
        assert_eq!(msg, b".leading\r\n..\r\n \r\n");
    }

    #[test]
    fn smuggling_variants_do_not_end_data() {
        for variant in [
            &b"a\n.\nMAIL FROM:<x@y>\r\n"[..],
            b"a\n.\r\nMAIL FROM:<x@y>\r\n",
            b"a\r\n.\nMAIL FROM:<x@y>\r\n",
            b"a\r.\rMAIL FROM:<x@y>\r\n",
            b"a\r\n.\r\r\nMAIL FROM:<x@y>\r\n",
        ] {
            let (_, consumed, done, s) = run(variant);
            assert!(!done, "{variant:?} ended the message");
            assert_eq!(consumed, variant.len());
            assert!(s.bare_lf || s.bare_cr, "{variant:?} not flagged");
        }
    }

    #[test]
    fn flags_bare_lf_cr_and_nul() {
        assert!(run(b"a\nb\r\n.\r\n").3.bare_lf);
        assert!(run(b"a\rb\r\n.\r\n").3.bare_cr);
        assert!(run(b"a\r\r\n.\r\n").3.bare_cr);
        assert!(run(b"a\0b\r\n.\r\n").3.nul);
        let clean = run(b"a\r\nb\r\n.\r\n").3;
        assert!(!clean.bare_lf && !clean.bare_cr && !clean.nul);
    }

    #[test]
    fn every_split_point_gives_the_same_result() {
        let input = b"x\r\n..y\r\n.\rz\r\n\r\n.\r\nNEXT";
        let whole = run(input);
        for cut in 0..=input.len() {
            let mut rx = DataReceiver::new(0);
            let mut out = Vec::new();
            let first = rx.feed(&input[..cut], &mut out);
            let (consumed, done) = if first.done {
                (first.consumed, true)
            } else {
                let second = rx.feed(&input[cut..], &mut out);
                (cut + second.consumed, second.done)
            };
            assert_eq!((out, consumed, done, rx.summary()), whole, "cut at {cut}");
        }
    }

    #[test]
    fn oversize_is_counted_but_not_passed_on() {
        let mut rx = DataReceiver::new(5);
        let mut out = Vec::new();
        let fed = rx.feed(b"abc\r\ndefgh\r\n.\r\n", &mut out);
        assert!(fed.done);
        assert_eq!(out, b"abc\r\n");
        assert!(rx.summary().oversize);
        assert_eq!(rx.summary().size, 12);
    }
}
