//! SMTP replies as a server writes them (RFC 5321 §4.2): each line is a
//! three-digit code, `-` (more lines follow) or a space (the last line),
//! text, CR LF; the lines of one reply share their code.

/// One reply found in a server's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireReply {
    /// The three-digit code.
    pub code: u16,
    /// The text of each line (after the code and the separator).
    pub lines: Vec<Vec<u8>>,
}

/// Splits what a server wrote in one go into replies, and panics on
/// anything that is not a well-formed reply: a code outside 200–599 (a
/// server never sends 1yz), a separator other than `-` or a space, a
/// control character (CR, LF, NUL, …) inside the text, a line without its CR LF, lines of one
/// reply with different codes, or output that stops in the middle of a
/// multi-line reply (a server sends whole replies).
pub fn split_replies(bytes: &[u8]) -> Vec<WireReply> {
    let mut replies = Vec::new();
    let mut open: Option<WireReply> = None;
    let mut rest = bytes;
    while !rest.is_empty() {
        let end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .unwrap_or_else(|| panic!("reply line without CR LF: {:?}", show(rest)));
        let line = &rest[..end];
        rest = &rest[end + 2..];
        let (code, last, text) = split_line(line);
        let reply = open.get_or_insert_with(|| WireReply {
            code,
            lines: Vec::new(),
        });
        assert_eq!(reply.code, code, "one reply, two codes: {:?}", show(bytes));
        reply.lines.push(text.to_vec());
        if last {
            replies.extend(open.take());
        }
    }
    assert!(
        open.is_none(),
        "output ends inside a reply: {:?}",
        show(bytes)
    );
    replies
}

/// `(code, is the last line, text)` of one line without its CR LF.
fn split_line(line: &[u8]) -> (u16, bool, &[u8]) {
    assert!(line.len() >= 4, "short reply line {:?}", show(line));
    let digits = &line[..3];
    assert!(
        digits.iter().all(u8::is_ascii_digit) && (b'2'..=b'5').contains(&digits[0]),
        "bad reply code in {:?}",
        show(line)
    );
    let code = digits
        .iter()
        .fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    let last = match line[3] {
        b' ' => true,
        b'-' => false,
        _ => panic!("bad separator in {:?}", show(line)),
    };
    let text = &line[4..];
    // RFC 5321's textstring is HT and printable ASCII; 8-bit text is let
    // through (SMTPUTF8 servers send it, and clients read it), control
    // characters never are.
    assert!(
        text.iter().all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f)),
        "control character in reply text {:?}",
        show(line)
    );
    (code, last, text)
}

/// Bytes as text for a panic message.
pub fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_line_replies_are_joined() {
        let r = split_replies(b"250-a\r\n250 b\r\n221 bye\r\n");
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].code, r[0].lines.len()), (250, 2));
    }

    #[test]
    #[should_panic(expected = "ends inside a reply")]
    fn a_reply_cut_short_is_refused() {
        split_replies(b"250-a\r\n");
    }

    #[test]
    #[should_panic(expected = "two codes")]
    fn mixed_codes_are_refused() {
        split_replies(b"250-a\r\n251 b\r\n");
    }
}
