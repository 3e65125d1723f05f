//! SMTP replies as the server sends them: a three-digit code, an optional
//! enhanced status code (RFC 2034/3463) and one or more lines of text.
//!
//! sendmail puts the enhanced code on every line of a multi-line reply
//! (`250-2.1.5 <a@b>` … `250 2.1.5 <c@d>`) and leaves it off the greeting,
//! the EHLO keyword list and the 354 prompt; [`Reply`] mirrors that.

use std::fmt;

/// An enhanced mail system status code, `class.subject.detail` (RFC 3463).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EnhancedCode {
    /// 2 (success), 4 (persistent transient failure) or 5 (permanent failure).
    pub class: u8,
    /// The subject, 0–999.
    pub subject: u16,
    /// The detail, 0–999.
    pub detail: u16,
}

impl EnhancedCode {
    /// Builds a code; the caller is trusted to pass RFC 3463 ranges.
    pub const fn new(class: u8, subject: u16, detail: u16) -> Self {
        Self {
            class,
            subject,
            detail,
        }
    }

    /// Parses `x.y.z` where x is 2, 4 or 5 and y, z have one to three digits.
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.split('.');
        let class = parts.next()?;
        let subject = parts.next()?;
        let detail = parts.next()?;
        if parts.next().is_some() {
            return None;
        }
        let digits = |s: &str, max: usize| {
            !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit())
        };
        if !digits(class, 1) || !digits(subject, 3) || !digits(detail, 3) {
            return None;
        }
        let class: u8 = class.parse().ok()?;
        if !matches!(class, 2 | 4 | 5) {
            return None;
        }
        Some(Self::new(
            class,
            subject.parse().ok()?,
            detail.parse().ok()?,
        ))
    }
}

impl fmt::Display for EnhancedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

/// One SMTP reply, ready to be written to the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    code: u16,
    enhanced: Option<EnhancedCode>,
    lines: Vec<String>,
}

impl Reply {
    /// A one-line reply with an enhanced status code.
    pub fn new(code: u16, enhanced: EnhancedCode, text: impl Into<String>) -> Self {
        Self {
            code,
            enhanced: Some(enhanced),
            lines: vec![text.into()],
        }
    }

    /// A one-line reply without an enhanced status code (greeting, 354, …).
    pub fn plain(code: u16, text: impl Into<String>) -> Self {
        Self {
            code,
            enhanced: None,
            lines: vec![text.into()],
        }
    }

    /// A multi-line reply; every line carries `enhanced` when it is given.
    /// An empty `lines` becomes one empty line.
    pub fn multi(code: u16, enhanced: Option<EnhancedCode>, lines: Vec<String>) -> Self {
        let lines = if lines.is_empty() {
            vec![String::new()]
        } else {
            lines
        };
        Self {
            code,
            enhanced,
            lines,
        }
    }

    /// The three-digit reply code.
    pub fn code(&self) -> u16 {
        self.code
    }

    /// The enhanced status code, where the reply has one.
    pub fn enhanced(&self) -> Option<EnhancedCode> {
        self.enhanced
    }

    /// The text lines, without codes.
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// True for 2xx and 3xx replies.
    pub fn is_positive(&self) -> bool {
        self.code < 400
    }

    /// True for 4xx replies.
    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }

    /// True for 5xx replies.
    pub fn is_permanent(&self) -> bool {
        self.code >= 500
    }

    /// Appends the reply in wire form, CRLF after every line. CR and LF
    /// inside a line are replaced by spaces: a reply must never be able to
    /// smuggle an extra line to the peer. So is every other control
    /// character but HT (RFC 5321's textstring): a reply that quotes the
    /// client (`500 5.5.1 Command unrecognized: "…"`) must not hand a NUL
    /// or an escape sequence to the peer, which may refuse the reply
    /// (Postern's own client does) or print it to a terminal.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let last = self.lines.len() - 1;
        for (i, line) in self.lines.iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            let mut head = format!("{}{}", self.code, sep);
            if let Some(e) = self.enhanced {
                head.push_str(&e.to_string());
                if !line.is_empty() {
                    head.push(' ');
                }
            }
            out.extend_from_slice(head.as_bytes());
            out.extend(line.bytes().map(|b| {
                if b == b'\t' || !(b.is_ascii_control()) {
                    b
                } else {
                    b' '
                }
            }));
            out.extend_from_slice(b"\r\n");
        }
    }

    /// The reply in wire form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_to(&mut out);
        out
    }
}

/// The wire form without the final CRLF of each line joined by `\n`; for logs.
impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let wire = self.to_bytes();
        let text = String::from_utf8_lossy(&wire);
        f.write_str(text.trim_end_matches("\r\n").replace("\r\n", "\n").as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_line_with_enhanced_code() {
        let r = Reply::new(250, EnhancedCode::new(2, 0, 0), "Reset state");
        assert_eq!(r.to_bytes(), b"250 2.0.0 Reset state\r\n");
    }

    #[test]
    fn multi_line_repeats_enhanced_code() {
        let r = Reply::multi(
            250,
            Some(EnhancedCode::new(2, 1, 5)),
            vec!["<a@b>".into(), "<c@d>".into()],
        );
        assert_eq!(r.to_bytes(), b"250-2.1.5 <a@b>\r\n250 2.1.5 <c@d>\r\n");
    }

    #[test]
    fn line_breaks_inside_text_cannot_escape() {
        let r = Reply::plain(250, "a\r\n250 injected");
        assert_eq!(r.to_bytes(), b"250 a  250 injected\r\n");
    }

    /// Found by fuzzing (fuzz/fuzz_targets/smtp_server.rs): an
    /// unrecognised command with a NUL in it was quoted back with the NUL.
    #[test]
    fn control_characters_inside_text_cannot_reach_the_wire() {
        let r = Reply::new(500, EnhancedCode::new(5, 5, 1), "\"W\0\x1b[2J\x7f\tx\"");
        assert_eq!(r.to_bytes(), b"500 5.5.1 \"W  [2J \tx\"\r\n");
    }

    #[test]
    fn enhanced_code_parsing() {
        assert_eq!(
            EnhancedCode::parse("5.7.1"),
            Some(EnhancedCode::new(5, 7, 1))
        );
        assert_eq!(
            EnhancedCode::parse("2.1.500"),
            Some(EnhancedCode::new(2, 1, 500))
        );
        for bad in ["3.0.0", "5.7", "5.7.1.1", "5.x.1", "55.1.1", "5.1000.1", ""] {
            assert_eq!(EnhancedCode::parse(bad), None, "{bad}");
        }
    }
}
