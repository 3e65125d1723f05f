//! The message as the front writes it into the pipe the queue runner gave
//! it: the Received: header first, then the text as the session passes it
//! on. It also picks the Message-ID out of the header section for the
//! `msgid=` of sendmail's log line. Closing the pipe is what tells the
//! queue runner the message is complete; the front never holds a spool
//! file.

use std::fs::File;
use std::io::{BufWriter, Write};

use mail_parser::MessageParser;
use postern_ipc::{EnvelopeRecipient, MessageEnvelope, QueueId};
use postern_queue::{received_header, ReceivedInfo, TlsLine};
use postern_smtp::address::ReversePath;
use postern_smtp::server::{Envelope, Session};

use crate::settings::Settings;

/// How much of the header section is kept to find the Message-ID.
const HEADER_SCAN_LIMIT: usize = 64 * 1024;

/// A message being written.
pub struct MessageFile {
    queue_id: QueueId,
    out: BufWriter<File>,
    headers: Vec<u8>,
    in_headers: bool,
    failed: bool,
}

impl MessageFile {
    /// Starts the message with its Received: header; `pipe` is the write
    /// end the queue runner passed.
    pub fn start(queue_id: QueueId, pipe: File, received: &str) -> std::io::Result<Self> {
        let mut out = BufWriter::with_capacity(128 * 1024, pipe);
        out.write_all(received.as_bytes())?;
        Ok(Self {
            queue_id,
            out,
            headers: Vec::new(),
            in_headers: true,
            failed: false,
        })
    }

    /// The queue id the queue runner gave.
    pub fn queue_id(&self) -> &QueueId {
        &self.queue_id
    }

    /// Appends text; an error is remembered and reported at the end, so
    /// the client still gets a proper reply after its final dot.
    pub fn write(&mut self, bytes: &[u8]) {
        if self.in_headers {
            let room = HEADER_SCAN_LIMIT.saturating_sub(self.headers.len());
            // Only the new bytes (and the three before them) can complete
            // the blank line.
            let from = self.headers.len().saturating_sub(3);
            self.headers
                .extend_from_slice(&bytes[..bytes.len().min(room)]);
            if self.headers.starts_with(b"\r\n")
                || self.headers[from..].windows(4).any(|w| w == b"\r\n\r\n")
                || room == 0
            {
                self.in_headers = false;
            }
        }
        if !self.failed && self.out.write_all(bytes).is_err() {
            self.failed = true;
        }
    }

    /// Flushes the message and closes the pipe (the queue runner sees its
    /// end); returns the Message-ID, if any.
    pub fn finish(mut self) -> std::io::Result<Option<String>> {
        if self.failed {
            return Err(std::io::Error::other("write to the message pipe failed"));
        }
        self.out.flush()?;
        // Closed here, before the commit is asked for.
        drop(self.out.into_inner().map_err(|e| e.into_error())?);
        Ok(message_id(&self.headers))
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

/// The Received: header for this message, in sendmail's layout.
pub fn received(
    settings: &Settings,
    session: &Session,
    client: &str,
    queue_id: &QueueId,
    for_recipient: Option<&str>,
    utc_offset: i32,
) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let date = postern_smtp::date::rfc5322_date(now, utc_offset);
    let version = format!("Postern {}", env!("CARGO_PKG_VERSION"));
    let recipient = for_recipient.map(|r| format!("<{r}>"));
    let tls = session.tls();
    received_header(&ReceivedInfo {
        helo: session.helo_name(),
        client,
        authenticated: false,
        auth_bits: None,
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
    })
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
            })
            .collect(),
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
