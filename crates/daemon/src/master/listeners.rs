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
        let backlog = settings.config.listen_queue_size;
        for port in &settings.config.daemons {
            list.push((bind_one(port, backlog)?, port.clone()));
        }
        let mut listeners = Self { list };
        listeners.register(poll, first_token)?;
        Ok(listeners)
    }

    /// Changes the listeners to `settings`' DaemonPortOptions (SIGHUP): an
    /// address that stays keeps its socket, so no connection is refused
    /// while the change is made; new ones are bound first, and if one
    /// cannot be, nothing changes. Sessions in progress have sockets of
    /// their own and are not touched. True when anything changed.
    pub fn reconfigure(
        &mut self,
        settings: &Settings,
        poll: &Poll,
        first_token: usize,
    ) -> std::io::Result<bool> {
        let wanted = &settings.config.daemons;
        let backlog = settings.config.listen_queue_size;
        // A changed ListenQueueSize applies to the sockets kept, too.
        for (listener, _) in &self.list {
            set_backlog(listener, backlog)?;
        }
        let unchanged = wanted.len() == self.list.len()
            && wanted.iter().zip(&self.list).all(|(w, (_, p))| w == p);
        if unchanged {
            return Ok(false);
        }
        // Bind what is new before anything is given up.
        let mut fresh = Vec::new();
        for port in wanted {
            if self.position(bind_addr(port)).is_none() {
                fresh.push((bind_addr(port), bind_one(port, backlog)?));
            }
        }
        let mut old = std::mem::take(&mut self.list);
        for port in wanted {
            let addr = bind_addr(port);
            let listener = match old.iter().position(|(_, p)| bind_addr(p) == addr) {
                Some(i) => old.swap_remove(i).0,
                None => {
                    let i = fresh
                        .iter()
                        .position(|(a, _)| *a == addr)
                        .expect("bound above");
                    fresh.swap_remove(i).1
                }
            };
            self.list.push((listener, port.clone()));
        }
        for (mut gone, _) in old {
            let _ = poll.registry().deregister(&mut gone);
        }
        self.register(poll, first_token)?;
        Ok(true)
    }

    /// (Re)registers every listener under its index's token.
    fn register(&mut self, poll: &Poll, first_token: usize) -> std::io::Result<()> {
        for (i, (listener, _)) in self.list.iter_mut().enumerate() {
            let token = Token(first_token + i);
            // A kept listener is registered already (under its old index).
            if poll
                .registry()
                .reregister(listener, token, Interest::READABLE)
                .is_err()
            {
                poll.registry()
                    .register(listener, token, Interest::READABLE)?;
            }
        }
        Ok(())
    }

    /// The index of the listener bound to `addr`.
    fn position(&self, addr: SocketAddr) -> Option<usize> {
        self.list.iter().position(|(_, p)| bind_addr(p) == addr)
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

/// Where a DaemonPortOptions entry listens.
fn bind_addr(port: &DaemonPort) -> SocketAddr {
    let ip = port.addr.unwrap_or(match port.family {
        Family::Inet6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        _ => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    });
    SocketAddr::new(ip, port.port)
}

/// A non-blocking listener for `port` with a listen queue of `backlog`.
fn bind_one(port: &DaemonPort, backlog: u32) -> std::io::Result<TcpListener> {
    let addr = bind_addr(port);
    let listener = std::net::TcpListener::bind(addr).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!(
                "cannot bind {addr} ({}): {e}",
                port.name.as_deref().unwrap_or("MTA")
            ),
        )
    })?;
    listener.set_nonblocking(true)?;
    set_backlog(&listener, backlog)?;
    Ok(TcpListener::from_std(listener))
}

/// ListenQueueSize: `listen(2)` again with it (Linux changes the queue of
/// a listening socket so). The standard library's 128 overflows in a
/// burst, and a client whose SYN is dropped retries only a second later.
/// The kernel caps it at `net.core.somaxconn`.
fn set_backlog(listener: &impl std::os::fd::AsFd, backlog: u32) -> std::io::Result<()> {
    let most = nix::sys::socket::Backlog::MAXCONN;
    let wanted = i32::try_from(backlog).unwrap_or(i32::MAX).max(1);
    let backlog = nix::sys::socket::Backlog::new(wanted).unwrap_or(most);
    nix::sys::socket::listen(listener, backlog).map_err(std::io::Error::from)
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
