//! `DaemonPortOptions` / `DAEMON_OPTIONS`: one listening socket per value.
//!
//! The value is a comma-separated list of `Key=Value`. sendmail looks only at
//! the first letter of a key; we accept the documented full names and the
//! single letters, so that a misspelt key is an error rather than silently
//! meaning something else.

use std::fmt;
use std::net::IpAddr;

/// Address family of a listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// IPv4 (`inet`), sendmail's default.
    Inet,
    /// IPv6 (`inet6`).
    Inet6,
}

impl Family {
    /// sendmail's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Inet => "inet",
            Family::Inet6 => "inet6",
        }
    }
}

/// One listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DaemonPort {
    /// TCP port.
    pub port: u16,
    /// Address to bind; `None` means all addresses of the family.
    pub addr: Option<IpAddr>,
    /// The daemon's name (`MTA`, `MSA`), used in logs and `${daemon_name}`.
    pub name: Option<String>,
    /// Address family.
    pub family: Family,
    /// sendmail's modifier letters (`M=Ea`), stored as written; their
    /// meaning is the SMTP server's business.
    pub modifiers: String,
}

/// The listeners an m4-built sendmail has when no `DAEMON_OPTIONS` is given.
pub const DEFAULT_LISTENERS: &[&str] = &["Port=smtp, Name=MTA", "Port=submission, Name=MSA, M=Ea"];

/// Service names we accept for `Port`. A fixed table instead of
/// /etc/services keeps the meaning of the file independent of the host.
const SERVICES: &[(&str, u16)] = &[("smtp", 25), ("submission", 587), ("smtps", 465)];

impl DaemonPort {
    /// Parses one `DaemonPortOptions` value. An empty value is a listener
    /// with all defaults (port 25, all IPv4 addresses), as in sendmail.
    pub fn parse(value: &str) -> Result<DaemonPort, String> {
        let mut port = 25;
        let mut addr: Option<IpAddr> = None;
        let mut name = None;
        let mut family = None;
        let mut modifiers = String::new();
        for item in value.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let Some((key, val)) = item.split_once('=') else {
                return Err(format!("expected Key=Value, got \"{item}\""));
            };
            let val = val.trim();
            match key.trim().to_ascii_lowercase().as_str() {
                "port" | "p" => port = parse_port(val)?,
                "addr" | "a" => {
                    addr = Some(val.parse().map_err(|_| format!("bad Addr \"{val}\""))?);
                }
                "name" | "n" => name = Some(val.to_string()),
                "family" | "f" => {
                    family = Some(match val.to_ascii_lowercase().as_str() {
                        "inet" => Family::Inet,
                        "inet6" => Family::Inet6,
                        _ => return Err(format!("bad Family \"{val}\" (expected inet or inet6)")),
                    });
                }
                "modifiers" | "m" => {
                    if !val.chars().all(|c| c.is_ascii_alphabetic()) {
                        return Err(format!("bad Modifiers \"{val}\" (expected letters)"));
                    }
                    modifiers = val.to_string();
                }
                _ => return Err(format!("unknown key \"{}\"", key.trim())),
            }
        }
        // sendmail reads Addr according to Family; we infer the family from
        // the address and only insist that an explicit Family agrees.
        let addr_family = addr.map(|a| {
            if a.is_ipv4() {
                Family::Inet
            } else {
                Family::Inet6
            }
        });
        let family = match (family, addr_family) {
            (Some(f), Some(a)) if f != a => {
                return Err(format!("Addr is not an {} address", f.as_str()));
            }
            (Some(f), _) | (None, Some(f)) => f,
            (None, None) => Family::Inet,
        };
        Ok(DaemonPort {
            port,
            addr,
            name,
            family,
            modifiers,
        })
    }
}

fn parse_port(val: &str) -> Result<u16, String> {
    let bad = || format!("bad port \"{val}\" (expected 1-65535, smtp, submission or smtps)");
    if let Some(&(_, n)) = SERVICES.iter().find(|(s, _)| s.eq_ignore_ascii_case(val)) {
        return Ok(n);
    }
    if val.is_empty() || !val.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    match val.parse::<u16>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(bad()),
    }
}

/// Writes the listener in the form it is parsed from.
impl fmt::Display for DaemonPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Port={}", self.port)?;
        if let Some(a) = self.addr {
            write!(f, ", Addr={a}")?;
        }
        if let Some(n) = &self.name {
            write!(f, ", Name={n}")?;
        }
        write!(f, ", Family={}", self.family.as_str())?;
        if !self.modifiers.is_empty() {
            write!(f, ", M={}", self.modifiers)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookbook_listener() {
        let d = DaemonPort::parse("Port=smtp, Addr=127.0.0.1, Name=MTA").unwrap();
        assert_eq!(d.port, 25);
        assert_eq!(d.addr, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(d.name.as_deref(), Some("MTA"));
        assert_eq!(d.family, Family::Inet);
        assert_eq!(d.modifiers, "");
    }

    #[test]
    fn letters_full_names_and_case() {
        let d = DaemonPort::parse("p=submission,N=MSA, m=Ea").unwrap();
        assert_eq!(
            (d.port, d.name.as_deref(), d.modifiers.as_str()),
            (587, Some("MSA"), "Ea")
        );
        let d = DaemonPort::parse("PORT=2525, FAMILY=inet6, ADDR=::1").unwrap();
        assert_eq!((d.port, d.family), (2525, Family::Inet6));
        let d = DaemonPort::parse("Addr=2001:db8::1").unwrap();
        assert_eq!((d.port, d.family), (25, Family::Inet6));
        assert_eq!(DaemonPort::parse("Port=smtps").unwrap().port, 465);
        assert_eq!(DaemonPort::parse("").unwrap().port, 25);
    }

    #[test]
    fn errors() {
        let e = |s| DaemonPort::parse(s).unwrap_err();
        assert!(e("Port=0").starts_with("bad port \"0\""));
        assert!(e("Port=65536").starts_with("bad port"));
        assert!(e("Port=imap").starts_with("bad port"));
        assert!(e("Port=+25").starts_with("bad port"));
        assert_eq!(e("Addr=localhost"), "bad Addr \"localhost\"");
        assert_eq!(e("Addr=300.1.1.1"), "bad Addr \"300.1.1.1\"");
        assert_eq!(e("Listen=10"), "unknown key \"Listen\"");
        assert_eq!(e("Port"), "expected Key=Value, got \"Port\"");
        assert!(e("Family=local").starts_with("bad Family"));
        assert_eq!(e("Family=inet, Addr=::1"), "Addr is not an inet address");
        assert_eq!(e("M=E,x=b"), "unknown key \"x\"");
        assert!(e("M=E1").starts_with("bad Modifiers"));
    }

    #[test]
    fn display_parses_back() {
        for s in DEFAULT_LISTENERS
            .iter()
            .chain(&["Port=2525, Addr=::1, Name=X"])
        {
            let d = DaemonPort::parse(s).unwrap();
            assert_eq!(DaemonPort::parse(&d.to_string()).unwrap(), d);
        }
    }
}
