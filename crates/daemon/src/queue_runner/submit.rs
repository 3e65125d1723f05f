//! Local submission (`sendmail`, `sendmail -t`, `sendmail -bs`): the tool,
//! running as the caller, did the header work (`-t`, Bcc:, From:, Date:)
//! and wrote the message to a file; master, having checked who the caller
//! is, handed the queue runner that file. Here the queue runner parses no
//! header of it. It decides what only it may decide: the envelope's
//! addresses qualified with `$j`, the `Received: (from user@localhost)`
//! header for the caller's uid, with authwarnings an
//! `X-Authentication-Warning:` when an untrusted user sets the sender with
//! -f, and a Message-Id naming the queue ID when the tool found none. Line
//! ends become CRLF, so the spool holds only CRLF lines whoever wrote the
//! file.

use std::io::Write;

use postern_ipc::{Caller, ControlReply, Submission, Sysexit};
use postern_queue::{received_header, ControlFile, QueueId, ReceivedInfo, RecipientEntry};
use postern_smtp::address::{parse_forward_path, parse_reverse_path, Domain, ReversePath};
use postern_smtp::PrivacyFlags;

use super::QueueRunner;
use crate::log;

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

/// A HELO name as `-bs` may pass it on: a host name or an address
/// literal, nothing that could break the header.
fn plausible_helo(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._:[]".contains(&b))
}

/// The submission's envelope, its addresses checked and qualified.
struct Envelope {
    sender: String,
    recipients: Vec<String>,
    /// The caller's own address, `user@$j`.
    own: String,
}

fn envelope(caller: &Caller, s: &Submission, host: &str) -> Result<Envelope, ControlReply> {
    let qualify = |mut m: postern_smtp::address::Mailbox| {
        if m.domain.is_none() {
            m.domain = Some(Domain::Name(host.to_string()));
        }
        m.to_string()
    };
    let mut recipients = Vec::new();
    for r in &s.recipients {
        match parse_forward_path(r) {
            Ok(m) => {
                let address = qualify(m);
                if !recipients.contains(&address) {
                    recipients.push(address);
                }
            }
            Err(e) => return Err(failed(format!("{r}... {e}"), Sysexit::DataErr)),
        }
    }
    if recipients.is_empty() {
        return Err(failed("No recipient addresses", Sysexit::DataErr));
    }
    let own = format!("{}@{host}", caller.user);
    let sender = match s.sender.as_deref() {
        None => own.clone(),
        Some("" | "<>") => String::new(),
        Some(f) => match parse_reverse_path(f) {
            Ok(ReversePath::Null) => String::new(),
            Ok(ReversePath::Mailbox(m)) => qualify(m),
            Err(e) => return Err(failed(format!("{f}... {e}"), Sysexit::DataErr)),
        },
    };
    Ok(Envelope {
        sender,
        recipients,
        own,
    })
}

impl QueueRunner {
    /// Queues a submitted message whose bytes `raw` were read (at most
    /// the limit and one byte more, by a reader thread).
    pub(super) fn submit(&mut self, caller: &Caller, s: &Submission, raw: Vec<u8>) -> ControlReply {
        let limit = self.settings.config.submission_limit();
        if raw.len() as u64 > limit {
            return failed(
                format!("Message is too large (more than {limit} bytes)"),
                Sysexit::DataErr,
            );
        }
        let host = self.settings.hostname.clone();
        let envelope = match envelope(caller, s, &host) {
            Ok(envelope) => envelope,
            Err(refused) => return refused,
        };
        let (id, mut data) = match self.spool.create(&mut self.ids) {
            Ok(created) => created,
            Err(e) => return failed(format!("cannot queue the message: {e}"), Sysexit::TempFail),
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let (head, message_id) = self.trace_headers(caller, s, &envelope, &id, now);
        let mut text = head.into_bytes();
        text.extend_from_slice(&canonical_line_ends(&raw));
        if let Err(e) = data.write_all(&text) {
            let _ = self.spool.abort(&id);
            return failed(format!("cannot queue the message: {e}"), Sysexit::TempFail);
        }
        let mut control = ControlFile::new(id.clone(), now, envelope.sender);
        control.size = text.len() as u64;
        control.client = format!("{}@localhost", caller.user);
        control.submitter_uid = Some(caller.uid);
        control.recipients = envelope
            .recipients
            .into_iter()
            .map(RecipientEntry::new)
            .collect();
        match self.enqueue(&data, &control, Some(&message_id), None) {
            Ok(()) => ControlReply::Submitted { queue_id: id },
            Err(e) => failed(format!("cannot queue the message: {e}"), Sysexit::TempFail),
        }
    }

    /// The headers the queue runner puts on top of a submitted message:
    /// `Received:`, X-Authentication-Warning when due, and a Message-Id
    /// when the message has none; and the Message-Id for the log line.
    fn trace_headers(
        &self,
        caller: &Caller,
        s: &Submission,
        envelope: &Envelope,
        id: &QueueId,
        now: u64,
    ) -> (String, String) {
        let host = &self.settings.hostname;
        let offset = chrono::Local::now().offset().local_minus_utc();
        let date = postern_smtp::date::rfc5322_date(now as i64, offset);
        let client = format!("{}@localhost", caller.user);
        let version = format!("Postern {}", env!("CARGO_PKG_VERSION"));
        // sendmail's `for` names the one recipient given on the command
        // line, as given; none for -t or -bs.
        let one = match s.recipients.as_slice() {
            [r] if !s.smtp && !s.from_headers => Some(r.clone()),
            _ => None,
        };
        // Under -bs, sendmail records the session's HELO name and protocol;
        // what the tool claims is only used if it could be true.
        let session = s.session.as_ref();
        let helo = session
            .and_then(|s| s.helo.as_deref())
            .filter(|h| plausible_helo(h));
        let protocol = session
            .map(|s| s.protocol.as_str())
            .filter(|p| matches!(*p, "SMTP" | "ESMTP"));
        let mut head = received_header(&ReceivedInfo {
            helo,
            client: &client,
            authenticated: false,
            auth_bits: None,
            hostname: host,
            version: &version,
            protocol,
            queue_id: id.as_str(),
            tls: None,
            for_recipient: one.as_deref(),
            date: &date,
        });
        if let Some(warning) = self.authentication_warning(caller, s, envelope) {
            head.push_str(&format!("X-Authentication-Warning: {warning}\r\n"));
            log::info(
                log::Level::Refusal,
                &format!("{id}: Authentication-Warning: {warning}"),
            );
        }
        let message_id = match &s.message_id {
            Some(found) => found.clone(),
            None => {
                let made = postern_queue::message_id(now as i64, offset, id.as_str(), host);
                head.push_str(&format!("Message-Id: {made}\r\n"));
                made
            }
        };
        (head, message_id)
    }

    /// sendmail's X-Authentication-Warning texts (REFERENCE §1.6), under
    /// authwarnings: an untrusted user setting another sender with -f, or
    /// speaking -bs as someone else.
    fn authentication_warning(
        &self,
        caller: &Caller,
        s: &Submission,
        envelope: &Envelope,
    ) -> Option<String> {
        let privacy = self.settings.config.privacy;
        let forged = !caller.trusted && s.sender.is_some() && envelope.sender != envelope.own;
        if !forged || !privacy.contains(PrivacyFlags::AUTH_WARNINGS) {
            return None;
        }
        let host = &self.settings.hostname;
        Some(if s.smtp {
            format!("{host}: {} owned process doing -bs", caller.user)
        } else {
            let shown = if envelope.sender.is_empty() {
                "<>"
            } else {
                &envelope.sender
            };
            format!("{host}: {} set sender to {shown} using -f", caller.user)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_ends_become_crlf() {
        assert_eq!(
            canonical_line_ends(b"a\nb\r\nc\rd"),
            b"a\r\nb\r\nc\r\nd\r\n"
        );
        assert_eq!(canonical_line_ends(b""), b"");
    }

    fn caller() -> Caller {
        Caller {
            uid: 1000,
            gid: 1000,
            user: "alice".into(),
            trusted: false,
        }
    }

    #[test]
    fn envelope_addresses_are_qualified_checked_and_deduplicated() {
        let s = Submission {
            sender: Some("bob".into()),
            recipients: vec![
                "carol".into(),
                "carol@mx.example".into(),
                "d@x.example".into(),
            ],
            ..Default::default()
        };
        let e = envelope(&caller(), &s, "mx.example").unwrap_or_else(|_| panic!());
        assert_eq!(e.sender, "bob@mx.example");
        assert_eq!(e.recipients, ["carol@mx.example", "d@x.example"]);
        assert_eq!(e.own, "alice@mx.example");
        let bad = Submission {
            recipients: vec!["a b@c".into()],
            ..Default::default()
        };
        assert!(envelope(&caller(), &bad, "mx.example").is_err());
        assert!(envelope(&caller(), &Submission::default(), "mx.example").is_err());
    }
}
