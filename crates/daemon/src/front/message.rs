//! The message as the front writes it into the pipe the queue runner gave
//! it: the Received: header first, then the text as the session passes it
//! on. As sendmail does on receipt, a message whose header section lacks
//! `Date:` or `Message-Id:` gets them, right after the Received: header
//! (where sendmail puts them): so the header section is held until its end
//! is seen (at most [`HEADER_SCAN_LIMIT`] bytes), then everything streams
//! through. The Message-ID, found or made, goes on sendmail's `msgid=` log
//! line. Closing the pipe is what tells the queue runner the message is
//! complete; the front never holds a spool file.

use std::io::{BufWriter, Write};

use mail_parser::MessageParser;
use postern_ipc::{EnvelopeRecipient, MessageEnvelope, QueueId};
use postern_queue::{received_header, ReceivedInfo, TlsLine};
use postern_smtp::address::ReversePath;
use postern_smtp::server::{Envelope, Session};

use super::header_section::{HeaderScan, SectionEnd};
use super::pipe::TimedPipe;
use crate::settings::Settings;

/// The longest header section held to see what it lacks. A longer one
/// (hardly mail) is passed on as it is, with nothing added.
const HEADER_SCAN_LIMIT: usize = 64 * 1024;

/// What goes on top of the message, and what is added if missing.
#[derive(Clone, Debug)]
pub struct Head {
    /// The Received: header, and any X-Authentication-Warning:
    /// headers, CRLF-terminated.
    pub received: String,
    /// The value for a missing `Date:`.
    pub date: String,
    /// The value for a missing `Message-Id:`.
    pub message_id: String,
}

/// A message being written.
pub struct MessageFile {
    queue_id: QueueId,
    out: BufWriter<TimedPipe>,
    /// Until the header section has been written: it, and the head.
    pending: Option<(HeaderScan, Head)>,
    message_id: Option<String>,
    /// The first write error; nothing is written after it.
    failed: Option<std::io::Error>,
    /// For the mail filters: the message is held here, the head (what
    /// Postern adds) apart from the client's text, and written only once
    /// the filters have had their say.
    held: Option<Held>,
}

/// A held message.
#[derive(Default)]
pub struct Held {
    /// Received:, X-Authentication-Warning:, and a Date: or Message-Id:
    /// Postern supplied.
    pub head: Vec<u8>,
    /// The client's message.
    pub text: Vec<u8>,
}

impl MessageFile {
    /// A message that will start with `head`; `pipe` is the write end the
    /// queue runner passed.
    pub fn start(queue_id: QueueId, pipe: TimedPipe, head: Head) -> Self {
        Self {
            queue_id,
            out: BufWriter::with_capacity(128 * 1024, pipe),
            pending: Some((HeaderScan::default(), head)),
            message_id: None,
            failed: None,
            held: None,
        }
    }

    /// A message held in memory until [`MessageFile::finish_held`], for
    /// the mail filters.
    pub fn start_held(queue_id: QueueId, pipe: TimedPipe, head: Head) -> Self {
        let mut file = Self::start(queue_id, pipe, head);
        file.held = Some(Held::default());
        file
    }

    /// The held message, complete (for the filters).
    pub fn take_held(&mut self) -> Option<Held> {
        self.write_head(None);
        self.held.take()
    }

    /// The queue id the queue runner gave.
    pub fn queue_id(&self) -> &QueueId {
        &self.queue_id
    }

    /// Appends text; an error is remembered and reported at the end, so
    /// the client still gets a proper reply after its final dot.
    pub fn write(&mut self, bytes: &[u8]) {
        let Some((scan, _)) = self.pending.as_mut() else {
            self.put(bytes);
            return;
        };
        if let Some(end) = scan.push(bytes) {
            self.write_head(Some(end));
        } else if scan.len() > HEADER_SCAN_LIMIT {
            self.write_head(None);
        }
    }

    /// Writes the head, the header section with what it lacks, and what
    /// followed it so far; `end` is `None` when the section's end was not
    /// seen (too long, or the message ended in it).
    fn write_head(&mut self, end: Option<SectionEnd>) {
        let Some((scan, head)) = self.pending.take() else {
            return;
        };
        let complete = end.is_some() || scan.len() <= HEADER_SCAN_LIMIT;
        let mut top = head.received;
        if complete && !scan.has_field("Date") {
            top.push_str(&format!("Date: {}\r\n", head.date));
        }
        if complete && !scan.has_field("Message-Id") {
            top.push_str(&format!("Message-Id: {}\r\n", head.message_id));
            self.message_id = Some(head.message_id);
        }
        let text = scan.into_bytes();
        let at = end.map_or(text.len(), |e| e.at);
        if self.message_id.is_none() {
            self.message_id = message_id(&text[..at]);
        }
        match self.held.as_mut() {
            Some(held) => held.head.extend_from_slice(top.as_bytes()),
            None => self.put(top.as_bytes()),
        }
        self.put(&text[..at]);
        if end.is_some_and(|e| !e.blank_line) {
            // The body's first line is not a header: keep it the body.
            self.put(b"\r\n");
        }
        self.put(&text[at..]);
    }

    fn put(&mut self, bytes: &[u8]) {
        if let Some(held) = self.held.as_mut() {
            held.text.extend_from_slice(bytes);
            return;
        }
        if self.failed.is_none() {
            if let Err(e) = self.out.write_all(bytes) {
                self.failed = Some(e);
            }
        }
    }

    /// Flushes the message and closes the pipe (the queue runner sees its
    /// end); returns the Message-ID. `BrokenPipe` means the queue runner
    /// stopped taking the message (a full disk, say): it says why when
    /// asked to commit.
    /// Writes `message` (the filters' result, head included) instead of
    /// what was held, and finishes as [`MessageFile::finish`]; the
    /// Message-ID is read again from it.
    pub fn finish_held(mut self, message: &[u8]) -> std::io::Result<Option<String>> {
        self.held = None;
        self.pending = None;
        self.put(message);
        let end = message
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(message.len(), |i| i + 2);
        self.message_id = message_id(&message[..end]);
        self.finish()
    }

    pub fn finish(mut self) -> std::io::Result<Option<String>> {
        // A message that is all header section.
        self.write_head(None);
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        self.out.flush()?;
        // Closed here, before the commit is asked for.
        drop(self.out.into_inner().map_err(|e| e.into_error())?);
        Ok(self.message_id)
    }
}

/// The Message-ID header's value, unfolded, if present (the queue runner
/// makes it one bounded line for the log).
fn message_id(headers: &[u8]) -> Option<String> {
    let parsed = MessageParser::new().parse_headers(headers)?;
    let header = parsed
        .headers()
        .iter()
        .find(|h| h.name.as_str().eq_ignore_ascii_case("Message-ID"))?;
    let raw = headers.get(header.offset_start as usize..header.offset_end as usize)?;
    let value = String::from_utf8_lossy(raw);
    Some(value.split_whitespace().collect::<Vec<_>>().join(" ")).filter(|v| !v.is_empty())
}

/// The Received: header for this message, in sendmail's layout, and the
/// Date: and Message-Id: it gets if it has none.
pub fn head(
    settings: &Settings,
    session: &Session,
    client: &str,
    queue_id: &QueueId,
    for_recipient: Option<&str>,
    utc_offset: i32,
) -> Head {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let date = postern_smtp::date::rfc5322_date(now, utc_offset);
    let version = format!("Postern {}", env!("CARGO_PKG_VERSION"));
    let recipient = for_recipient.map(|r| format!("<{r}>"));
    let tls = session.tls();
    let received = received_header(&ReceivedInfo {
        helo: session.helo_name(),
        client,
        authenticated: session.auth_identity().is_some(),
        auth_bits: session.auth_identity().map(|_| 0),
        hostname: &settings.hostname,
        version: &version,
        protocol: Some(session.protocol()),
        queue_id: queue_id.as_str(),
        tls: tls.map(|t| TlsLine {
            version: &t.version,
            cipher: &t.cipher,
            bits: t.cipher_bits,
            verify: t.verify.as_str(),
        }),
        for_recipient: recipient.as_deref(),
        date: &date,
    });
    let mut received = received;
    for warning in session.auth_warnings() {
        let warning = format!("{}: {warning}", settings.hostname);
        received.push_str(&format!("X-Authentication-Warning: {warning}\r\n"));
        crate::log::info(
            crate::log::Level::Refusal,
            &format!("{queue_id}: Authentication-Warning: {warning}"),
        );
    }
    Head {
        received,
        message_id: postern_queue::message_id(
            now,
            utc_offset,
            queue_id.as_str(),
            &settings.hostname,
        ),
        date,
    }
}

/// The envelope as the queue runner records it; recipients as the
/// front accepted them (qualified with `$j`).
pub fn ipc_envelope(e: &Envelope, hostname: &str, message_id: Option<String>) -> MessageEnvelope {
    let sender = match &e.reverse_path {
        ReversePath::Null => String::new(),
        ReversePath::Mailbox(m) => m.to_string(),
    };
    let p = &e.mail_params;
    MessageEnvelope {
        helo: e.helo.clone(),
        protocol: e.protocol.to_string(),
        sender,
        envid: p.envid.clone(),
        ret: p.ret,
        body: e.body,
        deliver_by: p.by,
        message_id,
        recipients: e
            .recipients
            .iter()
            .map(|(m, rp)| EnvelopeRecipient {
                address: crate::policy::qualify(m, hostname).to_string(),
                notify: rp.notify,
                orcpt: rp.orcpt.clone(),
                target: None,
            })
            .collect(),
        quarantine: None,
        discard: false,
    }
}

#[cfg(test)]
mod tests {
    use super::message_id;

    #[test]
    fn message_id_is_found_in_the_header_section_only() {
        assert_eq!(
            message_id(b"Subject: x\r\nmessage-id:\r\n  <a.b@c>\r\n\r\nbody\r\n").as_deref(),
            Some("<a.b@c>")
        );
        assert_eq!(
            message_id(b"Subject: x\r\n\r\nMessage-ID: <no@body>\r\n"),
            None
        );
        assert_eq!(message_id(b"Message-ID:\r\n\r\n"), None);
        assert_eq!(message_id(b""), None);
    }
}
