//! RFC 5322 dates as sendmail writes them (`arpadate()`): in `Date:`
//! headers, `Received:` headers and the greeting's `$b`. The one date
//! formatter in Postern.
//!
//! The caller passes the time and its offset from UTC: fronts run chrooted
//! where no time-zone database is readable, so the offset is learnt before
//! the jail and carried in.

use chrono::{DateTime, FixedOffset};

/// `Tue, 2 Jan 2024 10:00:00 +0100` (day of month not padded).
///
/// `utc_offset_secs` is east of UTC (so `+0100` is 3600); seconds beyond
/// whole minutes shift the time but are dropped from the zone, as RFC 5322
/// has no room for them. An offset of a day or more counts as UTC.
pub fn rfc5322_date(unix_secs: i64, utc_offset_secs: i32) -> String {
    let zone = FixedOffset::east_opt(utc_offset_secs)
        .unwrap_or_else(|| FixedOffset::east_opt(0).expect("UTC is a valid offset"));
    let time = DateTime::from_timestamp(unix_secs, 0).unwrap_or_default();
    time.with_timezone(&zone)
        .format("%a, %-d %b %Y %H:%M:%S %z")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::rfc5322_date;

    #[test]
    fn dates() {
        assert_eq!(rfc5322_date(0, 0), "Thu, 1 Jan 1970 00:00:00 +0000");
        assert_eq!(
            rfc5322_date(1_704_186_000, 3600),
            "Tue, 2 Jan 2024 10:00:00 +0100"
        );
        // Leap day, and the day after, in a leap year.
        assert_eq!(
            rfc5322_date(951_782_400, 0),
            "Tue, 29 Feb 2000 00:00:00 +0000"
        );
        assert_eq!(
            rfc5322_date(951_868_799, 0),
            "Tue, 29 Feb 2000 23:59:59 +0000"
        );
        assert_eq!(
            rfc5322_date(1_709_251_200, 0),
            "Fri, 1 Mar 2024 00:00:00 +0000"
        );
        // Negative offsets cross the day, month and year backwards.
        assert_eq!(
            rfc5322_date(1_704_067_200, -5 * 3600),
            "Sun, 31 Dec 2023 19:00:00 -0500"
        );
        assert_eq!(
            rfc5322_date(1_704_067_200, -(3 * 3600 + 1800)),
            "Sun, 31 Dec 2023 20:30:00 -0330"
        );
        assert_eq!(rfc5322_date(0, -60), "Wed, 31 Dec 1969 23:59:00 -0001");
        assert_eq!(
            rfc5322_date(1_704_067_200, 5 * 3600 + 2700),
            "Mon, 1 Jan 2024 05:45:00 +0545"
        );
        // Before the epoch, and 2100 (not a leap year).
        assert_eq!(rfc5322_date(-86_400, 0), "Wed, 31 Dec 1969 00:00:00 +0000");
        assert_eq!(
            rfc5322_date(4_107_542_400, 0),
            "Mon, 1 Mar 2100 00:00:00 +0000"
        );
        // Nonsense offsets and times still give a well-formed date.
        assert_eq!(rfc5322_date(0, 90_000), "Thu, 1 Jan 1970 00:00:00 +0000");
        assert_eq!(rfc5322_date(i64::MAX, 0), "Thu, 1 Jan 1970 00:00:00 +0000");
    }
}
