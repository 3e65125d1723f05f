//! A message's header section and body as filters change them, with
//! sendmail's rules (`milter.c`):
//!
//! - Filters are shown the client's headers only ("user" headers), not
//!   the ones the MTA added (its Received:, a Date: or Message-Id: it
//!   supplied); those stay in the list, flagged, so that positions count
//!   as sendmail counts them.
//! - Add appends at the end of the header section; insert puts the header
//!   at a position counting every header (0: the very top).
//! - Change names the `index`th user header of that name (from 1); if
//!   there is none, an added header of that name that is not a trace
//!   header; an empty value deletes; changing one that does not exist
//!   adds it.
//! - Unless the filter negotiated `SMFIP_HDR_LEADSPC`, the MTA puts the
//!   space after the colon itself. Line breaks in values become CRLF.
//! - A replaced body is the filter's chunks, concatenated, CRLF line ends.
//!
//! Each change gives the log line sendmail writes for it (at
//! MilterLogLevel 9 and above).

use crate::response::Modification;

/// One header: its name, and everything after the colon (folds kept, as
/// CRLF), without the final CRLF.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub value: Vec<u8>,
    /// From the client's message (filters see these), not added by the
    /// MTA.
    pub user: bool,
}

/// Headers and body of a message being filtered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    pub headers: Vec<Header>,
    pub body: Vec<u8>,
}

/// Trace headers: never changed in the MTA's place.
fn is_trace(name: &str) -> bool {
    name.eq_ignore_ascii_case("Received") || name.eq_ignore_ascii_case("Return-Path")
}

impl Message {
    /// Reads a header section (up to the empty line, which is not kept)
    /// and what follows as the body; `user` flags the headers. A line
    /// that is neither a header nor a fold ends the section there (the
    /// front never passes one: it separates such a body itself).
    pub fn parse(text: &[u8], user: bool) -> Message {
        let mut headers: Vec<Header> = Vec::new();
        let mut at = 0;
        while at < text.len() {
            let end = find_crlf(&text[at..]).map_or(text.len(), |i| at + i);
            let line = &text[at..end];
            let next = (end + 2).min(text.len());
            if line.is_empty() {
                at = next;
                break;
            }
            if matches!(line[0], b' ' | b'\t') {
                let Some(last) = headers.last_mut() else {
                    // A continuation with nothing to continue is no
                    // header (a field name has no white space): taken as
                    // one, a header inserted ahead of it would adopt it
                    // as its own fold (found by fuzzing).
                    break;
                };
                last.value.extend_from_slice(b"\r\n");
                last.value.extend_from_slice(line);
                at = next;
                continue;
            }
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                break;
            };
            // The front's rule for a field (`front/header_section.rs`): a
            // name of printable characters, white space only before the
            // colon. Anything else starts the body, here as there.
            let name = line[..colon].trim_ascii_end();
            if name.is_empty() || !name.iter().all(|b| (33..=126).contains(b)) {
                break;
            }
            let name = String::from_utf8_lossy(name).into_owned();
            headers.push(Header {
                name,
                value: line[colon + 1..].to_vec(),
                user,
            });
            at = next;
        }
        Message {
            headers,
            body: text[at.min(text.len())..].to_vec(),
        }
    }

    /// The user headers, for the filters: name, and value as after the
    /// colon.
    pub fn user_headers(&self) -> impl Iterator<Item = &Header> {
        self.headers.iter().filter(|h| h.user)
    }

    /// The whole message, CRLF line ends, an empty line between header
    /// section and body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.body.len() + 64 * self.headers.len());
        for h in &self.headers {
            out.extend_from_slice(h.name.as_bytes());
            out.push(b':');
            out.extend_from_slice(&h.value);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }

    /// Applies a header or body change (envelope changes are the
    /// caller's); returns sendmail's log line for it. `leading_space`:
    /// the filter negotiated SMFIP_HDR_LEADSPC. `first_body_chunk`: a
    /// body replacement starts over (a new filter's first chunk).
    pub fn apply(
        &mut self,
        change: &Modification,
        leading_space: bool,
        first_body_chunk: bool,
    ) -> Option<String> {
        let stored = |value: &str| stored_value(value, leading_space);
        match change {
            Modification::AddHeader { name, value } => {
                self.headers.push(Header {
                    name: name.clone(),
                    value: stored(value),
                    user: true,
                });
                Some(format!("Milter add: header: {name}: {value}"))
            }
            Modification::InsertHeader { index, name, value } => {
                let at = (*index as usize).min(self.headers.len());
                self.headers.insert(
                    at,
                    Header {
                        name: name.clone(),
                        value: stored(value),
                        user: true,
                    },
                );
                Some(format!("Milter insert ({index}): header: {name}: {value}"))
            }
            Modification::ChangeHeader { index, name, value } => {
                Some(self.change_header(*index, name, value, leading_space))
            }
            Modification::ReplaceBody(chunk) => {
                let first = first_body_chunk;
                if first {
                    self.body.clear();
                }
                self.body.extend_from_slice(chunk);
                first.then(|| "Milter message: body replaced".to_string())
            }
            _ => None,
        }
    }

    fn change_header(
        &mut self,
        index: u32,
        name: &str,
        value: &str,
        leading_space: bool,
    ) -> String {
        let mut left = index.max(1);
        let mut found = None;
        let mut system = None;
        for (i, h) in self.headers.iter().enumerate() {
            if !h.name.eq_ignore_ascii_case(name) {
                continue;
            }
            if h.user {
                left -= 1;
                if left == 0 {
                    found = Some(i);
                    break;
                }
            } else if !is_trace(&h.name) {
                system = Some(i);
            }
        }
        let Some(i) = found.or(system) else {
            if value.is_empty() {
                return format!("Milter delete (noop): header: {name}");
            }
            self.headers.push(Header {
                name: name.to_string(),
                value: stored_value(value, leading_space),
                user: true,
            });
            return format!("Milter change (add): header: {name}: {value}");
        };
        let default = if self.headers[i].user {
            ""
        } else {
            " (default header)"
        };
        let old = String::from_utf8_lossy(&self.headers[i].value).into_owned();
        if value.is_empty() {
            self.headers.remove(i);
            format!("Milter delete: header{default} {name}:{old}")
        } else {
            let h = &mut self.headers[i];
            h.value = stored_value(value, leading_space);
            h.user = true;
            let old = old.trim_start();
            format!("Milter change: header{default} {name}: from {old} to {value}")
        }
    }

    /// Makes a replaced body's line ends CRLF (filters may send bare LF).
    pub fn normalise_body(&mut self) {
        self.body = crlf(&self.body);
    }
}

/// A value as written after the colon: a space first unless the filter
/// keeps its own, every line break CRLF.
fn stored_value(value: &str, leading_space: bool) -> Vec<u8> {
    let mut v = Vec::with_capacity(value.len() + 1);
    if !leading_space {
        v.push(b' ');
    }
    v.extend_from_slice(&crlf(value.as_bytes()));
    v
}

/// Bare LF (and bare CR) become CRLF.
fn crlf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 32);
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\r' if bytes.get(i + 1) == Some(&b'\n') => {
                out.extend_from_slice(b"\r\n");
                i += 2;
                continue;
            }
            b'\r' | b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
        i += 1;
    }
    out
}

fn find_crlf(bytes: &[u8]) -> Option<usize> {
    bytes.windows(2).position(|w| w == b"\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> Message {
        let mut m = Message::parse(
            b"Received: from x\r\n\tby y\r\nMessage-Id: <added@mx>\r\n",
            false,
        );
        let user = Message::parse(
            b"Subject: hello\r\nX-Drop: one\r\nX-Drop: two\r\n\r\nbody\r\n",
            true,
        );
        m.headers.extend(user.headers);
        m.body = user.body;
        m
    }

    fn text(m: &Message) -> String {
        String::from_utf8(m.to_bytes()).unwrap()
    }

    #[test]
    fn parse_keeps_folds_and_the_body() {
        let m = message();
        assert_eq!(m.headers[0].value, b" from x\r\n\tby y");
        assert_eq!(m.user_headers().count(), 3);
        assert_eq!(m.body, b"body\r\n");
        assert_eq!(
            text(&m),
            "Received: from x\r\n\tby y\r\nMessage-Id: <added@mx>\r\nSubject: hello\r\n\
             X-Drop: one\r\nX-Drop: two\r\n\r\nbody\r\n"
        );
        // Neither does a name with a space or a control character in it,
        // or no name: the front ends the header section there too.
        for not_a_field in [&b"A b: 1\r\n\r\n"[..], b"A\0: 1\r\n", b": 1\r\n"] {
            let m = Message::parse(not_a_field, true);
            assert!(m.headers.is_empty(), "{not_a_field:?}");
            assert_eq!(m.body, not_a_field);
        }
        let spaced = Message::parse(b"Subject : x\r\n\r\n", true);
        assert_eq!(spaced.headers[0].name, "Subject");
        // A first line that folds nothing starts the body.
        let orphan = Message::parse(b" p: 1\r\nB: 2\r\n\r\nbody\r\n", true);
        assert!(orphan.headers.is_empty());
        assert_eq!(orphan.body, b" p: 1\r\nB: 2\r\n\r\nbody\r\n");
        let all_headers = Message::parse(b"A: 1\r\nB: 2\r\n", true);
        assert_eq!(all_headers.headers.len(), 2);
        assert!(all_headers.body.is_empty());
    }

    #[test]
    fn add_insert_change_delete_as_sendmail() {
        let mut m = message();
        let log = m.apply(
            &Modification::InsertHeader {
                index: 0,
                name: "DKIM-Signature".into(),
                value: "v=1;\n\tb=abc".into(),
            },
            false,
            false,
        );
        assert_eq!(
            log.unwrap(),
            "Milter insert (0): header: DKIM-Signature: v=1;\n\tb=abc"
        );
        let log = m.apply(
            &Modification::ChangeHeader {
                index: 2,
                name: "x-drop".into(),
                value: String::new(),
            },
            false,
            false,
        );
        assert_eq!(log.unwrap(), "Milter delete: header x-drop: two");
        m.apply(
            &Modification::ChangeHeader {
                index: 1,
                name: "Subject".into(),
                value: "[tag] hello".into(),
            },
            false,
            false,
        );
        m.apply(
            &Modification::AddHeader {
                name: "X-Spam".into(),
                value: "Yes".into(),
            },
            true,
            false,
        );
        assert_eq!(
            text(&m),
            "DKIM-Signature: v=1;\r\n\tb=abc\r\nReceived: from x\r\n\tby y\r\n\
             Message-Id: <added@mx>\r\nSubject: [tag] hello\r\nX-Drop: one\r\nX-Spam:Yes\r\n\r\nbody\r\n"
        );
    }

    #[test]
    fn change_falls_back_to_an_added_header_never_a_trace_one() {
        let mut m = message();
        let log = m
            .apply(
                &Modification::ChangeHeader {
                    index: 1,
                    name: "Message-Id".into(),
                    value: "<new@filter>".into(),
                },
                false,
                false,
            )
            .unwrap();
        assert_eq!(
            log,
            "Milter change: header (default header) Message-Id: from <added@mx> to <new@filter>"
        );
        let log = m
            .apply(
                &Modification::ChangeHeader {
                    index: 1,
                    name: "Received".into(),
                    value: "forged".into(),
                },
                false,
                false,
            )
            .unwrap();
        assert_eq!(log, "Milter change (add): header: Received: forged");
        assert!(text(&m).starts_with("Received: from x"));
        let log = m.apply(
            &Modification::ChangeHeader {
                index: 1,
                name: "X-None".into(),
                value: String::new(),
            },
            false,
            false,
        );
        assert_eq!(log.unwrap(), "Milter delete (noop): header: X-None");
    }

    #[test]
    fn body_replacement_concatenates_and_normalises() {
        let mut m = message();
        let log = m.apply(&Modification::ReplaceBody(b"new\nbo".to_vec()), false, true);
        assert_eq!(log.unwrap(), "Milter message: body replaced");
        assert!(m
            .apply(&Modification::ReplaceBody(b"dy\r\n".to_vec()), false, false)
            .is_none());
        m.normalise_body();
        assert_eq!(m.body, b"new\r\nbody\r\n");
    }
}
