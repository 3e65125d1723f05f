//! Whether the peer's certificate names the host we meant to reach
//! (RFC 6125 §6): the DNS names among its subjectAltNames, a wildcard
//! allowed only as the whole leftmost label (`*.example.com` matches
//! `mx.example.com`, not `example.com` or `a.mx.example.com`); for an
//! address literal, its IP-address subjectAltNames; and its subject's CN
//! only when it carries no DNS name at all (older certificates).
//!
//! sendmail's `+CN` compares the CN alone; checking the subjectAltNames is
//! what every certificate issued today needs.

use std::net::IpAddr;

use openssl::nid::Nid;
use openssl::x509::X509Ref;

/// The host as a DNS name (lower case, no trailing dot) or an address.
enum Wanted {
    Name(String),
    Addr(IpAddr),
}

fn wanted(host: &str) -> Option<Wanted> {
    let host = host.trim_end_matches('.');
    if let Some(literal) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        let literal = match literal.get(..5) {
            Some(p) if p.eq_ignore_ascii_case("IPv6:") => &literal[5..],
            _ => literal,
        };
        return literal.parse().ok().map(Wanted::Addr);
    }
    if let Ok(ip) = host.parse() {
        return Some(Wanted::Addr(ip));
    }
    (!host.is_empty()).then(|| Wanted::Name(host.to_ascii_lowercase()))
}

/// True when `pattern` (a certificate's DNS name) matches `name`.
fn dns_matches(pattern: &str, name: &str) -> bool {
    let pattern = pattern.trim_end_matches('.').to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(parent) => name.split_once('.').is_some_and(|(first, rest)| {
            !first.is_empty() && rest == parent && parent.contains('.')
        }),
        None => pattern == name,
    }
}

/// True when `cert` names `host` (`mx.example.`, `[192.0.2.1]`,
/// `[IPv6:2001:db8::1]`).
pub(crate) fn certificate_names(cert: &X509Ref, host: &str) -> bool {
    let Some(wanted) = wanted(host) else {
        return false;
    };
    let sans = cert.subject_alt_names();
    let dns: Vec<String> = sans
        .iter()
        .flatten()
        .filter_map(|n| n.dnsname().map(str::to_string))
        .collect();
    match wanted {
        Wanted::Name(name) => {
            if dns.is_empty() {
                common_name(cert).is_some_and(|cn| dns_matches(&cn, &name))
            } else {
                dns.iter().any(|d| dns_matches(d, &name))
            }
        }
        Wanted::Addr(addr) => sans.iter().flatten().any(|n| {
            n.ipaddress().is_some_and(|bytes| match bytes.len() {
                4 => <[u8; 4]>::try_from(bytes).is_ok_and(|b| IpAddr::from(b) == addr),
                16 => <[u8; 16]>::try_from(bytes).is_ok_and(|b| IpAddr::from(b) == addr),
                _ => false,
            })
        }),
    }
}

/// The subject's CN (sendmail's `{cn_subject}`), control characters
/// removed.
pub(crate) fn common_name(cert: &X509Ref) -> Option<String> {
    let entry = cert.subject_name().entries_by_nid(Nid::COMMONNAME).next()?;
    let text = entry
        .data()
        .to_string()
        .unwrap_or_else(|_| String::from_utf8_lossy(entry.data().as_slice()).into_owned());
    Some(text.chars().filter(|c| !c.is_control()).take(256).collect())
}

#[cfg(test)]
mod tests {
    use super::dns_matches;

    #[test]
    fn wildcards_cover_one_leftmost_label() {
        assert!(dns_matches("mx.example.com", "mx.example.com"));
        assert!(dns_matches("MX.Example.COM.", "mx.example.com"));
        assert!(dns_matches("*.example.com", "mx.example.com"));
        assert!(!dns_matches("*.example.com", "example.com"));
        assert!(!dns_matches("*.example.com", "a.mx.example.com"));
        assert!(!dns_matches("*.com", "example.com"));
        assert!(!dns_matches("mx.example.com", "mx.example.org"));
    }
}
