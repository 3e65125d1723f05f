//! A client host of its own, for tests that need a peer outside loopback:
//! a network namespace joined to this one by a veth pair, on a private
//! /30 (`10.231.x.y`). The daemon listens on the host side's address;
//! commands run inside the namespace (`ip netns exec`) reach it from the
//! namespace side's address, which is no loopback address. No traffic
//! leaves the machine. Needs root (and iproute2); removed on Drop.

use std::net::Ipv4Addr;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

/// One namespace and its link.
#[derive(Debug)]
pub struct NetNs {
    name: String,
    host_ip: Ipv4Addr,
    ns_ip: Ipv4Addr,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run ip: {e}"));
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl NetNs {
    /// Creates the namespace and the link; both ends are up.
    pub fn create() -> NetNs {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        // A /30 per namespace: 10.231.<process>.<4 × call>, so the tests
        // of one process (which run at once) never share one.
        let third = (pid % 250 + 1) as u8;
        let fourth = (n % 63 * 4) as u8;
        let host_ip = Ipv4Addr::new(10, 231, third, fourth + 1);
        let ns_ip = Ipv4Addr::new(10, 231, third, fourth + 2);
        let name = format!("pt{pid}n{n}");
        let (host_if, ns_if) = (format!("vh{pid}n{n}"), format!("vn{pid}n{n}"));
        assert!(host_if.len() <= 15, "interface name too long: {host_if}");
        ip(&["netns", "add", &name]);
        let ns = NetNs {
            name,
            host_ip,
            ns_ip,
        };
        ip(&[
            "link", "add", &host_if, "type", "veth", "peer", "name", &ns_if,
        ]);
        ip(&["link", "set", &ns_if, "netns", &ns.name]);
        ip(&["addr", "add", &format!("{host_ip}/30"), "dev", &host_if]);
        ip(&["link", "set", &host_if, "up"]);
        let inside = |args: &[&str]| {
            let mut all = vec!["netns", "exec", &ns.name, "ip"];
            all.extend_from_slice(args);
            ip(&all);
        };
        inside(&["addr", "add", &format!("{ns_ip}/30"), "dev", &ns_if]);
        inside(&["link", "set", &ns_if, "up"]);
        inside(&["link", "set", "lo", "up"]);
        ns
    }

    /// This side's address (where the daemon listens).
    pub fn host_ip(&self) -> Ipv4Addr {
        self.host_ip
    }

    /// The namespace's address (where its clients come from).
    pub fn ns_ip(&self) -> Ipv4Addr {
        self.ns_ip
    }

    /// `program args…`, run inside the namespace; panics if it cannot be
    /// started.
    pub fn run(&self, program: &str, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name, program])
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program} in {}: {e}", self.name))
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        // Deleting the namespace deletes its end of the veth pair, and
        // with it ours.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}
