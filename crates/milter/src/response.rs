//! A filter's answers, decoded and checked: a verdict for the stage, or,
//! at end of message, modifications before the verdict.

use crate::wire::{reply, split_c_strings, Packet};

/// What a filter decided about a stage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Go on with this filter.
    Continue,
    /// Accept the message (or connection): this filter is done with it.
    Accept,
    /// `550 5.7.1 Command rejected` (at end of message, sendmail's `554`).
    Reject,
    /// `451 4.3.2 Please try again later`, sendmail's MSG_TEMPFAIL.
    TempFail,
    /// Accept, then throw the message away.
    Discard,
    /// This SMTP reply, one line or several (`550-5.7.1 …\r\n550 …`).
    Reply(String),
    /// The body is not wanted any more (`SMFIR_SKIP`).
    Skip,
    /// `421`: the filter wants the connection closed.
    Shutdown,
}

/// A change to the message, asked at end of message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Modification {
    AddHeader {
        name: String,
        value: String,
    },
    /// Insert at `index` in the header section (0: first).
    InsertHeader {
        index: u32,
        name: String,
        value: String,
    },
    /// Change the `index`th (from 1) header of that name; an empty value
    /// deletes it.
    ChangeHeader {
        index: u32,
        name: String,
        value: String,
    },
    /// A chunk of the new body; several chunks are concatenated.
    ReplaceBody(Vec<u8>),
    AddRecipient {
        address: String,
        args: Option<String>,
    },
    DeleteRecipient(String),
    ChangeSender {
        address: String,
        args: Option<String>,
    },
    Quarantine(String),
}

/// One packet from a filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    Verdict(Verdict),
    Modification(Modification),
    /// Still working: the read timeout starts again.
    Progress,
}

/// A packet that is not a valid answer.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    #[error("unknown response code 0x{0:02x}")]
    Unknown(u8),
    #[error("malformed '{}' response", *.0 as char)]
    Malformed(u8),
    #[error("reply code {0:?} is not a 4xx or 5xx SMTP reply")]
    BadReplyCode(String),
}

/// Decodes one packet.
pub fn decode(packet: &Packet) -> Result<Response, ResponseError> {
    let code = packet.code;
    let bad = || ResponseError::Malformed(code);
    let strings = || split_c_strings(&packet.data).ok_or_else(bad);
    let verdict = |v| Ok(Response::Verdict(v));
    let modification = |m| Ok(Response::Modification(m));
    match code {
        reply::CONTINUE => verdict(Verdict::Continue),
        reply::ACCEPT => verdict(Verdict::Accept),
        reply::REJECT => verdict(Verdict::Reject),
        reply::TEMPFAIL => verdict(Verdict::TempFail),
        reply::DISCARD => verdict(Verdict::Discard),
        reply::SKIP => verdict(Verdict::Skip),
        reply::SHUTDOWN | reply::CONNECTION_FAIL => verdict(Verdict::Shutdown),
        reply::PROGRESS => Ok(Response::Progress),
        reply::REPLY_CODE => {
            let s = strings()?;
            let [text] = s.as_slice() else {
                return Err(bad());
            };
            let text = std::str::from_utf8(text).map_err(|_| bad())?;
            verdict(Verdict::Reply(checked_reply(text)?))
        }
        reply::ADD_HEADER => {
            let (name, value) = header(&strings()?).ok_or_else(bad)?;
            modification(Modification::AddHeader { name, value })
        }
        reply::INSERT_HEADER | reply::CHANGE_HEADER => {
            let (index, rest) = packet.data.split_first_chunk::<4>().ok_or_else(bad)?;
            let index = u32::from_be_bytes(*index);
            let strings = split_c_strings(rest).ok_or_else(bad)?;
            let (name, value) = header(&strings).ok_or_else(bad)?;
            if code == reply::INSERT_HEADER {
                modification(Modification::InsertHeader { index, name, value })
            } else {
                modification(Modification::ChangeHeader { index, name, value })
            }
        }
        reply::REPLACE_BODY => modification(Modification::ReplaceBody(packet.data.clone())),
        reply::ADD_RCPT | reply::ADD_RCPT_PAR | reply::CHANGE_FROM => {
            let s = strings()?;
            let (address, args) = match s.as_slice() {
                [a] => (a, None),
                [a, args] if code != reply::ADD_RCPT => (a, Some(text(args).ok_or_else(bad)?)),
                _ => return Err(bad()),
            };
            let address = text(address).filter(|a| !a.is_empty()).ok_or_else(bad)?;
            if code == reply::CHANGE_FROM {
                modification(Modification::ChangeSender { address, args })
            } else {
                modification(Modification::AddRecipient { address, args })
            }
        }
        reply::DEL_RCPT => {
            let address = one_string(&strings()?).ok_or_else(bad)?;
            modification(Modification::DeleteRecipient(address))
        }
        reply::QUARANTINE => {
            let reason = one_string(&strings()?).ok_or_else(bad)?;
            modification(Modification::Quarantine(reason))
        }
        other => Err(ResponseError::Unknown(other)),
    }
}

/// Printable text, no control characters (a reason, an address).
fn text(bytes: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(bytes).ok()?;
    (!s.chars().any(char::is_control)).then(|| s.to_string())
}

fn one_string(strings: &[&[u8]]) -> Option<String> {
    match strings {
        [s] => text(s),
        _ => None,
    }
}

/// A header's name and value: the name printable without spaces or
/// colon; the value may be folded (a line break followed by a space or
/// a tab), any other line break would start a header of its own.
fn header(strings: &[&[u8]]) -> Option<(String, String)> {
    let [name, value] = strings else {
        return None;
    };
    let name = std::str::from_utf8(name).ok()?;
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
        return None;
    }
    let value = String::from_utf8_lossy(value).into_owned();
    let bytes = value.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        let folded = |at: usize| matches!(bytes.get(at), Some(b' ' | b'\t'));
        match b {
            b'\n' if !folded(i + 1) => return None,
            b'\r' if !(bytes.get(i + 1) == Some(&b'\n') && folded(i + 2)) => return None,
            0..=8 | 11..=12 | 14..=31 | 127 => return None,
            _ => {}
        }
    }
    Some((name.to_string(), value))
}

/// A reply a filter gives: each line `4xx` or `5xx`, the same code, `-`
/// between lines and a space (or nothing) after the last's code.
fn checked_reply(reply: &str) -> Result<String, ResponseError> {
    let bad = || ResponseError::BadReplyCode(reply.chars().take(80).collect());
    let lines: Vec<&str> = reply.split("\r\n").collect();
    // libmilter's smfi_setmlreply allows 32 lines; a reply line is at most
    // 512 octets with its CRLF (RFC 5321 §4.5.3.1.5).
    if lines.len() > 32 || lines.iter().any(|l| l.len() > 510) {
        return Err(bad());
    }
    let code = reply.get(..3).ok_or_else(bad)?;
    if !matches!(code.as_bytes(), [b'4' | b'5', b'0'..=b'9', b'0'..=b'9']) {
        return Err(bad());
    }
    for (i, line) in lines.iter().enumerate() {
        let last = i + 1 == lines.len();
        let sep = line.as_bytes().get(3);
        let sep_ok = if last {
            matches!(sep, None | Some(b' '))
        } else {
            sep == Some(&b'-')
        };
        if !line.starts_with(code) || !sep_ok || line.chars().any(char::is_control) {
            return Err(bad());
        }
    }
    Ok(reply.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(code: u8, data: &[u8]) -> Packet {
        Packet {
            code,
            data: data.to_vec(),
        }
    }

    #[test]
    fn verdicts() {
        assert_eq!(
            decode(&p(b'c', b"")),
            Ok(Response::Verdict(Verdict::Continue))
        );
        assert_eq!(
            decode(&p(b't', b"")),
            Ok(Response::Verdict(Verdict::TempFail))
        );
        assert_eq!(
            decode(&p(b'f', b"")),
            Ok(Response::Verdict(Verdict::Shutdown))
        );
        assert_eq!(decode(&p(b'p', b"")), Ok(Response::Progress));
        assert_eq!(decode(&p(b'Z', b"")), Err(ResponseError::Unknown(b'Z')));
    }

    #[test]
    fn reply_codes_must_be_smtp_failures() {
        assert_eq!(
            decode(&p(b'y', b"554 5.7.1 Gtube pattern\0")),
            Ok(Response::Verdict(Verdict::Reply(
                "554 5.7.1 Gtube pattern".into()
            )))
        );
        let multi = b"550-5.7.1 first\r\n550 5.7.1 second\0";
        assert!(decode(&p(b'y', multi)).is_ok());
        for bad in [
            &b"250 ok\0"[..],
            b"55 short\0",
            b"550-dangling\0",
            b"550 a\r\n551 b\0",
            b"550 a\nInjected: x\0",
            b"550 no terminator",
        ] {
            assert!(
                decode(&p(b'y', bad)).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let long = format!("550 5.7.1 {}\0", "x".repeat(501));
        let many = format!("{}550 last\0", "550-line\r\n".repeat(32));
        for bad in [long.as_bytes(), many.as_bytes()] {
            assert!(
                decode(&p(b'y', bad)).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn header_changes() {
        assert_eq!(
            decode(&p(b'h', b"DKIM-Signature\0 v=1;\r\n\tb=abc\0")),
            Ok(Response::Modification(Modification::AddHeader {
                name: "DKIM-Signature".into(),
                value: " v=1;\r\n\tb=abc".into()
            }))
        );
        assert_eq!(
            decode(&p(b'm', b"\0\0\0\x02Subject\0\0")),
            Ok(Response::Modification(Modification::ChangeHeader {
                index: 2,
                name: "Subject".into(),
                value: String::new()
            }))
        );
        assert!(decode(&p(b'i', b"\0\0\0\0X-A\0v\0")).is_ok());
        for bad in [
            &b"Bad Name\0v\0"[..],
            b"X-A\0v\nBcc: evil\0",
            b"X-A:\0v\0",
            b"\0v\0",
            b"X-A\0",
        ] {
            assert!(
                decode(&p(b'h', bad)).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(decode(&p(b'm', b"\0\0")).is_err());
    }

    #[test]
    fn envelope_changes() {
        assert_eq!(
            decode(&p(b'2', b"<new@example.org>\0NOTIFY=NEVER\0")),
            Ok(Response::Modification(Modification::AddRecipient {
                address: "<new@example.org>".into(),
                args: Some("NOTIFY=NEVER".into())
            }))
        );
        assert!(
            decode(&p(b'+', b"<a@b>\0X=1\0")).is_err(),
            "no args without ADD_RCPT_PAR"
        );
        assert!(decode(&p(b'+', b"\0")).is_err());
        assert_eq!(
            decode(&p(b'-', b"<old@example.org>\0")),
            Ok(Response::Modification(Modification::DeleteRecipient(
                "<old@example.org>".into()
            )))
        );
        assert!(matches!(
            decode(&p(b'e', b"<s@example.org>\0")),
            Ok(Response::Modification(Modification::ChangeSender {
                args: None,
                ..
            }))
        ));
        assert!(decode(&p(b'q', b"virus\0")).is_ok());
        assert!(decode(&p(b'q', b"a\rb\0")).is_err());
    }
}
