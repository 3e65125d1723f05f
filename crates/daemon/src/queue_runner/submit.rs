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

/// An ENVID as MAIL FROM's ENVID= allows it (decoded): printable ASCII,
/// bounded. The tool checked it; the queue runner trusts no caller.
fn plausible_envid(envid: &str) -> bool {
    !envid.is_empty()
        && envid.len() <= postern_smtp::limits::ENVID
        && envid.bytes().all(|b| (32..=126).contains(&b))
}

/// An ORCPT as RCPT TO's ORCPT= allows it.
fn plausible_orcpt(orcpt: &postern_smtp::params::Orcpt) -> bool {
    let text = orcpt.to_xtext();
    text.len() <= postern_smtp::limits::ORCPT
        && !orcpt.address.is_empty()
        && orcpt.address.bytes().all(|b| (32..=126).contains(&b))
        && !orcpt.addr_type.is_empty()
        && orcpt
            .addr_type
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// The submission's envelope, its addresses checked and qualified.
struct Envelope {
    sender: String,
    /// Each with the NOTIFY and ORCPT it came with.
    recipients: Vec<RecipientEntry>,
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
    let mut recipients: Vec<RecipientEntry> = Vec::new();
    for r in &s.recipients {
        match parse_forward_path(&r.address) {
            Ok(m) => {
                let address = qualify(m);
                if let Some(orcpt) = r.orcpt.as_ref().filter(|o| !plausible_orcpt(o)) {
                    return Err(failed(
                        format!("{}... invalid ORCPT {:?}", r.address, orcpt.address),
                        Sysexit::DataErr,
                    ));
                }
                if !recipients.iter().any(|e| e.address == address) {
                    let mut entry = RecipientEntry::new(address);
                    entry.notify = r.notify;
                    entry.orcpt = r.orcpt.clone();
                    recipients.push(entry);
                }
            }
            Err(e) => return Err(failed(format!("{}... {e}", r.address), Sysexit::DataErr)),
        }
    }
    if let Some(envid) = s.envid.as_deref().filter(|e| !plausible_envid(e)) {
        return Err(failed(format!("invalid ENVID {envid:?}"), Sysexit::DataErr));
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
        // The DSN parameters and the body type, as a front's envelope
        // gives them (`fronts.rs`, control_file).
        control.envid = s.envid.clone();
        control.ret = s.ret;
        control.body = s.body;
        control.recipients = envelope.recipients;
        // With mail filters, a local submission is relayed to the MTA
        // listener first, where a front runs them (sendmail's MSP does
        // the same through `[127.0.0.1]`).
        control.through_mta = !self.settings.config.input_filters().is_empty()
            && self.settings.mta_listener().is_some();
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
            [r] if !s.smtp && !s.from_headers => Some(r.address.clone()),
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
    use postern_ipc::EnvelopeRecipient;
    use postern_smtp::params::{Notify, Orcpt};

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
        let notify = Notify {
            success: true,
            ..Default::default()
        };
        let s = Submission {
            sender: Some("bob".into()),
            recipients: vec![
                rcpt("carol", Some(notify)),
                rcpt("carol@mx.example", None),
                rcpt("d@x.example", None),
            ],
            ..Default::default()
        };
        let e = envelope(&caller(), &s, "mx.example").unwrap_or_else(|_| panic!());
        assert_eq!(e.sender, "bob@mx.example");
        let addresses: Vec<&str> = e.recipients.iter().map(|r| r.address.as_str()).collect();
        assert_eq!(addresses, ["carol@mx.example", "d@x.example"]);
        assert_eq!(e.recipients[0].notify, Some(notify));
        assert_eq!(e.recipients[1].notify, None);
        assert_eq!(e.own, "alice@mx.example");
        let bad = Submission {
            recipients: vec![rcpt("a b@c", None)],
            ..Default::default()
        };
        assert!(envelope(&caller(), &bad, "mx.example").is_err());
        assert!(envelope(&caller(), &Submission::default(), "mx.example").is_err());
    }

    fn rcpt(address: &str, notify: Option<Notify>) -> EnvelopeRecipient {
        EnvelopeRecipient {
            address: address.into(),
            notify,
            orcpt: None,
            target: None,
        }
    }

    #[test]
    fn implausible_dsn_parameters_are_refused() {
        let envid = Submission {
            recipients: vec![rcpt("a@x.example", None)],
            envid: Some("a\r\nb".into()),
            ..Default::default()
        };
        assert!(envelope(&caller(), &envid, "mx.example").is_err());
        let long = Submission {
            envid: Some("x".repeat(101)),
            ..envid.clone()
        };
        assert!(envelope(&caller(), &long, "mx.example").is_err());
        let fine = Submission {
            envid: Some("an id".into()),
            ..envid.clone()
        };
        assert!(envelope(&caller(), &fine, "mx.example").is_ok());
        let mut orcpt = rcpt("a@x.example", None);
        orcpt.orcpt = Some(Orcpt {
            addr_type: "rfc822".into(),
            address: "a\nb".into(),
        });
        let bad = Submission {
            recipients: vec![orcpt],
            ..Default::default()
        };
        assert!(envelope(&caller(), &bad, "mx.example").is_err());
    }
}
