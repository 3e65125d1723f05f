//! Who gets a front: the limits master applies to an accepted connection
//! before it costs a process, and the refusal that answers the others.
//!
//! In sendmail's order: MaxDaemonChildren (sendmail stops accepting; we
//! accept, answer and hang up, so the client learns why), then the access
//! map's `ClientRate:` (connections within ConnectionRateWindowSize,
//! sendmail's `FEATURE(ratecontrol)`), then `ClientConn:` (connections
//! held at once, `FEATURE(conncontrol)`). Both access-map limits answer
//! as sendmail's check_relay ruleset does with `terminate`, `421 4.3.2
//! …` and close (its default, 452 for every command of a session kept
//! open, would spend a process on a client we want gone), and log
//! check_relay's `ruleset=check_relay, arg1=…, arg2=…, relay=…, reject=…`.
//!
//! Refusing here, in master, keeps a flooding client from costing more
//! than an accept and one short write.

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::Master;
use crate::{log, policy};

/// Connections one client (outside the relay networks) may hold at once
/// unless the access map's `ClientConn:` says otherwise.
pub const DEFAULT_CLIENT_CONNECTIONS: u32 = 20;

/// Clients whose recent connections are remembered for `ClientRate:`;
/// past this, new clients go uncounted until old ones age out, so that a
/// flood from many addresses cannot grow master without bound.
const MAX_TRACKED_CLIENTS: usize = 65_536;

/// A connection master answers and closes itself.
pub struct Refusal {
    /// The reply, without its line end.
    pub reply: String,
    /// The log line, and its LogLevel.
    pub log: String,
    level: log::Level,
}

impl Refusal {
    /// sendmail's check_relay refusal of `peer` with `reply`.
    fn check_relay(peer: &SocketAddr, reply: &str) -> Self {
        Refusal {
            reply: reply.to_string(),
            log: policy::check_relay_log(peer, reply),
            level: log::Level::Refusal,
        }
    }
}

/// Each client's connection times within the window, for `ClientRate:`.
pub struct ConnectionRates {
    window: Duration,
    recent: HashMap<IpAddr, VecDeque<Instant>>,
    tidied: Instant,
}

impl ConnectionRates {
    /// Rates over `window` (ConnectionRateWindowSize).
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            recent: HashMap::new(),
            tidied: Instant::now(),
        }
    }

    /// A new window (SIGHUP); what was counted stays.
    pub fn set_window(&mut self, window: Duration) {
        self.window = window;
    }

    /// Counts a connection from `ip` at `now` against `limit` (0: none, and
    /// the client is not tracked): true when it makes more than `limit`
    /// within the window. Refused connections count too, as in sendmail,
    /// so a client that keeps hammering stays refused.
    pub fn exceeded(&mut self, ip: IpAddr, limit: u32, now: Instant) -> bool {
        if limit == 0 {
            return false;
        }
        if !self.recent.contains_key(&ip) && self.recent.len() >= MAX_TRACKED_CLIENTS {
            self.forget_old(now);
            if self.recent.len() >= MAX_TRACKED_CLIENTS {
                return false;
            }
        }
        let window = self.window;
        let times = self.recent.entry(ip).or_default();
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= window)
        {
            times.pop_front();
        }
        times.push_back(now);
        // Knowing that the limit is passed needs no more than limit + 1.
        while times.len() > limit as usize + 1 {
            times.pop_front();
        }
        times.len() > limit as usize
    }

    /// [`forget_old`](Self::forget_old), at most once a second: master's
    /// loop calls this after every wake-up, and a busy loop wakes often.
    pub fn tidy(&mut self, now: Instant) {
        if now.duration_since(self.tidied) >= Duration::from_secs(1) {
            self.tidied = now;
            self.forget_old(now);
        }
    }

    /// Drops connections older than the window, and clients left with none.
    pub fn forget_old(&mut self, now: Instant) {
        let window = self.window;
        self.recent.retain(|_, times| {
            times.retain(|t| now.duration_since(*t) < window);
            !times.is_empty()
        });
    }
}

impl Master {
    /// MaxDaemonChildren, then the client's rate (`ClientRate:`), then its
    /// own limit (`ClientConn:`, else [`DEFAULT_CLIENT_CONNECTIONS`] for
    /// clients outside the relay networks): the refusal, if one applies.
    pub(super) fn over_a_limit(&mut self, peer: &SocketAddr) -> Option<Refusal> {
        let max = self.settings.config.max_daemon_children as usize;
        if max > 0 && self.fronts.len() >= max {
            let reply = format!(
                "421 4.3.2 {} Too many connections, try again later",
                self.settings.hostname
            );
            return Some(Refusal {
                log: format!(
                    "rejecting connection from {}: {reply}",
                    policy::client_name(peer)
                ),
                reply,
                level: log::Level::Refusal,
            });
        }
        let ip = peer.ip();
        let rate = self.settings.access.client_rate(ip).unwrap_or(0);
        if self.rates.exceeded(ip, rate, Instant::now()) {
            return Some(Refusal::check_relay(
                peer,
                "421 4.3.2 Connection rate limit exceeded.",
            ));
        }
        let per_client = self.settings.access.client_connections(ip).unwrap_or(
            if policy::may_relay(&self.settings, ip) {
                0
            } else {
                DEFAULT_CLIENT_CONNECTIONS
            },
        );
        if per_client > 0 && self.fronts.count_for(ip) >= per_client {
            return Some(Refusal::check_relay(
                peer,
                "421 4.3.2 Too many open connections.",
            ));
        }
        None
    }
}

/// Says why and hangs up. The socket is fresh, so the one short write
/// fits its buffer; master never waits on a client.
/// Answers a client no front could be started for with
/// [`policy::no_session_reply`] and closes.
pub fn unavailable(stream: mio::net::TcpStream, hostname: &str) {
    let mut stream = std::net::TcpStream::from(std::os::fd::OwnedFd::from(stream));
    let _ = stream.write_all(format!("{}\r\n", policy::no_session_reply(hostname)).as_bytes());
}

pub fn refuse(stream: mio::net::TcpStream, refusal: &Refusal) {
    let mut stream = std::net::TcpStream::from(std::os::fd::OwnedFd::from(stream));
    let _ = stream.write_all(format!("{}\r\n", refusal.reply).as_bytes());
    log::notice(refusal.level, &refusal.log);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn more_than_the_limit_within_the_window_is_refused() {
        let mut rates = ConnectionRates::new(Duration::from_secs(60));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert!(!rates.exceeded(ip, 3, at(0)));
        assert!(!rates.exceeded(ip, 3, at(1)));
        assert!(!rates.exceeded(ip, 3, at(2)));
        assert!(rates.exceeded(ip, 3, at(3)), "the fourth in a minute");
        assert!(!rates.exceeded(other, 3, at(3)), "counted per client");
        // Refused ones count: still over while it keeps trying.
        assert!(rates.exceeded(ip, 3, at(30)));
        // A minute after the burst only the later ones remain.
        assert!(!rates.exceeded(ip, 3, at(62)));
        // No limit: not counted, not remembered.
        assert!(!rates.exceeded(other, 0, at(62)));
        rates.forget_old(at(200));
        assert!(rates.recent.is_empty());
    }

    #[test]
    fn check_relay_lines_name_the_client_as_sendmail_does() {
        let r = Refusal::check_relay(&"192.0.2.7:4000".parse().unwrap(), "421 4.3.2 X.");
        assert_eq!(
            r.log,
            "ruleset=check_relay, arg1=[192.0.2.7], arg2=192.0.2.7, relay=[192.0.2.7], reject=421 4.3.2 X."
        );
        let r = Refusal::check_relay(&"127.0.0.1:4000".parse().unwrap(), "421 4.3.2 X.");
        assert_eq!(
            r.log,
            "ruleset=check_relay, arg1=localhost, arg2=127.0.0.1, relay=localhost [127.0.0.1], reject=421 4.3.2 X."
        );
    }
}
