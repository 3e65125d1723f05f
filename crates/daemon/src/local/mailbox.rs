//! What every mailbox format shares: the `Return-Path:` line and the
//! message copied with its CRLFs made LF (the Unix convention of mbox and
//! Maildir), in bounded memory.

use std::io::{self, Write};

pub use crate::delivery::message::Message;

/// Message bytes read per `read_at`.
pub const CHUNK: usize = 64 << 10;

/// `Return-Path: <sender>` LF. The sender went through an address parser
/// already; control characters are made spaces anyway, so that it can
/// never add a header line.
pub fn return_path(sender: &str) -> String {
    let sender: String = sender
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!("Return-Path: <{sender}>\n")
}

/// Copies the message into `out` with every CRLF as LF (a CR not followed
/// by LF is kept). With `mbox`, a line starting `From ` is written
/// `>From ` (the mboxo escaping sendmail's mail.local does, so a reader
/// never takes it for the next message), and the message ends with a line
/// end and one blank line, the separator before the next `From ` line.
pub fn copy_lines(data: &Message, out: &mut impl Write, mbox: bool) -> io::Result<()> {
    let mut buf = Vec::with_capacity(CHUNK + CHUNK / 8);
    let mut chunk = vec![0u8; CHUNK];
    let mut offset = 0u64;
    let mut pending_cr = false;
    // The bytes of the current line so far, up to `From ` (5).
    let mut line_start: Vec<u8> = Vec::with_capacity(5);
    let mut at_line_start = true;
    let mut last = b'\n';
    loop {
        let n = data.read_at(&mut chunk, offset)?;
        if n == 0 {
            break;
        }
        offset += n as u64;
        for &b in &chunk[..n] {
            if pending_cr {
                pending_cr = false;
                if b != b'\n' {
                    emit(&mut buf, &mut line_start, &mut at_line_start, mbox, b'\r');
                }
            }
            if b == b'\r' {
                pending_cr = true;
                continue;
            }
            emit(&mut buf, &mut line_start, &mut at_line_start, mbox, b);
            last = b;
        }
        out.write_all(&buf)?;
        buf.clear();
    }
    if pending_cr {
        emit(&mut buf, &mut line_start, &mut at_line_start, mbox, b'\r');
        last = b'\r';
    }
    buf.append(&mut line_start);
    if mbox {
        if last != b'\n' {
            buf.push(b'\n');
        }
        buf.push(b'\n');
    }
    out.write_all(&buf)
}

/// Writes `b`, holding back the first bytes of a line while they could
/// still be `From `.
fn emit(buf: &mut Vec<u8>, held: &mut Vec<u8>, at_line_start: &mut bool, mbox: bool, b: u8) {
    if !mbox || !*at_line_start {
        buf.push(b);
        if b == b'\n' {
            *at_line_start = true;
        }
        return;
    }
    held.push(b);
    if b"From ".starts_with(held) {
        if held.len() == 5 {
            buf.push(b'>');
            buf.append(held);
            *at_line_start = false;
        }
        return;
    }
    buf.append(held);
    *at_line_start = b == b'\n';
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copied(bytes: &[u8], mbox: bool) -> Vec<u8> {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(bytes).unwrap();
        let data = Message::new(f, bytes.len() as u64);
        let mut out = Vec::new();
        copy_lines(&data, &mut out, mbox).unwrap();
        out
    }

    #[test]
    fn crlf_becomes_lf_and_lone_cr_stays() {
        assert_eq!(copied(b"a\r\nb\rc\r\n", false), b"a\nb\rc\n");
        assert_eq!(copied(b"x\r", false), b"x\r");
    }

    #[test]
    fn mbox_escapes_from_lines_and_ends_with_a_blank_line() {
        assert_eq!(
            copied(
                b"Subject: x\r\n\r\nFrom me\r\nFro\r\n>From you\r\n From\r\nFrom",
                true
            ),
            b"Subject: x\n\n>From me\nFro\n>From you\n From\nFrom\n\n"
        );
        assert_eq!(copied(b"From a\r\n", true), b">From a\n\n");
        assert_eq!(copied(b"", true), b"\n");
        // Not an mbox: nothing escaped, nothing added.
        assert_eq!(copied(b"From a\r\n", false), b"From a\n");
    }

    #[test]
    fn a_from_line_split_across_chunks_is_escaped() {
        let mut body = vec![b'a'; CHUNK - 3];
        body.extend_from_slice(b"\r\nFrom split\r\n");
        let out = copied(&body, true);
        assert!(out.ends_with(b"a\n>From split\n\n"));
    }

    #[test]
    fn return_path_cannot_add_a_line() {
        assert_eq!(return_path("a@b\r\nX: y"), "Return-Path: <a@b  X: y>\n");
    }
}
