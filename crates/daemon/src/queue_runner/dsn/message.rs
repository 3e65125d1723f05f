//! The text of a delivery status notification (RFC 3462/3464), laid out
//! line for line as sendmail 8.17 writes its bounces (`savemail.c`): the
//! headers, a human-readable part, the `message/delivery-status` part, and
//! the original message or its headers.
//!
//! Owns: the bytes of a report, CRLF line ends, every value reduced to one
//! line. Does not own: deciding which report is due or for whom
//! (`policy.rs`), reading the original from the spool or queueing the
//! report (`mod.rs`). Pure, so it is tested here line by line.

use postern_queue::{ControlFile, RecipientEntry};

/// Which report this is; decides the subject, Auto-Submitted and the
/// texts around the recipients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Permanent failures, or delays past Timeout.queuereturn (`timed_out`
    /// is then the queue lifetime in seconds).
    Failure { timed_out: Option<u64> },
    /// The delay warning after Timeout.queuewarn (`after`), naming the
    /// queue lifetime (`lifetime`), both in seconds.
    Warning { after: u64, lifetime: u64 },
    /// The return of a `BY=<by>;R` message whose deadline passed
    /// (RFC 2852, status 5.4.7).
    DeliverByExpired { by: i64 },
    /// The notice of a `BY=<by>;N` message whose deadline passed; delivery
    /// goes on until the message is `lifetime` seconds old.
    DeliverByWarning { by: i64, lifetime: u64 },
    /// Successful deliveries asked for with NOTIFY=SUCCESS.
    Success,
    /// A report that could not be delivered, sent to the postmaster
    /// (sendmail's double bounce).
    Postmaster,
}

/// What a report says happened to one recipient (RFC 3464 `Action`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Gave up.
    Failed,
    /// Still trying.
    Delayed,
    /// Delivered to a mailbox here.
    Delivered,
    /// Handed to a next hop that does not speak DSN.
    Relayed,
}

impl Action {
    /// The `Action:` field, with sendmail's comments.
    fn field(self) -> &'static str {
        match self {
            Action::Failed => "failed",
            Action::Delayed => "delayed",
            Action::Delivered => "delivered (to mailbox)",
            Action::Relayed => "relayed (to non-DSN-aware mailer)",
        }
    }
}

/// How much of the original goes back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Returned<'a> {
    /// The whole message (`message/rfc822`).
    Full(&'a [u8]),
    /// Its header section only (`text/rfc822-headers`).
    Headers(&'a [u8]),
}

/// Everything a report is made of.
pub struct Report<'a> {
    /// Which report.
    pub kind: Kind,
    /// `$j`.
    pub hostname: &'a str,
    /// The report's own queue ID.
    pub id: &'a str,
    /// The original message's control file.
    pub original: &'a ControlFile,
    /// The recipients reported on, with what happened to each.
    pub recipients: Vec<(&'a RecipientEntry, Action)>,
    /// The report's recipient as its `To:` header shows it.
    pub to: &'a str,
    /// Now, unix seconds.
    pub now: u64,
    /// The local offset from UTC in seconds, for the dates.
    pub utc_offset: i32,
    /// The original, whole or its headers.
    pub returned: Returned<'a>,
    /// `X-Actual-Recipient:` lines (off under `noactualrecipient`).
    pub actual_recipient: bool,
    /// The version for the `Received:` header (`Postern 0.1.0`).
    pub version: &'a str,
}

/// A value as one header line may carry it: no control characters (a
/// decoded ENVID or ORCPT may hold any byte), bounded as sendmail bounds
/// them.
fn one_line(value: &str) -> String {
    value
        .chars()
        .filter(|c| !c.is_control())
        .take(800)
        .collect()
}

/// sendmail's `pintvl(…, true)`: `1 minute`, `4 minutes`, `1 hour, 30 minutes`.
pub fn interval_words(secs: u64) -> String {
    let parts = [
        (secs / 86_400, "day"),
        (secs % 86_400 / 3600, "hour"),
        (secs % 3600 / 60, "minute"),
        (secs % 60, "second"),
    ];
    let words: Vec<String> = parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n} {unit}{}", if *n == 1 { "" } else { "s" }))
        .collect();
    if words.is_empty() {
        "0 seconds".into()
    } else {
        words.join(", ")
    }
}

/// sendmail's words for a permanent failure after `... `: `User unknown`
/// for 5.1.1, else `Service unavailable` (as the `stat=` of the log).
pub fn failure_words(status: &str) -> &'static str {
    if status == "5.1.1" {
        "User unknown"
    } else {
        "Service unavailable"
    }
}

/// The address as sendmail prints it (`q_paddr`): as it came, `<a@b>`
/// over SMTP, bare from the command line.
pub fn printed_address(original: &ControlFile, address: &str) -> String {
    if original.protocol.is_empty() {
        address.to_string()
    } else {
        format!("<{address}>")
    }
}

impl Report<'_> {
    fn date(&self, secs: u64) -> String {
        postern_smtp::date::rfc5322_date(secs as i64, self.utc_offset)
    }

    fn subject(&self) -> (String, &'static str) {
        match self.kind {
            Kind::Failure { .. } | Kind::DeliverByExpired { .. } => (
                "Returned mail: see transcript for details".into(),
                "failure",
            ),
            Kind::DeliverByWarning { by, .. } => (
                format!("Warning: Delivery time ({by}s) exceeded"),
                "warning-timeout",
            ),
            Kind::Warning { after, .. } => (
                format!(
                    "Warning: could not send message for past {}",
                    interval_words(after)
                ),
                "warning-timeout",
            ),
            Kind::Success => ("Return receipt".into(), "return-receipt"),
            Kind::Postmaster => (
                "Postmaster notify: see transcript for details".into(),
                "postmaster-notification",
            ),
        }
    }

    /// The report, CRLF line ends, as it goes into the spool.
    pub fn build(&self) -> Vec<u8> {
        let boundary = format!("{}.{}/{}", self.id, self.now, self.hostname);
        let mut lines: Vec<String> = Vec::new();
        self.headers(&boundary, &mut lines);
        lines.push(String::new());
        lines.push("This is a MIME-encapsulated message".into());
        lines.push(String::new());
        lines.push(format!("--{boundary}"));
        lines.push(String::new());
        self.human_part(&mut lines);
        lines.push(String::new());
        lines.push(format!("--{boundary}"));
        lines.push("Content-Type: message/delivery-status".into());
        lines.push(String::new());
        self.status_part(&mut lines);
        lines.push(String::new());
        lines.push(format!("--{boundary}"));
        let (content_type, original) = match self.returned {
            Returned::Full(bytes) => ("message/rfc822", bytes),
            Returned::Headers(bytes) => ("text/rfc822-headers", bytes),
        };
        lines.push(format!("Content-Type: {content_type}"));
        if self.eight_bit() {
            lines.push("Content-Transfer-Encoding: 8bit".into());
        }
        lines.push(String::new());
        lines.push(format!(
            "Return-Path: <{}>",
            one_line(&self.original.sender)
        ));
        let mut out = join(&lines);
        out.extend_from_slice(original);
        if !original.is_empty() && !original.ends_with(b"\r\n") {
            out.extend_from_slice(b"\r\n");
        }
        // sendmail ends with an empty line after the closing boundary.
        out.extend_from_slice(&join(&[
            String::new(),
            format!("--{boundary}--"),
            String::new(),
        ]));
        out
    }

    fn is_warning(&self) -> bool {
        matches!(
            self.kind,
            Kind::Warning { .. } | Kind::DeliverByWarning { .. }
        )
    }

    fn eight_bit(&self) -> bool {
        self.original.body == Some(postern_queue::BodyType::EightBitMime)
    }

    fn headers(&self, boundary: &str, lines: &mut Vec<String>) {
        let date = self.date(self.now);
        let received = postern_queue::received_header(&postern_queue::ReceivedInfo {
            helo: Some("localhost"),
            client: "localhost",
            authenticated: false,
            auth_bits: None,
            hostname: self.hostname,
            version: self.version,
            protocol: None,
            queue_id: self.id,
            tls: None,
            for_recipient: None,
            date: &date,
        });
        lines.extend(
            received
                .trim_end_matches("\r\n")
                .split("\r\n")
                .map(str::to_string),
        );
        lines.push(format!("Date: {date}"));
        lines.push(format!(
            "From: Mail Delivery Subsystem <MAILER-DAEMON@{}>",
            self.hostname
        ));
        lines.push(format!(
            "Message-Id: {}",
            postern_queue::message_id(self.now as i64, self.utc_offset, self.id, self.hostname)
        ));
        lines.push(format!("To: {}", one_line(self.to)));
        lines.push("MIME-Version: 1.0".into());
        lines.push("Content-Type: multipart/report; report-type=delivery-status;".into());
        lines.push(format!("\tboundary=\"{boundary}\""));
        if self.eight_bit() {
            lines.push("Content-Transfer-Encoding: 8bit".into());
        }
        let (subject, auto) = self.subject();
        lines.push(format!("Subject: {subject}"));
        lines.push(format!("Auto-Submitted: auto-generated ({auto})"));
    }

    fn human_part(&self, lines: &mut Vec<String>) {
        let original = self.original;
        if self.is_warning() {
            lines.extend(
                [
                    "    **********************************************",
                    "    **      THIS IS A WARNING MESSAGE ONLY      **",
                    "    **  YOU DO NOT NEED TO RESEND YOUR MESSAGE  **",
                    "    **********************************************",
                    "",
                ]
                .map(str::to_string),
            );
        }
        lines.push(format!(
            "The original message was received at {}",
            self.date(original.created)
        ));
        lines.push(format!("from {}", one_line(&original.client)));
        if self.kind == Kind::Postmaster {
            lines.push(format!("with id {}", original.id));
        }
        lines.push(String::new());
        let failed: Vec<&RecipientEntry> = self
            .recipients
            .iter()
            .filter(|(_, a)| *a == Action::Failed)
            .map(|(r, _)| *r)
            .collect();
        if !failed.is_empty() {
            lines.push("   ----- The following addresses had permanent fatal errors -----".into());
            for r in &failed {
                lines.push(one_line(&printed_address(original, &r.address)));
                if let Some(diag) = &r.diagnostic {
                    lines.push(format!("    (reason: {})", one_line(diag)));
                }
            }
            lines.push(String::new());
        }
        if matches!(self.kind, Kind::DeliverByWarning { .. }) {
            // sendmail lists the recipients of a Deliver-By notice.
            lines.push(
                "   ----- The following addresses had transient non-fatal errors -----".into(),
            );
            for (r, _) in self
                .recipients
                .iter()
                .filter(|(_, a)| *a == Action::Delayed)
            {
                lines.push(one_line(&printed_address(original, &r.address)));
            }
            lines.push(String::new());
        }
        let succeeded: Vec<(&RecipientEntry, &str)> = self
            .recipients
            .iter()
            .filter_map(|(r, a)| match a {
                Action::Delivered => Some((*r, "successfully delivered to mailbox")),
                Action::Relayed => Some((*r, "relayed to non-DSN-aware mailer")),
                _ => None,
            })
            .collect();
        if !succeeded.is_empty() {
            lines.push(
                "   ----- The following addresses had successful delivery notifications -----"
                    .into(),
            );
            for (r, what) in succeeded {
                lines.push(format!(
                    "{}  ({what})",
                    one_line(&printed_address(original, &r.address))
                ));
            }
            lines.push(String::new());
        }
        let transcript = self.transcript();
        if !transcript.is_empty() {
            lines.push("   ----- Transcript of session follows -----".into());
            lines.extend(transcript);
        }
    }

    /// What sendmail's transcript file would hold: the server's reply for
    /// each failure, the last deferral for each delay, and the timeout.
    fn transcript(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (r, action) in &self.recipients {
            let who = one_line(&printed_address(self.original, &r.address));
            let status = r.status.as_deref().unwrap_or("5.0.0");
            let last = one_line(r.last_reply.as_deref().unwrap_or(""));
            // A recipient never tried yet has no deferral to show.
            let deferred = r
                .last_reply
                .is_some()
                .then(|| format!("{who}... Deferred: {last}"));
            match action {
                Action::Delayed => out.extend(deferred),
                // Gave up after Timeout.queuereturn or a DELIVERBY deadline.
                Action::Failed
                    if status.starts_with('4')
                        || matches!(self.kind, Kind::DeliverByExpired { .. }) =>
                {
                    out.extend(deferred)
                }
                Action::Failed => match (&r.diagnostic, &r.remote_mta) {
                    (Some(diag), Some(mta)) => {
                        let diag = one_line(diag);
                        out.push(format!("... while talking to {}:", one_line(mta)));
                        if let Some(command) = &r.command {
                            out.push(format!(">>> {}", one_line(command)));
                        }
                        out.push(format!("<<< {diag}"));
                        let code = diag.split(' ').next().unwrap_or("550");
                        out.push(format!(
                            "{code} {status} {who}... {}",
                            failure_words(status)
                        ));
                    }
                    // Postern's own reason, with its code as sendmail's
                    // usrerr() writes it: `550 5.1.1 a@b... User unknown`.
                    _ => out.push(
                        match crate::queue_runner::logline::split_coded_reply(&last) {
                            Some((code, Some(status), text)) => {
                                format!("{code} {status} {who}... {text}")
                            }
                            _ => format!("{who}... {last}"),
                        },
                    ),
                },
                Action::Delivered | Action::Relayed => {}
            }
        }
        match self.kind {
            Kind::Failure {
                timed_out: Some(lifetime),
            } => {
                out.push(format!(
                    "Message could not be delivered for {}",
                    interval_words(lifetime)
                ));
                out.push("Message will be deleted from queue".into());
            }
            Kind::Warning { after, lifetime } => {
                out.push(format!(
                    "Warning: message still undelivered after {}",
                    interval_words(after)
                ));
                out.push(format!(
                    "Will keep trying until message is {} old",
                    interval_words(lifetime)
                ));
            }
            Kind::DeliverByExpired { by } => {
                out.push(format!("Delivery time ({by}s) expired"));
                out.push("Message will be deleted from queue".into());
            }
            Kind::DeliverByWarning { by, lifetime } => {
                out.push(format!("Warning: Delivery time ({by}s) exceeded"));
                out.push(format!(
                    "Will keep trying until message is {} old",
                    interval_words(lifetime)
                ));
            }
            _ => {}
        }
        out
    }

    fn status_part(&self, lines: &mut Vec<String>) {
        let original = self.original;
        if let Some(envid) = &original.envid {
            lines.push(format!("Original-Envelope-Id: {}", one_line(envid)));
        }
        lines.push(format!("Reporting-MTA: dns; {}", self.hostname));
        if !original.protocol.is_empty() {
            // `$_` is `rdns [address]`; the name is what sendmail gives.
            let name = original.client.split(' ').next().unwrap_or("");
            if !name.is_empty() {
                lines.push(format!("Received-From-MTA: DNS; {}", one_line(name)));
            }
        }
        lines.push(format!("Arrival-Date: {}", self.date(original.created)));
        if let Some(by) = original.deliver_by {
            // RFC 2852 §5: when the message should have been delivered.
            let at = original.created as i64 + by.seconds;
            lines.push(format!("Deliver-By-Date: {}", self.date(at.max(0) as u64)));
        }
        for (r, action) in &self.recipients {
            lines.push(String::new());
            if let Some(orcpt) = &r.orcpt {
                lines.push(format!(
                    "Original-Recipient: {};{}",
                    one_line(&orcpt.addr_type),
                    one_line(&orcpt.address)
                ));
            }
            // For a recipient an alias expanded to: the address the
            // sender gave is the final recipient, the member the actual one.
            let address = one_line(&r.address);
            let fin = r.alias.as_deref().map_or_else(|| address.clone(), one_line);
            lines.push(format!("Final-Recipient: RFC822; {fin}"));
            if self.actual_recipient {
                lines.push(format!("X-Actual-Recipient: rfc822; {address}"));
            }
            lines.push(format!("Action: {}", action.field()));
            let status = r.status.clone().unwrap_or_else(|| {
                match action {
                    Action::Failed => "5.0.0",
                    Action::Delayed => "4.0.0",
                    Action::Delivered | Action::Relayed => "2.0.0",
                }
                .into()
            });
            lines.push(format!("Status: {}", one_line(&status)));
            if let Some(mta) = &r.remote_mta {
                lines.push(format!("Remote-MTA: DNS; {}", one_line(mta)));
            }
            if let Some(diag) = &r.diagnostic {
                lines.push(format!("Diagnostic-Code: SMTP; {}", one_line(diag)));
            }
            let last = r.last_attempt.unwrap_or(self.now);
            lines.push(format!("Last-Attempt-Date: {}", self.date(last)));
            if let (
                Action::Delayed,
                Kind::Warning { lifetime, .. } | Kind::DeliverByWarning { lifetime, .. },
            ) = (action, self.kind)
            {
                lines.push(format!(
                    "Will-Retry-Until: {}",
                    self.date(original.created + lifetime)
                ));
            }
        }
    }
}

fn join(lines: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in lines {
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// The header section of a message (up to, not including, the blank line
/// that ends it; the whole message if it has no body).
pub fn header_section(message: &[u8]) -> &[u8] {
    if message.starts_with(b"\r\n") {
        return &[];
    }
    match message.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => &message[..i + 2],
        None => message,
    }
}

#[cfg(test)]
mod tests;
