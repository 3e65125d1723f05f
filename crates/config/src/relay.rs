//! The smart host: m4 `SMART_HOST`, .cf macro `$S` (`DS` line).
//!
//! Forms: `host`, `[host]` (brackets: connect to the host itself, no MX
//! lookup), `[192.0.2.1]`, `[IPv6:2001:db8::1]`, each optionally preceded by
//! a mailer (`esmtp:`) and followed by a port (`:587`).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::values::check_domain;

/// Where all outbound mail goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Relay {
    /// The sendmail mailer named before the host (`esmtp`, `smtp`, …), if any.
    pub mailer: Option<String>,
    /// The host name, or the IP address (without brackets or `IPv6:`).
    pub host: String,
    /// False when the host was written in brackets: use its A/AAAA records
    /// (or the literal address) rather than its MX records.
    pub mx_lookup: bool,
    /// The port, when not the mailer's default.
    pub port: Option<u16>,
}

/// sendmail's SMTP-family mailers, the only ones that make sense for a
/// smart host.
pub(crate) const MAILERS: &[&str] = &["esmtp", "smtp", "smtp8", "dsmtp", "relay"];

/// True for one of [`MAILERS`].
pub(crate) fn is_smtp_mailer(word: &str) -> bool {
    MAILERS.iter().any(|m| m.eq_ignore_ascii_case(word))
}

impl Relay {
    /// Parses a smart host specification (already trimmed, not empty).
    pub fn parse(spec: &str) -> Result<Relay, String> {
        let bad = |why: &str| format!("bad smart host \"{spec}\": {why}");
        let (mailer, rest) = split_mailer(spec).map_err(|why| bad(&why))?;
        let (host, mx_lookup, port) = if let Some(inner) = rest.strip_prefix('[') {
            let Some((host, after)) = inner.split_once(']') else {
                return Err(bad("missing \"]\""));
            };
            let port = match after {
                "" => None,
                _ => match after.strip_prefix(':') {
                    Some(p) => Some(parse_port(p).ok_or_else(|| bad("bad port"))?),
                    None => return Err(bad("unexpected text after \"]\"")),
                },
            };
            (bracketed_host(host).map_err(|why| bad(&why))?, false, port)
        } else {
            let (host, port) = match rest.split_once(':') {
                Some((h, p)) => (h, Some(parse_port(p).ok_or_else(|| bad("bad port"))?)),
                None => (rest, None),
            };
            if host.parse::<Ipv4Addr>().is_ok() {
                return Err(bad(
                    "an IP address must be written in brackets, [192.0.2.1]",
                ));
            }
            check_domain(host).map_err(|why| bad(&why))?;
            (host.to_string(), true, port)
        };
        Ok(Relay {
            mailer: mailer.map(str::to_string),
            host,
            mx_lookup,
            port,
        })
    }
}

/// Splits off a leading `mailer:`. `relay:2525` is the host `relay` on port
/// 2525, not the mailer `relay` with the host `2525`; `bogus:[192.0.2.1]`
/// names a mailer, one Postern does not know.
fn split_mailer(spec: &str) -> Result<(Option<&str>, &str), String> {
    if let Some((word, rest)) = spec.split_once(':') {
        let rest_is_port = !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit());
        if rest_is_port {
            return Ok((None, spec));
        }
        if is_smtp_mailer(word) {
            return Ok((Some(word), rest));
        }
        let looks_like_mailer = !word.is_empty()
            && word
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if looks_like_mailer {
            return Err(unknown_mailer(word, None, MAILERS.iter().copied()));
        }
    }
    Ok((None, spec))
}

/// `unknown mailer "x"` (`in "x:host"` when given), the known ones, and a
/// suggestion when one is near.
pub(crate) fn unknown_mailer<'a>(
    word: &str,
    spec: Option<&str>,
    known: impl IntoIterator<Item = &'a str> + Clone,
) -> String {
    let within = spec.map(|s| format!(" in \"{s}\"")).unwrap_or_default();
    format!(
        "unknown mailer \"{word}\"{within} (known: {}){}",
        known.clone().into_iter().collect::<Vec<_>>().join(", "),
        crate::suggest::did_you_mean(word, known)
    )
}

/// The inside of `[…]`: an IPv4 address, `IPv6:` and an IPv6 address, or a
/// host name whose MX records are to be ignored.
pub(crate) fn bracketed_host(host: &str) -> Result<String, String> {
    if let Some(v6) = host
        .get(..5)
        .filter(|p| p.eq_ignore_ascii_case("IPv6:"))
        .and_then(|_| host.get(5..))
    {
        return v6
            .parse::<Ipv6Addr>()
            .map(|a| a.to_string())
            .map_err(|_| format!("bad IPv6 address \"{v6}\""));
    }
    if host.parse::<Ipv4Addr>().is_ok() {
        return Ok(host.to_string());
    }
    check_domain(host)?;
    Ok(host.to_string())
}

fn parse_port(p: &str) -> Option<u16> {
    if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    p.parse::<u16>().ok().filter(|&n| n > 0)
}

/// Writes the relay in the form it is parsed from.
impl fmt::Display for Relay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(m) = &self.mailer {
            write!(f, "{m}:")?;
        }
        match (self.mx_lookup, self.host.parse::<Ipv6Addr>().is_ok()) {
            (_, true) => write!(f, "[IPv6:{}]", self.host)?,
            (false, false) => write!(f, "[{}]", self.host)?,
            (true, false) => f.write_str(&self.host)?,
        }
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relay(mailer: Option<&str>, host: &str, mx: bool, port: Option<u16>) -> Relay {
        Relay {
            mailer: mailer.map(str::to_string),
            host: host.to_string(),
            mx_lookup: mx,
            port,
        }
    }

    #[test]
    fn forms() {
        let cases = [
            (
                "relay.example.com",
                relay(None, "relay.example.com", true, None),
            ),
            (
                "[relay.example.com]",
                relay(None, "relay.example.com", false, None),
            ),
            ("[192.0.2.1]", relay(None, "192.0.2.1", false, None)),
            (
                "esmtp:relay.example.com",
                relay(Some("esmtp"), "relay.example.com", true, None),
            ),
            (
                "smtp:[relay.example.com]:2525",
                relay(Some("smtp"), "relay.example.com", false, Some(2525)),
            ),
            (
                "relay.example.com:587",
                relay(None, "relay.example.com", true, Some(587)),
            ),
            (
                "relay:[192.0.2.1]:25",
                relay(Some("relay"), "192.0.2.1", false, Some(25)),
            ),
            ("relay:2525", relay(None, "relay", true, Some(2525))),
            (
                "[IPv6:2001:db8::1]:25",
                relay(None, "2001:db8::1", false, Some(25)),
            ),
        ];
        for (spec, want) in cases {
            let got = Relay::parse(spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
            assert_eq!(got, want, "{spec}");
            assert_eq!(Relay::parse(&got.to_string()).unwrap(), got, "{spec}");
        }
    }

    #[test]
    fn errors() {
        for spec in [
            "[relay.example.com",
            "[relay]x",
            "relay.example.com:0",
            "relay.example.com:70000",
            "relay.example.com:smtp",
            "bad_host.example.com",
            "192.0.2.1",
            "[IPv6:nonsense]",
            "esmtp:",
            "uucp:relay.example.com",
            "-relay.example.com",
            "a..b",
        ] {
            let e = Relay::parse(spec).unwrap_err();
            assert!(
                e.starts_with(&format!("bad smart host \"{spec}\": ")),
                "{e}"
            );
        }
    }
}
