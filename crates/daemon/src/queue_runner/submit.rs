//! Local submission (`sendmail`, `sendmail -t`, `sendmail -bs`): the tool
//! wrote the message to a file and master, having checked who the caller
//! is, handed the queue runner that file. Here it becomes a queued
//! message the way sendmail makes one: line ends canonicalised, recipients
//! taken from the headers with `-t` (Bcc: removed), From:, Date: and
//! Message-Id: added where missing, a `Received: (from user@localhost)`
//! header, and with authwarnings an `X-Authentication-Warning:` when an
//! untrusted user sets the sender with -f.

use std::io::Write;

use postern_ipc::{Caller, ControlReply, Submission, Sysexit};
use postern_queue::{received_header, ControlFile, ReceivedInfo, RecipientEntry};
use postern_smtp::address::{parse_forward_path, parse_reverse_path, ReversePath};
use postern_smtp::PrivacyFlags;

use super::{logline, QueueRunner};
use crate::log;

/// The most a submitted message may be when MaxMessageSize is unlimited.
const SUBMIT_LIMIT: u64 = 64 << 20;

/// The largest message a local user may submit: MaxMessageSize, or 64 MiB
/// when that is unlimited (the queue runner reads it in one go).
pub(crate) fn submit_limit(config: &postern_config::Config) -> u64 {
    match config.max_message_size {
        0 => SUBMIT_LIMIT,
        n => n,
    }
}

fn failed(message: impl Into<String>, exit_code: Sysexit) -> ControlReply {
    ControlReply::Failed {
        message: message.into(),
        exit_code,
    }
}

/// `\n` and lone `\r` become `\r\n`; the text ends with a line end.
fn canonical_line_ends(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 32 + 2);
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'\r' if raw.get(i + 1) == Some(&b'\n') => {
                out.extend_from_slice(b"\r\n");
                i += 1;
            }
            b'\r' | b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
        i += 1;
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// The message split into header lines (unfolded groups kept as written)
/// and the body after the blank line.
struct Parsed {
    headers: Vec<String>,
    body: Vec<u8>,
}

fn is_header_start(line: &str) -> bool {
    line.split_once(':').is_some_and(|(name, _)| {
        !name.is_empty() && name.bytes().all(|b| (33..=126).contains(&b) && b != b':')
    })
}

fn parse(message: &[u8]) -> Parsed {
    let mut headers: Vec<String> = Vec::new();
    let mut pos = 0;
    while pos < message.len() {
        let end = message[pos..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .map_or(message.len(), |e| pos + e);
        let line = String::from_utf8_lossy(&message[pos..end]).into_owned();
        let next = (end + 2).min(message.len());
        if line.is_empty() {
            return Parsed {
                headers,
                body: message[next..].to_vec(),
            };
        }
        if line.starts_with([' ', '\t']) && !headers.is_empty() {
            let last = headers.len() - 1;
            headers[last].push_str("\r\n");
            headers[last].push_str(&line);
        } else if is_header_start(&line) {
            headers.push(line);
        } else {
            // Text without a blank line first: all of it is body.
            return Parsed {
                headers,
                body: message[pos..].to_vec(),
            };
        }
        pos = next;
    }
    Parsed {
        headers,
        body: Vec::new(),
    }
}

fn header_name(header: &str) -> &str {
    header.split_once(':').map_or("", |(n, _)| n.trim())
}

fn header_value(header: &str) -> String {
    header.split_once(':').map_or(String::new(), |(_, v)| {
        v.replace("\r\n", " ").trim().to_string()
    })
}

/// The addresses of an address-list header value: `a@b, "X Y" <c@d>`,
/// comments and group syntax tolerated.
fn addresses(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut current, mut quoted, mut angle, mut comment) = (String::new(), false, false, 0u32);
    let mut push = |s: &mut String| {
        let t = s.trim();
        let t = t
            .rsplit_once(':')
            .map_or(t, |(_, rest)| rest)
            .trim()
            .trim_end_matches(';')
            .trim();
        if !t.is_empty() {
            out.push(t.to_string());
        }
        s.clear();
    };
    let mut in_brackets = String::new();
    for c in value.chars() {
        match c {
            '"' if comment == 0 => quoted = !quoted,
            '(' if !quoted => comment += 1,
            ')' if !quoted && comment > 0 => comment -= 1,
            '<' if !quoted && comment == 0 => {
                angle = true;
                in_brackets.clear();
            }
            '>' if angle => {
                angle = false;
                current = in_brackets.clone();
            }
            ',' if !quoted && !angle && comment == 0 => push(&mut current),
            _ if comment > 0 => {}
            _ if angle => in_brackets.push(c),
            _ => current.push(c),
        }
    }
    push(&mut current);
    out
}

/// `-F`'s full name as an RFC 5322 quoted string: no control characters,
/// at most 256 characters, `"` and `\\` escaped, so it can only ever be a
/// display name.
fn quoted_name(name: &str) -> String {
    let clean: String = name.chars().filter(|c| !c.is_control()).take(256).collect();
    let clean = clean.trim();
    if clean.is_empty() {
        return String::new();
    }
    format!("\"{}\"", clean.replace('\\', "\\\\").replace('"', "\\\""))
}

impl QueueRunner {
    /// Queues a submitted message whose bytes `raw` were read (at most
    /// the limit and one byte more, by a reader thread).
    pub(super) fn submit(&mut self, caller: &Caller, s: &Submission, raw: Vec<u8>) -> ControlReply {
        let host = self.settings.hostname.clone();
        let limit = submit_limit(&self.settings.config);
        if raw.len() as u64 > limit {
            return failed(
                format!("Message is too large (more than {limit} bytes)"),
                Sysexit::DataErr,
            );
        }
        let mut parsed = parse(&canonical_line_ends(&raw));

        // Recipients: the command line, and with -t the headers.
        let mut wanted: Vec<String> = s.recipients.clone();
        if s.extract_recipients {
            // sendmail's -t: the headers name the recipients, and addresses
            // also given on the command line are suppressed.
            let suppressed = std::mem::take(&mut wanted);
            for h in &parsed.headers {
                if ["to", "cc", "bcc"].contains(&header_name(h).to_ascii_lowercase().as_str()) {
                    let found = addresses(&header_value(h));
                    wanted.extend(found.into_iter().filter(|a| !suppressed.contains(a)));
                }
            }
        }
        // Blind copies stay blind, with or without -t (sendmail deletes
        // Bcc: whenever it writes the headers).
        parsed
            .headers
            .retain(|h| !header_name(h).eq_ignore_ascii_case("bcc"));
        if wanted.is_empty() {
            return failed("No recipient addresses found in header", Sysexit::DataErr);
        }
        let mut recipients = Vec::new();
        for w in &wanted {
            match parse_forward_path(w) {
                Ok(mut m) => {
                    if m.domain.is_none() {
                        m.domain = Some(postern_smtp::address::Domain::Name(host.clone()));
                    }
                    let a = m.to_string();
                    if !recipients.contains(&a) {
                        recipients.push(a);
                    }
                }
                Err(e) => return failed(format!("{w}... {e}"), Sysexit::DataErr),
            }
        }

        // The sender: -f, else the caller.
        let own = format!("{}@{host}", caller.user);
        let sender = match s.sender.as_deref() {
            None => own.clone(),
            Some("" | "<>") => String::new(),
            Some(f) => match parse_reverse_path(f) {
                Ok(ReversePath::Null) => String::new(),
                Ok(ReversePath::Mailbox(mut m)) => {
                    if m.domain.is_none() {
                        m.domain = Some(postern_smtp::address::Domain::Name(host.clone()));
                    }
                    m.to_string()
                }
                Err(e) => return failed(format!("{f}... {e}"), Sysexit::DataErr),
            },
        };

        let (id, mut data) = match self.spool.create(&mut self.ids) {
            Ok(created) => created,
            Err(e) => return failed(format!("cannot queue the message: {e}"), Sysexit::TempFail),
        };
        let now_secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let offset = chrono::Local::now().offset().local_minus_utc();
        let date = postern_smtp::date::rfc5322_date(now_secs as i64, offset);
        let client = format!("{}@localhost", caller.user);
        let version = format!("Postern {}", env!("CARGO_PKG_VERSION"));
        let one = match recipients.as_slice() {
            [r] => Some(format!("<{r}>")),
            _ => None,
        };
        let mut head = received_header(&ReceivedInfo {
            helo: None,
            client: &client,
            authenticated: false,
            auth_bits: None,
            hostname: &host,
            version: &version,
            protocol: None,
            queue_id: id.as_str(),
            tls: None,
            for_recipient: one.as_deref(),
            date: &date,
        });
        // sendmail's X-Authentication-Warning texts (REFERENCE §1.6): an
        // untrusted user setting another sender with -f, or speaking -bs as
        // someone else.
        let forged = !caller.trusted && s.sender.is_some() && sender != own;
        if forged
            && self
                .settings
                .config
                .privacy
                .contains(PrivacyFlags::AUTH_WARNINGS)
        {
            let warning = if s.smtp {
                format!("{host}: {} owned process doing -bs", caller.user)
            } else {
                let shown = if sender.is_empty() {
                    "<>".to_string()
                } else {
                    sender.clone()
                };
                format!("{host}: {} set sender to {shown} using -f", caller.user)
            };
            head.push_str(&format!("X-Authentication-Warning: {warning}\r\n"));
            log::info(4, &format!("{id}: Authentication-Warning: {warning}"));
        }
        let has = |name: &str| {
            parsed
                .headers
                .iter()
                .any(|h| header_name(h).eq_ignore_ascii_case(name))
        };
        let mut added = Vec::new();
        if !has("From") {
            let from = if sender.is_empty() {
                own.clone()
            } else {
                sender.clone()
            };
            added.push(match s.full_name.as_deref().map(quoted_name) {
                Some(name) if !name.is_empty() => format!("From: {name} <{from}>"),
                _ => format!("From: {from}"),
            });
        }
        if !has("Date") {
            added.push(format!("Date: {date}"));
        }
        if !has("Message-Id") {
            let stamp = chrono::Local::now().format("%Y%m%d%H%M");
            added.push(format!("Message-Id: <{stamp}.{id}@{host}>"));
        }
        let mut text = head.into_bytes();
        for h in parsed.headers.iter().chain(added.iter()) {
            text.extend_from_slice(h.as_bytes());
            text.extend_from_slice(b"\r\n");
        }
        text.extend_from_slice(b"\r\n");
        text.extend_from_slice(&parsed.body);
        if let Err(e) = data.write_all(&text) {
            let _ = self.spool.abort(&id);
            return failed(format!("cannot queue the message: {e}"), Sysexit::TempFail);
        }

        let mut control = ControlFile::new(id.clone(), now_secs, sender.clone());
        control.size = text.len() as u64;
        control.client = client.clone();
        control.submitter_uid = Some(caller.uid);
        control.recipients = recipients
            .iter()
            .map(|r| RecipientEntry::new(r.clone()))
            .collect();
        if let Err(e) = self.spool.commit(&id, &data, &control) {
            let _ = self.spool.remove(&id);
            let _ = self.spool.abort(&id);
            return failed(format!("cannot queue the message: {e}"), Sysexit::TempFail);
        }
        let message_id = parsed
            .headers
            .iter()
            .chain(added.iter())
            .find(|h| header_name(h).eq_ignore_ascii_case("message-id"))
            .map(|h| header_value(h));
        log::info(
            5,
            &logline::from_line(&control, message_id.as_deref(), None),
        );
        self.schedule
            .add_at(id.clone(), 0, super::schedule::domains_of(&control));
        ControlReply::Submitted { queue_id: id }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_names_are_quoted_display_names() {
        assert_eq!(quoted_name("Craig Hunt"), "\"Craig Hunt\"");
        assert_eq!(
            quoted_name("ceo@bank.com, x\r\nBcc: y"),
            "\"ceo@bank.com, xBcc: y\""
        );
        assert_eq!(quoted_name("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(quoted_name("\u{1}"), "");
    }

    #[test]
    fn line_ends_become_crlf() {
        assert_eq!(
            canonical_line_ends(b"a\nb\r\nc\rd"),
            b"a\r\nb\r\nc\r\nd\r\n"
        );
        assert_eq!(canonical_line_ends(b""), b"");
    }

    #[test]
    fn header_addresses() {
        assert_eq!(
            addresses("a@b, \"X, Y\" <c@d>, e@f (comment, x)"),
            ["a@b", "c@d", "e@f"]
        );
        assert_eq!(addresses("friends: g@h, i@j;"), ["g@h", "i@j"]);
        assert!(addresses("").is_empty());
    }

    #[test]
    fn headers_and_body() {
        let p = parse(b"To: a@b\r\nSubject: x\r\n y\r\n\r\nbody\r\n");
        assert_eq!(p.headers, ["To: a@b", "Subject: x\r\n y"]);
        assert_eq!(p.body, b"body\r\n");
        let p = parse(b"just text\r\n");
        assert!(p.headers.is_empty());
        assert_eq!(p.body, b"just text\r\n");
    }
}
