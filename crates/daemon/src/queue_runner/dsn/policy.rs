//! Which reports a recipient's fate calls for (RFC 3461 §4.1, as sendmail
//! reads NOTIFY): failures and delays are reported unless NOTIFY says
//! otherwise, successes only when asked for.
//!
//! Owns: the NOTIFY rules, `noreceipts`, and that nothing but failures is
//! ever reported for the null sender. Does not own: who receives a
//! failure report for the null sender (the postmaster, `mod.rs`).

use postern_ipc::RecipientReport;
use postern_queue::DsnDue;
use postern_smtp::params::Notify;

/// A failure is reported unless NOTIFY was given without FAILURE (NEVER,
/// or only SUCCESS and/or DELAY).
pub fn wants_failure(notify: Option<Notify>) -> bool {
    notify.is_none_or(|n| !n.never && n.failure)
}

/// A delay is reported unless NOTIFY was given without DELAY: with no
/// NOTIFY sendmail warns, as RFC 3461 §4.1 allows.
pub fn wants_delay(notify: Option<Notify>) -> bool {
    notify.is_none_or(|n| !n.never && n.delay)
}

/// The report owed for a recipient `report` says was sent: a success DSN
/// when NOTIFY=SUCCESS asked for one, the sender can receive it, receipts
/// are not refused (`noreceipts`), and no next hop took the duty over
/// (one that speaks DSN got NOTIFY passed on).
pub fn success_due(
    notify: Option<Notify>,
    report: &RecipientReport,
    null_sender: bool,
    noreceipts: bool,
) -> Option<DsnDue> {
    let asked = notify.is_some_and(|n| !n.never && n.success);
    if !asked || null_sender || noreceipts || report.dsn_passed_on {
        return None;
    }
    match report.mailer.as_str() {
        "local" => Some(DsnDue::Delivered),
        _ if report.mailer_speaks_smtp() => Some(DsnDue::Relayed),
        _ => None,
    }
}

/// The report owed for a recipient that failed for good.
pub fn failure_due(notify: Option<Notify>) -> Option<DsnDue> {
    wants_failure(notify).then_some(DsnDue::Failed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use postern_ipc::RecipientStatus;

    fn n(text: &str) -> Option<Notify> {
        Some(text.parse().unwrap())
    }

    fn sent(mailer: &str, dsn_passed_on: bool) -> RecipientReport {
        RecipientReport {
            address: "a@b".into(),
            status: RecipientStatus::Sent,
            reply: "250 2.0.0 ok".into(),
            relay: "[127.0.0.1] [127.0.0.1]".into(),
            mailer: mailer.into(),
            peer: mailer != "local",
            dsn_passed_on,
            command: None,
            forwarded: Vec::new(),
        }
    }

    #[test]
    fn notify_decides_failure_and_delay_reports() {
        assert!(wants_failure(None) && wants_delay(None));
        assert!(!wants_failure(n("NEVER")) && !wants_delay(n("NEVER")));
        assert!(!wants_failure(n("DELAY")) && wants_delay(n("DELAY")));
        assert!(wants_failure(n("FAILURE")) && !wants_delay(n("FAILURE")));
        assert!(!wants_failure(n("SUCCESS")));
        assert_eq!(failure_due(n("SUCCESS,FAILURE")), Some(DsnDue::Failed));
        assert_eq!(failure_due(n("DELAY")), None);
    }

    #[test]
    fn success_only_when_asked_and_nobody_else_reports_it() {
        let s = n("SUCCESS");
        assert_eq!(
            success_due(s, &sent("local", false), false, false),
            Some(DsnDue::Delivered)
        );
        assert_eq!(
            success_due(s, &sent("esmtp", false), false, false),
            Some(DsnDue::Relayed)
        );
        // The next hop speaks DSN: it reports.
        assert_eq!(success_due(s, &sent("esmtp", true), false, false), None);
        assert_eq!(success_due(None, &sent("local", false), false, false), None);
        assert_eq!(
            success_due(n("FAILURE"), &sent("local", false), false, false),
            None
        );
        // noreceipts, and never to <>.
        assert_eq!(success_due(s, &sent("local", false), false, true), None);
        assert_eq!(success_due(s, &sent("local", false), true, false), None);
    }
}
