//! Who may send mail where: the relay decision for one recipient, which
//! local users exist, and how sendmail names a client.
//!
//! The front asks [`relay_verdict`] to answer RCPT; the queue runner asks
//! it again for every recipient a front commits, so that a front that was
//! taken over cannot queue mail it was not allowed to accept. Both work on
//! the parsed mailbox (local part, domain), never on the address text.
//!
//! The rules:
//! - a client may relay when it authenticated (SMTP AUTH), or is in
//!   `RelayNetworks` (default:
//!   loopback), listed in `relay-domains` by address, or given `RELAY` by
//!   a `Connect:` (or untagged) entry of the access map;
//! - anyone may send to local domains (`local-host-names`, `$j`,
//!   `localhost`), to a domain of `relay-domains` (and its subdomains),
//!   and to a recipient a `To:` (or untagged) entry gives `RELAY`, by
//!   address or domain; nothing else;
//! - a recipient without a domain is qualified with `$j` first;
//! - from a client that may not relay, a local part carrying routing
//!   characters (`@`, `%`, `!`: `"user@evil"@local`, `user%evil@local`,
//!   `evil!user@local`) is refused as relaying, whatever its domain, as
//!   sendmail's check_rcpt does;
//! - an address literal is never a local domain.
//!
//! Postern never routes by `%` or `!`: a local part that carries them is
//! only ever a (non-existent) local user.

use std::net::{IpAddr, SocketAddr};

use postern_smtp::address::{Domain, Mailbox};

use crate::settings::Settings;

/// What may happen to a recipient.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RelayVerdict {
    /// A local domain: deliverable if the user exists ([`local_user_known`]).
    Local {
        /// The local part, dequoted, as the user database would be asked.
        name: String,
    },
    /// Another domain, and the client may relay.
    Relay,
    /// Another domain (or a routing trick), and the client may not relay:
    /// sendmail's `550 5.7.1 <addr>... Relaying denied`.
    Denied,
}

/// True when a client at `ip` may relay: it is in `RelayNetworks`, listed
/// in `relay-domains`, or given `RELAY` by the access map's `Connect:`.
pub fn may_relay(settings: &Settings, ip: IpAddr) -> bool {
    settings
        .config
        .relay_networks
        .iter()
        .any(|n| n.contains(ip))
        || settings.relay_domains.has_client(ip)
        || settings.access.connect_relays(ip)
}

/// True when anyone may send to `mailbox` through this host: its domain
/// is in `relay-domains`, or `To:` gives it `RELAY`.
fn recipient_relayed(settings: &Settings, mailbox: &Mailbox) -> bool {
    let Some(Domain::Name(domain)) = &mailbox.domain else {
        return false;
    };
    settings.relay_domains.has_domain(domain)
        || settings.access.to_relays(&mailbox.to_string(), domain)
}

/// `mailbox` with `$j` as its domain when it has none (sendmail qualifies
/// unqualified recipients with its own name).
pub fn qualify(mailbox: &Mailbox, hostname: &str) -> Mailbox {
    let mut m = mailbox.clone();
    if m.domain.is_none() {
        m.domain = Some(Domain::Name(hostname.to_string()));
    }
    m
}

/// The relay decision for `mailbox` (qualified: see [`qualify`]) from a
/// client at `peer`, which may have authenticated (SMTP AUTH): an
/// authenticated client relays from anywhere.
pub fn relay_verdict(
    settings: &Settings,
    peer: IpAddr,
    authenticated: bool,
    mailbox: &Mailbox,
) -> RelayVerdict {
    let relay_client = authenticated || may_relay(settings, peer);
    let name = dequote(&mailbox.local);
    if !relay_client && name.contains(['@', '%', '!']) {
        return RelayVerdict::Denied;
    }
    let local = match &mailbox.domain {
        Some(Domain::Name(domain)) => settings.is_local_domain(domain),
        // Unqualified: the caller should have qualified it with $j.
        None => true,
        Some(Domain::Ipv4(_) | Domain::Ipv6(_)) => false,
    };
    if local {
        RelayVerdict::Local { name }
    } else if relay_client || recipient_relayed(settings, mailbox) {
        RelayVerdict::Relay
    } else {
        RelayVerdict::Denied
    }
}

/// The local part without its quotes and backslash escapes:
/// `"john.doe"` → `john.doe`, `"a\"b"` → `a"b`.
pub fn dequote(local: &str) -> String {
    let Some(inner) = local
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
    else {
        return local.to_string();
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}

/// The mailbox name for a local user: lower-cased (sendmail's local mailer
/// has no `u` flag), only `[a-z0-9._+-]`, not starting with `.`, 1–64
/// bytes. `None` when `name` cannot be a local user; this is also what
/// keeps a recipient from naming a path outside MailboxDirectory.
pub fn mailbox_name(name: &str) -> Option<String> {
    let user = name.to_ascii_lowercase();
    let allowed = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._+-".contains(&b);
    let ok =
        !user.is_empty() && user.len() <= 64 && !user.starts_with('.') && user.bytes().all(allowed);
    ok.then_some(user)
}

/// True when mail for the local part `name` can be delivered here: it is
/// `postmaster` (RFC 5321 §4.5.1 requires it), or a user of the password
/// database with an acceptable mailbox name. Unknown users are refused at
/// RCPT, never given a new mailbox.
pub fn local_user_known(name: &str) -> bool {
    let Some(user) = mailbox_name(name) else {
        return false;
    };
    user == "postmaster" || nix::unistd::User::from_name(&user).ok().flatten().is_some()
}

/// sendmail's `$_` without DNS: `[192.0.2.1]`, `[IPv6:2001:db8::1]`, or
/// `localhost [127.0.0.1]`.
pub fn client_name(peer: &SocketAddr) -> String {
    match peer.ip() {
        ip if ip.is_loopback() => format!("localhost [{ip}]"),
        IpAddr::V6(ip) => format!("[IPv6:{ip}]"),
        ip => format!("[{ip}]"),
    }
}

/// The reply for the access map's `REJECT` (`550 5.7.1 Access denied`)
/// or `ERROR:5.7.1:550 text`, the text after `prefix` (`<addr>... ` at
/// MAIL and RCPT, nothing at connect). Other actions refuse nothing.
pub fn access_reply(
    action: Option<postern_config::AccessAction>,
    prefix: &str,
) -> Option<postern_smtp::Reply> {
    use postern_config::AccessAction;
    use postern_smtp::{EnhancedCode, Reply};
    match action? {
        AccessAction::Reject => Some(Reply::new(
            550,
            EnhancedCode::new(5, 7, 1),
            format!("{prefix}Access denied"),
        )),
        AccessAction::Error {
            code,
            enhanced,
            text,
        } => {
            let class = u8::try_from(code / 100).unwrap_or(5);
            let e = enhanced
                .as_deref()
                .and_then(EnhancedCode::parse)
                .unwrap_or(EnhancedCode::new(class, 7, 1));
            Some(Reply::new(code, e, format!("{prefix}{text}")))
        }
        _ => None,
    }
}

/// sendmail's log line for a client refused by its check_relay ruleset
/// (the access map's `Connect:`, `ClientRate:`, `ClientConn:`): the
/// client's name (`[address]` when it has none) and address, then the
/// reply.
pub fn check_relay_log(peer: &SocketAddr, reply: &str) -> String {
    let ip = peer.ip();
    let name = if ip.is_loopback() {
        "localhost".to_string()
    } else {
        client_name(peer)
    };
    format!(
        "ruleset=check_relay, arg1={name}, arg2={ip}, relay={}, reject={reply}",
        client_name(peer)
    )
}

/// The reply to a client no front could be started for (out of processes,
/// descriptors or memory for a moment: master could not hand it on, or
/// the factory could not fork); the cause is logged where it was met.
pub fn no_session_reply(hostname: &str) -> String {
    format!("421 4.3.2 {hostname} Cannot start a session now, try again later")
}

#[cfg(test)]
mod tests {
    use postern_smtp::address::parse_forward_path;

    use super::*;

    fn verdict(settings: &Settings, peer: &str, rcpt: &str) -> RelayVerdict {
        let m = qualify(&parse_forward_path(rcpt).unwrap(), &settings.hostname);
        relay_verdict(settings, peer.parse().unwrap(), false, &m)
    }

    fn local(name: &str) -> RelayVerdict {
        RelayVerdict::Local { name: name.into() }
    }

    #[test]
    fn outsiders_reach_local_domains_only() {
        let dir = tempfile::tempdir().unwrap();
        let s = crate::settings::for_tests(dir.path(), "");
        let out = "192.0.2.1";
        assert_eq!(verdict(&s, out, "<user@mx.test>"), local("user"));
        assert_eq!(verdict(&s, out, "<User@MX.TEST>"), local("User"));
        assert_eq!(verdict(&s, out, "<postmaster>"), local("postmaster"));
        assert_eq!(verdict(&s, out, "<\"john\"@mx.test>"), local("john"));
        for trick in [
            "<victim@example.com>",
            "<victim@EXAMPLE.COM>",
            "<x@[192.0.2.9]>",
            "<x@[127.0.0.1]>",
            "<x@[IPv6:::1]>",
            // The source route is dropped: what is left is remote.
            "<@mx.test:victim@example.com>",
            // Routing hidden in a local part at a local domain.
            "<\"victim@example.com\">",
            "<\"victim@example.com\"@mx.test>",
            "<victim%example.com@mx.test>",
            "<example.com!victim@mx.test>",
            "<\"victim%example.com\"@mx.test>",
            "<\"example.com!victim\">",
        ] {
            assert_eq!(verdict(&s, out, trick), RelayVerdict::Denied, "{trick}");
        }
    }

    #[test]
    fn loopback_may_relay_but_never_routes_by_local_part() {
        let dir = tempfile::tempdir().unwrap();
        let s = crate::settings::for_tests(dir.path(), "");
        for peer in ["127.0.0.1", "::1"] {
            assert_eq!(
                verdict(&s, peer, "<victim@example.com>"),
                RelayVerdict::Relay
            );
            // Local, with a name no user has: refused as unknown later.
            assert_eq!(
                verdict(&s, peer, "<\"victim@example.com\">"),
                local("victim@example.com")
            );
            assert_eq!(
                verdict(&s, peer, "<victim%example.com@mx.test>"),
                local("victim%example.com")
            );
        }
        assert!(!local_user_known("victim@example.com"));
        assert!(!local_user_known("victim%example.com"));
    }

    #[test]
    fn unqualified_recipients_get_our_name() {
        let m = qualify(&parse_forward_path("<postmaster>").unwrap(), "mx.test");
        assert_eq!(m.to_string(), "postmaster@mx.test");
        let m = qualify(
            &parse_forward_path("<\"victim@example.com\">").unwrap(),
            "mx.test",
        );
        assert_eq!(m.to_string(), "\"victim@example.com\"@mx.test");
    }

    #[test]
    fn local_users_come_from_the_password_database() {
        assert!(local_user_known("root"));
        assert!(local_user_known("ROOT"));
        assert!(local_user_known("postmaster"));
        assert!(!local_user_known("no-such-user-here"));
        assert!(!local_user_known("../etc"));
        assert!(!local_user_known(".root"));
        assert!(!local_user_known(""));
    }

    #[test]
    fn mailbox_names() {
        assert_eq!(mailbox_name("A.b+c-d_e9").as_deref(), Some("a.b+c-d_e9"));
        assert!(mailbox_name(&"x".repeat(64)).is_some());
        for bad in [".hidden", "../etc", "a/b", "a b", "", &"x".repeat(65)] {
            assert_eq!(mailbox_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn dequoting() {
        assert_eq!(dequote("\"john.doe\""), "john.doe");
        assert_eq!(dequote(r#""a\"b\\c""#), "a\"b\\c");
        assert_eq!(dequote("plain"), "plain");
    }

    #[test]
    fn client_names() {
        let n = |s: &str| client_name(&s.parse().unwrap());
        assert_eq!(n("127.0.0.1:25"), "localhost [127.0.0.1]");
        assert_eq!(n("[::1]:25"), "localhost [::1]");
        assert_eq!(n("192.0.2.1:25"), "[192.0.2.1]");
        assert_eq!(n("[2001:db8::1]:25"), "[IPv6:2001:db8::1]");
    }
}
