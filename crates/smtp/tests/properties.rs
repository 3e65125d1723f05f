//! Properties that must hold for any input: nothing the network can send
//! makes the protocol code panic, and DATA framing round-trips.

mod harness;

use harness::{seed_config, seed_policy, Harness};
use postern_smtp::client::DotStuffer;
use postern_smtp::data::DataReceiver;
use postern_smtp::params::{parse_mail_params, parse_rcpt_params, ParamPolicy};
use postern_smtp::{address, command, xtext};
use proptest::prelude::*;

/// Bytes biased towards what SMTP parsers care about.
fn smtp_bytes() -> impl Strategy<Value = Vec<u8>> {
    let pieces = prop_oneof![
        Just(b"\r\n".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b".".to_vec()),
        Just(b"<".to_vec()),
        Just(b">".to_vec()),
        Just(b"\"".to_vec()),
        Just(b"@".to_vec()),
        Just(b"EHLO x\r\n".to_vec()),
        Just(b"MAIL FROM:".to_vec()),
        Just(b"RCPT TO:".to_vec()),
        Just(b"DATA\r\n".to_vec()),
        Just(b"STARTTLS\r\n".to_vec()),
        Just(b"AUTH CRAM-MD5\r\n".to_vec()),
        Just(b"VRFY <alana>\r\n".to_vec()),
        Just(b" SIZE=".to_vec()),
        Just(b" BY=".to_vec()),
        Just(b" NOTIFY=".to_vec()),
        Just(b"\0".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..8),
    ];
    proptest::collection::vec(pieces, 0..40).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn the_server_session_never_panics(input in smtp_bytes(), cuts in proptest::collection::vec(any::<usize>(), 0..6)) {
        let mut cfg = seed_config();
        cfg.starttls = true;
        cfg.max_message_size = 64;
        cfg.max_recipients = 3;
        let mut h = Harness::new(cfg, seed_policy());
        h.drain();
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
        points.push(0);
        points.push(input.len());
        points.sort_unstable();
        for w in points.windows(2) {
            h.session.receive(&input[w[0]..w[1]]);
            h.drain();
        }
        if h.starttls && !h.session.is_closed() {
            let _ = h.session.tls_started(postern_smtp::TlsInfo {
                version: "TLSv1.3".into(),
                cipher: "x".into(),
                cipher_bits: 1,
                alg_bits: 1,
                verify: postern_smtp::Verify::No,
                cert_subject: None,
                cert_issuer: None,
            });
            h.session.receive(&input);
            h.drain();
        }
    }

    #[test]
    fn argument_parsers_never_panic(text in "\\PC{0,80}", raw in ".{0,80}") {
        let policy = ParamPolicy { max_size: 100, dsn: true, deliver_by_min: Some(10) };
        for s in [&text, &raw] {
            let _ = address::parse_reverse_path(s);
            let _ = address::parse_forward_path(s);
            let _ = parse_mail_params(s, &policy);
            let _ = parse_rcpt_params(s, &policy);
            let _ = command::split_command(s);
            let _ = command::split_path_arg(s, "FROM:");
            let _ = xtext::decode(s);
        }
    }

    #[test]
    fn accepted_addresses_carry_no_control_characters(text in "<[ -~\\t\\r\\n]{0,40}>") {
        if let Ok(m) = address::parse_forward_path(&text) {
            let shown = m.to_string();
            prop_assert!(shown.bytes().all(|b| (32..127).contains(&b)), "{shown:?}");
        }
    }

    #[test]
    fn dot_stuffing_round_trips(lines in proptest::collection::vec("[.a-z \\t]{0,12}", 0..12), cut in any::<usize>()) {
        // A canonical message: CRLF line ends, any number of leading dots.
        let body: Vec<u8> = lines.iter().flat_map(|l| format!("{l}\r\n").into_bytes()).collect();
        let wire = DotStuffer::encode_all(&body);
        let cut = cut % (wire.len() + 1);
        let mut rx = DataReceiver::new(0);
        let mut out = Vec::new();
        let first = rx.feed(&wire[..cut], &mut out);
        let done = first.done || rx.feed(&wire[cut..], &mut out).done;
        prop_assert!(done);
        prop_assert_eq!(out, body);
        let s = rx.summary();
        prop_assert!(!s.bare_lf && !s.bare_cr);
    }

    #[test]
    fn the_receiver_never_ends_early_on_stuffed_output(body in proptest::collection::vec(any::<u8>(), 0..200)) {
        // Whatever the input, the stuffed form ends exactly at its terminator.
        let wire = DotStuffer::encode_all(&body);
        let mut rx = DataReceiver::new(0);
        let mut out = Vec::new();
        let fed = rx.feed(&wire, &mut out);
        prop_assert!(fed.done);
        prop_assert_eq!(fed.consumed, wire.len());
    }
}
