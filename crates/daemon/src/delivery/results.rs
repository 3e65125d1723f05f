//! How the outcome of a session is written down: one [`RecipientReport`]
//! per recipient, with the reply on one line, and the words used for
//! failures in replies and log lines.
//!
//! Owns: the one-line reply form (`<code> <enhanced> <text>`, sendmail's
//! `x.0.0` when the server gave no enhanced code), the status mapping
//! (2xx Sent, 5xx PermFail, anything else TempFail), replacing the
//! session's synthetic `421 4.4.2 Connection lost` by the real reason, OS
//! error wording and sendmail's names for the client phases. Does not own:
//! deciding any outcome (the session and `outbound.rs` do).

use std::io;

use postern_ipc::{RecipientReport, RecipientStatus};
use postern_smtp::client::{Outcome, Phase, RecipientStatus as SmtpStatus};
use postern_smtp::EnhancedCode;

/// Where a session's recipients went, for their reports.
pub struct Destination<'a> {
    /// The job's index of each envelope recipient, in envelope order.
    pub indices: &'a [usize],
    /// Each recipient's address as the job has it, in envelope order: the
    /// report's, also where RCPT gave another (a local user over LMTP).
    pub addresses: &'a [String],
    /// sendmail's `relay=`.
    pub relay: &'a str,
    /// sendmail's `mailer=`.
    pub mailer: &'a str,
}

/// One report per recipient of `outcome`, paired with its job index.
/// `lost`, when set, replaces the synthetic "Connection lost" reply.
pub fn reports(
    outcome: Outcome,
    to: &Destination<'_>,
    lost: Option<&str>,
) -> Vec<(usize, RecipientReport)> {
    let synthetic = one_line(421, Some(EnhancedCode::new(4, 4, 2)), "Connection lost");
    let dsn_passed_on = outcome.extensions.as_ref().is_some_and(|e| e.dsn);
    to.indices
        .iter()
        .zip(outcome.recipients)
        .zip(to.addresses)
        .map(|((&i, r), address)| {
            let mut reply = one_line(r.reply.code, r.reply.enhanced, &r.reply.text());
            let peer = reply != synthetic;
            if let Some(replacement) = lost.filter(|_| !peer) {
                reply = replacement.to_string();
            }
            let status = match (r.status, reply.as_bytes().first()) {
                (SmtpStatus::Delivered, _) => RecipientStatus::Sent,
                (_, Some(b'5')) => RecipientStatus::PermFail,
                _ => RecipientStatus::TempFail,
            };
            let report = RecipientReport {
                address: address.clone(),
                status,
                reply,
                relay: to.relay.to_string(),
                mailer: to.mailer.to_string(),
                peer,
                dsn_passed_on,
                command: r.command.filter(|_| peer),
                forwarded: Vec::new(),
            };
            (i, report)
        })
        .collect()
}

/// What `sendmail -v` says of a recipient once its session is over:
/// `<addr>... Sent (<text>)`, `<addr>... Deferred: <why>`, or the reply.
pub fn verbose_line(r: &RecipientReport) -> String {
    let text = reply_text(&r.reply);
    match r.status {
        RecipientStatus::Sent => format!("{}... Sent ({text})", r.address),
        RecipientStatus::TempFail if r.peer => format!("{}... Deferred: {}", r.address, r.reply),
        RecipientStatus::TempFail => format!("{}... Deferred: {text}", r.address),
        RecipientStatus::PermFail => format!("{}... {}", r.address, r.reply),
    }
}

/// A one-line reply's text, without its code and enhanced code.
fn reply_text(reply: &str) -> &str {
    let text = reply.split_once(' ').map_or("", |(_, t)| t);
    text.split_once(' ')
        .filter(|(e, _)| EnhancedCode::parse(e).is_some())
        .map_or(text, |(_, t)| t)
}

/// A reply as one line: `<code> <enhanced> <text>`; a reply without an
/// enhanced code gets sendmail's default for its class (`x.0.0`).
pub fn one_line(code: u16, enhanced: Option<EnhancedCode>, text: &str) -> String {
    let enhanced = enhanced.unwrap_or(EnhancedCode::new((code / 100) as u8, 0, 0));
    let line = format!("{code} {enhanced} {text}");
    line.trim_end().to_string()
}

/// sendmail's names for the client phases (`SmtpPhase`), for log lines.
pub fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::Greeting => "client greeting",
        Phase::Helo => "client EHLO",
        Phase::StartTls | Phase::TlsHandshake => "client STARTTLS",
        Phase::Mail => "client MAIL",
        Phase::Rcpt => "client RCPT",
        Phase::DataInit => "client DATA 354",
        Phase::DataBlock => "client DATA",
        Phase::DataFinal => "client DATA status",
        Phase::Quit | Phase::Done => "client QUIT",
    }
}

/// `Connection refused`, without Rust's ` (os error 111)`.
pub fn describe(e: &io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use postern_smtp::client::{RecipientResult, ServerReply};

    fn result(address: &str, reply: ServerReply) -> RecipientResult {
        RecipientResult {
            address: address.into(),
            status: SmtpStatus::from_code(reply.code),
            reply,
            command: None,
        }
    }

    #[test]
    fn replies_as_one_line() {
        assert_eq!(
            one_line(250, Some(EnhancedCode::new(2, 0, 0)), "ok"),
            "250 2.0.0 ok"
        );
        assert_eq!(
            one_line(550, None, "no such user"),
            "550 5.0.0 no such user"
        );
        assert_eq!(one_line(250, None, ""), "250 2.0.0");
    }

    #[test]
    fn outcome_to_reports() {
        let lost = ServerReply::synthetic(421, EnhancedCode::new(4, 4, 2), "Connection lost");
        let refused = ServerReply::synthetic(550, EnhancedCode::new(5, 1, 1), "No such user");
        let outcome = Outcome {
            recipients: vec![result("a@x", refused), result("b@x", lost)],
            extensions: None,
            tls: false,
            protocol_error: None,
        };
        let addresses = ["a@x".to_string(), "b@x".to_string()];
        let to = Destination {
            indices: &[3, 5],
            addresses: &addresses,
            relay: "[127.0.0.1]",
            mailer: "esmtp",
        };
        let got = reports(outcome.clone(), &to, Some("421 4.4.2 timeout"));
        assert_eq!((got[0].0, got[1].0), (3, 5));
        assert_eq!(got[0].1.status, RecipientStatus::PermFail);
        assert_eq!(got[0].1.reply, "550 5.1.1 No such user");
        assert_eq!(got[1].1.status, RecipientStatus::TempFail);
        assert_eq!(got[1].1.reply, "421 4.4.2 timeout");
        assert_eq!(
            (got[1].1.relay.as_str(), got[1].1.mailer.as_str()),
            ("[127.0.0.1]", "esmtp")
        );
        let got = reports(outcome, &to, None);
        assert_eq!(got[1].1.reply, "421 4.4.2 Connection lost");
    }

    #[test]
    fn os_error_suffix_is_dropped() {
        let e = io::Error::from_raw_os_error(111);
        assert_eq!(describe(&e), "Connection refused");
    }
}
