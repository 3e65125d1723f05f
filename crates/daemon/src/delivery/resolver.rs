//! Name resolution for outbound mail, off the event loop: MX records
//! (RFC 5321 §5.1), the implicit MX, the null MX (RFC 7505), and address
//! records, asked of a DNS server by hickory-resolver in a thread of its
//! own and answered to the delivery client's loop through a channel and a
//! `mio::Waker`.
//!
//! Owns: the resolver thread and its tokio runtime, which servers are
//! asked (`NameServers`, or `/etc/resolv.conf`), the order of the mail
//! exchangers (preference, equal preferences shuffled), and turning DNS
//! outcomes into the three a mailer cares about: hosts to try, a permanent
//! failure (NXDOMAIN, a null MX, no records at all), or a temporary one
//! (SERVFAIL, a timeout). Does not own: what those mean for a recipient
//! (`destination.rs`), or connecting (`outbound.rs`).
//!
//! Answers are cached by hickory for their TTL, so a busy destination is
//! looked up once per TTL, not once per message.
//!
//! Security posture: everything in an answer is untrusted; names are only
//! used as text (`relay=`, TLS names) and addresses only to connect to.
//! Lookups are made for fully qualified names (a trailing dot), so no
//! search domain of the host ever changes where mail goes.

use std::net::{IpAddr, SocketAddr};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::config::{
    ConnectionConfig, LookupIpStrategy, NameServerConfig, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::TokioResolver;

/// One question for the resolver.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Question {
    /// Where mail for this domain goes: its MX hosts, or the domain itself.
    Mail(String),
    /// The addresses of this host only (`[mx.example]` in a route).
    Host(String),
}

/// One mail exchanger and its addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exchange {
    /// The host's name, without a trailing dot.
    pub name: String,
    /// Its MX preference (0 for a host without MX).
    pub preference: u16,
    /// Its addresses, IPv4 first.
    pub addrs: Vec<IpAddr>,
}

/// What the DNS said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Hosts to try in this order. Never empty.
    Hosts(Vec<Exchange>),
    /// `MX 0 .`: the domain accepts no mail.
    NullMx,
    /// The name does not exist, or has neither MX nor address records.
    NoSuchHost,
    /// Ask again later (SERVFAIL, a timeout, no server answering).
    TryAgain(String),
}

struct Request {
    id: u64,
    question: Question,
}

/// The handle the event loop holds: ask, then collect answers when woken.
pub struct Resolver {
    requests: tokio::sync::mpsc::UnboundedSender<Request>,
    answers: mpsc::Receiver<(u64, Answer)>,
}

/// How long one server gets for one query, and how often it is asked.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);
const ATTEMPTS: usize = 2;

impl Resolver {
    /// Starts the resolver thread. `servers` empty means the system's
    /// `/etc/resolv.conf`; `wake` is called after every answer. A system
    /// configuration that cannot be read is logged, and every lookup is
    /// then deferred with that reason: mail waits in the queue, as it
    /// would for a DNS outage.
    pub fn start(
        servers: &[SocketAddr],
        wake: impl Fn() + Send + Sync + 'static,
    ) -> std::io::Result<Resolver> {
        let resolver = build(servers).map_err(|e| {
            let why = format!("cannot configure the resolver: {e}");
            crate::log::err(&format!("delivery client: {why}"));
            why
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (requests, mut incoming) = tokio::sync::mpsc::unbounded_channel::<Request>();
        let (answer_tx, answers) = mpsc::channel();
        let wake = Arc::new(wake);
        std::thread::Builder::new()
            .name("resolver".into())
            .spawn(move || {
                runtime.block_on(async move {
                    // Ends when the loop drops its handle.
                    while let Some(request) = incoming.recv().await {
                        let resolver = resolver.clone();
                        let answer_tx = answer_tx.clone();
                        let wake = Arc::clone(&wake);
                        tokio::spawn(async move {
                            let answer = match &resolver {
                                Ok(resolver) => ask(resolver, &request.question).await,
                                Err(why) => Answer::TryAgain(why.clone()),
                            };
                            if answer_tx.send((request.id, answer)).is_ok() {
                                wake();
                            }
                        });
                    }
                });
            })?;
        Ok(Resolver { requests, answers })
    }

    /// Asks `question`; the answer comes back under `id`.
    pub fn ask(&self, id: u64, question: Question) {
        // The thread only ends when this handle is dropped.
        let _ = self.requests.send(Request { id, question });
    }

    /// The answers that arrived since the last call.
    pub fn answers(&self) -> Vec<(u64, Answer)> {
        self.answers.try_iter().collect()
    }
}

fn build(servers: &[SocketAddr]) -> Result<TokioResolver, NetError> {
    let mut builder = if servers.is_empty() {
        TokioResolver::builder_tokio()?
    } else {
        let name_servers = servers
            .iter()
            .map(|s| {
                let mut udp = ConnectionConfig::udp();
                udp.port = s.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = s.port();
                NameServerConfig::new(s.ip(), true, vec![udp, tcp])
            })
            .collect();
        TokioResolver::builder_with_config(
            ResolverConfig::from_parts(None, vec![], name_servers),
            TokioRuntimeProvider::default(),
        )
    };
    let options: &mut ResolverOpts = builder.options_mut();
    options.timeout = QUERY_TIMEOUT;
    options.attempts = ATTEMPTS;
    options.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
    // Names are asked fully qualified; /etc/hosts has no say in mail routing.
    options.ndots = 0;
    options.use_hosts_file = hickory_resolver::config::ResolveHosts::Never;
    builder.build()
}

/// The name with its trailing dot, so no search domain is tried.
fn absolute(name: &str) -> String {
    if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    }
}

fn without_dot(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

async fn ask(resolver: &TokioResolver, question: &Question) -> Answer {
    match question {
        Question::Host(host) => match addresses(resolver, host).await {
            Ok(addrs) => Answer::Hosts(vec![Exchange {
                name: without_dot(host),
                preference: 0,
                addrs,
            }]),
            Err(answer) => answer,
        },
        Question::Mail(domain) => mail_hosts(resolver, domain).await,
    }
}

/// MX first; without MX records the domain itself (the implicit MX).
async fn mail_hosts(resolver: &TokioResolver, domain: &str) -> Answer {
    let records: Vec<(u16, String)> = match resolver.lookup(absolute(domain), RecordType::MX).await
    {
        Ok(lookup) => lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::MX(mx) => Some((mx.preference, mx.exchange.to_ascii())),
                _ => None,
            })
            .collect(),
        Err(e) => match classify(&e) {
            // No MX records: the domain's own addresses.
            Outcome::NoRecords => Vec::new(),
            Outcome::NoSuchName => return Answer::NoSuchHost,
            Outcome::TryAgain => return Answer::TryAgain(e.to_string()),
        },
    };
    if records.is_empty() {
        return match addresses(resolver, domain).await {
            Ok(addrs) => Answer::Hosts(vec![Exchange {
                name: without_dot(domain),
                preference: 0,
                addrs,
            }]),
            Err(answer) => answer,
        };
    }
    let Some(records) = order_exchanges(records) else {
        return Answer::NullMx;
    };
    let mut hosts = Vec::new();
    let mut trouble = None;
    for (preference, name) in records {
        match addresses(resolver, &name).await {
            Ok(addrs) => hosts.push(Exchange {
                name: without_dot(&name),
                preference,
                addrs,
            }),
            // An exchanger that does not resolve is skipped, as sendmail
            // and Postfix do; if none resolves, a temporary reason wins.
            Err(Answer::TryAgain(why)) => trouble = Some(why),
            Err(_) => {}
        }
    }
    match (hosts.is_empty(), trouble) {
        (false, _) => Answer::Hosts(hosts),
        (true, Some(why)) => Answer::TryAgain(why),
        (true, None) => Answer::NoSuchHost,
    }
}

/// Sorts MX records by preference, shuffling equal ones (RFC 5321 §5.1);
/// `None` for a null MX (RFC 7505: a single record naming the root). A
/// root target among other records is dropped.
fn order_exchanges(mut records: Vec<(u16, String)>) -> Option<Vec<(u16, String)>> {
    if records.len() == 1 && records[0].1 == "." {
        return None;
    }
    records.retain(|(_, name)| name != ".");
    fastrand::shuffle(&mut records);
    // A stable sort keeps the shuffled order among equal preferences.
    records.sort_by_key(|(preference, _)| *preference);
    records.dedup_by(|a, b| a.1.eq_ignore_ascii_case(&b.1));
    Some(records)
}

async fn addresses(resolver: &TokioResolver, host: &str) -> Result<Vec<IpAddr>, Answer> {
    match resolver.lookup_ip(absolute(host)).await {
        Ok(lookup) => {
            let mut addrs: Vec<IpAddr> = lookup.iter().collect();
            addrs.sort_by_key(|a| a.is_ipv6());
            addrs.dedup();
            if addrs.is_empty() {
                Err(Answer::NoSuchHost)
            } else {
                Ok(addrs)
            }
        }
        Err(e) => Err(match classify(&e) {
            Outcome::NoRecords | Outcome::NoSuchName => Answer::NoSuchHost,
            Outcome::TryAgain => Answer::TryAgain(e.to_string()),
        }),
    }
}

enum Outcome {
    /// The name exists but has no record of the type asked.
    NoRecords,
    /// NXDOMAIN.
    NoSuchName,
    /// Anything else: SERVFAIL, REFUSED, a timeout, no server.
    TryAgain,
}

fn classify(e: &NetError) -> Outcome {
    match e {
        NetError::Dns(DnsError::NoRecordsFound(no))
            if no.response_code == ResponseCode::NXDomain =>
        {
            Outcome::NoSuchName
        }
        NetError::Dns(DnsError::NoRecordsFound(_)) => Outcome::NoRecords,
        _ => Outcome::TryAgain,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mx(list: &[(u16, &str)]) -> Vec<(u16, String)> {
        list.iter().map(|(p, n)| (*p, n.to_string())).collect()
    }

    #[test]
    fn exchanges_in_preference_order() {
        let ordered = order_exchanges(mx(&[(20, "b."), (10, "a."), (30, "c.")])).unwrap();
        assert_eq!(ordered, mx(&[(10, "a."), (20, "b."), (30, "c.")]));
    }

    #[test]
    fn equal_preferences_are_shuffled() {
        let input = mx(&[(10, "a."), (10, "b."), (10, "c."), (5, "first.")]);
        let mut firsts = std::collections::HashSet::new();
        for _ in 0..200 {
            let ordered = order_exchanges(input.clone()).unwrap();
            assert_eq!(ordered[0], (5, "first.".to_string()));
            firsts.insert(ordered[1].1.clone());
        }
        assert_eq!(
            firsts.len(),
            3,
            "every equal exchanger comes first sometimes"
        );
    }

    #[test]
    fn null_mx() {
        assert_eq!(order_exchanges(mx(&[(0, ".")])), None);
        assert_eq!(
            order_exchanges(mx(&[(0, "."), (10, "mx.")])),
            Some(mx(&[(10, "mx.")]))
        );
    }
}
