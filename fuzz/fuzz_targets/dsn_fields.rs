//! The DSN fields (RFC 3461) in every form Postern reads them: NOTIFY,
//! RET, ENVID and ORCPT as `sendmail -N/-R/-V` take them, as the queue's
//! control file stores them (with DELIVERBY's BY and BODY), xtext, and
//! the enhanced status codes (RFC 3463) of a report's Status: field.
//!
//! Input: one selector byte, then the text.
//!
//! Asserts, beyond "does not panic": whatever parses is written back in
//! the same form and parses to the same value (and, for the stored
//! forms, to the same text); xtext encodes to printable ASCII only.
#![no_main]

use std::fmt::Display;
use std::str::FromStr;

use libfuzzer_sys::fuzz_target;
use postern_smtp::params::{command_line, BodyType, DeliverBy, Notify, Orcpt, Ret};
use postern_smtp::{xtext, EnhancedCode};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    match selector % 8 {
        0 => stored::<Notify>(&text),
        1 => stored::<Orcpt>(&text),
        2 => stored::<DeliverBy>(&text),
        3 => {
            if let Ok(ret) = text.parse::<Ret>() {
                assert_eq!(ret.as_str(), text);
            }
            if let Ok(body) = text.parse::<BodyType>() {
                assert_eq!(body.as_str(), text);
            }
        }
        4 => xtext_round_trip(rest),
        5 => {
            if let Some(code) = EnhancedCode::parse(&text) {
                assert_eq!(EnhancedCode::parse(&code.to_string()), Some(code));
            }
        }
        _ => command_line_forms(&text),
    }
});

/// A control file's form: text → value → the same text.
fn stored<T>(text: &str)
where
    T: FromStr + Display + PartialEq + std::fmt::Debug,
    T::Err: std::fmt::Debug,
{
    if let Ok(value) = text.parse::<T>() {
        let written = value.to_string();
        assert_eq!(written.parse::<T>().ok(), Some(value), "{written:?}");
    }
}

fn xtext_round_trip(raw: &[u8]) {
    let encoded = xtext::encode(raw);
    assert!(encoded
        .bytes()
        .all(|b| (0x21..0x7f).contains(&b) && b != b'='));
    assert_eq!(xtext::decode(&encoded).as_deref(), Ok(raw));
    if let Ok(text) = std::str::from_utf8(raw) {
        if let Ok(decoded) = xtext::decode(text) {
            assert_eq!(xtext::decode(&xtext::encode(&decoded)), Ok(decoded));
        }
    }
}

/// `sendmail -N`, `-R`, `-V`, `-B`: a value taken is written back on the
/// wire (NOTIFY=…, ENVID=xtext) and taken again the same.
fn command_line_forms(text: &str) {
    if let Some(notify) = command_line::notify(text) {
        assert_eq!(command_line::notify(&notify.to_string()), Some(notify));
    }
    if let Some(ret) = command_line::ret(text) {
        assert_eq!(command_line::ret(ret.as_str()), Some(ret));
    }
    if let Some(envid) = command_line::envid(text) {
        let wire = xtext::encode(envid.as_bytes());
        assert_eq!(command_line::envid(&wire).as_deref(), Some(envid.as_str()));
    }
    if let Some(body) = command_line::body(text) {
        assert_eq!(command_line::body(body.as_str()), Some(body));
    }
}
