//! Free TCP ports on 127.0.0.1, chosen by the kernel.
//!
//! A port found this way is free when we look and may be taken before the
//! daemon binds it (by another test's outgoing connection, for example). The
//! window is a few milliseconds and Linux hands out ephemeral ports in a
//! rotating order, so in practice it does not happen; where the kit can bind
//! the socket itself (the [`Sink`](crate::Sink)) it keeps the listener
//! instead of asking for a port.

use std::net::{Ipv4Addr, TcpListener};

/// One free port on 127.0.0.1.
pub fn free_port() -> u16 {
    free_ports(1)[0]
}

/// `n` distinct free ports on 127.0.0.1.
pub fn free_ports(n: usize) -> Vec<u16> {
    // Every listener stays open until all are bound, so the kernel cannot
    // hand out the same port twice; they all close when `listeners` drops.
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| {
            TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .unwrap_or_else(|e| panic!("free_ports: cannot bind 127.0.0.1:0: {e}"))
        })
        .collect();
    listeners
        .iter()
        .map(|l| {
            l.local_addr()
                .expect("bound listener has an address")
                .port()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn free_ports_are_distinct_and_bindable() {
        let ports = free_ports(16);
        assert_eq!(ports.iter().collect::<HashSet<_>>().len(), 16);
        assert!(ports.iter().all(|&p| p != 0));
        let port = free_port();
        TcpListener::bind((Ipv4Addr::LOCALHOST, port)).expect("free port is bindable");
    }
}
