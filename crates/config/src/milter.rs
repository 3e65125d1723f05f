//! Mail filters, in sendmail's words: `INPUT_MAIL_FILTER(`name',
//! `S=inet:8891@127.0.0.1, F=T, T=C:10s;S:10s;R:10s;E:5m')` in the .mc,
//! `Xname, S=…, F=…, T=…` with `O InputMailFilters=name,…` in the .cf.
//! `MAIL_FILTER` defines a filter without putting it in the list.
//!
//! - `S=` where the filter listens: `inet:PORT@ADDR`, `inet6:PORT@ADDR`,
//!   `unix:/path` (or `local:/path`). The address must be an IP literal
//!   or `localhost`: Postern asks no resolver at start.
//! - `F=` what a filter that cannot be used means: `T` temp-fail the
//!   message (451), `R` reject it (550), `4` close the connection with
//!   421; without `F=` mail goes on unfiltered, as in sendmail.
//! - `T=` the timeouts: `C` connecting, `S` sending, `R` reading each
//!   answer, `E` the whole answer to end of message; sendmail's defaults
//!   5m, 10s, 10s, 5m. A number without a unit is seconds.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::duration::{format_duration, parse_duration, Unit};

/// Where a filter listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FilterSocket {
    Inet(SocketAddr),
    Unix(PathBuf),
}

/// What happens to mail when a filter cannot be used (`F=`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FailureMode {
    /// No `F=`: as if the filter were not there.
    #[default]
    Ignore,
    /// `F=T`: `451 4.3.2 Please try again later`.
    TempFail,
    /// `F=R`: `550 5.7.1 Command rejected`.
    Reject,
    /// `F=4`: `421 4.7.0 <host> closing connection`.
    Shutdown,
}

/// `T=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FilterTimeouts {
    pub connect: Duration,
    pub send: Duration,
    pub read: Duration,
    pub end_of_message: Duration,
}

impl Default for FilterTimeouts {
    /// sendmail's (`readcf.c`): 5m, 10s, 10s, 5m.
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(300),
            send: Duration::from_secs(10),
            read: Duration::from_secs(10),
            end_of_message: Duration::from_secs(300),
        }
    }
}

/// One filter definition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailFilter {
    pub name: String,
    pub socket: FilterSocket,
    pub on_failure: FailureMode,
    pub timeouts: FilterTimeouts,
}

impl MailFilter {
    /// Parses `name` and its equates (`S=…, F=…, T=…`).
    pub fn parse(name: &str, equates: &str) -> Result<MailFilter, String> {
        let name = name.trim();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        {
            return Err(format!(
                "mail filter name \"{name}\": letters, digits, '-', '_' and '.' only"
            ));
        }
        let mut socket = None;
        let mut on_failure = FailureMode::Ignore;
        let mut timeouts = FilterTimeouts::default();
        for equate in equates.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (key, value) = equate
                .split_once('=')
                .ok_or_else(|| format!("mail filter {name}: \"{equate}\" is not KEY=value"))?;
            let value = value.trim();
            match key.trim() {
                "S" => {
                    socket = Some(
                        parse_socket(value)
                            .map_err(|e| format!("mail filter {name}: S={value}: {e}"))?,
                    )
                }
                "F" => {
                    on_failure =
                        parse_failure(value).map_err(|e| format!("mail filter {name}: {e}"))?
                }
                "T" => parse_timeouts(value, &mut timeouts)
                    .map_err(|e| format!("mail filter {name}: T={value}: {e}"))?,
                other => {
                    return Err(format!(
                        "mail filter {name}: unknown equate \"{other}=\" (S=, F= and T= are known)"
                    ))
                }
            }
        }
        let socket =
            socket.ok_or_else(|| format!("mail filter {name}: S= (its socket) is required"))?;
        Ok(MailFilter {
            name: name.to_string(),
            socket,
            on_failure,
            timeouts,
        })
    }

    /// The equates, as sendmail.cf writes them after the name.
    pub fn equates(&self) -> String {
        let mut out = format!("S={}", self.socket);
        match self.on_failure {
            FailureMode::Ignore => {}
            FailureMode::TempFail => out.push_str(", F=T"),
            FailureMode::Reject => out.push_str(", F=R"),
            FailureMode::Shutdown => out.push_str(", F=4"),
        }
        let t = &self.timeouts;
        out.push_str(&format!(
            ", T=C:{};S:{};R:{};E:{}",
            format_duration(t.connect),
            format_duration(t.send),
            format_duration(t.read),
            format_duration(t.end_of_message)
        ));
        out
    }
}

impl fmt::Display for FilterSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FilterSocket::Inet(SocketAddr::V4(a)) => write!(f, "inet:{}@{}", a.port(), a.ip()),
            FilterSocket::Inet(SocketAddr::V6(a)) => write!(f, "inet6:{}@{}", a.port(), a.ip()),
            FilterSocket::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

fn parse_socket(value: &str) -> Result<FilterSocket, String> {
    let (kind, rest) = value
        .split_once(':')
        .ok_or("expected inet:PORT@ADDR, inet6:PORT@ADDR or unix:/path")?;
    match kind {
        "unix" | "local" => {
            if !rest.starts_with('/') {
                return Err("a unix socket needs an absolute path".into());
            }
            Ok(FilterSocket::Unix(PathBuf::from(rest)))
        }
        "inet" | "inet6" => {
            let (port, host) = rest.split_once('@').ok_or("expected PORT@ADDR")?;
            let port: u16 = port
                .parse()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("\"{port}\" is not a port"))?;
            let v6 = kind == "inet6";
            let addr: IpAddr = match host {
                "localhost" if v6 => IpAddr::V6(Ipv6Addr::LOCALHOST),
                "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
                h => h
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse()
                    .map_err(|_| format!("\"{h}\" is not an IP address (Postern does not look names up at start: give the address)"))?,
            };
            if addr.is_ipv6() != v6 {
                return Err(format!("{addr} is not an {kind} address"));
            }
            Ok(FilterSocket::Inet(SocketAddr::new(addr, port)))
        }
        other => Err(format!(
            "unknown socket type \"{other}\" (inet, inet6, unix)"
        )),
    }
}

fn parse_failure(value: &str) -> Result<FailureMode, String> {
    match value {
        "" => Ok(FailureMode::Ignore),
        "T" => Ok(FailureMode::TempFail),
        "R" => Ok(FailureMode::Reject),
        "4" => Ok(FailureMode::Shutdown),
        other => Err(format!(
            "F={other}: T (temp-fail), R (reject) or 4 (421) only"
        )),
    }
}

fn parse_timeouts(value: &str, t: &mut FilterTimeouts) -> Result<(), String> {
    for part in value.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (which, time) = part
            .split_once(':')
            .ok_or_else(|| format!("\"{part}\" is not LETTER:time"))?;
        let d = parse_duration(time.trim(), Unit::Seconds)?;
        match which.trim() {
            "C" => t.connect = d,
            "S" => t.send = d,
            "R" => t.read = d,
            "E" => t.end_of_message = d,
            other => return Err(format!("unknown timeout \"{other}\" (C, S, R, E)")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookbooks_opendkim_line() {
        let f = MailFilter::parse(
            "opendkim",
            "S=inet:8891@127.0.0.1, F=T, T=C:10s;S:10s;R:10s;E:5m",
        )
        .unwrap();
        assert_eq!(
            f.socket,
            FilterSocket::Inet("127.0.0.1:8891".parse().unwrap())
        );
        assert_eq!(f.on_failure, FailureMode::TempFail);
        assert_eq!(f.timeouts.connect, Duration::from_secs(10));
        assert_eq!(f.timeouts.end_of_message, Duration::from_secs(300));
        assert_eq!(
            f.equates(),
            "S=inet:8891@127.0.0.1, F=T, T=C:10s;S:10s;R:10s;E:5m"
        );
        let again = MailFilter::parse("opendkim", &f.equates()).unwrap();
        assert_eq!(again, f);
    }

    #[test]
    fn sockets_and_defaults() {
        let f = MailFilter::parse("rspamd", "S=unix:/run/rspamd/milter.sock").unwrap();
        assert_eq!(
            f.socket,
            FilterSocket::Unix("/run/rspamd/milter.sock".into())
        );
        assert_eq!(f.on_failure, FailureMode::Ignore);
        assert_eq!(f.timeouts, FilterTimeouts::default());
        let f = MailFilter::parse("v6", "S=inet6:11332@::1, F=R, T=R:2m").unwrap();
        assert_eq!(f.socket.to_string(), "inet6:11332@::1");
        assert_eq!(f.timeouts.read, Duration::from_secs(120));
        assert_eq!(
            MailFilter::parse("l", "S=local:/s, F=4, T=E:30")
                .unwrap()
                .timeouts
                .end_of_message,
            Duration::from_secs(30)
        );
        assert_eq!(
            MailFilter::parse("h", "S=inet:1@localhost").unwrap().socket,
            FilterSocket::Inet("127.0.0.1:1".parse().unwrap())
        );
    }

    #[test]
    fn mistakes_are_named() {
        for (equates, says) in [
            ("F=T", "S= (its socket) is required"),
            ("S=inet:8891@mail.example.com", "not an IP address"),
            ("S=inet:0@127.0.0.1", "not a port"),
            ("S=inet6:1@127.0.0.1", "not an inet6 address"),
            ("S=unix:relative", "absolute path"),
            ("S=tcp:1@127.0.0.1", "unknown socket type"),
            ("S=unix:/s, F=X", "F=X"),
            ("S=unix:/s, T=Q:1s", "unknown timeout"),
            ("S=unix:/s, T=C:soon", "T=C:soon"),
            ("S=unix:/s, Z=1", "unknown equate"),
            ("S=unix:/s, oops", "not KEY=value"),
        ] {
            let e = MailFilter::parse("f", equates).unwrap_err();
            assert!(e.contains(says), "{equates}: {e}");
        }
        assert!(MailFilter::parse("bad name", "S=unix:/s").is_err());
    }
}
