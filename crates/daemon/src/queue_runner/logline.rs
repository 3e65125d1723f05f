//! sendmail's log lines for messages: `from=` on receipt, `to=` per
//! recipient on delivery, in sendmail's field order (REFERENCE §1.4).

use postern_ipc::{RecipientReport, RecipientStatus};
use postern_queue::ControlFile;

/// sendmail's `pintvl`: `HH:MM:SS`, or `D+HH:MM:SS` past a day.
pub fn interval(secs: u64) -> String {
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let hms = format!(
        "{:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    );
    if days > 0 {
        format!("{days}+{hms}")
    } else {
        hms
    }
}

/// sendmail's message priority: size plus 30000 per recipient
/// (WkRecipFact), plus 90000 (WkTimeFact) for each queue run that tried
/// it: the first attempt, made as the message arrives, adds nothing.
pub fn priority(size: u64, recipients: usize, attempts: u32) -> u64 {
    size + 30_000 * recipients as u64 + 90_000 * u64::from(attempts.saturating_sub(1))
}

/// `QID: from=<s>, size=N, class=0, nrcpts=N, msgid=<…>, bodytype=…, proto=…, daemon=…, relay=…`,
/// from what was committed (the client as master saw it).
pub fn from_line(control: &ControlFile, message_id: Option<&str>, daemon: Option<&str>) -> String {
    let mut line = format!(
        "{}: from=<{}>, size={}, class=0, nrcpts={}",
        control.id,
        control.sender,
        control.size,
        control.recipients.len()
    );
    if let Some(msgid) = message_id {
        line.push_str(&format!(", msgid={msgid}"));
    }
    if let Some(body) = control.body {
        line.push_str(&format!(", bodytype={}", body.as_str()));
    }
    if !control.protocol.is_empty() {
        line.push_str(&format!(", proto={}", control.protocol));
    }
    if let Some(daemon) = daemon {
        line.push_str(&format!(", daemon={daemon}"));
    }
    line.push_str(&format!(", relay={}", control.client));
    // Not in sendmail's from= line (it logs `AUTH=server, relay=…,
    // authid=…` when the client authenticates): here too, so that the
    // message and its sender's identity meet on one line.
    if let Some(authid) = &control.auth {
        line.push_str(&format!(", authid={authid}"));
    }
    line
}

/// [`split_reply`] for a reply that has a three-digit code; `None` for
/// words alone (`User unknown`).
pub fn split_coded_reply(reply: &str) -> Option<(&str, Option<&str>, &str)> {
    let parts = split_reply(reply);
    (parts.0.len() == 3 && parts.0.bytes().all(|b| b.is_ascii_digit())).then_some(parts)
}

/// Splits `250 2.0.0 text` into (code, enhanced, text).
pub fn split_reply(reply: &str) -> (&str, Option<&str>, &str) {
    let (code, rest) = reply.split_once(' ').unwrap_or((reply, ""));
    match rest.split_once(' ') {
        Some((e, text)) if postern_smtp::EnhancedCode::parse(e).is_some() => (code, Some(e), text),
        _ if postern_smtp::EnhancedCode::parse(rest).is_some() => (code, Some(rest), ""),
        _ => (code, None, rest),
    }
}

/// `QID: to=<r>, delay=…, xdelay=…, mailer=…, pri=…, relay=…, dsn=…,
/// [reply=…, ]stat=…`; for a file or program, `to="|cmd", ctladdr=<a>
/// (uid/gid), …`. `reply=` only for a server's reply that was not a
/// success; Postern's own account of a failure (connection refused)
/// stands in `stat=` alone, as sendmail writes it.
pub fn to_line(
    control: &ControlFile,
    report: &RecipientReport,
    now: u64,
    started: u64,
    pri: u64,
) -> String {
    let (_, _, text) = split_reply(&report.reply);
    let dsn = dsn_code(report);
    let stat = match report.status {
        RecipientStatus::Sent if report.mailer == "local" => "Sent".to_string(),
        RecipientStatus::Sent => format!("Sent ({text})"),
        RecipientStatus::TempFail => format!("Deferred: {}", status_text(report)),
        RecipientStatus::PermFail if dsn == "5.1.1" => "User unknown".to_string(),
        // sendmail's own words for a name that does not resolve, and
        // Postfix's for a null MX, stand as they are.
        RecipientStatus::PermFail if !report.peer && matches!(dsn.as_str(), "5.1.2" | "5.1.10") => {
            text.to_string()
        }
        RecipientStatus::PermFail if dsn == "5.3.5" => "Local configuration error".to_string(),
        RecipientStatus::PermFail => "Service unavailable".to_string(),
    };
    // A file or program target: written as sendmail writes it (`to="|cmd"`),
    // with the controlling address and user (`ctladdr=<list@host> (1/1)`).
    let target = control
        .recipients
        .iter()
        .find(|e| e.address == report.address && e.target.is_some());
    let (to, ctladdr) = match target {
        Some(e) => {
            let t = e.target.expect("found by its target");
            let ctl = e.alias.as_deref().unwrap_or(&e.address);
            (
                format!("\"{}\"", report.address),
                format!(", ctladdr=<{ctl}> ({}/{})", t.uid, t.gid),
            )
        }
        None => (format!("<{}>", report.address), String::new()),
    };
    let mut line = format!(
        "{}: to={to}{ctladdr}, delay={}, xdelay={}, mailer={}, pri={pri}, relay={}, dsn={dsn}",
        control.id,
        interval(now.saturating_sub(control.created)),
        interval(now.saturating_sub(started)),
        report.mailer,
        report.relay,
    );
    if report.status != RecipientStatus::Sent && report.peer {
        line.push_str(&format!(", reply={}", report.reply));
    }
    line.push_str(&format!(", stat={stat}"));
    line
}

/// The enhanced status code of a result (`dsn=` of the log line, the
/// DSN's `Status:`): the reply's own, or `x.0.0` by its outcome.
pub fn dsn_code(report: &RecipientReport) -> String {
    split_reply(&report.reply)
        .1
        .map(str::to_string)
        .unwrap_or_else(|| match report.status {
            RecipientStatus::Sent => "2.0.0".into(),
            RecipientStatus::TempFail => "4.0.0".into(),
            RecipientStatus::PermFail => "5.0.0".into(),
        })
}

/// What a failure is called after `Deferred: ` in a log line and in
/// mailq: a server's reply whole, Postern's own account without the codes
/// (`Connection refused by [127.0.0.1]`).
pub fn status_text(report: &RecipientReport) -> String {
    if report.peer {
        report.reply.clone()
    } else {
        split_reply(&report.reply).2.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals() {
        assert_eq!(interval(0), "00:00:00");
        assert_eq!(interval(3_723), "01:02:03");
        assert_eq!(interval(90_061), "1+01:01:01");
    }

    #[test]
    fn replies_split() {
        assert_eq!(
            split_reply("250 2.0.0 h0UGn9P7001230 Message accepted"),
            ("250", Some("2.0.0"), "h0UGn9P7001230 Message accepted")
        );
        assert_eq!(split_reply("250 ok"), ("250", None, "ok"));
    }
}
