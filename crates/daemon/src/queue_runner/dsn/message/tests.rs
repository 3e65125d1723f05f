//! The report's bytes, line by line, for each kind.

use super::*;
use postern_queue::{BodyType, QueueId, RecipientState};

const ARRIVED: u64 = 1_796_171_897; // Wed, 2 Dec 2026 00:38:17 GMT

fn original() -> ControlFile {
    let id: QueueId = "6B20cHs8020081".parse().unwrap();
    let mut cf = ControlFile::new(id, ARRIVED, "sender@example.com");
    cf.client = "localhost [127.0.0.1]".into();
    cf.protocol = "ESMTP".into();
    let mut r = RecipientEntry::new("user@bounce.test");
    r.state = RecipientState::Failed;
    r.status = Some("5.1.1".into());
    r.remote_mta = Some("[127.0.0.1]".into());
    r.diagnostic =
        Some("550 5.1.1 <user@bounce.test>: Recipient address rejected: User unknown".into());
    r.last_reply = r.diagnostic.clone();
    r.command = Some("RCPT To:<user@bounce.test>".into());
    r.last_attempt = Some(ARRIVED);
    cf.recipients.push(r);
    cf
}

const MESSAGE: &[u8] = b"Received: from client.example\r\nSubject: F will bounce\r\n\r\nThis is a test mailing\r\n\r\n";

fn report<'a>(cf: &'a ControlFile, kind: Kind, action: Action, returned: Returned<'a>) -> String {
    let r = Report {
        kind,
        hostname: "mx.example",
        id: "6B20cHs8020083",
        original: cf,
        recipients: cf.recipients.iter().map(|r| (r, action)).collect(),
        to: "<sender@example.com>",
        now: ARRIVED,
        utc_offset: 0,
        returned,
        actual_recipient: true,
        version: "Postern 0.1.0",
    };
    let bytes = r.build();
    let text = String::from_utf8(bytes).unwrap();
    // Every line ends in CRLF, and no bare CR or LF is anywhere.
    assert!(text.ends_with("\r\n"));
    assert_eq!(text.matches('\n').count(), text.matches("\r\n").count());
    text.replace("\r\n", "\n")
}

#[test]
fn a_failure_report_is_laid_out_as_sendmails() {
    let cf = original();
    let got = report(
        &cf,
        Kind::Failure { timed_out: None },
        Action::Failed,
        Returned::Full(MESSAGE),
    );
    let want = "\
Received: from localhost (localhost)
\tby mx.example (Postern 0.1.0) id 6B20cHs8020083;
\tWed, 2 Dec 2026 00:38:17 +0000
Date: Wed, 2 Dec 2026 00:38:17 +0000
From: Mail Delivery Subsystem <MAILER-DAEMON@mx.example>
Message-Id: <202612020038.6B20cHs8020083@mx.example>
To: <sender@example.com>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary=\"6B20cHs8020083.1796171897/mx.example\"
Subject: Returned mail: see transcript for details
Auto-Submitted: auto-generated (failure)

This is a MIME-encapsulated message

--6B20cHs8020083.1796171897/mx.example

The original message was received at Wed, 2 Dec 2026 00:38:17 +0000
from localhost [127.0.0.1]

   ----- The following addresses had permanent fatal errors -----
<user@bounce.test>
    (reason: 550 5.1.1 <user@bounce.test>: Recipient address rejected: User unknown)

   ----- Transcript of session follows -----
... while talking to [127.0.0.1]:
>>> RCPT To:<user@bounce.test>
<<< 550 5.1.1 <user@bounce.test>: Recipient address rejected: User unknown
550 5.1.1 <user@bounce.test>... User unknown

--6B20cHs8020083.1796171897/mx.example
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example
Received-From-MTA: DNS; localhost
Arrival-Date: Wed, 2 Dec 2026 00:38:17 +0000

Final-Recipient: RFC822; user@bounce.test
X-Actual-Recipient: rfc822; user@bounce.test
Action: failed
Status: 5.1.1
Remote-MTA: DNS; [127.0.0.1]
Diagnostic-Code: SMTP; 550 5.1.1 <user@bounce.test>: Recipient address rejected: User unknown
Last-Attempt-Date: Wed, 2 Dec 2026 00:38:17 +0000

--6B20cHs8020083.1796171897/mx.example
Content-Type: message/rfc822

Return-Path: <sender@example.com>
Received: from client.example
Subject: F will bounce

This is a test mailing


--6B20cHs8020083.1796171897/mx.example--

";
    assert_eq!(got, want);
}

#[test]
fn headers_only_envid_orcpt_and_no_actual_recipient() {
    let mut cf = original();
    cf.envid = Some("envid-0001\r\nX-Injected: yes".into());
    cf.recipients[0].orcpt = Some("rfc822;user@bounce.test".parse().unwrap());
    let r = Report {
        kind: Kind::Failure { timed_out: None },
        hostname: "mx.example",
        id: "6B20cHs8020083",
        original: &cf,
        recipients: vec![(&cf.recipients[0], Action::Failed)],
        to: "<sender@example.com>",
        now: ARRIVED,
        utc_offset: 0,
        returned: Returned::Headers(header_section(MESSAGE)),
        actual_recipient: false,
        version: "Postern 0.1.0",
    };
    let text = String::from_utf8(r.build()).unwrap().replace("\r\n", "\n");
    assert!(text.contains(
        "Content-Type: message/delivery-status\n\n\
         Original-Envelope-Id: envid-0001X-Injected: yes\n\
         Reporting-MTA: dns; mx.example\n"
    ));
    assert!(text.contains(
        "\nOriginal-Recipient: rfc822;user@bounce.test\n\
         Final-Recipient: RFC822; user@bounce.test\nAction: failed\n"
    ));
    assert!(!text.contains("X-Actual-Recipient"));
    assert!(text.ends_with(
        "Content-Type: text/rfc822-headers\n\n\
         Return-Path: <sender@example.com>\n\
         Received: from client.example\nSubject: F will bounce\n\n\
         --6B20cHs8020083.1796171897/mx.example--\n\n"
    ));
    assert!(!text.contains("This is a test mailing"));
}

#[test]
fn a_delay_warning_and_the_final_return() {
    let mut cf = original();
    let r = &mut cf.recipients[0];
    r.state = RecipientState::Deferred;
    r.status = Some("4.4.1".into());
    r.diagnostic = None;
    r.last_reply = Some("Connection refused by [127.0.0.1]".into());
    r.last_attempt = Some(ARRIVED + 60);
    let warning = report(
        &cf,
        Kind::Warning {
            after: 60,
            lifetime: 240,
        },
        Action::Delayed,
        Returned::Full(MESSAGE),
    );
    for line in [
        "Subject: Warning: could not send message for past 1 minute\n",
        "Auto-Submitted: auto-generated (warning-timeout)\n",
        "\n    **  YOU DO NOT NEED TO RESEND YOUR MESSAGE  **\n",
        "   ----- Transcript of session follows -----\n\
         <user@bounce.test>... Deferred: Connection refused by [127.0.0.1]\n\
         Warning: message still undelivered after 1 minute\n\
         Will keep trying until message is 4 minutes old\n",
        "Action: delayed\nStatus: 4.4.1\nRemote-MTA: DNS; [127.0.0.1]\n\
         Last-Attempt-Date: Wed, 2 Dec 2026 00:39:17 +0000\n\
         Will-Retry-Until: Wed, 2 Dec 2026 00:42:17 +0000\n",
    ] {
        assert!(warning.contains(line), "{line:?} not in\n{warning}");
    }
    assert!(!warning.contains("permanent fatal errors"));
    cf.recipients[0].state = RecipientState::Failed;
    cf.recipients[0].status = Some("4.4.7".into());
    let back = report(
        &cf,
        Kind::Failure {
            timed_out: Some(240),
        },
        Action::Failed,
        Returned::Full(MESSAGE),
    );
    for line in [
        "Subject: Returned mail: see transcript for details\n",
        "fatal errors -----\n<user@bounce.test>\n\n",
        "<user@bounce.test>... Deferred: Connection refused by [127.0.0.1]\n\
         Message could not be delivered for 4 minutes\n\
         Message will be deleted from queue\n",
        "Action: failed\nStatus: 4.4.7\nRemote-MTA: DNS; [127.0.0.1]\nLast-Attempt-Date: ",
    ] {
        assert!(back.contains(line), "{line:?} not in\n{back}");
    }
    assert!(!back.contains("Will-Retry-Until"));
}

#[test]
fn deliver_by_notice_and_return() {
    let mut cf = original();
    cf.deliver_by = Some("30;N".parse().unwrap());
    let r = &mut cf.recipients[0];
    r.state = RecipientState::Deferred;
    r.status = Some("4.2.0".into());
    r.diagnostic = None;
    r.last_reply = Some("450 4.2.0 <user@bounce.test>: try later".into());
    r.last_attempt = Some(ARRIVED + 20);
    let notice = report(
        &cf,
        Kind::DeliverByWarning {
            by: 30,
            lifetime: 5 * 86_400,
        },
        Action::Delayed,
        Returned::Headers(header_section(MESSAGE)),
    );
    for line in [
        "Subject: Warning: Delivery time (30s) exceeded
",
        "Auto-Submitted: auto-generated (warning-timeout)
",
        "\n    **  YOU DO NOT NEED TO RESEND YOUR MESSAGE  **\n",
        "   ----- The following addresses had transient non-fatal errors -----\n\
         <user@bounce.test>\n\n   ----- Transcript of session follows -----\n\
         <user@bounce.test>... Deferred: 450 4.2.0 <user@bounce.test>: try later\n\
         Warning: Delivery time (30s) exceeded\n\
         Will keep trying until message is 5 days old\n",
        "Arrival-Date: Wed, 2 Dec 2026 00:38:17 +0000\n\
         Deliver-By-Date: Wed, 2 Dec 2026 00:38:47 +0000\n",
        "Action: delayed\nStatus: 4.2.0\n",
        "Will-Retry-Until: Mon, 7 Dec 2026 00:38:17 +0000\n",
    ] {
        assert!(notice.contains(line), "{line:?} not in\n{notice}");
    }
    cf.deliver_by = Some("30;R".parse().unwrap());
    cf.recipients[0].state = RecipientState::Failed;
    cf.recipients[0].status = Some("5.4.7".into());
    let back = report(
        &cf,
        Kind::DeliverByExpired { by: 30 },
        Action::Failed,
        Returned::Full(MESSAGE),
    );
    for line in [
        "Subject: Returned mail: see transcript for details\n",
        "Auto-Submitted: auto-generated (failure)\n",
        "fatal errors -----\n<user@bounce.test>\n\n",
        "<user@bounce.test>... Deferred: 450 4.2.0 <user@bounce.test>: try later\n\
         Delivery time (30s) expired\n\
         Message will be deleted from queue\n",
        "Deliver-By-Date: Wed, 2 Dec 2026 00:38:47 +0000\n",
        "Action: failed\nStatus: 5.4.7\n",
    ] {
        assert!(back.contains(line), "{line:?} not in\n{back}");
    }
    assert!(!back.contains("Will-Retry-Until") && !back.contains("WARNING"));
}

#[test]
fn success_reports_and_postmaster_notices() {
    let mut cf = original();
    cf.body = Some(BodyType::EightBitMime);
    cf.recipients[0].state = RecipientState::Sent;
    cf.recipients[0].status = Some("2.0.0".into());
    let delivered = report(
        &cf,
        Kind::Success,
        Action::Delivered,
        Returned::Full(MESSAGE),
    );
    for line in [
        "Subject: Return receipt\nAuto-Submitted: auto-generated (return-receipt)\n",
        "successful delivery notifications -----\n<user@bounce.test>  (successfully delivered to mailbox)\n",
        "Action: delivered (to mailbox)\nStatus: 2.0.0\n",
        "Content-Type: message/rfc822\nContent-Transfer-Encoding: 8bit\n\n",
    ] {
        assert!(delivered.contains(line), "{line:?} not in\n{delivered}");
    }
    let relayed = report(&cf, Kind::Success, Action::Relayed, Returned::Full(MESSAGE));
    assert!(relayed.contains("Action: relayed (to non-DSN-aware mailer)\n"));
    assert!(relayed.contains("  (relayed to non-DSN-aware mailer)\n"));
    let pm = report(
        &cf,
        Kind::Postmaster,
        Action::Failed,
        Returned::Full(MESSAGE),
    );
    assert!(pm.contains("Subject: Postmaster notify: see transcript for details\n"));
    assert!(pm.contains("auto-generated (postmaster-notification)\n"));
    assert!(pm.contains("from localhost [127.0.0.1]\nwith id 6B20cHs8020081\n\n"));
}

#[test]
fn words_for_intervals_and_failures() {
    assert_eq!(interval_words(60), "1 minute");
    assert_eq!(interval_words(240), "4 minutes");
    assert_eq!(interval_words(5 * 86_400), "5 days");
    assert_eq!(interval_words(5400), "1 hour, 30 minutes");
    assert_eq!(interval_words(2), "2 seconds");
    assert_eq!(failure_words("5.1.1"), "User unknown");
    assert_eq!(failure_words("5.7.1"), "Service unavailable");
}

#[test]
fn header_sections() {
    assert_eq!(
        header_section(MESSAGE),
        b"Received: from client.example\r\nSubject: F will bounce\r\n"
    );
    assert_eq!(header_section(b"A: b\r\n"), b"A: b\r\n");
    assert_eq!(header_section(b"\r\nbody\r\n"), b"");
}
