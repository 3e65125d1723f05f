//! master's account of the fronts: one entry per connection handed to a
//! front factory, from the hand-over until the factory (or, for the
//! orphans of a factory that died, master itself) reports its exit. This
//! is what MaxDaemonChildren and the per-client limit count, and what a
//! drain signals.

use std::collections::HashMap;
use std::net::IpAddr;

use mio::Token;
use nix::unistd::Pid;

/// One connection being served.
#[derive(Debug)]
pub struct Front {
    /// The client's address.
    pub ip: IpAddr,
    /// The factory that forks (or forked) it.
    pub factory: Token,
    /// Its pid, once the factory reported it.
    pub pid: Option<Pid>,
}

/// The fronts, by connection number.
#[derive(Debug, Default)]
pub struct Fronts {
    by_connection: HashMap<u64, Front>,
    by_pid: HashMap<Pid, u64>,
    per_ip: HashMap<IpAddr, u32>,
    /// Connections handed to a factory that has not reported their front.
    unstarted: usize,
}

impl Fronts {
    /// How many fronts there are (MaxDaemonChildren counts these).
    pub fn len(&self) -> usize {
        self.by_connection.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.by_connection.is_empty()
    }

    /// How many connections a factory has been handed and not yet
    /// reported a front for: its queue.
    pub fn unstarted(&self) -> usize {
        self.unstarted
    }

    /// How many fronts serve clients at `ip`.
    pub fn count_for(&self, ip: IpAddr) -> u32 {
        self.per_ip.get(&ip).copied().unwrap_or(0)
    }

    /// A connection was handed to `factory`.
    pub fn add(&mut self, connection: u64, ip: IpAddr, factory: Token) {
        *self.per_ip.entry(ip).or_default() += 1;
        self.unstarted += 1;
        self.by_connection.insert(
            connection,
            Front {
                ip,
                factory,
                pid: None,
            },
        );
    }

    /// The factory forked `pid` for `connection`.
    pub fn started(&mut self, connection: u64, pid: Pid) {
        if let Some(front) = self.by_connection.get_mut(&connection) {
            if front.pid.replace(pid).is_none() {
                self.unstarted -= 1;
            }
            self.by_pid.insert(pid, connection);
        }
    }

    /// The connection is over (or never got a front).
    pub fn remove(&mut self, connection: u64) -> Option<Front> {
        let front = self.by_connection.remove(&connection)?;
        match front.pid {
            Some(pid) => {
                self.by_pid.remove(&pid);
            }
            None => self.unstarted -= 1,
        }
        if let Some(n) = self.per_ip.get_mut(&front.ip) {
            *n -= 1;
            if *n == 0 {
                self.per_ip.remove(&front.ip);
            }
        }
        Some(front)
    }

    /// The connection a front's pid serves.
    pub fn connection_of(&self, pid: Pid) -> Option<u64> {
        self.by_pid.get(&pid).copied()
    }

    /// A factory died: connections it never reported a front for are
    /// gone with it (their fronts, if forked, are now master's children
    /// and are reaped by pid).
    pub fn forget_unstarted(&mut self, factory: Token) {
        let lost: Vec<u64> = self
            .by_connection
            .iter()
            .filter(|(_, f)| f.factory == factory && f.pid.is_none())
            .map(|(c, _)| *c)
            .collect();
        for connection in lost {
            self.remove(connection);
        }
    }

    /// A factory died: its fronts that are gone without their exit having
    /// been reported (the report was lost with the factory) are forgotten.
    /// Fronts still alive were reparented to master and are reaped by pid.
    pub fn forget_gone(&mut self, factory: Token) {
        let gone: Vec<u64> = self
            .by_connection
            .iter()
            .filter(|(_, f)| f.factory == factory)
            .filter(|(_, f)| {
                f.pid.is_some_and(|pid| {
                    nix::sys::signal::kill(pid, None) == Err(nix::errno::Errno::ESRCH)
                })
            })
            .map(|(c, _)| *c)
            .collect();
        for connection in gone {
            self.remove(connection);
        }
    }

    /// The pids of every front that has one.
    pub fn pids(&self) -> Vec<Pid> {
        self.by_pid.keys().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_follow_connections() {
        let mut f = Fronts::default();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        f.add(1, a, Token(7));
        f.add(2, a, Token(7));
        f.add(3, b, Token(8));
        assert_eq!((f.len(), f.count_for(a), f.count_for(b)), (3, 2, 1));
        assert_eq!(f.unstarted(), 3);
        f.started(1, Pid::from_raw(100));
        assert_eq!(f.connection_of(Pid::from_raw(100)), Some(1));
        assert_eq!(f.unstarted(), 2);
        f.remove(1);
        assert_eq!((f.len(), f.count_for(a), f.unstarted()), (2, 1, 2));
        assert_eq!(f.connection_of(Pid::from_raw(100)), None);
        f.forget_unstarted(Token(7));
        assert_eq!((f.len(), f.count_for(a), f.count_for(b)), (1, 0, 1));
        assert_eq!(f.unstarted(), 1);
        f.remove(3);
        assert_eq!((f.len(), f.unstarted()), (0, 0));
    }
}
