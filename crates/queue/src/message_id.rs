//! The Message-Id Postern makes for a message that has none (one it
//! received without, a local submission without, or a report it writes
//! itself), in sendmail's form: `<`the minute the message was queued, in
//! local time, `.`the queue ID`@$j>`. The queue ID makes it unique on this
//! host; `$j` makes it unique on the internet.

use chrono::{DateTime, FixedOffset};

/// `<YYYYMMDDHHMM.queue-id@hostname>`; `utc_offset_secs` as for
/// [`postern_smtp::date::rfc5322_date`] (fronts learn it before their jail).
pub fn message_id(unix_secs: i64, utc_offset_secs: i32, queue_id: &str, hostname: &str) -> String {
    let zone = FixedOffset::east_opt(utc_offset_secs)
        .unwrap_or_else(|| FixedOffset::east_opt(0).expect("UTC is a valid offset"));
    let stamp = DateTime::from_timestamp(unix_secs, 0)
        .unwrap_or_default()
        .with_timezone(&zone)
        .format("%Y%m%d%H%M");
    format!("<{stamp}.{queue_id}@{hostname}>")
}

#[cfg(test)]
mod tests {
    use super::message_id;

    #[test]
    fn sendmails_form_in_local_time() {
        // 2026-12-02 00:40:21 UTC, as in bounce-dsn.txt item 3.
        assert_eq!(
            message_id(1_796_172_021, 0, "6B20eLl2025521", "mx.example"),
            "<202612020040.6B20eLl2025521@mx.example>"
        );
        assert_eq!(
            message_id(1_796_172_021, 3600, "6B20eLl2025521", "mx.example"),
            "<202612020140.6B20eLl2025521@mx.example>"
        );
    }
}
