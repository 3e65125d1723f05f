//! From a route's target and what the DNS said to the servers one attempt
//! tries, in order ([`Candidate`]), or the reason there are none.
//!
//! Owns: what a lookup outcome means for a recipient (sendmail's and
//! Postfix's replies for an unknown host, a null MX, a lookup failure),
//! and never delivering to ourselves: a mail exchanger that is this host
//! (one of its names, or an address and port it listens on) cuts the list
//! at its preference (RFC 5321 §5.1), and a list that is left empty is
//! sendmail's `553 5.3.5 … config error: mail loops back to me (MX
//! problem?)`. Does not own: routing (`route.rs`), asking the DNS
//! (`resolver.rs`), connecting (`outbound.rs`).

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use postern_ipc::RecipientStatus;

use super::resolver::{Answer, Exchange, Question};
use super::route::{bracketed, Host, Target};
use crate::settings::Settings;

/// Where a connection goes: a TCP address and port, or a Unix stream
/// socket (an LMTP server's).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// TCP.
    Tcp(SocketAddr),
    /// A Unix stream socket, by path.
    Unix(PathBuf),
}

impl Endpoint {
    /// The TCP address, `None` for a Unix socket.
    pub fn tcp(&self) -> Option<SocketAddr> {
        match self {
            Endpoint::Tcp(addr) => Some(*addr),
            Endpoint::Unix(_) => None,
        }
    }
}

/// One server to try: where to connect and how sendmail names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// The address and port, or the socket.
    pub addr: Endpoint,
    /// The server as TLS and the access map see it: the exchanger's name,
    /// or the literal.
    pub host: Host,
    /// sendmail's `relay=` text: `mx.example. [192.0.2.2]`,
    /// `[127.0.0.1] [127.0.0.1]`, a socket's path (`/run/dovecot/lmtp`,
    /// as sendmail names the socket of its cyrusv2 mailer).
    pub relay: String,
}

/// Why a target has no server to try.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoServer {
    /// TempFail or PermFail.
    pub status: RecipientStatus,
    /// `<code> <enhanced> <text>`, as the recipient's reply.
    pub reply: String,
}

/// The addresses this host answers mail on: what a mail exchanger must
/// not be.
#[derive(Clone, Debug, Default)]
pub struct Myself {
    /// Ports with the address each listens on (`None`: every address).
    listeners: Vec<(Option<IpAddr>, u16)>,
    /// This host's interface addresses, for the wildcard listeners.
    interfaces: HashSet<IpAddr>,
}

impl Myself {
    /// From the configured listeners and the host's interfaces.
    pub fn new(settings: &Settings) -> Myself {
        let interfaces = nix::ifaddrs::getifaddrs()
            .map(|all| {
                all.filter_map(|i| {
                    let a = i.address?;
                    a.as_sockaddr_in()
                        .map(|v4| IpAddr::V4(v4.ip()))
                        .or_else(|| a.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip())))
                })
                .collect()
            })
            .unwrap_or_default();
        Myself {
            listeners: settings
                .config
                .daemons
                .iter()
                .map(|d| (d.addr, d.port))
                .collect(),
            interfaces,
        }
    }

    fn is_me(&self, addr: SocketAddr) -> bool {
        self.listeners.iter().any(|(ip, port)| {
            *port == addr.port()
                && match ip {
                    Some(ip) => *ip == addr.ip(),
                    None => addr.ip().is_loopback() || self.interfaces.contains(&addr.ip()),
                }
        })
    }
}

/// What to ask the resolver for `target`; `None` for a literal or a
/// socket ([`direct`]).
pub fn question(target: &Target) -> Option<Question> {
    match &target.host {
        Host::Literal(_) | Host::Unix(_) => None,
        Host::Name(name) => Some(Question::Host(name.clone())),
        Host::Mx(domain) => Some(Question::Mail(domain.clone())),
    }
}

/// The servers for a target that needs no lookup (a literal, a socket);
/// `None` for one that does.
pub fn direct(target: &Target) -> Option<Vec<Candidate>> {
    match &target.host {
        Host::Literal(ip) => Some(literal(*ip, target.port)),
        Host::Unix(path) => Some(vec![Candidate {
            addr: Endpoint::Unix(path.clone()),
            host: target.host.clone(),
            relay: path.display().to_string(),
        }]),
        Host::Name(_) | Host::Mx(_) => None,
    }
}

/// The servers for a literal target.
pub fn literal(ip: IpAddr, port: u16) -> Vec<Candidate> {
    let shown = bracketed(ip);
    vec![Candidate {
        addr: Endpoint::Tcp(SocketAddr::new(ip, port)),
        host: Host::Literal(ip),
        relay: format!("{shown} {shown}"),
    }]
}

/// The servers to try for `target` after the resolver's `answer`.
pub fn candidates(
    settings: &Settings,
    myself: &Myself,
    target: &Target,
    answer: Answer,
) -> Result<Vec<Candidate>, NoServer> {
    let name = match &target.host {
        Host::Literal(_) | Host::Unix(_) => return Ok(direct(target).unwrap_or_default()),
        Host::Name(name) | Host::Mx(name) => name.as_str(),
    };
    let exchanges = match answer {
        Answer::Hosts(exchanges) => exchanges,
        // Postfix's wording; sendmail 8.17 has none of its own.
        Answer::NullMx => {
            return Err(perm(format!(
                "556 5.1.10 Domain {name} does not accept mail (nullMX)"
            )))
        }
        Answer::NoSuchHost => {
            return Err(perm(format!(
                "550 5.1.2 Host unknown (Name server: {name}: host not found)"
            )))
        }
        Answer::TryAgain(why) => {
            return Err(NoServer {
                status: RecipientStatus::TempFail,
                reply: format!("451 4.4.3 Host map: lookup ({name}): deferred ({why})"),
            })
        }
    };
    let exchanges = not_myself(settings, myself, target.port, exchanges).ok_or_else(|| {
        perm(format!(
            "553 5.3.5 {name}. config error: mail loops back to me (MX problem?)"
        ))
    })?;
    Ok(exchanges
        .into_iter()
        .flat_map(|x| {
            let port = target.port;
            x.addrs.into_iter().map(move |ip| Candidate {
                addr: Endpoint::Tcp(SocketAddr::new(ip, port)),
                host: Host::Name(x.name.clone()),
                relay: format!("{}. {}", x.name, bracketed(ip)),
            })
        })
        .collect())
}

/// RFC 5321 §5.1: when this host is among the exchangers, only those
/// preferred to it are tried. `None` when that leaves none.
fn not_myself(
    settings: &Settings,
    myself: &Myself,
    port: u16,
    exchanges: Vec<Exchange>,
) -> Option<Vec<Exchange>> {
    let me = |x: &Exchange| {
        settings.is_local_domain(&x.name)
            || x.addrs
                .iter()
                .any(|ip| myself.is_me(SocketAddr::new(*ip, port)))
    };
    let cut = exchanges.iter().find(|x| me(x)).map(|x| x.preference);
    let kept: Vec<Exchange> = exchanges
        .into_iter()
        .filter(|x| cut.is_none_or(|cut| x.preference < cut))
        .collect();
    (!kept.is_empty()).then_some(kept)
}

fn perm(reply: String) -> NoServer {
    NoServer {
        status: RecipientStatus::PermFail,
        reply,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::tests::settings_with;

    fn x(name: &str, preference: u16, ip: &str) -> Exchange {
        Exchange {
            name: name.into(),
            preference,
            addrs: vec![ip.parse().unwrap()],
        }
    }

    fn target(host: Host, port: u16) -> Target {
        Target {
            host,
            port,
            mailer: "esmtp".into(),
        }
    }

    fn me_on(addr: &str) -> Myself {
        let a: SocketAddr = addr.parse().unwrap();
        Myself {
            listeners: vec![(Some(a.ip()), a.port())],
            interfaces: HashSet::new(),
        }
    }

    #[test]
    fn every_address_of_every_exchanger_in_order() {
        let (_d, s) = settings_with("", "");
        let t = target(Host::Mx("example.org".into()), 2525);
        let mut second = x("mx2.example.org", 20, "192.0.2.3");
        second.addrs.push("2001:db8::3".parse().unwrap());
        let answer = Answer::Hosts(vec![x("mx1.example.org", 10, "192.0.2.2"), second]);
        let c = candidates(&s, &Myself::default(), &t, answer).unwrap();
        let shown: Vec<(String, String)> = c
            .iter()
            .map(|c| (c.addr.tcp().unwrap().to_string(), c.relay.clone()))
            .collect();
        assert_eq!(
            shown,
            [
                ("192.0.2.2:2525", "mx1.example.org. [192.0.2.2]"),
                ("192.0.2.3:2525", "mx2.example.org. [192.0.2.3]"),
                ("[2001:db8::3]:2525", "mx2.example.org. [IPv6:2001:db8::3]"),
            ]
            .map(|(a, b)| (a.to_string(), b.to_string()))
        );
        assert_eq!(c[0].host, Host::Name("mx1.example.org".into()));
    }

    #[test]
    fn literals_need_no_answer() {
        let c = literal("127.0.0.1".parse().unwrap(), 2525);
        assert_eq!(c[0].addr, Endpoint::Tcp("127.0.0.1:2525".parse().unwrap()));
        assert_eq!(c[0].relay, "[127.0.0.1] [127.0.0.1]");
        assert_eq!(
            literal("::1".parse().unwrap(), 25)[0].relay,
            "[IPv6:::1] [IPv6:::1]"
        );
    }

    #[test]
    fn a_socket_is_its_own_server() {
        let t = Target {
            host: Host::Unix("/run/dovecot/lmtp".into()),
            port: 0,
            mailer: "lmtp".into(),
        };
        assert_eq!(question(&t), None);
        let c = direct(&t).unwrap();
        assert_eq!(c[0].addr, Endpoint::Unix("/run/dovecot/lmtp".into()));
        assert_eq!(c[0].relay, "/run/dovecot/lmtp");
    }

    #[test]
    fn lookup_failures_become_replies() {
        let (_d, s) = settings_with("", "");
        let t = target(Host::Mx("example.org".into()), 25);
        let fail = |a| candidates(&s, &Myself::default(), &t, a).unwrap_err();
        let null = fail(Answer::NullMx);
        assert_eq!(null.status, RecipientStatus::PermFail);
        assert!(null.reply.starts_with("556 5.1.10 "), "{}", null.reply);
        let unknown = fail(Answer::NoSuchHost);
        assert_eq!(unknown.status, RecipientStatus::PermFail);
        assert!(unknown.reply.starts_with("550 5.1.2 Host unknown"));
        let later = fail(Answer::TryAgain("SERVFAIL".into()));
        assert_eq!(later.status, RecipientStatus::TempFail);
        assert!(later.reply.starts_with("451 4.4.3 "));
    }

    #[test]
    fn never_myself() {
        let (_d, s) = settings_with("", "");
        let t = target(Host::Mx("example.org".into()), 2525);
        let me = me_on("127.0.0.1:2525");
        // I am the second exchanger: only the first is tried.
        let answer = Answer::Hosts(vec![
            x("mx1.example.org", 10, "192.0.2.2"),
            x("me.example.org", 20, "127.0.0.1"),
            x("mx3.example.org", 30, "192.0.2.3"),
        ]);
        let c = candidates(&s, &me, &t, answer).unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].addr, Endpoint::Tcp("192.0.2.2:2525".parse().unwrap()));
        // I am the best exchanger: a configuration error.
        let answer = Answer::Hosts(vec![
            x("me.example.org", 10, "127.0.0.1"),
            x("mx3.example.org", 30, "192.0.2.3"),
        ]);
        let e = candidates(&s, &me, &t, answer).unwrap_err();
        assert_eq!(e.status, RecipientStatus::PermFail);
        assert_eq!(
            e.reply,
            "553 5.3.5 example.org. config error: mail loops back to me (MX problem?)"
        );
        // By name: one of my local names.
        let answer = Answer::Hosts(vec![x("local.test", 10, "192.0.2.9")]);
        assert!(candidates(&s, &Myself::default(), &t, answer).is_err());
        // The same address on another port is someone else.
        let t = target(Host::Mx("example.org".into()), 25);
        let answer = Answer::Hosts(vec![x("mx.example.org", 10, "127.0.0.1")]);
        assert!(candidates(&s, &me, &t, answer).is_ok());
    }
}
