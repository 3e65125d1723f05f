//! The SASL side of the passwd-file backend: base64 as SMTP clients send
//! it, and the PLAIN (RFC 4616) and LOGIN exchanges as pure state
//! machines. Bytes in, "ask again", "check these credentials" or "refuse"
//! out; no file, no clock, no hash (the caller verifies).
//!
//! The Dovecot backend uses only the base64 helpers: Dovecot runs the
//! mechanisms itself.

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;

/// Longest base64 text accepted from a client: a SASL message of a few
/// hundred bytes is usual, and an SMTP line is at most 12 288 bytes in
/// RFC 4954's own limit for AUTH.
const MAX_BASE64: usize = 12_288;

/// Standard alphabet, padding optional: some clients leave out the `=`.
/// Non-canonical trailing bits are still refused (the engine's default).
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Decodes a client's base64 (`=` alone is the empty response of RFC
/// 4954's initial-response); `None` if it is not base64 or too long.
pub(crate) fn decode(text: &str) -> Option<Vec<u8>> {
    if text.len() > MAX_BASE64 {
        return None;
    }
    if text == "=" {
        return Some(Vec::new());
    }
    LENIENT.decode(text).ok()
}

/// Encodes as SMTP's 334 lines carry it: standard alphabet, padded.
pub(crate) fn encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The mechanisms the passwd-file backend runs, both plaintext.
pub(crate) const MECHANISMS: [&str; 2] = ["PLAIN", "LOGIN"];

/// Where an open exchange stands: what its next client line is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Exchange {
    /// PLAIN without an initial response: the whole message comes next.
    Plain,
    /// LOGIN: the user name comes next.
    LoginUser,
    /// LOGIN: the password for `user` comes next.
    LoginPassword { user: String },
}

/// What to do after a client line.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// Send this base64 challenge and keep the exchange in this state.
    Challenge(Exchange, String),
    /// The credentials are complete: verify them.
    Verify { user: String, password: Vec<u8> },
    /// Not base64, or not the mechanism's format: 501.
    Malformed,
    /// A well-formed request this backend refuses: 535.
    Refused(&'static str),
}

/// Starts `mechanism` (any case) with the client's initial response.
pub(crate) fn start(mechanism: &str, initial: Option<&str>) -> Next {
    let exchange = if mechanism.eq_ignore_ascii_case("PLAIN") {
        Exchange::Plain
    } else if mechanism.eq_ignore_ascii_case("LOGIN") {
        Exchange::LoginUser
    } else {
        return Next::Refused("mechanism not offered");
    };
    match initial {
        // PLAIN's first challenge is empty (RFC 4616); LOGIN asks for
        // the user name first.
        None => challenge(exchange),
        Some(text) => respond(exchange, text),
    }
}

/// Feeds the client's base64 line to an exchange in state `exchange`.
pub(crate) fn respond(exchange: Exchange, response: &str) -> Next {
    let Some(bytes) = decode(response) else {
        return Next::Malformed;
    };
    match exchange {
        Exchange::Plain => plain(&bytes),
        Exchange::LoginUser => match String::from_utf8(bytes) {
            Ok(user) => challenge(Exchange::LoginPassword { user }),
            Err(_) => Next::Malformed,
        },
        Exchange::LoginPassword { user } => Next::Verify {
            user,
            password: bytes,
        },
    }
}

/// The challenge that asks for what `exchange` waits for. LOGIN has no
/// specification; every client and server uses these two prompts.
fn challenge(exchange: Exchange) -> Next {
    let text = match &exchange {
        Exchange::Plain => String::new(),
        Exchange::LoginUser => encode(b"Username:"),
        Exchange::LoginPassword { .. } => encode(b"Password:"),
    };
    Next::Challenge(exchange, text)
}

/// RFC 4616's message: `[authzid] NUL authcid NUL passwd`. Acting for
/// another user (an authzid that is not the authcid) is refused: a
/// passwd-file has no notion of who may act for whom.
fn plain(message: &[u8]) -> Next {
    let mut parts = message.splitn(3, |&b| b == 0);
    let (Some(authzid), Some(authcid), Some(password)) = (parts.next(), parts.next(), parts.next())
    else {
        return Next::Malformed;
    };
    // The password may not hold NUL either (RFC 4616 §2).
    if password.contains(&0) || authcid.is_empty() {
        return Next::Malformed;
    }
    let (Ok(authzid), Ok(authcid)) = (std::str::from_utf8(authzid), std::str::from_utf8(authcid))
    else {
        return Next::Malformed;
    };
    if !authzid.is_empty() && authzid != authcid {
        return Next::Refused("authorization identity differs from the authentication identity");
    }
    Next::Verify {
        user: authcid.to_string(),
        password: password.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(text: &[u8]) -> String {
        encode(text)
    }

    fn verify(user: &str, password: &str) -> Next {
        Next::Verify {
            user: user.into(),
            password: password.as_bytes().to_vec(),
        }
    }

    #[test]
    fn base64_accepts_missing_padding_and_the_lone_equals_sign() {
        assert_eq!(decode("YWI="), Some(b"ab".to_vec()));
        assert_eq!(decode("YWI"), Some(b"ab".to_vec()));
        assert_eq!(decode("="), Some(Vec::new()));
        assert_eq!(decode(""), Some(Vec::new()));
    }

    #[test]
    fn base64_refuses_what_is_not_base64() {
        for bad in ["*", "YW I=", "YWI=\t", "Y", "YWJj\r", "!!!!", "YW==YW=="] {
            assert_eq!(decode(bad), None, "{bad:?}");
        }
        assert_eq!(decode(&"A".repeat(MAX_BASE64 + 4)), None);
    }

    #[test]
    fn plain_with_initial_response() {
        let initial = b64(b"\0alice\0secret");
        assert_eq!(start("PLAIN", Some(&initial)), verify("alice", "secret"));
        assert_eq!(start("plain", Some(&initial)), verify("alice", "secret"));
    }

    #[test]
    fn plain_without_initial_response_gets_an_empty_challenge() {
        let Next::Challenge(state, text) = start("PLAIN", None) else {
            panic!("no challenge")
        };
        assert_eq!(text, "");
        let message = b64(b"alice\0alice\0secret");
        assert_eq!(respond(state, &message), verify("alice", "secret"));
    }

    #[test]
    fn plain_refuses_another_authorization_identity() {
        let initial = b64(b"root\0alice\0secret");
        assert!(matches!(start("PLAIN", Some(&initial)), Next::Refused(_)));
    }

    #[test]
    fn plain_message_in_the_wrong_format_is_malformed() {
        for bad in [
            &b"alice\0secret"[..],
            b"",
            b"\0\0secret",
            b"\0alice\0sec\0ret",
            b"\0\xff\xfe\0secret",
        ] {
            assert_eq!(start("PLAIN", Some(&b64(bad))), Next::Malformed, "{bad:?}");
        }
        // An empty initial response ("=") is an empty message: malformed.
        assert_eq!(start("PLAIN", Some("=")), Next::Malformed);
        assert_eq!(start("PLAIN", Some("not base64!")), Next::Malformed);
    }

    #[test]
    fn login_asks_for_user_then_password() {
        let Next::Challenge(state, text) = start("LOGIN", None) else {
            panic!("no challenge")
        };
        assert_eq!(text, "VXNlcm5hbWU6"); // "Username:"
        let Next::Challenge(state, text) = respond(state, &b64(b"alice")) else {
            panic!("no password challenge")
        };
        assert_eq!(text, "UGFzc3dvcmQ6"); // "Password:"
        assert_eq!(respond(state, &b64(b"secret")), verify("alice", "secret"));
    }

    #[test]
    fn login_takes_the_user_name_as_initial_response() {
        let Next::Challenge(state, text) = start("LOGIN", Some(&b64(b"alice"))) else {
            panic!("no challenge")
        };
        assert_eq!(text, b64(b"Password:"));
        assert_eq!(
            state,
            Exchange::LoginPassword {
                user: "alice".into()
            }
        );
    }

    #[test]
    fn login_with_bad_base64_is_malformed() {
        assert_eq!(respond(Exchange::LoginUser, "%%"), Next::Malformed);
        assert_eq!(respond(Exchange::LoginUser, &b64(b"\xff")), Next::Malformed);
        let state = Exchange::LoginPassword { user: "a".into() };
        assert_eq!(respond(state, "*"), Next::Malformed);
    }

    #[test]
    fn other_mechanisms_are_refused() {
        assert_eq!(
            start("CRAM-MD5", None),
            Next::Refused("mechanism not offered")
        );
        assert_eq!(
            start("PLAIN\tx", None),
            Next::Refused("mechanism not offered")
        );
    }

    proptest::proptest! {
        /// No client line makes an exchange panic, and what PLAIN accepts
        /// is what was encoded.
        #[test]
        fn any_client_input_is_handled(
            text in ".{0,64}",
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
        ) {
            for mech in ["PLAIN", "LOGIN", "X"] {
                let _ = start(mech, Some(&text));
                let _ = start(mech, Some(&b64(&bytes)));
            }
            let _ = respond(Exchange::LoginUser, &text);
            let _ = respond(Exchange::LoginPassword { user: "u".into() }, &b64(&bytes));
            if let Next::Verify { user, password } = start("PLAIN", Some(&b64(&bytes))) {
                // authcid NUL passwd, after an authzid that is empty or
                // the authcid.
                let mut tail = format!("{user}\0").into_bytes();
                tail.extend_from_slice(&password);
                proptest::prop_assert!(bytes.ends_with(&tail));
            }
        }
    }
}
