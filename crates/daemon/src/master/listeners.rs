//! The SMTP listeners (DaemonPortOptions) and ConnectionRateThrottle.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Poll, Token};
use postern_config::{DaemonPort, Family};

use crate::settings::Settings;

/// The bound listeners, in configuration order.
pub struct Listeners {
    list: Vec<(TcpListener, DaemonPort)>,
}

impl Listeners {
    /// Binds every configured listener and registers it with `poll`.
    pub fn bind(settings: &Settings, poll: &Poll, first_token: usize) -> std::io::Result<Self> {
        let mut list = Vec::new();
        for (i, port) in settings.config.daemons.iter().enumerate() {
            let ip = port.addr.unwrap_or(match port.family {
                Family::Inet6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                _ => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            });
            let addr = SocketAddr::new(ip, port.port);
            let std_listener = std::net::TcpListener::bind(addr).map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!(
                        "cannot bind {addr} ({}): {e}",
                        port.name.as_deref().unwrap_or("MTA")
                    ),
                )
            })?;
            std_listener.set_nonblocking(true)?;
            let mut listener = TcpListener::from_std(std_listener);
            poll.registry()
                .register(&mut listener, Token(first_token + i), Interest::READABLE)?;
            list.push((listener, port.clone()));
        }
        Ok(Self { list })
    }

    /// `127.0.0.1:2525 (MTA), …` for the start-up log line.
    pub fn describe(&self) -> String {
        self.list
            .iter()
            .map(|(l, p)| match l.local_addr() {
                Ok(a) => format!("{a} ({})", p.name.as_deref().unwrap_or("MTA")),
                Err(_) => p.name.clone().unwrap_or_default(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// How many listeners there are.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Accepts one connection on listener `i`, if one is waiting.
    pub fn accept(&self, i: usize) -> Option<std::io::Result<(TcpStream, SocketAddr)>> {
        let (listener, _) = self.list.get(i)?;
        match listener.accept() {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => None,
            other => Some(other),
        }
    }

    /// The Name= of listener `i`.
    pub fn name(&self, i: usize) -> &str {
        self.list
            .get(i)
            .and_then(|(_, p)| p.name.as_deref())
            .unwrap_or("MTA")
    }

    /// Stops listening (SIGTERM).
    pub fn close(&mut self, poll: &Poll) {
        for (mut listener, _) in self.list.drain(..) {
            let _ = poll.registry().deregister(&mut listener);
        }
    }
}

/// sendmail's ConnectionRateThrottle: at most N connections are accepted
/// per second; the rest wait in the listen backlog until the next second.
pub struct Throttle {
    per_second: u32,
    window: Instant,
    count: u32,
    blocked: bool,
}

impl Throttle {
    /// A throttle of `per_second` (0: off).
    pub fn new(per_second: u32) -> Self {
        Self {
            per_second,
            window: Instant::now(),
            count: 0,
            blocked: false,
        }
    }

    /// May one more connection be accepted now? (Asks only: a token is
    /// spent by [`Throttle::count`] once a connection was really taken.)
    pub fn has_room(&mut self) -> bool {
        if self.per_second == 0 {
            return true;
        }
        if self.window.elapsed() >= Duration::from_secs(1) {
            self.window = Instant::now();
            self.count = 0;
        }
        if self.count < self.per_second {
            true
        } else {
            self.blocked = true;
            false
        }
    }

    /// Counts an accepted connection.
    pub fn count(&mut self) {
        self.count += 1;
    }

    /// A new rate (SIGHUP), keeping the current second's count and
    /// whether accepting waits, so a waiting backlog is not forgotten.
    pub fn set_rate(&mut self, per_second: u32) {
        self.per_second = per_second;
    }

    /// True while accepting waits for the next second.
    pub fn is_blocked(&self) -> bool {
        self.blocked
    }

    /// True (once) when the blocked second is over.
    pub fn unblock_if_due(&mut self) -> bool {
        if self.blocked && self.window.elapsed() >= Duration::from_secs(1) {
            self.blocked = false;
            return true;
        }
        false
    }
}
