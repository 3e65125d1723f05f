//! Finding the end of a received message's header section while it
//! streams in, so the front can add the `Date:` and `Message-Id:` a
//! message lacks before the section goes into the spool.
//!
//! The rule is sendmail's (`collect()`) and the one local submission uses
//! (`postern_cli::prepare`): the header section is the run of header
//! fields from the first line; it ends at a blank line, or at the first
//! line that is neither a field (`name:`) nor the continuation of one
//! (starting with a space or a tab). Such a line starts the body, and a
//! blank line is put before it so that what follows the added headers
//! stays the body.
//!
//! Only complete lines (ending in LF) are judged; the session hands over
//! lines with CRLF, in pieces of any size. Memory is bounded by the caller
//! ([`HeaderScan::len`]).

/// Where the header section ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SectionEnd {
    /// Offset of the first byte after the section's last field line.
    pub at: usize,
    /// True when a blank line ends it; false when a line that is not a
    /// header does (that line is the body's first).
    pub blank_line: bool,
}

/// The header section as it arrives.
#[derive(Debug, Default)]
pub struct HeaderScan {
    buf: Vec<u8>,
    /// Lines before this offset are known field lines.
    judged: usize,
}

impl HeaderScan {
    /// Adds bytes; returns where the section ends once a line shows it.
    pub fn push(&mut self, bytes: &[u8]) -> Option<SectionEnd> {
        self.buf.extend_from_slice(bytes);
        while let Some(n) = memchr::memchr(b'\n', &self.buf[self.judged..]) {
            let line = &self.buf[self.judged..self.judged + n + 1];
            let content = line
                .strip_suffix(b"\n")
                .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
                .unwrap_or(line);
            let is_field = if content.is_empty() {
                false
            } else if content[0] == b' ' || content[0] == b'\t' {
                // A continuation belongs to a field before it.
                self.judged > 0
            } else {
                is_field_line(content)
            };
            if !is_field {
                return Some(SectionEnd {
                    at: self.judged,
                    blank_line: content.is_empty(),
                });
            }
            self.judged += n + 1;
        }
        None
    }

    /// Bytes held.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Everything held, to be written out.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// True when a field named `name` (any case) is among the field lines
    /// judged so far.
    pub fn has_field(&self, name: &str) -> bool {
        self.buf[..self.judged]
            .split(|&b| b == b'\n')
            .filter_map(field_name)
            .any(|found| found.eq_ignore_ascii_case(name.as_bytes()))
    }
}

/// `name:` with a name of printable ASCII other than `:` (RFC 5322 §3.6.8
/// `ftext`); obsolete whitespace before the colon is allowed, as sendmail
/// and RFC 5322 §4.5 allow it.
fn is_field_line(line: &[u8]) -> bool {
    field_name(line).is_some()
}

fn field_name(line: &[u8]) -> Option<&[u8]> {
    let colon = memchr::memchr(b':', line)?;
    let name = line[..colon].trim_ascii_end();
    let printable = |b: &u8| (33..=126).contains(b);
    (!name.is_empty() && name.iter().all(printable)).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn end_of(text: &[u8]) -> Option<SectionEnd> {
        HeaderScan::default().push(text)
    }

    #[test]
    fn a_blank_line_ends_the_section() {
        let text = b"From: a@b\r\nSubject: x\r\n\tfolded\r\n\r\nbody\r\n";
        assert_eq!(
            end_of(text),
            Some(SectionEnd {
                at: 32,
                blank_line: true
            })
        );
        assert_eq!(&text[32..34], b"\r\n");
    }

    #[test]
    fn a_line_that_is_not_a_header_starts_the_body() {
        let text = b"Subject: x\r\nnot a header line\r\n";
        assert_eq!(
            end_of(text),
            Some(SectionEnd {
                at: 12,
                blank_line: false
            })
        );
        // No header at all; a continuation with nothing to continue.
        assert_eq!(end_of(b"hello\r\n").map(|e| e.at), Some(0));
        assert_eq!(end_of(b" indented\r\n").map(|e| e.at), Some(0));
        assert_eq!(end_of(b": no name\r\n").map(|e| e.at), Some(0));
        assert_eq!(end_of(b"\r\n").map(|e| e.blank_line), Some(true));
    }

    #[test]
    fn incomplete_lines_wait_and_pieces_of_any_size_give_one_answer() {
        let text = b"Date: now\r\nMessage-Id: <a@b>\r\nSubject: x\r\n\r\nbody\r\n";
        let whole = end_of(text);
        assert_eq!(whole.map(|e| e.at), Some(42));
        for size in 1..text.len() {
            let mut scan = HeaderScan::default();
            let found = text.chunks(size).find_map(|piece| scan.push(piece));
            assert_eq!(found, whole, "pieces of {size}");
        }
        assert_eq!(end_of(b"Subject: x\r\nDate"), None);
    }

    #[test]
    fn fields_are_found_by_name_in_any_case() {
        let mut scan = HeaderScan::default();
        scan.push(b"DATE : Mon\r\nmessage-id:\r\n <x@y>\r\n\r\nDate: body\r\n");
        assert!(scan.has_field("Date"));
        assert!(scan.has_field("Message-Id"));
        assert!(!scan.has_field("From"));
        let mut body_only = HeaderScan::default();
        body_only.push(b"\r\nDate: in the body\r\n");
        assert!(!body_only.has_field("Date"));
    }
}
