//! Calendar arithmetic for queue IDs and `Received:` dates.
//!
//! Pure integer arithmetic (Howard Hinnant's `civil_from_days`), so no libc
//! `localtime`, no time-zone database and no chrono: the caller knows its
//! UTC offset and passes it in.

/// A broken-down proleptic Gregorian date and time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Civil {
    pub year: i64,
    /// 1..=12.
    pub month: u32,
    /// 1..=31.
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    /// 0 = Sunday.
    pub weekday: u32,
}

/// Converts seconds since the epoch (already shifted to the wanted zone).
pub(crate) fn civil(secs: i64) -> Civil {
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // civil_from_days: shift the era to start on 0000-03-01 so that the
    // leap day is the last day of the "year".
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March = 0
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    Civil {
        year,
        month,
        day,
        hour: (sod / 3600) as u32,
        minute: (sod / 60 % 60) as u32,
        second: (sod % 60) as u32,
        // 1970-01-01 was a Thursday.
        weekday: (days + 4).rem_euclid(7) as u32,
    }
}

const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Formats an RFC 5322 date as sendmail's `arpadate()` does:
/// `Tue, 2 Jan 2024 10:00:00 +0100` (day of month not padded).
///
/// `utc_offset_secs` is east of UTC (so `+0100` is 3600); seconds beyond
/// whole minutes are dropped from the zone, as RFC 5322 has no room for them.
pub fn rfc5322_date(unix_secs: i64, utc_offset_secs: i32) -> String {
    let c = civil(unix_secs.saturating_add(i64::from(utc_offset_secs)));
    let sign = if utc_offset_secs < 0 { '-' } else { '+' };
    let off_min = utc_offset_secs.unsigned_abs() / 60;
    format!(
        "{}, {} {} {} {:02}:{:02}:{:02} {}{:02}{:02}",
        DAYS[c.weekday as usize],
        c.day,
        MONTHS[(c.month - 1) as usize],
        c.year,
        c.hour,
        c.minute,
        c.second,
        sign,
        off_min / 60,
        off_min % 60
    )
}
