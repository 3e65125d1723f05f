//! sendmail time values: `30s`, `5m`, `1h30m`, `2d`, `1w`
//! (`sendmail/convtime.c`). A number without a unit letter takes the
//! option's default unit, which is why the unit is part of the option table.

use std::time::Duration;

/// The unit a bare number is read in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Seconds (`s`).
    Seconds,
    /// Minutes (`m`).
    Minutes,
    /// Hours (`h`).
    Hours,
    /// Days (`d`).
    Days,
    /// Weeks (`w`).
    Weeks,
}

impl Unit {
    const fn seconds(self) -> u64 {
        match self {
            Unit::Seconds => 1,
            Unit::Minutes => 60,
            Unit::Hours => 3600,
            Unit::Days => 86_400,
            Unit::Weeks => 604_800,
        }
    }

    fn from_letter(c: char) -> Option<Unit> {
        match c.to_ascii_lowercase() {
            's' => Some(Unit::Seconds),
            'm' => Some(Unit::Minutes),
            'h' => Some(Unit::Hours),
            'd' => Some(Unit::Days),
            'w' => Some(Unit::Weeks),
            _ => None,
        }
    }
}

/// Parses a sendmail time value: one or more `<digits>[unit]` parts, summed.
/// sendmail falls back to the default unit on an unknown letter; we refuse
/// it, because `5x` is far more likely a typo than a request for minutes.
pub fn parse_duration(s: &str, default_unit: Unit) -> Result<Duration, String> {
    let bad = || format!("bad duration \"{s}\" (expected e.g. 30s, 5m, 1h30m, 2d, 1w)");
    if s.is_empty() {
        return Err(bad());
    }
    let mut total: u64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit = match rest.chars().next() {
            None => default_unit,
            Some(c) => {
                rest = &rest[c.len_utf8()..];
                Unit::from_letter(c).ok_or_else(bad)?
            }
        };
        total = n
            .checked_mul(unit.seconds())
            .and_then(|secs| total.checked_add(secs))
            .ok_or_else(bad)?;
    }
    Ok(Duration::from_secs(total))
}

/// Writes a duration back in sendmail's notation, largest units first
/// (`5400s` → `1h30m`), so that `check-config` output parses again.
pub fn format_duration(d: Duration) -> String {
    let mut secs = d.as_secs();
    if secs == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    for (unit, letter) in [
        (Unit::Weeks, 'w'),
        (Unit::Days, 'd'),
        (Unit::Hours, 'h'),
        (Unit::Minutes, 'm'),
        (Unit::Seconds, 's'),
    ] {
        let n = secs / unit.seconds();
        if n > 0 {
            out.push_str(&n.to_string());
            out.push(letter);
            secs %= unit.seconds();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: &str, unit: Unit) -> u64 {
        parse_duration(s, unit).unwrap().as_secs()
    }

    #[test]
    fn units_and_combinations() {
        assert_eq!(secs("30s", Unit::Minutes), 30);
        assert_eq!(secs("5m", Unit::Days), 300);
        assert_eq!(secs("1h", Unit::Minutes), 3600);
        assert_eq!(secs("2d", Unit::Minutes), 172_800);
        assert_eq!(secs("1w", Unit::Minutes), 604_800);
        assert_eq!(secs("1h30m", Unit::Minutes), 5400);
        assert_eq!(secs("1H30M", Unit::Minutes), 5400);
        assert_eq!(secs("1d12h", Unit::Minutes), 129_600);
    }

    #[test]
    fn bare_numbers_take_the_default_unit() {
        assert_eq!(secs("5", Unit::Minutes), 300);
        assert_eq!(secs("5", Unit::Days), 432_000);
        assert_eq!(secs("4", Unit::Hours), 14_400);
        assert_eq!(secs("0", Unit::Minutes), 0);
        // A trailing bare number in a combination also takes the default unit.
        assert_eq!(secs("1h30", Unit::Minutes), 5400);
    }

    #[test]
    fn rejects_garbage() {
        for s in [
            "",
            "m",
            "5x",
            "-5m",
            "5 m",
            "1h 30m",
            "+5",
            "1.5h",
            "99999999999999999999w",
        ] {
            assert!(parse_duration(s, Unit::Minutes).is_err(), "{s:?}");
        }
        assert_eq!(
            parse_duration("5x", Unit::Minutes).unwrap_err(),
            "bad duration \"5x\" (expected e.g. 30s, 5m, 1h30m, 2d, 1w)"
        );
        // Overflow of the sum, not just of one part.
        let big = format!("{}s{}s", u64::MAX, 1);
        assert!(parse_duration(&big, Unit::Seconds).is_err());
    }

    #[test]
    fn formats_round_trip() {
        for (s, want) in [
            ("5400s", "1h30m"),
            ("5d", "5d"),
            ("0", "0s"),
            ("8d", "1w1d"),
            ("61", "1m1s"),
        ] {
            let d = parse_duration(s, Unit::Seconds).unwrap();
            assert_eq!(format_duration(d), want);
            assert_eq!(parse_duration(want, Unit::Seconds).unwrap(), d);
        }
    }
}
