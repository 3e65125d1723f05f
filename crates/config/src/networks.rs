//! `RelayNetworks` (Postern's own, m4 `confRELAY_NETWORKS`): the client
//! networks that may relay by their address, as Postfix's `mynetworks`.
//! sendmail's own answer is `relay-domains` and `Connect:` entries of the
//! access map; this option names what sendmail hard-codes (its loopback
//! rule), so that it can be widened or, empty, taken away.

use std::net::IpAddr;

/// One network: an address and a prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Network {
    /// The network's address.
    pub addr: IpAddr,
    /// Leading bits that count.
    pub prefix: u8,
}

impl Network {
    /// `192.0.2.0/24`, `[2001:db8::]/32`, `2001:db8::/32`, or one address.
    pub fn parse(text: &str) -> Result<Network, String> {
        let text = text.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr = addr.trim_start_matches('[').trim_end_matches(']');
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("\"{text}\" is not a network (192.0.2.0/24, [2001:db8::]/32)"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("\"{text}\": the prefix length must be 0 to {max}"))?,
        };
        Ok(Network { addr, prefix })
    }

    /// True when `ip` is in this network (an IPv4-mapped IPv6 address
    /// counts as its IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.addr {
            IpAddr::V4(a) => write!(f, "{a}/{}", self.prefix),
            IpAddr::V6(a) => write!(f, "[{a}]/{}", self.prefix),
        }
    }
}

/// The option's value: networks separated by commas or spaces; empty is
/// none.
pub fn parse_networks(value: &str) -> Result<Vec<Network>, String> {
    value
        .split([',', ' '])
        .filter(|s| !s.trim().is_empty())
        .map(Network::parse)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn networks_and_their_members() {
        let nets = parse_networks("127.0.0.0/8, [::1]/128 192.0.2.7").unwrap();
        assert_eq!(nets.len(), 3);
        assert!(nets[0].contains(ip("127.1.2.3")));
        assert!(!nets[0].contains(ip("128.0.0.1")));
        assert!(nets[0].contains(ip("::ffff:127.0.0.1")));
        assert!(nets[1].contains(ip("::1")));
        assert!(!nets[1].contains(ip("::2")));
        assert!(nets[2].contains(ip("192.0.2.7")) && !nets[2].contains(ip("192.0.2.8")));
        let all = Network::parse("0.0.0.0/0").unwrap();
        assert!(all.contains(ip("203.0.113.9")) && !all.contains(ip("2001:db8::1")));
        let v6 = Network::parse("2001:db8::/32").unwrap();
        assert!(v6.contains(ip("2001:db8:ffff::1")) && !v6.contains(ip("2001:db9::1")));
        assert_eq!(parse_networks("").unwrap(), []);
        assert_eq!(nets[1].to_string(), "[::1]/128");
    }

    #[test]
    fn bad_networks_are_named() {
        assert!(parse_networks("10.0.0.0/33")
            .unwrap_err()
            .contains("0 to 32"));
        assert!(parse_networks("mynet")
            .unwrap_err()
            .contains("\"mynet\" is not a network"));
    }
}
