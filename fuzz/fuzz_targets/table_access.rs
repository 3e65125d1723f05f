//! The access map (`Connect:`, `From:`, `To:`, `TLS_Srv:`, `ClientConn:`
//! and the other tags, untagged keys, every right-hand side).
//!
//! Input: the map's text.
//!
//! Asserts, beyond "does not panic": every lookup the daemon makes
//! answers for any map (hosts, IPv4 and IPv6 clients, addresses,
//! domains); an `ERROR:` right-hand side that parses has a 4xx or 5xx
//! code, and written back as `ERROR:[x.y.z:]code text` parses to the
//! same action.
#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use postern_config::{AccessAction, AccessMap};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for line in text.lines() {
        let value = line
            .split_once(char::is_whitespace)
            .map_or(line, |(_, v)| v);
        if let Some(action) = AccessAction::parse(value) {
            action_round_trip(&action);
        }
    }
    let Ok(map) = AccessMap::parse_str(&text) else {
        return;
    };
    let hosts = [None, Some("mail.example.com"), Some("example.com")];
    let clients: [IpAddr; 4] = [
        "192.0.2.7".parse().unwrap(),
        "127.0.0.1".parse().unwrap(),
        "2001:db8::7".parse().unwrap(),
        "::ffff:192.0.2.7".parse().unwrap(),
    ];
    for addr in clients {
        map.client_connections(addr);
        map.client_rate(addr);
        map.connect_relays(addr);
        for host in hosts {
            map.tls_requirement(host, addr);
            map.try_tls(host, addr);
            map.greet_pause(host, addr);
            map.connect_action(host, addr);
        }
    }
    for (address, domain) in [
        ("user@example.com", "example.com"),
        ("<>", ""),
        ("a@b.c", "b.c"),
    ] {
        map.to_action(address, domain);
        map.to_relays(address, domain);
        map.from_action(address, Some(domain));
        map.from_action(address, None);
    }
    for key in text.lines().filter_map(|l| l.split_whitespace().next()) {
        map.other(key);
    }
});

fn action_round_trip(action: &AccessAction) {
    let AccessAction::Error {
        code,
        enhanced,
        text,
    } = action
    else {
        return;
    };
    assert!((400..600).contains(code), "code {code}");
    let written = match enhanced {
        Some(e) => format!("ERROR:{e}:{code} {text}"),
        None => format!("ERROR:{code} {text}"),
    };
    assert_eq!(
        AccessAction::parse(&written).as_ref(),
        Some(action),
        "{written:?}"
    );
}
