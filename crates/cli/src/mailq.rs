//! The queue listing in sendmail's exact layout (`queue.c`,
//! `printqueue` and `print_single_queue`; REFERENCE §1.10).
//!
//! ```text
//! \t\t<qdir> (N request[s])
//! -----Q-ID----- --Size-- -----Q-Time----- ------------Sender/Recipient-----------
//! %13s + status char + "%8ld %.16s " + sender (39 columns)
//! \n    %10.10s   (%.60s)            body type and status, when there is one
//! \n\t\t\t\t\t <recipient>           38 columns, one per recipient
//! \n
//! \t\tTotal requests: N
//! ```
//!
//! How Postern's queue maps onto sendmail's fields:
//!
//! - status character: `*` while the message is being delivered, else a
//!   space (Postern has no load-average queueing, no lost jobs and no
//!   "too young" marking to report).
//! - held messages (`postern queue hold`) are shown as sendmail shows a
//!   quarantined job, with `\n     QUARANTINE: held` after the sender
//!   line: they stay in the listing, and the line says why nothing happens.
//! - sendmail's per-message status (the qf `M` line) is the last reply of
//!   the first recipient that has one, prefixed `Deferred: ` or `Failed: `
//!   by that recipient's state.
//! - `-v` adds the priority (size + 30000 per recipient + 90000 per
//!   queue-run attempt, the first attempt, made on arrival, not counted:
//!   sendmail's WkRecipFact and WkTimeFact defaults) and, under a
//!   recipient whose last reply differs from the message's status line,
//!   that reply.

use std::fmt::Write as _;

use chrono::{Local, TimeZone};
use postern_ipc::{QueueEntry, QueueSelector, SelectorField};

/// sendmail's default WkRecipFact.
const RECIPIENT_FACTOR: u64 = 30_000;
/// sendmail's default WkTimeFact.
const ATTEMPT_FACTOR: u64 = 90_000;

/// How times are shown; a parameter so tests do not depend on the local
/// time zone.
pub trait Clock {
    /// ctime(3) text for unix seconds: `Wed Nov 25 08:30:00 2020`.
    fn ctime(&self, unix_secs: u64) -> String;
}

/// The local time zone, as ctime(3) uses.
pub struct LocalClock;

impl Clock for LocalClock {
    fn ctime(&self, unix_secs: u64) -> String {
        let secs = i64::try_from(unix_secs).unwrap_or(i64::MAX);
        match Local.timestamp_opt(secs, 0).single() {
            Some(t) => t.format("%a %b %e %H:%M:%S %Y").to_string(),
            None => "Thu Jan  1 00:00:00 1970".to_string(),
        }
    }
}

/// Does `entry` match a `-qI`/`-qR`/`-qS` selector (case-insensitive
/// substring, as sendmail compares)?
pub fn selected(entry: &QueueEntry, selector: &QueueSelector) -> bool {
    let needle = selector.substring.to_ascii_lowercase();
    let has = |s: &str| s.to_ascii_lowercase().contains(&needle);
    let hit = match selector.field {
        SelectorField::QueueId => has(entry.queue_id.as_str()),
        SelectorField::Sender => has(&entry.sender),
        SelectorField::Recipient => entry.recipients.iter().any(|r| has(&r.address)),
    };
    hit != selector.negate
}

/// sendmail's priority of a queued message: size + 30000 per recipient +
/// 90000 per queue-run attempt (the attempt made on arrival not counted).
pub fn priority(e: &QueueEntry) -> u64 {
    e.size
        .saturating_add(RECIPIENT_FACTOR.saturating_mul(e.recipients.len() as u64))
        .saturating_add(ATTEMPT_FACTOR.saturating_mul(u64::from(e.attempts.saturating_sub(1))))
}

/// The order sendmail lists the queue in (QueueSortOrder=priority): the
/// lowest priority value, the one to be tried first, first.
pub fn sort(entries: &mut [&QueueEntry]) {
    entries.sort_by(|a, b| {
        (priority(a), a.created, &a.queue_id).cmp(&(priority(b), b.created, &b.queue_id))
    });
}

/// The whole listing, as `mailq` prints it: `entries` are the messages
/// to show (those a `-qR…` selector picked); the counts are theirs, as
/// sendmail's are.
pub fn render(
    directory: &str,
    entries: &[&QueueEntry],
    verbose: bool,
    clock: &dyn Clock,
) -> String {
    let total = entries.len();
    let mut out = String::new();
    if total == 0 {
        let _ = writeln!(out, "{directory} is empty");
    } else {
        let _ = write!(
            out,
            "\t\t{directory} ({total} request{}",
            if total == 1 { "" } else { "s" }
        );
        if verbose {
            out.push_str(
                ")\n-----Q-ID----- --Size-- -Priority- ---Q-Time--- --------Sender/Recipient--------\n",
            );
        } else {
            out.push_str(
                ")\n-----Q-ID----- --Size-- -----Q-Time----- ------------Sender/Recipient-----------\n",
            );
        }
        for entry in entries {
            render_entry(&mut out, entry, verbose, clock);
        }
    }
    let _ = writeln!(out, "\t\tTotal requests: {total}");
    out
}

fn render_entry(out: &mut String, e: &QueueEntry, verbose: bool, clock: &dyn Clock) {
    let _ = write!(out, "{:>13}", e.queue_id);
    out.push(if e.in_progress { '*' } else { ' ' });
    let ctime = clock.ctime(e.created);
    let sender = format!("<{}>", e.sender);
    if verbose {
        let priority = priority(e);
        // "%8ld %10ld%c%.12s ": the %c is sendmail's `+` once a delay
        // warning went out; Postern sends none yet.
        let _ = write!(
            out,
            "{:>8} {:>10} {} ",
            e.size,
            priority,
            truncate(ctime.get(4..).unwrap_or(""), 12)
        );
        prtstr(out, &sender, 78);
    } else {
        let _ = write!(out, "{:>8} {} ", e.size, truncate(&ctime, 16));
        prtstr(out, &sender, 39);
    }
    if e.held {
        let reason = e.quarantine.as_deref().unwrap_or("held");
        let _ = write!(out, "\n     QUARANTINE: {reason}");
    }
    let status = status_message(e);
    let body = e.body.map_or("", |b| b.as_str());
    if status.is_some() || !body.is_empty() {
        let _ = write!(out, "\n    {:>10}", truncate(body, 10));
        if let Some(status) = &status {
            let _ = write!(
                out,
                "   ({})",
                truncate(status, if verbose { 100 } else { 60 })
            );
        }
    }
    for r in &e.recipients {
        let address = format!("<{}>", r.address);
        if verbose {
            out.push_str("\n\t\t\t\t\t\t");
            prtstr(out, &address, 71);
            // Only a reply that says more than the message's status line.
            let own = r.last_reply.as_deref().map(clean);
            if let Some(reply) = own.filter(|reply| {
                status
                    .as_deref()
                    .is_none_or(|s| !s.ends_with(reply.as_str()))
            }) {
                let _ = write!(out, "\n\t\t ({})", truncate(&reply, 100));
            }
        } else {
            out.push_str("\n\t\t\t\t\t ");
            prtstr(out, &address, 38);
        }
    }
    out.push('\n');
}

/// sendmail's qf `M` line, from the first recipient with a reply.
fn status_message(e: &QueueEntry) -> Option<String> {
    let r = e.recipients.iter().find(|r| r.last_reply.is_some())?;
    let reply = clean(r.last_reply.as_deref()?);
    Some(match r.state.as_str() {
        "deferred" => format!("Deferred: {reply}"),
        "failed" => format!("Failed: {reply}"),
        _ => reply,
    })
}

/// Replies can span lines; the listing cannot.
fn clean(text: &str) -> String {
    text.split(['\r', '\n'])
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// `%.Ns`: at most `n` characters.
fn truncate(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((at, _)) => &s[..at],
        None => s,
    }
}

/// sendmail's `prtstr`: at most `ml` columns, backslashes doubled,
/// unprintable bytes as `\ooo`.
fn prtstr(out: &mut String, s: &str, ml: usize) {
    let mut ml = ml as isize;
    for &b in s.as_bytes() {
        if ml <= 0 {
            break;
        }
        ml -= 1;
        if b == b'\\' {
            if ml > 0 {
                ml -= 1;
                out.push_str("\\\\");
            }
        } else if b.is_ascii_graphic() || b == b' ' {
            out.push(char::from(b));
        } else {
            ml -= 3;
            if ml > 0 {
                let _ = write!(out, "\\{b:03o}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use postern_ipc::QueueRecipient;

    /// ctime in UTC, fixed.
    struct Utc;
    impl Clock for Utc {
        fn ctime(&self, unix_secs: u64) -> String {
            let t = chrono::DateTime::from_timestamp(unix_secs as i64, 0).unwrap();
            t.format("%a %b %e %H:%M:%S %Y").to_string()
        }
    }

    // Wed Nov 25 08:30:00 2020 UTC.
    const NOV25: u64 = 1_606_293_000;
    // Thu Nov  5 14:07:09 2020 UTC.
    const NOV5: u64 = 1_604_585_229;

    fn rcpt(address: &str, state: &str, reply: Option<&str>) -> QueueRecipient {
        QueueRecipient {
            address: address.into(),
            state: state.into(),
            last_reply: reply.map(str::to_string),
        }
    }

    fn entry() -> QueueEntry {
        QueueEntry {
            queue_id: "0AP8Cx00006826".parse().unwrap(),
            size: 412,
            created: NOV25,
            sender: "alice@example.net".into(),
            body: None,
            held: false,
            quarantine: None,
            in_progress: false,
            attempts: 0,
            recipients: vec![rcpt("bob@example.com", "pending", None)],
        }
    }

    fn list(entries: &[QueueEntry], verbose: bool) -> String {
        let refs: Vec<&QueueEntry> = entries.iter().collect();
        render("/var/spool/postern", &refs, verbose, &Utc)
    }

    #[test]
    fn empty_queue() {
        assert_eq!(
            list(&[], false),
            "/var/spool/postern is empty\n\t\tTotal requests: 0\n"
        );
    }

    #[test]
    fn one_message() {
        let expected = concat!(
            "\t\t/var/spool/postern (1 request)\n",
            "-----Q-ID----- --Size-- -----Q-Time----- ------------Sender/Recipient-----------\n",
            "0AP8Cx00006826      412 Wed Nov 25 08:30 <alice@example.net>\n",
            "\t\t\t\t\t <bob@example.com>\n",
            "\t\tTotal requests: 1\n"
        );
        assert_eq!(list(&[entry()], false), expected);
    }

    #[test]
    fn deferred_with_status_several_recipients_in_progress() {
        let mut a = entry();
        a.in_progress = true;
        a.attempts = 2;
        a.recipients = vec![
            rcpt(
                "bob@example.com",
                "deferred",
                Some("451 4.3.0 Try again later"),
            ),
            rcpt("carol@example.com", "pending", None),
        ];
        let mut b = entry();
        b.queue_id = "0AP8Cy00006900".parse().unwrap();
        b.size = 1_234_567;
        b.created = NOV5;
        b.sender = String::new();
        b.body = Some(postern_ipc::BodyType::EightBitMime);
        let expected = concat!(
            "\t\t/var/spool/postern (2 requests)\n",
            "-----Q-ID----- --Size-- -----Q-Time----- ------------Sender/Recipient-----------\n",
            "0AP8Cx00006826*     412 Wed Nov 25 08:30 <alice@example.net>\n",
            "                 (Deferred: 451 4.3.0 Try again later)\n",
            "\t\t\t\t\t <bob@example.com>\n",
            "\t\t\t\t\t <carol@example.com>\n",
            "0AP8Cy00006900  1234567 Thu Nov  5 14:07 <>\n",
            "      8BITMIME\n",
            "\t\t\t\t\t <bob@example.com>\n",
            "\t\tTotal requests: 2\n"
        );
        assert_eq!(list(&[a, b], false), expected);
    }

    #[test]
    fn long_addresses_are_truncated() {
        let mut e = entry();
        e.sender = format!("{}@example.net", "s".repeat(40));
        e.recipients = vec![rcpt(
            &format!("{}@example.com", "r".repeat(40)),
            "pending",
            None,
        )];
        let out = list(&[e], false);
        let sender_line = out.lines().nth(2).unwrap();
        assert_eq!(
            sender_line,
            format!(
                "0AP8Cx00006826      412 Wed Nov 25 08:30 <{}",
                "s".repeat(38)
            )
        );
        let rcpt_line = out.lines().nth(3).unwrap();
        assert_eq!(rcpt_line, format!("\t\t\t\t\t <{}", "r".repeat(37)));
    }

    #[test]
    fn held_is_shown_as_quarantined() {
        let mut e = entry();
        e.held = true;
        let expected = concat!(
            "\t\t/var/spool/postern (1 request)\n",
            "-----Q-ID----- --Size-- -----Q-Time----- ------------Sender/Recipient-----------\n",
            "0AP8Cx00006826      412 Wed Nov 25 08:30 <alice@example.net>\n",
            "     QUARANTINE: held\n",
            "\t\t\t\t\t <bob@example.com>\n",
            "\t\tTotal requests: 1\n"
        );
        assert_eq!(list(&[e], false), expected);
    }

    #[test]
    fn verbose_listing() {
        let mut e = entry();
        e.attempts = 2;
        e.recipients = vec![
            rcpt(
                "bob@example.com",
                "deferred",
                Some("451 4.3.0 Try again\r\nlater"),
            ),
            rcpt(
                "carol@example.com",
                "deferred",
                Some("Connection refused by [127.0.0.1]"),
            ),
            rcpt("dave@example.com", "pending", None),
        ];
        // 412 + 3 * 30000 + 1 * 90000: the first attempt does not count.
        // Bob's reply is the status line's; Carol's says more.
        let expected = concat!(
            "\t\t/var/spool/postern (1 request)\n",
            "-----Q-ID----- --Size-- -Priority- ---Q-Time--- --------Sender/Recipient--------\n",
            "0AP8Cx00006826      412     180412 Nov 25 08:30 <alice@example.net>\n",
            "                 (Deferred: 451 4.3.0 Try again later)\n",
            "\t\t\t\t\t\t<bob@example.com>\n",
            "\t\t\t\t\t\t<carol@example.com>\n",
            "\t\t (Connection refused by [127.0.0.1])\n",
            "\t\t\t\t\t\t<dave@example.com>\n",
            "\t\tTotal requests: 1\n"
        );
        assert_eq!(list(&[e], true), expected);
    }

    #[test]
    fn selection_counts_what_it_picked() {
        let a = entry();
        let mut b = entry();
        b.queue_id = "0AP8Cy00006900".parse().unwrap();
        b.recipients = vec![rcpt("Dave@Example.org", "pending", None)];
        let sel = QueueSelector {
            field: SelectorField::Recipient,
            substring: "dave@example".into(),
            negate: false,
        };
        assert!(!selected(&a, &sel));
        assert!(selected(&b, &sel));
        let not = QueueSelector {
            negate: true,
            ..sel
        };
        assert!(selected(&a, &not));
        let picked = [&b];
        // sendmail counts what the selector picked.
        let out = render("/q", &picked, false, &Utc);
        assert!(out.starts_with("\t\t/q (1 request)\n"));
        assert!(out.ends_with("\t\tTotal requests: 1\n"));
    }

    #[test]
    fn unprintable_bytes_are_escaped() {
        let mut s = String::new();
        prtstr(&mut s, "a\\b\u{1}c", 39);
        assert_eq!(s, "a\\\\b\\001c");
    }
}
