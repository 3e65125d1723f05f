//! LMTP (RFC 2033) destinations: the mailertable's `lmtp:` routes and the
//! `LocalDelivery` option, which hands every local user to an LMTP server
//! (Dovecot's `lmtp`, Cyrus) instead of Postern's own Maildir writer.
//!
//! Forms, the same in both places:
//! - `lmtp:unix:/run/dovecot/lmtp`: a Unix stream socket, by absolute path;
//! - `lmtp:[127.0.0.1]:24`, `lmtp:[IPv6:::1]:24`, `lmtp:[lmtp.example]:24`:
//!   TCP, the host always in brackets (an LMTP server is a host, never a
//!   mail domain: there is no MX lookup), the port optional (24, LMTP's
//!   customary port, when left out).
//!
//! `LocalDelivery` is an enum so that other local delivery methods (an
//! mbox writer) are one variant more: `maildir` (the default) or an LMTP
//! destination.

use std::fmt;
use std::net::Ipv6Addr;
use std::path::PathBuf;

use crate::relay::bracketed_host;

/// The port an LMTP route without one connects to.
pub const LMTP_PORT: u16 = 24;

/// Where an LMTP server listens.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum LmtpTarget {
    /// A Unix stream socket (`lmtp:unix:/run/dovecot/lmtp`).
    Unix(PathBuf),
    /// A TCP server (`lmtp:[127.0.0.1]:24`).
    Tcp {
        /// An IP address (without brackets or `IPv6:`) or a host name,
        /// looked up by its address records.
        host: String,
        /// The port.
        port: u16,
    },
}

impl LmtpTarget {
    /// Parses `lmtp:unix:/path` or `lmtp:[host]:port` (the whole route,
    /// `lmtp:` included).
    pub fn parse(spec: &str) -> Result<LmtpTarget, String> {
        let bad = |why: &str| format!("bad LMTP route \"{spec}\": {why}");
        let forms = "expected lmtp:unix:/path/to/socket or lmtp:[host]:port";
        let rest = spec
            .get(..5)
            .filter(|m| m.eq_ignore_ascii_case("lmtp:"))
            .and_then(|_| spec.get(5..))
            .ok_or_else(|| bad(forms))?;
        if let Some(path) = rest
            .get(..5)
            .filter(|p| p.eq_ignore_ascii_case("unix:"))
            .and_then(|_| rest.get(5..))
        {
            if !path.starts_with('/') {
                return Err(bad("the socket path must be absolute"));
            }
            if path.bytes().any(|b| b.is_ascii_control() || b == b' ') {
                return Err(bad(
                    "the socket path may not contain spaces or control characters",
                ));
            }
            // sockaddr_un's sun_path holds 108 bytes with the NUL.
            if path.len() > 107 {
                return Err(bad("the socket path is longer than 107 bytes"));
            }
            return Ok(LmtpTarget::Unix(PathBuf::from(path)));
        }
        let Some(inner) = rest.strip_prefix('[') else {
            return Err(bad(if rest.is_empty() {
                forms
            } else {
                "write the host in brackets, lmtp:[host]:port"
            }));
        };
        let Some((host, after)) = inner.split_once(']') else {
            return Err(bad("missing \"]\""));
        };
        let port = match after {
            "" => LMTP_PORT,
            _ => match after.strip_prefix(':') {
                Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p
                    .parse::<u16>()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| bad("bad port"))?,
                Some(_) => return Err(bad("bad port")),
                None => return Err(bad("unexpected text after \"]\"")),
            },
        };
        let host = bracketed_host(host).map_err(|why| bad(&why))?;
        Ok(LmtpTarget::Tcp { host, port })
    }
}

/// Writes the target as it is parsed, `lmtp:` included.
impl fmt::Display for LmtpTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LmtpTarget::Unix(path) => write!(f, "lmtp:unix:{}", path.display()),
            LmtpTarget::Tcp { host, port } if host.parse::<Ipv6Addr>().is_ok() => {
                write!(f, "lmtp:[IPv6:{host}]:{port}")
            }
            LmtpTarget::Tcp { host, port } => write!(f, "lmtp:[{host}]:{port}"),
        }
    }
}

/// `LocalDelivery` (Postern's own): how mail for a local user is delivered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum LocalDelivery {
    /// Postern's own Maildir writer, into `MailboxDirectory/<user>/Maildir`.
    #[default]
    Maildir,
    /// Over LMTP, to the server that owns the mailboxes (Dovecot), as
    /// `user@$j`.
    Lmtp(LmtpTarget),
}

impl LocalDelivery {
    /// `maildir`, or an LMTP target.
    pub fn parse(value: &str) -> Result<LocalDelivery, String> {
        if value.eq_ignore_ascii_case("maildir") {
            return Ok(LocalDelivery::Maildir);
        }
        if value
            .get(..5)
            .is_some_and(|m| m.eq_ignore_ascii_case("lmtp:"))
        {
            return LmtpTarget::parse(value).map(LocalDelivery::Lmtp);
        }
        Err(format!(
            "unknown local delivery \"{value}\" (expected maildir, lmtp:unix:/path or lmtp:[host]:port)"
        ))
    }
}

impl fmt::Display for LocalDelivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LocalDelivery::Maildir => f.write_str("maildir"),
            LocalDelivery::Lmtp(target) => target.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(host: &str, port: u16) -> LmtpTarget {
        LmtpTarget::Tcp {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn forms() {
        let cases = [
            (
                "lmtp:unix:/run/dovecot/lmtp",
                LmtpTarget::Unix("/run/dovecot/lmtp".into()),
            ),
            ("lmtp:[127.0.0.1]:24", tcp("127.0.0.1", 24)),
            ("LMTP:[127.0.0.1]", tcp("127.0.0.1", 24)),
            ("lmtp:[IPv6:::1]:2424", tcp("::1", 2424)),
            ("lmtp:[lmtp.example]:24", tcp("lmtp.example", 24)),
        ];
        for (spec, want) in cases {
            let got = LmtpTarget::parse(spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
            assert_eq!(got, want, "{spec}");
            assert_eq!(LmtpTarget::parse(&got.to_string()).unwrap(), got, "{spec}");
        }
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let cases = [
            (
                "lmtp:",
                "expected lmtp:unix:/path/to/socket or lmtp:[host]:port",
            ),
            ("lmtp:unix:run/lmtp", "the socket path must be absolute"),
            ("lmtp:unix:", "the socket path must be absolute"),
            ("lmtp:127.0.0.1:24", "write the host in brackets"),
            ("lmtp:[127.0.0.1", "missing \"]\""),
            ("lmtp:[127.0.0.1]:0", "bad port"),
            ("lmtp:[127.0.0.1]:lmtp", "bad port"),
            ("lmtp:[127.0.0.1]:99999", "bad port"),
            ("lmtp:[127.0.0.1]x", "unexpected text"),
            ("lmtp:[IPv6:nonsense]:24", "bad IPv6 address"),
            ("lmtp:[bad_host]:24", "bad_host"),
        ];
        for (spec, why) in cases {
            let e = LmtpTarget::parse(spec).unwrap_err();
            assert!(
                e.starts_with(&format!("bad LMTP route \"{spec}\": ")),
                "{e}"
            );
            assert!(e.contains(why), "{spec}: {e}");
        }
        let long = format!("lmtp:unix:/{}", "a".repeat(107));
        assert!(LmtpTarget::parse(&long).unwrap_err().contains("107 bytes"));
    }

    #[test]
    fn local_delivery() {
        assert_eq!(LocalDelivery::parse("maildir"), Ok(LocalDelivery::Maildir));
        assert_eq!(LocalDelivery::parse("Maildir"), Ok(LocalDelivery::Maildir));
        assert_eq!(
            LocalDelivery::parse("lmtp:unix:/run/dovecot/lmtp"),
            Ok(LocalDelivery::Lmtp(LmtpTarget::Unix(
                "/run/dovecot/lmtp".into()
            )))
        );
        assert_eq!(
            LocalDelivery::parse("lmtp:[127.0.0.1]:24")
                .unwrap()
                .to_string(),
            "lmtp:[127.0.0.1]:24"
        );
        assert!(LocalDelivery::parse("mbx")
            .unwrap_err()
            .starts_with("unknown local delivery \"mbx\""));
        assert!(LocalDelivery::parse("lmtp:x")
            .unwrap_err()
            .starts_with("bad LMTP route"));
    }
}
