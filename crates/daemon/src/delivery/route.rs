//! Routing: where one recipient goes, decided from the configuration alone.
//!
//! Owns: the order of sendmail's routing decisions for one address (local
//! domain or unqualified → local; mailertable; `SMART_HOST`; the domain
//! itself), and turning a host into a socket address with its
//! sendmail-style `relay=` text. Does not own: delivering (`maildir.rs`,
//! `outbound.rs`), grouping recipients into sessions (`job.rs`), or which
//! local users exist (`policy.rs`).
//!
//! Routing works on the parsed mailbox (local part, domain), never on the
//! address text: a quoted local part may hold any `@`, and only the domain
//! after it decides where mail goes. `%` and `!` in a local part never
//! route anywhere.
//!
//! A host is looked up as sendmail looks it up: a recipient's domain, and
//! a route's host written without brackets (`relay:mx.example`), by its MX
//! records ([`Host::Mx`]); a host in brackets (`[mx.example]`) by its
//! address records only ([`Host::Name`]); an address literal not at all.
//! The lookups themselves happen off the event loop (`resolver.rs`).
//!
//! The port: the route's own (`esmtp:[192.0.2.1]:2525`), else the
//! mailer's arguments (`SMTP_MAILER_ARGS`, `TCP $h 2525`), else 25.
//!
//! LMTP (RFC 2033): a mailertable `lmtp:` route, and every local user
//! when `LocalDelivery` names an LMTP server, become [`Route::Lmtp`]: a
//! [`Target`] whose mailer is `lmtp` (the one mailer that speaks LMTP)
//! and whose host is a Unix socket ([`Host::Unix`]) or a host in
//! brackets, with the address to give in RCPT. A local user goes as
//! `user@$j` (the user as Postern validated it, at this host's name: what
//! Dovecot's LMTP looks up, see README "Local delivery"); a mailertable
//! route's recipient goes as it is.
//!
//! Security posture: addresses come from the queue runner, which took them
//! from the network. A local part only becomes a directory name after
//! `policy::mailbox_name` accepted it (`[a-z0-9._+-]`, no leading dot, ≤ 64
//! bytes) and the user exists, so no recipient can name a path outside
//! `MailboxDirectory` or create a mailbox for a user that does not exist.

use std::net::IpAddr;
use std::path::PathBuf;

use postern_config::{LmtpTarget, LocalDelivery, MailerRoute, Relay};
use postern_ipc::RecipientStatus;
use postern_smtp::address::{parse_mailbox, Domain};

use crate::policy;
use crate::settings::Settings;

/// Where to connect, before name resolution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Host {
    /// An address literal: `[192.0.2.1]`, `[IPv6:2001:db8::1]`.
    Literal(IpAddr),
    /// A host, by its address records (`[mx.example]`).
    Name(String),
    /// A mail domain, by its MX records (or its own addresses without any).
    Mx(String),
    /// A Unix stream socket (an LMTP server's, `lmtp:unix:/path`).
    Unix(PathBuf),
}

/// A remote destination: host, port and sendmail mailer name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The host.
    pub host: Host,
    /// The TCP port (0 for a Unix socket).
    pub port: u16,
    /// sendmail's `mailer=` (`esmtp`, `relay`, `smtp`, `lmtp`, …).
    pub mailer: String,
}

/// sendmail's `mailer=` for LMTP deliveries, and the one mailer whose
/// sessions speak LMTP.
pub const LMTP_MAILER: &str = "lmtp";

impl Target {
    /// True when the session to this target speaks LMTP.
    pub fn is_lmtp(mailer: &str) -> bool {
        mailer == LMTP_MAILER
    }
}

/// What to do with one recipient.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// Deliver into `<MailboxDirectory>/<user>/Maildir`; `user` exists.
    Local {
        /// The validated, lower-cased user name.
        user: String,
    },
    /// Deliver over SMTP.
    Remote(Target),
    /// Deliver over LMTP; `rcpt` is the address given in RCPT.
    Lmtp {
        /// The LMTP server (mailer `lmtp`).
        target: Target,
        /// The recipient as the server is to see it.
        rcpt: String,
    },
    /// Do not deliver: report this at once.
    Fail {
        /// TempFail or PermFail.
        status: RecipientStatus,
        /// The reply, `<code> <enhanced> <text>`.
        reply: String,
        /// sendmail's `mailer=` (`local` for an unknown user, `error`).
        mailer: String,
    },
}

/// Routes `address` (without angle brackets).
pub fn route(settings: &Settings, address: &str) -> Route {
    let Ok(mailbox) = parse_mailbox(address) else {
        return Route::Fail {
            status: RecipientStatus::PermFail,
            reply: format!("553 5.1.3 <{address}>... Invalid address"),
            mailer: "error".into(),
        };
    };
    let local_part = policy::dequote(&mailbox.local);
    let domain = match &mailbox.domain {
        None => return local(settings, address, &local_part),
        Some(Domain::Name(name)) => name.as_str(),
        Some(Domain::Ipv4(ip)) => return literal(settings, IpAddr::V4(*ip)),
        Some(Domain::Ipv6(ip)) => return literal(settings, IpAddr::V6(*ip)),
    };
    if settings.is_local_domain(domain) {
        return local(settings, address, &local_part);
    }
    match settings.mailertable.lookup(domain) {
        Some(MailerRoute::Local { user }) => {
            local(settings, address, user.as_deref().unwrap_or(&local_part))
        }
        Some(MailerRoute::Lmtp(lmtp)) => Route::Lmtp {
            target: lmtp_target(lmtp),
            rcpt: address.to_string(),
        },
        Some(MailerRoute::Error {
            code,
            enhanced,
            text,
        }) => error_route(*code, enhanced.as_deref(), text),
        Some(MailerRoute::Smtp(relay)) => Route::Remote(from_relay(settings, relay, "esmtp")),
        None => match &settings.config.smart_host {
            // sendmail's SMART_HOST mailer is `relay` unless one is named.
            Some(relay) => Route::Remote(from_relay(settings, relay, "relay")),
            None => Route::Remote(Target {
                host: Host::Mx(domain.to_ascii_lowercase()),
                port: settings.config.mailer_ports.port("esmtp"),
                mailer: "esmtp".into(),
            }),
        },
    }
}

/// A local submission on its way to Postern's own MTA listener, whose
/// mail filters see it there: every recipient to that address, with
/// sendmail's MSP mailer name, `relay`.
pub fn through(mta: std::net::SocketAddr) -> Route {
    Route::Remote(Target {
        host: Host::Literal(mta.ip()),
        port: mta.port(),
        mailer: "relay".into(),
    })
}

/// A recipient at an address literal: the SMART_HOST if there is one,
/// else that address.
fn literal(settings: &Settings, ip: IpAddr) -> Route {
    match &settings.config.smart_host {
        Some(relay) => Route::Remote(from_relay(settings, relay, "relay")),
        None => Route::Remote(Target {
            host: Host::Literal(ip),
            port: settings.config.mailer_ports.port("esmtp"),
            mailer: "esmtp".into(),
        }),
    }
}

fn local(settings: &Settings, address: &str, name: &str) -> Route {
    match policy::mailbox_name(name) {
        Some(user) if policy::local_user_known(&user) => match &settings.config.local_delivery {
            LocalDelivery::Maildir => Route::Local { user },
            LocalDelivery::Lmtp(lmtp) => Route::Lmtp {
                target: lmtp_target(lmtp),
                rcpt: format!("{user}@{}", settings.hostname),
            },
        },
        _ => Route::Fail {
            status: RecipientStatus::PermFail,
            reply: format!("550 5.1.1 <{address}>... User unknown"),
            mailer: "local".into(),
        },
    }
}

fn error_route(code: u16, enhanced: Option<&str>, text: &str) -> Route {
    let status = if code >= 500 {
        RecipientStatus::PermFail
    } else {
        RecipientStatus::TempFail
    };
    let enhanced = enhanced.map_or_else(|| format!("{}.0.0", code / 100), str::to_string);
    Route::Fail {
        status,
        reply: format!("{code} {enhanced} {text}").trim_end().to_string(),
        mailer: "error".into(),
    }
}

fn from_relay(settings: &Settings, relay: &Relay, default_mailer: &str) -> Target {
    // `Relay::host` holds a literal without its brackets or `IPv6:` prefix.
    let host = match relay.host.parse::<IpAddr>() {
        Ok(ip) if !relay.mx_lookup => Host::Literal(ip),
        _ if relay.mx_lookup => Host::Mx(relay.host.to_ascii_lowercase()),
        _ => Host::Name(relay.host.to_ascii_lowercase()),
    };
    let mailer = relay
        .mailer
        .clone()
        .unwrap_or_else(|| default_mailer.to_string());
    Target {
        host,
        port: relay
            .port
            .unwrap_or_else(|| settings.config.mailer_ports.port(&mailer)),
        mailer,
    }
}

/// An LMTP server as a target: its socket, or its host (never by MX).
fn lmtp_target(lmtp: &LmtpTarget) -> Target {
    let (host, port) = match lmtp {
        LmtpTarget::Unix(path) => (Host::Unix(path.clone()), 0),
        LmtpTarget::Tcp { host, port } => match host.parse::<IpAddr>() {
            Ok(ip) => (Host::Literal(ip), *port),
            Err(_) => (Host::Name(host.to_ascii_lowercase()), *port),
        },
    };
    Target {
        host,
        port,
        mailer: LMTP_MAILER.into(),
    }
}

/// `[192.0.2.1]`, `[IPv6:2001:db8::1]`: sendmail's way of writing a bare address.
pub fn bracketed(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("[{v4}]"),
        IpAddr::V6(v6) => format!("[IPv6:{v6}]"),
    }
}

impl Host {
    /// The host as sendmail names it to the TLS layer and in its
    /// `STARTTLS=client, relay=…` lines (`mci_host`): `mx.example.` (a
    /// name, with its trailing dot) or `[192.0.2.1]`. The TLS layer sends a
    /// name as SNI (without the dot) and never a literal. A Unix socket
    /// (never TLS) is its path, as sendmail names one (`relay=/path`).
    pub fn tls_name(&self) -> String {
        match self {
            Host::Unix(path) => path.display().to_string(),
            Host::Literal(ip) => bracketed(*ip),
            Host::Name(name) | Host::Mx(name) if name.ends_with('.') => name.clone(),
            Host::Name(name) | Host::Mx(name) => format!("{name}."),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::tests::settings_with;

    fn remote(host: Host, port: u16, mailer: &str) -> Route {
        Route::Remote(Target {
            host,
            port,
            mailer: mailer.into(),
        })
    }

    fn lit(ip: &str) -> Host {
        Host::Literal(ip.parse().unwrap())
    }

    /// A user every machine has.
    const USER: &str = "root";

    #[test]
    fn local_domains_and_unqualified_addresses() {
        let (_d, s) = settings_with("", "");
        let root = || Route::Local { user: USER.into() };
        assert_eq!(route(&s, "Root@LOCAL.test"), root());
        assert_eq!(route(&s, "root"), root());
        assert_eq!(route(&s, "\"root\"@local.test"), root());
        assert_eq!(
            route(&s, "postmaster@localhost"),
            Route::Local {
                user: "postmaster".into()
            }
        );
    }

    #[test]
    fn unknown_and_impossible_local_users_are_unknown() {
        let (_d, s) = settings_with("", "");
        for addr in [
            "no-such-user-here@local.test",
            "\".hidden\"@local.test",
            "\"../etc\"@local.test",
            "\"a/b\"@local.test",
            "\"a b\"@local.test",
            "\"root@elsewhere.example\"@local.test",
            "root%elsewhere.example@local.test",
            "elsewhere.example!root@local.test",
        ] {
            let Route::Fail { status, reply, .. } = route(&s, addr) else {
                panic!("{addr} accepted");
            };
            assert_eq!(status, RecipientStatus::PermFail);
            assert_eq!(reply, format!("550 5.1.1 <{addr}>... User unknown"));
        }
    }

    #[test]
    fn a_quoted_local_part_never_decides_the_route() {
        // The text's last `@` is inside the quotes: the domain is the one
        // after them. The old split-at-last-`@` sent this to SMART_HOST.
        let (_d, s) = settings_with("", "[192.0.2.7]:587");
        assert!(matches!(
            route(&s, "\"victim@example.com\"@local.test"),
            Route::Fail { .. }
        ));
        assert!(matches!(
            route(&s, "\"victim@example.com\""),
            Route::Fail { .. }
        ));
        assert!(matches!(route(&s, "not an address"), Route::Fail { .. }));
    }

    #[test]
    fn mailertable_routes() {
        let table = "smtp.test esmtp:[127.0.0.1]:2525\n\
                     .sub.test smtp:[IPv6:::1]\n\
                     named.test relay:mx.named.test\n\
                     bracket.test relay:[mx.bracket.test]\n\
                     deny.test error:5.7.1:550 Go away\n\
                     later.test error:451 Try later\n\
                     alias.test local:postmaster\n";
        let (_d, s) = settings_with(table, "");
        assert_eq!(
            route(&s, "a@smtp.test"),
            remote(lit("127.0.0.1"), 2525, "esmtp")
        );
        assert_eq!(route(&s, "a@x.sub.test"), remote(lit("::1"), 25, "smtp"));
        assert_eq!(
            route(&s, "a@named.test"),
            remote(Host::Mx("mx.named.test".into()), 25, "relay")
        );
        assert_eq!(
            route(&s, "a@bracket.test"),
            remote(Host::Name("mx.bracket.test".into()), 25, "relay")
        );
        assert_eq!(
            route(&s, "a@deny.test"),
            Route::Fail {
                status: RecipientStatus::PermFail,
                reply: "550 5.7.1 Go away".into(),
                mailer: "error".into()
            }
        );
        assert_eq!(
            route(&s, "a@later.test"),
            Route::Fail {
                status: RecipientStatus::TempFail,
                reply: "451 4.0.0 Try later".into(),
                mailer: "error".into()
            }
        );
        assert_eq!(
            route(&s, "anyone@alias.test"),
            Route::Local {
                user: "postmaster".into()
            }
        );
    }

    #[test]
    fn smart_host_then_direct() {
        let (_d, s) = settings_with("smtp.test esmtp:[127.0.0.1]:2525\n", "[192.0.2.7]:587");
        // The mailertable wins over SMART_HOST.
        assert_eq!(
            route(&s, "a@smtp.test"),
            remote(lit("127.0.0.1"), 2525, "esmtp")
        );
        assert_eq!(
            route(&s, "a@example.org"),
            remote(lit("192.0.2.7"), 587, "relay")
        );
        let (_d, s) = settings_with("", "esmtp:relay.example.net");
        assert_eq!(
            route(&s, "a@example.org"),
            remote(Host::Mx("relay.example.net".into()), 25, "esmtp")
        );
        let (_d, s) = settings_with("", "");
        assert_eq!(
            route(&s, "a@Example.ORG"),
            remote(Host::Mx("example.org".into()), 25, "esmtp")
        );
        assert_eq!(
            route(&s, "a@[192.0.2.9]"),
            remote(lit("192.0.2.9"), 25, "esmtp")
        );
        assert_eq!(
            route(&s, "a@[IPv6:2001:db8::1]"),
            remote(lit("2001:db8::1"), 25, "esmtp")
        );
        assert!(matches!(route(&s, "a@[nonsense]"), Route::Fail { .. }));
    }

    #[test]
    fn lmtp_routes() {
        let table = "dovecot.test lmtp:unix:/run/dovecot/lmtp\n\
                     tcp.test lmtp:[127.0.0.1]:2424\n\
                     named.test lmtp:[lmtp.named.test]\n\
                     alias.test local:root\n";
        let (_d, mut s) = settings_with(table, "");
        let lmtp = |host: Host, port: u16, rcpt: &str| Route::Lmtp {
            target: Target {
                host,
                port,
                mailer: "lmtp".into(),
            },
            rcpt: rcpt.into(),
        };
        let unix = || Host::Unix("/run/dovecot/lmtp".into());
        // A mailertable route keeps the recipient as it is.
        assert_eq!(
            route(&s, "Anyone@Dovecot.test"),
            lmtp(unix(), 0, "Anyone@Dovecot.test")
        );
        assert_eq!(
            route(&s, "a@tcp.test"),
            lmtp(lit("127.0.0.1"), 2424, "a@tcp.test")
        );
        assert_eq!(
            route(&s, "a@named.test"),
            lmtp(Host::Name("lmtp.named.test".into()), 24, "a@named.test")
        );
        // LocalDelivery: every local user, as user@$j; unknown users are
        // still refused here.
        s.config.local_delivery = LocalDelivery::Lmtp(LmtpTarget::Unix("/run/dovecot/lmtp".into()));
        assert_eq!(
            route(&s, "Root@LOCAL.test"),
            lmtp(unix(), 0, &format!("root@{}", s.hostname))
        );
        assert_eq!(
            route(&s, "root"),
            lmtp(unix(), 0, &format!("root@{}", s.hostname))
        );
        assert_eq!(
            route(&s, "someone@alias.test"),
            lmtp(unix(), 0, &format!("root@{}", s.hostname))
        );
        assert!(matches!(
            route(&s, "no-such-user-here@local.test"),
            Route::Fail { .. }
        ));
        assert_eq!(unix().tls_name(), "/run/dovecot/lmtp");
    }

    #[test]
    fn tls_names() {
        assert_eq!(lit("127.0.0.1").tls_name(), "[127.0.0.1]");
        assert_eq!(lit("2001:db8::1").tls_name(), "[IPv6:2001:db8::1]");
        assert_eq!(Host::Name("mx.example".into()).tls_name(), "mx.example.");
        assert_eq!(Host::Name("mx.example.".into()).tls_name(), "mx.example.");
    }
}
