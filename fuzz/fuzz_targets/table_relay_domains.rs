//! `relay-domains` (domains and client address prefixes that may relay)
//! and `local-host-names` (this host's domains): the two one-entry-a-line
//! side tables.
//!
//! Input: one selector byte (which table), then its text.
//!
//! Asserts, beyond "does not panic": in a table that parses, every
//! domain entry is found, in any case (and, in relay-domains, its
//! subdomains too), every client entry admits the addresses it names
//! (an IPv4 prefix, any address under it; an IPv6 address, itself);
//! lookups of any word answer; every error names a line of the text.
#![no_main]

use std::net::IpAddr;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use postern_config::{ConfigErrors, LocalHostNames, RelayDomains};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, text)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(text);
    let entries = || {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
    };
    if selector % 2 == 0 {
        let table = match RelayDomains::parse_str(&text, Path::new("/etc/mail/relay-domains")) {
            Ok(table) => table,
            Err(e) => return check_lines(&e, &text),
        };
        for entry in entries() {
            match client_under(entry) {
                Some(addr) => assert!(table.has_client(addr), "{entry} does not admit {addr}"),
                None => {
                    assert!(table.has_domain(&entry.to_ascii_uppercase()), "{entry}");
                    assert!(table.has_domain(&format!("mail.{entry}")), "{entry}");
                }
            }
            let _ = table.has_domain(entry);
        }
    } else {
        let table = match LocalHostNames::parse_str(&text, Path::new("/etc/mail/local-host-names"))
        {
            Ok(table) => table,
            Err(e) => return check_lines(&e, &text),
        };
        for entry in entries() {
            assert!(table.contains(&entry.to_ascii_uppercase()), "{entry}");
        }
    }
});

/// For a client entry (`192.0.2`, `IPv6:2001:db8::7`), an address it
/// admits.
fn client_under(entry: &str) -> Option<IpAddr> {
    if let Some(v6) = entry.get(..5).filter(|p| p.eq_ignore_ascii_case("ipv6:")) {
        return Some(IpAddr::V6(entry[v6.len()..].parse().ok()?));
    }
    let octets: Vec<u8> = entry
        .split('.')
        .map(|o| o.parse().ok())
        .collect::<Option<_>>()?;
    if octets.is_empty() || octets.len() > 4 {
        return None;
    }
    let mut full = [7u8; 4];
    full[..octets.len()].copy_from_slice(&octets);
    Some(IpAddr::from(full))
}

fn check_lines(errors: &ConfigErrors, text: &str) {
    let lines = text.lines().count();
    for e in errors.errors() {
        assert!(
            e.line >= 1 && e.line <= lines,
            "error on line {} of {lines}: {e}",
            e.line
        );
    }
}
