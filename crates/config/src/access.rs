//! The access map (`access` next to the configuration file): sendmail's
//! `key  value` lines, keys tagged `Tag:rest` (`TLS_Srv:mx.example.com`,
//! `ClientConn:192.0.2.1`, `Connect:spam.example`) or untagged.
//!
//! Read today, with sendmail's meanings:
//!
//! - `TLS_Srv:` (per destination server, by host name or address): what an
//!   outbound TLS connection must achieve, `VERIFY`, `VERIFY:bits` or
//!   `ENCR:bits`, with sendmail's extensions `+CN` (the certificate names
//!   the server), `+CN:name`, `+CS:subject`, `+CI:issuer` (several joined
//!   by `++`) and the `PERM+`/`TEMP+` prefixes that choose a permanent or
//!   temporary failure (`TLS_Srv:bank.example.com VERIFY:128+CN`);
//! - `Try_TLS:` (per destination): `NO` means never offer STARTTLS to it;
//! - `ClientConn:` (per client address): the most connections a client
//!   may hold at once (sendmail's `FEATURE(conncontrol)`), `0` for no
//!   limit;
//! - `ClientRate:` (per client address): the most connections a client
//!   may open within ConnectionRateWindowSize (sendmail's
//!   `FEATURE(ratecontrol)`), `0` for no limit;
//! - `GreetPause:` (per client host name or address): how many
//!   milliseconds to hold the greeting (`FEATURE(greet_pause)`), `0` for
//!   none. Unlike the others it has no default entry (`GreetPause:`
//!   alone): the feature's argument is the default, as in sendmail.
//!
//! Other keys (`Connect:`, `From:`, `To:` and the untagged ones) are kept
//! as written for the relay and spam checks that use them.
//!
//! Lookups follow sendmail's `D` and `A` rulesets: a host name, then each
//! parent domain; an IPv4 address, then each shorter prefix of its octets
//! (`192.0.2.1`, `192.0.2`, `192.0`, `192`); an IPv6 address as
//! `IPv6:2001:db8::1`, then by whole groups written without `::`
//! (`IPv6:2001:db8:0:0:0:0:0:1`, …, `IPv6:2001:db8`, `IPv6:2001`);
//! finally the bare tag (`TLS_Srv:`) as the default.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use crate::error::{ConfigError, ConfigErrors};
use crate::tables::{finish, meaningful_lines, read_table};

/// How a failed TLS requirement fails the delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// `403 4.7.0`: try again later (the default, and `TEMP+`).
    Temporary,
    /// `503 5.7.0`: give up (`PERM+`).
    Permanent,
}

/// What the connection itself must achieve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsLevel {
    /// `VERIFY[:bits]`: the peer's certificate verified, and at least this
    /// many bits of encryption (0 when not given).
    Verify(u32),
    /// `ENCR:bits`: at least this many bits of encryption.
    Encrypt(u32),
}

/// An extra check on the peer's certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertCheck {
    /// `+CN`: the certificate names the host connected to; `+CN:name`:
    /// it names `name`.
    Name(Option<String>),
    /// `+CS:subject`: the certificate's subject is exactly this.
    Subject(String),
    /// `+CI:issuer`: the certificate's issuer is exactly this.
    Issuer(String),
}

/// A `TLS_Srv:` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsRequirement {
    /// How a failure fails.
    pub severity: Severity,
    /// The level required.
    pub level: TlsLevel,
    /// Certificate checks, in order.
    pub checks: Vec<CertCheck>,
}

impl TlsRequirement {
    /// Parses `[PERM+|TEMP+]VERIFY[:bits]|ENCR:bits[+ext[++ext…]]`.
    pub fn parse(value: &str) -> Result<TlsRequirement, String> {
        let bad = || format!("bad TLS requirement \"{value}\"");
        let (severity, rest) = if let Some(rest) = strip_prefix_ci(value, "PERM+") {
            (Severity::Permanent, rest)
        } else if let Some(rest) = strip_prefix_ci(value, "TEMP+") {
            (Severity::Temporary, rest)
        } else {
            (Severity::Temporary, value)
        };
        let (level, extensions) = match rest.split_once('+') {
            Some((level, ext)) => (level, Some(ext)),
            None => (rest, None),
        };
        let bits = |b: &str| b.parse::<u32>().map_err(|_| bad());
        let level = match level.split_once(':') {
            None if level.eq_ignore_ascii_case("VERIFY") => TlsLevel::Verify(0),
            Some((l, b)) if l.eq_ignore_ascii_case("VERIFY") => TlsLevel::Verify(bits(b)?),
            Some((l, b)) if l.eq_ignore_ascii_case("ENCR") => TlsLevel::Encrypt(bits(b)?),
            _ => return Err(bad()),
        };
        let mut checks = Vec::new();
        for ext in extensions.into_iter().flat_map(|e| e.split("++")) {
            let (tag, arg) = match ext.split_once(':') {
                Some((t, a)) => (t, Some(a.to_string())),
                None => (ext, None),
            };
            checks.push(match (tag.to_ascii_uppercase().as_str(), arg) {
                ("CN", name) => CertCheck::Name(name.filter(|n| !n.is_empty())),
                ("CS", Some(s)) if !s.is_empty() => CertCheck::Subject(s),
                ("CI", Some(i)) if !i.is_empty() => CertCheck::Issuer(i),
                _ => return Err(bad()),
            });
        }
        Ok(TlsRequirement {
            severity,
            level,
            checks,
        })
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// The access map.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccessMap {
    tls_srv: BTreeMap<String, TlsRequirement>,
    try_tls: BTreeMap<String, bool>,
    client_conn: BTreeMap<String, u32>,
    client_rate: BTreeMap<String, u32>,
    /// `GreetPause:` entries, in milliseconds.
    greet_pause: BTreeMap<String, u64>,
    /// `Connect:` entries, client address (prefix) or host → action.
    connect: BTreeMap<String, String>,
    /// `To:` entries, recipient address or domain → action.
    to: BTreeMap<String, String>,
    /// `From:` entries, sender address, `user@` or domain → action.
    from: BTreeMap<String, String>,
    /// Untagged entries, which stand for every tag.
    untagged: BTreeMap<String, String>,
    /// Every other entry, key (tag lower-cased) → value, as written.
    other: BTreeMap<String, String>,
}

impl AccessMap {
    /// Reads the table at `path`; a missing file is empty.
    pub fn load(path: &Path) -> Result<Self, ConfigErrors> {
        let mut map = AccessMap::default();
        let mut errors = Vec::new();
        for (line_no, line) in meaningful_lines(&read_table(path)?) {
            if let Err(why) = map.add(&line) {
                errors.push(ConfigError::new(path, line_no, why));
            }
        }
        finish(map, errors)
    }

    /// Builds a map from lines (tests, the development instance).
    pub fn parse_str(text: &str) -> Result<Self, String> {
        let mut map = AccessMap::default();
        for line in text.lines().map(str::trim) {
            if !line.is_empty() && !line.starts_with('#') {
                map.add(line)?;
            }
        }
        Ok(map)
    }

    fn add(&mut self, line: &str) -> Result<(), String> {
        let Some((key, value)) = line.split_once(char::is_whitespace) else {
            return Err(format!("missing value after \"{line}\""));
        };
        let value = value.trim();
        let (tag, rest) = match key.split_once(':') {
            Some((tag, rest)) if !tag.is_empty() && !tag.contains(['[', '.']) => {
                (tag.to_ascii_lowercase(), rest.to_ascii_lowercase())
            }
            _ => (String::new(), key.to_ascii_lowercase()),
        };
        match tag.as_str() {
            "tls_srv" => {
                self.tls_srv.insert(rest, TlsRequirement::parse(value)?);
            }
            "try_tls" => {
                self.try_tls.insert(rest, !value.eq_ignore_ascii_case("NO"));
            }
            "clientconn" => {
                self.client_conn.insert(rest, count("ClientConn", value)?);
            }
            "clientrate" => {
                self.client_rate.insert(rest, count("ClientRate", value)?);
            }
            "greetpause" => {
                self.greet_pause.insert(rest, count("GreetPause", value)?);
            }
            _ => {
                match tag.as_str() {
                    "connect" => {
                        self.connect.insert(rest.clone(), value.to_string());
                    }
                    "to" => {
                        self.to.insert(rest.clone(), value.to_string());
                    }
                    "from" => {
                        self.from.insert(rest.clone(), value.to_string());
                    }
                    "" => {
                        self.untagged.insert(rest.clone(), value.to_string());
                    }
                    _ => {}
                }
                let key = if tag.is_empty() {
                    rest
                } else {
                    format!("{tag}:{rest}")
                };
                self.other.insert(key, value.to_string());
            }
        }
        Ok(())
    }

    /// The `TLS_Srv:` requirement for a server named `host` (absent for an
    /// address literal) at `addr`.
    pub fn tls_requirement(&self, host: Option<&str>, addr: IpAddr) -> Option<&TlsRequirement> {
        lookup(&self.tls_srv, host, Some(addr))
    }

    /// False when `Try_TLS:` says `NO` for this server.
    pub fn try_tls(&self, host: Option<&str>, addr: IpAddr) -> bool {
        lookup(&self.try_tls, host, Some(addr))
            .copied()
            .unwrap_or(true)
    }

    /// The `ClientConn:` limit for a client at `addr`, if any entry names
    /// it or a default is set.
    pub fn client_connections(&self, addr: IpAddr) -> Option<u32> {
        lookup(&self.client_conn, None, Some(addr)).copied()
    }

    /// The `ClientRate:` limit for a client at `addr`: connections within
    /// ConnectionRateWindowSize, if an entry names it or a default is set.
    pub fn client_rate(&self, addr: IpAddr) -> Option<u32> {
        lookup(&self.client_rate, None, Some(addr)).copied()
    }

    /// The `GreetPause:` entry for a client named `host` (when it has a
    /// name) at `addr`, in milliseconds: sendmail's greet_pause ruleset
    /// looks up the name and its parent domains, then the address and its
    /// prefixes, and has no default entry.
    pub fn greet_pause(&self, host: Option<&str>, addr: IpAddr) -> Option<u64> {
        lookup_specific(&self.greet_pause, host, Some(addr)).copied()
    }

    /// True when `Connect:` (or an untagged entry) says `RELAY` for a
    /// client at `addr` (by its address or a prefix of its octets).
    pub fn connect_relays(&self, addr: IpAddr) -> bool {
        let found = lookup(&self.connect, None, Some(addr))
            .or_else(|| lookup(&self.untagged, None, Some(addr)));
        found.is_some_and(|v| is_relay(v))
    }

    /// What `Connect:` (or an untagged entry) says for a client named
    /// `host` (if it has a name) at `addr`: sendmail's check_relay.
    pub fn connect_action(&self, host: Option<&str>, addr: IpAddr) -> Option<AccessAction> {
        let found = lookup(&self.connect, host, Some(addr))
            .or_else(|| lookup(&self.untagged, host, Some(addr)))?;
        AccessAction::parse(found).filter(|a| *a != AccessAction::Skip)
    }

    /// What `To:` (or an untagged entry) says for the recipient `address`
    /// in `domain`: the whole address, then `user@`, then the domain and
    /// each parent domain (sendmail's SearchList for check_rcpt).
    pub fn to_action(&self, address: &str, domain: &str) -> Option<AccessAction> {
        search(&self.to, &self.untagged, address, Some(domain))
    }

    /// True when `To:` (or an untagged entry) says `RELAY` for the
    /// recipient `address` in `domain`.
    pub fn to_relays(&self, address: &str, domain: &str) -> bool {
        self.to_action(address, domain) == Some(AccessAction::Relay)
    }

    /// What `From:` (or an untagged entry) says for the envelope sender
    /// `address` (its domain, if it has one), searched as `To:` is.
    pub fn from_action(&self, address: &str, domain: Option<&str>) -> Option<AccessAction> {
        search(&self.from, &self.untagged, address, domain)
    }

    /// An entry the checks of this version do not use, by its full key
    /// (`connect:spam.example`, `example.com`).
    pub fn other(&self, key: &str) -> Option<&str> {
        self.other
            .get(&key.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// A right-hand side that must be a number (`ClientConn: 10`).
fn count<T: std::str::FromStr>(tag: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("{tag}: \"{value}\" is not a number"))
}

/// `RELAY`, the access map's action that lets mail through to anywhere.
fn is_relay(value: &str) -> bool {
    value.trim().eq_ignore_ascii_case("RELAY")
}

/// An access map's right-hand side for `From:` and `To:` keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccessAction {
    /// `OK`: accept (no further spam checks).
    Ok,
    /// `RELAY`: accept, and relay.
    Relay,
    /// `REJECT`: sendmail's `550 5.7.1 <addr>... Access denied`.
    Reject,
    /// `DISCARD`: accept, and throw the message away.
    Discard,
    /// `SKIP`: as if there were no entry.
    Skip,
    /// `ERROR:5.7.1:550 text` or `ERROR:550 text`: refuse so.
    Error {
        /// The reply code.
        code: u16,
        /// The enhanced status code, when given.
        enhanced: Option<String>,
        /// The text.
        text: String,
    },
}

impl AccessAction {
    /// Reads a right-hand side; `None` for one this version does not know
    /// (kept, as sendmail would treat it as an error text).
    pub fn parse(value: &str) -> Option<AccessAction> {
        let value = value.trim();
        let upper = value.to_ascii_uppercase();
        match upper.as_str() {
            "OK" => return Some(AccessAction::Ok),
            "RELAY" => return Some(AccessAction::Relay),
            "REJECT" => return Some(AccessAction::Reject),
            "DISCARD" => return Some(AccessAction::Discard),
            "SKIP" => return Some(AccessAction::Skip),
            _ => {}
        }
        let rest = value
            .get(..6)
            .filter(|t| t.eq_ignore_ascii_case("ERROR:"))
            .map(|_| &value[6..])?;
        // `5.7.1:550 text` or `550 text`.
        let (enhanced, rest) = match rest.split_once(':') {
            Some((e, r))
                if e.split('.').count() == 3 && e.split('.').all(|p| p.parse::<u16>().is_ok()) =>
            {
                (Some(e.to_string()), r)
            }
            _ => (None, rest),
        };
        let (code, text) = rest.trim().split_once(' ').unwrap_or((rest.trim(), ""));
        let code: u16 = code.parse().ok().filter(|c| (400..600).contains(c))?;
        Some(AccessAction::Error {
            code,
            enhanced,
            text: text.trim().to_string(),
        })
    }
}

/// sendmail's SearchList over a tagged table, then the untagged one: the
/// address, `user@`, then the domain and its parents. `SKIP` ends the
/// search with nothing.
fn search(
    tagged: &BTreeMap<String, String>,
    untagged: &BTreeMap<String, String>,
    address: &str,
    domain: Option<&str>,
) -> Option<AccessAction> {
    let address = address.to_ascii_lowercase();
    let user_at = address.rsplit_once('@').map(|(u, _)| format!("{u}@"));
    let found = tagged
        .get(&address)
        .or_else(|| user_at.as_ref().and_then(|u| tagged.get(u)))
        .or_else(|| domain.and_then(|d| lookup(tagged, Some(d), None)))
        .or_else(|| untagged.get(&address))
        .or_else(|| domain.and_then(|d| lookup(untagged, Some(d), None)))?;
    AccessAction::parse(found).filter(|a| *a != AccessAction::Skip)
}

/// sendmail's `D` (host, then parent domains), `A` (address, then shorter
/// prefixes) and finally the bare tag's default.
fn lookup<'a, T>(
    table: &'a BTreeMap<String, T>,
    host: Option<&str>,
    addr: Option<IpAddr>,
) -> Option<&'a T> {
    lookup_specific(table, host, addr).or_else(|| table.get(""))
}

/// sendmail's `D` and `A` without the default.
fn lookup_specific<'a, T>(
    table: &'a BTreeMap<String, T>,
    host: Option<&str>,
    addr: Option<IpAddr>,
) -> Option<&'a T> {
    if let Some(host) = host {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let mut rest = host.as_str();
        loop {
            if let Some(v) = table.get(rest) {
                return Some(v);
            }
            match rest.split_once('.') {
                Some((_, parent)) => rest = parent,
                None => break,
            }
        }
    }
    match addr {
        Some(IpAddr::V4(v4)) => {
            let octets = v4.octets().map(|o| o.to_string());
            for n in (1..=4).rev() {
                if let Some(v) = table.get(&octets[..n].join(".")) {
                    return Some(v);
                }
            }
        }
        Some(IpAddr::V6(v6)) => {
            if let Some(v) = table.get(&format!("ipv6:{v6}")) {
                return Some(v);
            }
            // Prefixes by whole groups, written out without `::`
            // (`IPv6:2001:db8:0:0:0:0:0:1`, …, `IPv6:2001:db8`), as
            // sendmail's A ruleset strips an address group by group.
            let groups = v6.segments().map(|g| format!("{g:x}"));
            for n in (1..=8).rev() {
                if let Some(v) = table.get(&format!("ipv6:{}", groups[..n].join(":"))) {
                    return Some(v);
                }
            }
        }
        None => {}
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_match_by_address_then_group_prefixes() {
        let map = AccessMap::parse_str(
            "Connect:IPv6:2001:DB8:0:0:0:0:0 RELAY\nConnect:IPv6:2001:db8:1 REJECT\n\
             Connect:IPv6:::1 RELAY\n",
        )
        .unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(map.connect_relays(ip("2001:db8::7")));
        assert!(map.connect_relays(ip("::1")));
        assert!(!map.connect_relays(ip("2001:db8:1::7")));
        assert!(!map.connect_relays(ip("2001:db8:0:0:1::7")));
        let map = AccessMap::parse_str("Connect:IPv6:0:0:0:0:0:0 RELAY\n").unwrap();
        assert!(map.connect_relays(ip("::1")));
    }

    fn req(v: &str) -> TlsRequirement {
        TlsRequirement::parse(v).unwrap()
    }

    #[test]
    fn tls_requirements_in_sendmails_syntax() {
        assert_eq!(
            req("VERIFY"),
            TlsRequirement {
                severity: Severity::Temporary,
                level: TlsLevel::Verify(0),
                checks: vec![]
            }
        );
        assert_eq!(req("verify:112").level, TlsLevel::Verify(112));
        assert_eq!(req("ENCR:128").level, TlsLevel::Encrypt(128));
        let r = req("PERM+VERIFY:128+CN");
        assert_eq!(r.severity, Severity::Permanent);
        assert_eq!(r.checks, vec![CertCheck::Name(None)]);
        let r = req("TEMP+ENCR:1+CN:mx.example.com++CS:/CN=x++CI:/CN=ca");
        assert_eq!(
            r.checks,
            vec![
                CertCheck::Name(Some("mx.example.com".into())),
                CertCheck::Subject("/CN=x".into()),
                CertCheck::Issuer("/CN=ca".into()),
            ]
        );
        for bad in ["", "NONE", "ENCR", "ENCR:x", "VERIFY+XX", "VERIFY+CS"] {
            assert!(TlsRequirement::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lookups_by_name_parent_address_prefix_and_default() {
        let map = AccessMap::parse_str(
            "TLS_Srv:secure.example VERIFY\n\
             TLS_Srv:192.0.2 ENCR:128\n\
             TLS_Srv:IPv6:2001:db8::1 ENCR:256\n\
             Try_TLS:broken.example NO\n\
             ClientConn:192.0.2.7 2\n\
             ClientConn: 10\n\
             Connect:spam.example REJECT\n",
        )
        .unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let level = |h: Option<&str>, a: &str| map.tls_requirement(h, ip(a)).map(|r| r.level);
        assert_eq!(
            level(Some("mx.SECURE.example."), "198.51.100.1"),
            Some(TlsLevel::Verify(0))
        );
        assert_eq!(
            level(Some("other.example"), "192.0.2.9"),
            Some(TlsLevel::Encrypt(128))
        );
        assert_eq!(level(None, "2001:db8::1"), Some(TlsLevel::Encrypt(256)));
        assert_eq!(level(Some("other.example"), "198.51.100.1"), None);
        assert!(!map.try_tls(Some("mx.broken.example"), ip("198.51.100.1")));
        assert!(map.try_tls(Some("fine.example"), ip("198.51.100.1")));
        assert_eq!(map.client_connections(ip("192.0.2.7")), Some(2));
        assert_eq!(map.client_connections(ip("192.0.2.8")), Some(10));
        assert_eq!(map.client_rate(ip("192.0.2.8")), None);
        assert_eq!(map.other("connect:SPAM.example"), Some("REJECT"));
    }

    #[test]
    fn bad_lines_name_their_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access");
        std::fs::write(
            &path,
            "# x\nTLS_Srv:a.example VERIFY\nTLS_Srv:b.example SOMETIMES\nClientConn:1.2.3.4 many\nlonely\n",
        )
        .unwrap();
        let e = AccessMap::load(&path).unwrap_err().to_string();
        assert!(e.contains(":3: bad TLS requirement \"SOMETIMES\""), "{e}");
        assert!(
            e.contains(":4: ClientConn: \"many\" is not a number"),
            "{e}"
        );
        assert!(e.contains(":5: missing value"), "{e}");
        assert_eq!(
            AccessMap::load(&dir.path().join("none")).unwrap(),
            AccessMap::default()
        );
    }
}

#[cfg(test)]
mod limit_tests {
    use super::*;

    #[test]
    fn client_rate_and_greet_pause_entries() {
        let map = AccessMap::parse_str(
            "ClientRate:192.0.2.7 2\nClientRate:IPv6:2001:db8::1 0\nClientRate: 10\n\
             GreetPause:example.net 3000\nGreetPause:198.51.100 0\n",
        )
        .unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(map.client_rate(ip("192.0.2.7")), Some(2));
        assert_eq!(map.client_rate(ip("2001:db8::1")), Some(0));
        assert_eq!(map.client_rate(ip("203.0.113.1")), Some(10));
        assert_eq!(
            map.greet_pause(Some("mx.EXAMPLE.net"), ip("203.0.113.1")),
            Some(3000)
        );
        assert_eq!(map.greet_pause(None, ip("198.51.100.4")), Some(0));
        assert_eq!(map.greet_pause(None, ip("203.0.113.1")), None);
        for bad in ["ClientRate:1.2.3.4 lots", "GreetPause:1.2.3.4 5s"] {
            let e = AccessMap::parse_str(bad).unwrap_err();
            assert!(e.ends_with("is not a number"), "{e}");
        }
    }
}

#[cfg(test)]
mod relay_tests {
    use super::*;

    #[test]
    fn relay_grants_by_client_and_by_recipient() {
        let map = AccessMap::parse_str(
            "Connect:198.51.100 RELAY\nConnect:192.0.2.1 REJECT\n203.0.113.5 RELAY\n\
             To:example.com RELAY\nTo:boss@example.org RELAY\npartner.example RELAY\n",
        )
        .unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(map.connect_relays(ip("198.51.100.7")));
        assert!(map.connect_relays(ip("203.0.113.5")));
        assert!(!map.connect_relays(ip("192.0.2.1")));
        assert!(!map.connect_relays(ip("10.0.0.1")));
        assert!(map.to_relays("x@mail.example.com", "mail.example.com"));
        assert!(map.to_relays("Boss@Example.org", "example.org"));
        assert!(!map.to_relays("other@example.org", "example.org"));
        assert!(map.to_relays("y@partner.example", "partner.example"));
        assert!(!map.to_relays("y@example.net", "example.net"));
    }

    #[test]
    fn from_and_to_actions_in_sendmails_order() {
        let map = AccessMap::parse_str(
            "From:spammer@example.net REJECT\nFrom:example.biz ERROR:5.7.1:550 Go away\n\
             From:postmaster@ OK\nTo:abuse@example.org OK\nTo:closed.example ERROR:451 Later\n\
             spam.example REJECT\nTo:skip.example SKIP\n",
        )
        .unwrap();
        let from = |a: &str| {
            let d = a.rsplit_once('@').map(|(_, d)| d.to_string());
            map.from_action(a, d.as_deref())
        };
        assert_eq!(from("Spammer@Example.net"), Some(AccessAction::Reject));
        assert_eq!(
            from("x@mail.example.biz"),
            Some(AccessAction::Error {
                code: 550,
                enhanced: Some("5.7.1".into()),
                text: "Go away".into()
            })
        );
        assert_eq!(from("postmaster@anywhere.example"), Some(AccessAction::Ok));
        assert_eq!(from("x@spam.example"), Some(AccessAction::Reject));
        assert_eq!(from("x@example.net"), None);
        assert_eq!(
            map.to_action("a@closed.example", "closed.example"),
            Some(AccessAction::Error {
                code: 451,
                enhanced: None,
                text: "Later".into()
            })
        );
        assert_eq!(map.to_action("a@skip.example", "skip.example"), None);
        assert_eq!(AccessAction::parse("ERROR:bogus"), None);
    }
}
