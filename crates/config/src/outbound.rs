//! How outbound SMTP finds its peers: the name servers asked for MX and
//! address records (`NameServers`, Postern's own option), and the port
//! each SMTP mailer connects to, read from sendmail's mailer arguments
//! (`` define(`SMTP_MAILER_ARGS', `TCP $h 2525') ``).
//!
//! Owns: parsing and showing those values. Does not own: resolving names
//! or connecting (the delivery client's `resolver.rs` and `outbound.rs`).

use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// The port a route uses when neither it nor the mailer's arguments name one.
pub const SMTP_PORT: u16 = 25;

/// `NameServers`: `address:port` (an IPv6 address in brackets, `[::1]:53`)
/// or a bare address (port 53), comma- or space-separated. Empty means the
/// system's `/etc/resolv.conf`.
pub(crate) fn parse_name_servers(value: &str) -> Result<Vec<SocketAddr>, String> {
    value
        .split([',', ' ', '\t'])
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<SocketAddr>()
                .or_else(|_| s.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
                .map_err(|_| format!("\"{s}\" is not an address or address:port"))
        })
        .collect()
}

/// The ports of sendmail's SMTP-family mailers, from their `A=` arguments
/// (`TCP $h` or `TCP $h <port>`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailerPorts {
    /// `smtp` (`SMTP_MAILER_ARGS`).
    pub smtp: u16,
    /// `esmtp` (`ESMTP_MAILER_ARGS`).
    pub esmtp: u16,
    /// `smtp8` (`SMTP8_MAILER_ARGS`).
    pub smtp8: u16,
    /// `dsmtp` (`DSMTP_MAILER_ARGS`).
    pub dsmtp: u16,
    /// `relay` (`RELAY_MAILER_ARGS`), the SMART_HOST's mailer.
    pub relay: u16,
}

impl Default for MailerPorts {
    fn default() -> Self {
        MailerPorts {
            smtp: SMTP_PORT,
            esmtp: SMTP_PORT,
            smtp8: SMTP_PORT,
            dsmtp: SMTP_PORT,
            relay: SMTP_PORT,
        }
    }
}

impl MailerPorts {
    /// The port mailer `name` connects to (25 for a name it does not know).
    pub fn port(&self, mailer: &str) -> u16 {
        match mailer {
            "smtp" => self.smtp,
            "esmtp" => self.esmtp,
            "smtp8" => self.smtp8,
            "dsmtp" => self.dsmtp,
            "relay" => self.relay,
            _ => SMTP_PORT,
        }
    }
}

/// One mailer's arguments, `TCP $h [port]`: the port. sendmail's `IPC`
/// is accepted as its old synonym; anything else (a program mailer) has
/// no place in an SMTP mailer's arguments.
pub(crate) fn parse_mailer_args(value: &str) -> Result<u16, String> {
    let words: Vec<&str> = value.split_whitespace().collect();
    match words.as_slice() {
        [tcp, "$h"] if is_tcp(tcp) => Ok(SMTP_PORT),
        [tcp, "$h", port] if is_tcp(tcp) => match port.parse::<u16>() {
            Ok(p) if p > 0 => Ok(p),
            _ => Err(format!("\"{port}\" is not a port number")),
        },
        _ => Err(format!(
            "\"{value}\": expected \"TCP $h\" or \"TCP $h <port>\""
        )),
    }
}

fn is_tcp(word: &str) -> bool {
    word == "TCP" || word == "IPC"
}

/// The arguments as sendmail writes them, for `check-config`.
pub(crate) struct ShowArgs(pub u16);

impl fmt::Display for ShowArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            SMTP_PORT => f.write_str("TCP $h"),
            port => write!(f, "TCP $h {port}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_servers() {
        assert_eq!(
            parse_name_servers("127.0.0.1:5353, [::1]:53 192.0.2.1").unwrap(),
            vec![
                "127.0.0.1:5353".parse().unwrap(),
                "[::1]:53".parse().unwrap(),
                "192.0.2.1:53".parse().unwrap()
            ]
        );
        assert!(parse_name_servers("").unwrap().is_empty());
        assert!(parse_name_servers("ns.example:53")
            .unwrap_err()
            .contains("ns.example:53"));
    }

    #[test]
    fn mailer_args() {
        assert_eq!(parse_mailer_args("TCP $h"), Ok(25));
        assert_eq!(parse_mailer_args("TCP $h 2525"), Ok(2525));
        assert_eq!(parse_mailer_args("IPC $h 587"), Ok(587));
        assert!(parse_mailer_args("TCP $h 0").is_err());
        assert!(parse_mailer_args("TCP $h smtp").is_err());
        assert!(parse_mailer_args("/usr/bin/procmail -d $u").is_err());
        assert_eq!(ShowArgs(25).to_string(), "TCP $h");
        assert_eq!(ShowArgs(2525).to_string(), "TCP $h 2525");
    }
}
