//! Where the header section of a submitted message ends, and its fields,
//! found line by line as sendmail's `collect()` finds them (and as the
//! daemon's front does for SMTP): fields from the first line on, each a
//! `name:` line and the lines that continue it (starting with a space or
//! a tab), up to a blank line or a line that is neither.
//!
//! This is decided here, not by `mail-parser`: it reads past a line that
//! is not a header, takes a last line without a colon for one, and may
//! let a malformed value run over the blank line that ends the section.
//! It only reads the values of the fields found here.

use std::ops::Range;

/// The byte ranges of the header section's fields, line ends included,
/// in order; the section ends where the last one ends (0 when it is
/// empty).
pub(super) fn fields(raw: &[u8]) -> Vec<Range<usize>> {
    let mut fields: Vec<Range<usize>> = Vec::new();
    let mut at = 0;
    while at < raw.len() {
        let end = raw[at..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(raw.len(), |i| at + i + 1);
        let line = &raw[at..end];
        let content = line.strip_suffix(b"\n").unwrap_or(line);
        let content = content.strip_suffix(b"\r").unwrap_or(content);
        match fields.last_mut() {
            Some(field) if matches!(content.first(), Some(b' ' | b'\t')) => field.end = end,
            _ if is_field(content) => fields.push(at..end),
            _ => break,
        }
        at = end;
    }
    fields
}

/// `name:` and its value: a name of printable ASCII (RFC 5322's ftext,
/// with the spaces sendmail allows before the colon).
pub(super) fn is_field(line: &[u8]) -> bool {
    name(line).is_some()
}

/// The field's name, without the spaces before its colon.
pub(super) fn name(line: &[u8]) -> Option<&[u8]> {
    let colon = line.iter().position(|&b| b == b':')?;
    let name = line[..colon].trim_ascii_end();
    (!name.is_empty() && name.iter().all(|b| (33..=126).contains(b))).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fields as (start, end) pairs.
    fn spans(raw: &[u8]) -> Vec<(usize, usize)> {
        fields(raw).into_iter().map(|f| (f.start, f.end)).collect()
    }

    #[test]
    fn fields_continuations_and_the_end() {
        let raw = b"A: 1\r\n  more\r\nB:2\nnot a field\r\nC: 3\r\n";
        assert_eq!(spans(raw), [(0, 14), (14, 18)]);
        assert_eq!(spans(b" leading continuation\r\nA: 1\r\n"), []);
        assert_eq!(spans(b"A: 1\r\n\r\nB: 2\r\n"), [(0, 6)]);
        assert_eq!(spans(b"A: 1"), [(0, 4)]);
        assert_eq!(spans(b"\xc1"), []);
    }
}
