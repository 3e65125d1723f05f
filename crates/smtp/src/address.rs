//! Envelope addresses: the `Reverse-path` of MAIL and the `Forward-path` of
//! RCPT, parsed to the grammar of RFC 5321 §4.1.2.
//!
//! This module validates and normalises; it decides nothing about routing
//! or relaying. Source routes (`<@a,@b:user@host>`) are accepted and dropped,
//! as RFC 5321 §C asks. Only ASCII is accepted: Postern does not offer
//! SMTPUTF8. Every accepted address is safe to put in a header or a file:
//! no CR, LF, NUL or other control character survives parsing.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::limits;

/// The domain part of a mailbox.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Domain {
    /// A host name such as `mail.example.org`.
    Name(String),
    /// `[192.0.2.1]`.
    Ipv4(Ipv4Addr),
    /// `[IPv6:2001:db8::1]`.
    Ipv6(Ipv6Addr),
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Domain::Name(name) => f.write_str(name),
            Domain::Ipv4(ip) => write!(f, "[{ip}]"),
            Domain::Ipv6(ip) => write!(f, "[IPv6:{ip}]"),
        }
    }
}

/// `local-part@domain`, or a bare local part (`<postmaster>`, and the
/// unqualified recipients sendmail accepts and qualifies with `$j`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Mailbox {
    /// The local part as written, quotes included when it needed them.
    pub local: String,
    /// The domain, absent for an unqualified address.
    pub domain: Option<Domain>,
}

impl fmt::Display for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.local)?;
        if let Some(domain) = &self.domain {
            write!(f, "@{domain}")?;
        }
        Ok(())
    }
}

/// The argument of MAIL FROM: a mailbox, or `<>` (the null sender of bounces).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ReversePath {
    /// `<>`.
    Null,
    /// A sender mailbox.
    Mailbox(Mailbox),
}

impl fmt::Display for ReversePath {
    /// The path as sendmail shows it in replies and logs, with angle brackets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReversePath::Null => f.write_str("<>"),
            ReversePath::Mailbox(m) => write!(f, "<{m}>"),
        }
    }
}

/// Why an address was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// Not a path at all: missing brackets, stray characters.
    #[error("syntax error in address")]
    Syntax,
    /// `<>` where a mailbox is required.
    #[error("user address required")]
    Empty,
    /// Over one of the RFC 5321 §4.5.3 limits.
    #[error("address too long")]
    TooLong,
    /// The domain (or address literal) is malformed.
    #[error("invalid domain")]
    Domain,
    /// The local part is malformed.
    #[error("invalid local part")]
    LocalPart,
    /// Non-ASCII text without SMTPUTF8.
    #[error("non-ASCII address")]
    NonAscii,
}

/// Parses the text after `MAIL FROM:` up to the parameters.
pub fn parse_reverse_path(text: &str) -> Result<ReversePath, AddressError> {
    let inner = unbracket(text)?;
    if inner.is_empty() {
        return Ok(ReversePath::Null);
    }
    parse_mailbox(strip_source_route(inner)?).map(ReversePath::Mailbox)
}

/// Parses the text after `RCPT TO:` up to the parameters.
pub fn parse_forward_path(text: &str) -> Result<Mailbox, AddressError> {
    let inner = unbracket(text)?;
    if inner.is_empty() {
        return Err(AddressError::Empty);
    }
    parse_mailbox(strip_source_route(inner)?)
}

/// Removes the angle brackets. A bare address (`MAIL FROM:user@host`) is
/// accepted as sendmail and Postfix accept it; RFC 5321 wants brackets.
fn unbracket(text: &str) -> Result<&str, AddressError> {
    if !text.is_ascii() {
        return Err(AddressError::NonAscii);
    }
    if text.len() > limits::PATH {
        return Err(AddressError::TooLong);
    }
    match (text.strip_prefix('<'), text.ends_with('>')) {
        (Some(rest), true) => Ok(&rest[..rest.len() - 1]),
        (None, false) if !text.contains(['<', '>']) && !text.is_empty() => Ok(text),
        _ => Err(AddressError::Syntax),
    }
}

/// `@a,@b:mailbox` → `mailbox`; each hop must still be a valid domain.
fn strip_source_route(inner: &str) -> Result<&str, AddressError> {
    if !inner.starts_with('@') {
        return Ok(inner);
    }
    let colon = inner.find(':').ok_or(AddressError::Syntax)?;
    for hop in inner[..colon].split(',') {
        let name = hop.strip_prefix('@').ok_or(AddressError::Syntax)?;
        parse_domain(name)?;
    }
    Ok(&inner[colon + 1..])
}

/// `Local-part [ "@" ( Domain / address-literal ) ]`.
pub fn parse_mailbox(text: &str) -> Result<Mailbox, AddressError> {
    if !text.is_ascii() {
        return Err(AddressError::NonAscii);
    }
    let (local, domain) = split_at_domain(text)?;
    check_local_part(local)?;
    let domain = domain.map(parse_domain).transpose()?;
    Ok(Mailbox {
        local: local.to_string(),
        domain,
    })
}

/// Splits at the `@` that follows the local part, which for a quoted local
/// part is the one after the closing quote.
fn split_at_domain(text: &str) -> Result<(&str, Option<&str>), AddressError> {
    let local_end = if text.starts_with('"') {
        quoted_string_end(text).ok_or(AddressError::LocalPart)?
    } else {
        text.find('@').unwrap_or(text.len())
    };
    let (local, rest) = text.split_at(local_end);
    match rest.strip_prefix('@') {
        Some(domain) => Ok((local, Some(domain))),
        None if rest.is_empty() => Ok((local, None)),
        None => Err(AddressError::Syntax),
    }
}

/// Index just past the closing quote of a quoted string at the start of `text`.
fn quoted_string_end(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut i = 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => {
                // quoted-pairSMTP = "\" followed by %d32-126
                let next = *bytes.get(i + 1)?;
                if !(32..=126).contains(&next) {
                    return None;
                }
                i += 2;
            }
            b'"' => return Some(i + 1),
            // qtextSMTP = %d32-33 / %d35-91 / %d93-126
            32..=126 => i += 1,
            _ => return None,
        }
    }
    None
}

fn check_local_part(local: &str) -> Result<(), AddressError> {
    if local.is_empty() {
        return Err(AddressError::LocalPart);
    }
    if local.len() > limits::LOCAL_PART {
        return Err(AddressError::TooLong);
    }
    if local.starts_with('"') {
        // split_at_domain already walked the quoted string to its end.
        return Ok(());
    }
    // Dot-string = Atom *("." Atom): no empty atoms, so no leading,
    // trailing or doubled dots.
    if local
        .split('.')
        .all(|atom| !atom.is_empty() && atom.bytes().all(is_atext))
    {
        Ok(())
    } else {
        Err(AddressError::LocalPart)
    }
}

/// `atext` of RFC 5322 §3.2.3.
fn is_atext(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b)
}

/// `Domain / address-literal`.
pub fn parse_domain(text: &str) -> Result<Domain, AddressError> {
    if text.len() > limits::DOMAIN {
        return Err(AddressError::TooLong);
    }
    if let Some(literal) = text.strip_prefix('[') {
        let literal = literal.strip_suffix(']').ok_or(AddressError::Domain)?;
        return parse_address_literal(literal);
    }
    if is_domain_name(text) {
        Ok(Domain::Name(text.to_string()))
    } else {
        Err(AddressError::Domain)
    }
}

fn parse_address_literal(literal: &str) -> Result<Domain, AddressError> {
    let prefix = literal.get(..5);
    if prefix.is_some_and(|p| p.eq_ignore_ascii_case("IPv6:")) {
        return literal[5..]
            .parse()
            .map(Domain::Ipv6)
            .map_err(|_| AddressError::Domain);
    }
    // Ipv4Addr's parser refuses leading zeros and out-of-range octets,
    // which is exactly RFC 5321's Snum.
    literal
        .parse()
        .map(Domain::Ipv4)
        .map_err(|_| AddressError::Domain)
}

/// `sub-domain *("." sub-domain)` with `sub-domain = Let-dig [Ldh-str]`.
/// A trailing dot (an absolute name) is not allowed in SMTP.
pub fn is_domain_name(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= limits::DOMAIN
        && text.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b.len() <= 63
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mailbox(text: &str) -> Mailbox {
        parse_forward_path(text).unwrap()
    }

    #[test]
    fn plain_paths() {
        let m = mailbox("<craig@chef.wrotethebook.com>");
        assert_eq!(m.local, "craig");
        assert_eq!(m.domain, Some(Domain::Name("chef.wrotethebook.com".into())));
        assert_eq!(m.to_string(), "craig@chef.wrotethebook.com");
    }

    #[test]
    fn null_reverse_path() {
        assert_eq!(parse_reverse_path("<>"), Ok(ReversePath::Null));
        assert_eq!(parse_forward_path("<>"), Err(AddressError::Empty));
    }

    #[test]
    fn quoted_local_parts() {
        let m = mailbox(r#"<"john doe\"x"@example.org>"#);
        assert_eq!(m.local, r#""john doe\"x""#);
        let m = mailbox(r#"<"a@b"@example.org>"#);
        assert_eq!(m.local, r#""a@b""#);
        assert_eq!(m.domain, Some(Domain::Name("example.org".into())));
        assert!(parse_forward_path(r#"<"unterminated@example.org>"#).is_err());
        assert!(parse_forward_path("<\"a\x01\"@example.org>").is_err());
    }

    #[test]
    fn address_literals() {
        assert_eq!(
            mailbox("<u@[192.0.2.1]>").domain,
            Some(Domain::Ipv4("192.0.2.1".parse().unwrap()))
        );
        assert_eq!(
            mailbox("<u@[IPv6:2001:db8::1]>").domain,
            Some(Domain::Ipv6("2001:db8::1".parse().unwrap()))
        );
        for bad in [
            "<u@[192.0.2.256]>",
            "<u@[01.2.3.4]>",
            "<u@[IPv6:zz]>",
            "<u@[1.2.3.4>",
        ] {
            assert_eq!(parse_forward_path(bad), Err(AddressError::Domain), "{bad}");
        }
    }

    #[test]
    fn source_routes_are_dropped() {
        let m = mailbox("<@relay.example,@hop.example:user@example.org>");
        assert_eq!(m.to_string(), "user@example.org");
        assert!(parse_forward_path("<@bad_host:user@example.org>").is_err());
    }

    #[test]
    fn unqualified_and_bare() {
        assert_eq!(mailbox("<Postmaster>").domain, None);
        assert_eq!(mailbox("user@example.org").to_string(), "user@example.org");
    }

    #[test]
    fn limits_are_enforced() {
        let long_local = format!("<{}@example.org>", "a".repeat(65));
        assert_eq!(parse_forward_path(&long_local), Err(AddressError::TooLong));
        let ok_local = format!("<{}@example.org>", "a".repeat(64));
        assert!(parse_forward_path(&ok_local).is_ok());
        let long_path = format!("<u@{}.org>", "a.".repeat(130));
        assert_eq!(parse_forward_path(&long_path), Err(AddressError::TooLong));
        let long_label = format!("<u@{}.org>", "a".repeat(64));
        assert_eq!(parse_forward_path(&long_label), Err(AddressError::Domain));
    }

    #[test]
    fn malformed() {
        for bad in [
            "<a..b@example.org>",
            "<.a@example.org>",
            "<a@-example.org>",
            "<a@example.org.>",
            "<a@exa_mple.org>",
            "<a@>",
            "<@example.org>",
            "<a@b",
            "a@b>",
            "<a b@example.org>",
            "<a@b><c@d>",
            "",
        ] {
            assert!(parse_forward_path(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_forward_path("<jos\u{e9}@example.org>"),
            Err(AddressError::NonAscii)
        );
    }
}
