//! The side tables next to the configuration file, plain text (no
//! `makemap`): `local-host-names` (one domain per line) and `mailertable`
//! (`domain  mailer:host` per line, `.domain` for every subdomain).
//!
//! A missing table is an empty one; a malformed line is an error naming
//! file and line, like a bad configuration line.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::error::{ConfigError, ConfigErrors};
use crate::lmtp::LmtpTarget;
use crate::relay::Relay;
use crate::values::check_domain;

/// The domains this host receives mail for (sendmail's class `w`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LocalHostNames {
    names: BTreeSet<String>,
}

impl LocalHostNames {
    /// Reads the table at `path`; a missing file is empty.
    pub fn load(path: &Path) -> Result<Self, ConfigErrors> {
        Self::parse_str(&read_table(path)?, path)
    }

    /// Parses `text` as the table at `path` (which only names it in errors).
    pub fn parse_str(text: &str, path: &Path) -> Result<Self, ConfigErrors> {
        let mut names = BTreeSet::new();
        let mut errors = Vec::new();
        for (line_no, line) in meaningful_lines(text) {
            let line = line.as_str();
            match check_domain(line) {
                Ok(()) => {
                    names.insert(line.to_ascii_lowercase());
                }
                Err(why) => errors.push(ConfigError::new(
                    path,
                    line_no,
                    format!("bad host name \"{line}\": {why}"),
                )),
            }
        }
        finish(Self { names }, errors)
    }

    /// Builds the table from names (for tests and the development instance).
    pub fn from_names<I: IntoIterator<Item = S>, S: AsRef<str>>(names: I) -> Self {
        Self {
            names: names
                .into_iter()
                .map(|n| n.as_ref().to_ascii_lowercase())
                .collect(),
        }
    }

    /// True when `domain` is one of ours (without regard to case).
    pub fn contains(&self, domain: &str) -> bool {
        self.names.contains(&domain.to_ascii_lowercase())
    }

    /// Adds a name (the host's own `$j` is always local).
    pub fn insert(&mut self, name: &str) {
        self.names.insert(name.to_ascii_lowercase());
    }
}

/// Where a mailertable entry sends mail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MailerRoute {
    /// An SMTP-family mailer (`esmtp:[host]:port`, `smtp:host`, `relay:…`).
    Smtp(Relay),
    /// `lmtp:unix:/path` or `lmtp:[host]:port`: hand the mail to an LMTP
    /// server (RFC 2033), with the recipient's address as it is.
    Lmtp(LmtpTarget),
    /// `local:` or `local:user`: deliver here.
    Local {
        /// The user to deliver to instead of the recipient's local part.
        user: Option<String>,
    },
    /// `error:5.7.1:550 text` or `error:550 text`: refuse with this reply.
    Error {
        /// Three-digit code.
        code: u16,
        /// The enhanced status code, when given.
        enhanced: Option<String>,
        /// The reply text.
        text: String,
    },
}

/// The mailertable: domain → route.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mailertable {
    entries: BTreeMap<String, MailerRoute>,
}

impl Mailertable {
    /// Reads the table at `path`; a missing file is empty.
    pub fn load(path: &Path) -> Result<Self, ConfigErrors> {
        Self::parse_str(&read_table(path)?, path)
    }

    /// Parses `text` as the table at `path` (which only names it in errors).
    pub fn parse_str(text: &str, path: &Path) -> Result<Self, ConfigErrors> {
        let mut entries = BTreeMap::new();
        let mut errors = Vec::new();
        for (line_no, line) in meaningful_lines(text) {
            let line = line.as_str();
            let Some((key, value)) = line.split_once(char::is_whitespace) else {
                errors.push(ConfigError::new(
                    path,
                    line_no,
                    format!("missing route after \"{line}\""),
                ));
                continue;
            };
            let key = key.to_ascii_lowercase();
            let domain = key.strip_prefix('.').unwrap_or(&key);
            if let Err(why) = check_domain(domain) {
                errors.push(ConfigError::new(
                    path,
                    line_no,
                    format!("bad domain \"{key}\": {why}"),
                ));
                continue;
            }
            match parse_route(value.trim()) {
                Ok(route) => {
                    entries.insert(key, route);
                }
                Err(why) => errors.push(ConfigError::new(path, line_no, why)),
            }
        }
        finish(Self { entries }, errors)
    }

    /// The route for `domain`: the exact entry, else `.parent` entries from
    /// the nearest parent outwards, as sendmail's mailertable does.
    pub fn lookup(&self, domain: &str) -> Option<&MailerRoute> {
        let domain = domain.to_ascii_lowercase();
        if let Some(route) = self.entries.get(&domain) {
            return Some(route);
        }
        let mut rest = domain.as_str();
        while let Some(dot) = rest.find('.') {
            if let Some(route) = self.entries.get(&rest[dot..]) {
                return Some(route);
            }
            rest = &rest[dot + 1..];
        }
        None
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the table has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

fn parse_route(value: &str) -> Result<MailerRoute, String> {
    let (mailer, rest) = value
        .split_once(':')
        .ok_or_else(|| format!("bad route \"{value}\": expected mailer:host"))?;
    match mailer {
        "local" => Ok(MailerRoute::Local {
            user: Some(rest.to_string()).filter(|u| !u.is_empty()),
        }),
        "error" => parse_error_route(rest).ok_or_else(|| format!("bad error route \"{value}\"")),
        m if m.eq_ignore_ascii_case("lmtp") => LmtpTarget::parse(value).map(MailerRoute::Lmtp),
        m if crate::relay::is_smtp_mailer(m) => Relay::parse(value).map(MailerRoute::Smtp),
        m => {
            let known = crate::relay::MAILERS
                .iter()
                .copied()
                .chain(["lmtp", "local", "error"]);
            Err(crate::relay::unknown_mailer(m, Some(value), known))
        }
    }
}

/// `5.7.1:550 text` or `550 text`.
fn parse_error_route(rest: &str) -> Option<MailerRoute> {
    let (enhanced, reply) = match rest.split_once(':') {
        Some((e, r)) if e.split('.').count() == 3 => (Some(e.to_string()), r),
        _ => (None, rest),
    };
    let (code, text) = reply.split_once(' ').unwrap_or((reply, ""));
    let code: u16 = code.parse().ok().filter(|c| (400..600).contains(c))?;
    Some(MailerRoute::Error {
        code,
        enhanced,
        text: text.to_string(),
    })
}

/// The text of the table at `path`; a missing file is an empty table.
pub(crate) fn read_table(path: &Path) -> Result<String, ConfigErrors> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(ConfigErrors(vec![ConfigError::new(
            path,
            0,
            format!("cannot read: {e}"),
        )])),
    }
}

/// The meaningful lines of a table, with their numbers: no comments, no
/// blanks, trimmed.
pub(crate) fn meaningful_lines(text: &str) -> Vec<(usize, String)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .map(|(i, l)| (i, l.to_string()))
        .collect()
}

pub(crate) fn finish<T>(value: T, errors: Vec<ConfigError>) -> Result<T, ConfigErrors> {
    if errors.is_empty() {
        Ok(value)
    } else {
        Err(ConfigErrors(errors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("table");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn mailertable_routes_and_lookup_order() {
        let (_d, path) = write(
            "# comment\nexample.com esmtp:[127.0.0.1]:2526\n.example.com relay:[192.0.2.9]\nlocal.test local:\nbad.test error:5.7.1:550 No thanks\n",
        );
        let t = Mailertable::load(&path).unwrap();
        let Some(MailerRoute::Smtp(r)) = t.lookup("EXAMPLE.com") else {
            panic!()
        };
        assert_eq!(
            (r.host.as_str(), r.port, r.mx_lookup),
            ("127.0.0.1", Some(2526), false)
        );
        let Some(MailerRoute::Smtp(r)) = t.lookup("a.b.example.com") else {
            panic!()
        };
        assert_eq!(r.host, "192.0.2.9");
        assert_eq!(
            t.lookup("local.test"),
            Some(&MailerRoute::Local { user: None })
        );
        assert_eq!(
            t.lookup("bad.test"),
            Some(&MailerRoute::Error {
                code: 550,
                enhanced: Some("5.7.1".into()),
                text: "No thanks".into()
            })
        );
        assert_eq!(t.lookup("other.org"), None);
    }

    #[test]
    fn mailertable_errors_name_the_line() {
        let (_d, path) = write("ok.test esmtp:[127.0.0.1]\nnoroute.test\nbad_domain esmtp:x\nx.test esmtp:[1.2.3.4]:99999\ny.test bogus:[127.0.0.1]\nz.test esmpt:[127.0.0.1]\n");
        let e = Mailertable::load(&path).unwrap_err().to_string();
        assert!(e.contains(":2: missing route"), "{e}");
        assert!(e.contains(":3: bad domain"), "{e}");
        assert!(e.contains(":4: bad smart host"), "{e}");
        // A mailer Postern does not know is named as such, not as a port.
        assert!(
            e.contains(":5: unknown mailer \"bogus\" in \"bogus:[127.0.0.1]\" (known: esmtp, smtp, smtp8, dsmtp, relay, lmtp, local, error)\n"),
            "{e}"
        );
        assert!(
            e.contains(":6: unknown mailer \"esmpt\" in \"esmpt:[127.0.0.1]\" (known: esmtp, smtp, smtp8, dsmtp, relay, lmtp, local, error); did you mean \"esmtp\"?"),
            "{e}"
        );
    }

    #[test]
    fn mailertable_lmtp_routes() {
        let (_d, path) =
            write("dovecot.test lmtp:unix:/run/dovecot/lmtp\ntcp.test lmtp:[127.0.0.1]:24\n");
        let t = Mailertable::load(&path).unwrap();
        assert_eq!(
            t.lookup("dovecot.test"),
            Some(&MailerRoute::Lmtp(LmtpTarget::Unix(
                "/run/dovecot/lmtp".into()
            )))
        );
        assert_eq!(
            t.lookup("tcp.test"),
            Some(&MailerRoute::Lmtp(LmtpTarget::Tcp {
                host: "127.0.0.1".into(),
                port: 24
            }))
        );
        let (_d, path) = write(
            "a.test lmtp:unix:run/lmtp\nb.test lmtp:127.0.0.1:24\nc.test lmtp:[127.0.0.1]:0\n",
        );
        let e = Mailertable::load(&path).unwrap_err().to_string();
        assert!(
            e.contains(
                ":1: bad LMTP route \"lmtp:unix:run/lmtp\": the socket path must be absolute"
            ),
            "{e}"
        );
        assert!(
            e.contains(":2: bad LMTP route \"lmtp:127.0.0.1:24\": write the host in brackets, lmtp:[host]:port"),
            "{e}"
        );
        assert!(
            e.contains(":3: bad LMTP route \"lmtp:[127.0.0.1]:0\": bad port"),
            "{e}"
        );
    }

    #[test]
    fn local_host_names() {
        let (_d, path) = write("Example.ORG\n# x\n\nmx.example.org\n");
        let t = LocalHostNames::load(&path).unwrap();
        assert!(t.contains("example.org") && t.contains("MX.example.org"));
        assert!(!t.contains("other.org"));
        let (_d, path) = write("bad name\n");
        assert!(LocalHostNames::load(&path)
            .unwrap_err()
            .to_string()
            .contains(":1: bad host name"));
        assert!(
            LocalHostNames::load(Path::new("/nonexistent/x")).unwrap() == LocalHostNames::default()
        );
    }
}

/// `relay-domains` (sendmail's class `R`): recipient domains anyone may
/// send to through this host (a backup MX, an outbound relay for them),
/// each with its subdomains; and, written as an address or a prefix of
/// one (`192.0.2`, `192.0.2.7`, `IPv6:2001:db8::1`), client addresses
/// that may relay.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RelayDomains {
    domains: BTreeSet<String>,
    clients: BTreeSet<String>,
}

impl RelayDomains {
    /// Reads the table at `path`; a missing file is empty.
    pub fn load(path: &Path) -> Result<Self, ConfigErrors> {
        Self::parse_str(&read_table(path)?, path)
    }

    /// Parses `text` as the table at `path` (which only names it in errors).
    pub fn parse_str(text: &str, path: &Path) -> Result<Self, ConfigErrors> {
        let mut table = Self::default();
        let mut errors = Vec::new();
        for (line_no, line) in meaningful_lines(text) {
            let entry = line.trim().to_ascii_lowercase();
            if let Some(prefix) = ipv4_prefix(&entry) {
                table.clients.insert(prefix);
            } else if let Some(addr) = entry.strip_prefix("ipv6:") {
                // Kept as has_client writes a client's address, so that
                // `IPv6:2001:DB8:0:0:0:0:0:7` matches too.
                match addr.parse::<std::net::Ipv6Addr>() {
                    Ok(addr) => {
                        table.clients.insert(format!("ipv6:{addr}"));
                    }
                    Err(_) => errors.push(ConfigError::new(
                        path,
                        line_no,
                        format!("bad IPv6 address \"{line}\""),
                    )),
                }
            } else {
                match check_domain(&entry) {
                    Ok(()) => {
                        table.domains.insert(entry);
                    }
                    Err(why) => errors.push(ConfigError::new(
                        path,
                        line_no,
                        format!("bad domain \"{line}\": {why}"),
                    )),
                }
            }
        }
        finish(table, errors)
    }

    /// True when `domain` is one of the table's or below one.
    pub fn has_domain(&self, domain: &str) -> bool {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        let mut rest = domain.as_str();
        loop {
            if self.domains.contains(rest) {
                return true;
            }
            match rest.split_once('.') {
                Some((_, parent)) => rest = parent,
                None => return false,
            }
        }
    }

    /// True when the client at `addr` is listed, by its address or a
    /// prefix of its octets.
    pub fn has_client(&self, addr: std::net::IpAddr) -> bool {
        match addr {
            std::net::IpAddr::V4(v4) => {
                let octets = v4.octets().map(|o| o.to_string());
                (1..=4).any(|n| self.clients.contains(&octets[..n].join(".")))
            }
            std::net::IpAddr::V6(v6) => self.clients.contains(&format!("ipv6:{v6}")),
        }
    }
}

/// An IPv4 address or a prefix of its octets (`192.0.2`), written as
/// has_client writes a client's octets: `010.0.2` is `10.0.2`.
fn ipv4_prefix(entry: &str) -> Option<String> {
    let octets: Vec<u8> = entry
        .split('.')
        .map(|o| o.parse().ok())
        .collect::<Option<_>>()?;
    (octets.len() <= 4).then(|| {
        octets
            .iter()
            .map(u8::to_string)
            .collect::<Vec<_>>()
            .join(".")
    })
}

#[cfg(test)]
mod relay_domains_tests {
    use super::*;

    #[test]
    fn domains_with_subdomains_and_client_prefixes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay-domains");
        std::fs::write(&path, "# ours\nExample.net\n192.0.2\nIPv6:2001:db8::7\n").unwrap();
        let t = RelayDomains::load(&path).unwrap();
        assert!(t.has_domain("example.net") && t.has_domain("mail.EXAMPLE.net."));
        assert!(!t.has_domain("example.org") && !t.has_domain("notexample.net"));
        assert!(t.has_client("192.0.2.99".parse().unwrap()));
        assert!(!t.has_client("192.0.20.1".parse().unwrap()));
        assert!(t.has_client("2001:db8::7".parse().unwrap()));
        std::fs::write(&path, "ok.example\nbad domain!\nIPv6:2001:db8::x\n").unwrap();
        let e = RelayDomains::load(&path).unwrap_err().to_string();
        assert!(e.contains("relay-domains:2: bad domain"), "{e}");
        assert!(e.contains("relay-domains:3: bad IPv6 address"), "{e}");
    }

    /// Found by fuzzing (fuzz/fuzz_targets/table_relay_domains.rs): an
    /// entry with a leading zero (`05`) or an IPv6 address not written
    /// in its shortest form was kept as written and never matched.
    #[test]
    fn client_entries_match_however_they_are_written() {
        let t = RelayDomains::parse_str(
            "05\n192.000.002.007\nIPv6:2001:DB8:0:0:0:0:0:7\n",
            Path::new("relay-domains"),
        )
        .unwrap();
        assert!(t.has_client("5.1.2.3".parse().unwrap()));
        assert!(t.has_client("192.0.2.7".parse().unwrap()));
        assert!(t.has_client("2001:db8::7".parse().unwrap()));
    }
}
