//! The service extensions a server advertises in its EHLO reply.
//!
//! Owns: reading the keyword lines of a 250 EHLO reply into [`Extensions`].
//! Does not own: deciding what to do with them (that is `session.rs`).
//! Keywords are case-insensitive (RFC 5321 §2.4); unknown keywords and
//! unparseable parameters are ignored, because a server may advertise anything.

use super::reply_reader::ServerReply;

/// What the server offered. `Default` is "nothing", which is also what a
/// server answering HELO offers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Extensions {
    /// PIPELINING (RFC 2920).
    pub pipelining: bool,
    /// SIZE (RFC 1870): `Some(0)` when offered without a number, with `0`, or
    /// with a number we cannot read; all three mean "no fixed limit known".
    pub size: Option<u64>,
    /// 8BITMIME (RFC 6152).
    pub eight_bit_mime: bool,
    /// DSN (RFC 3461).
    pub dsn: bool,
    /// STARTTLS (RFC 3207).
    pub starttls: bool,
    /// ENHANCEDSTATUSCODES (RFC 2034).
    pub enhanced_status_codes: bool,
    /// SMTPUTF8 (RFC 6531).
    pub smtputf8: bool,
    /// CHUNKING (RFC 3030).
    pub chunking: bool,
    /// DELIVERBY (RFC 2852) with its minimum by-time in seconds; `Some(0)`
    /// when offered without one.
    pub deliver_by: Option<u64>,
    /// AUTH mechanisms (RFC 4954), upper-cased, without duplicates.
    pub auth: Vec<String>,
}

impl Extensions {
    /// Reads a positive EHLO reply. The first line is the server's name and
    /// greeting, every later line one keyword with optional parameters.
    pub fn from_ehlo(reply: &ServerReply) -> Self {
        let mut ext = Self::default();
        for line in reply.lines.iter().skip(1) {
            let mut words = line.split_ascii_whitespace();
            let Some(keyword) = words.next() else {
                continue;
            };
            // Old servers write `AUTH=LOGIN PLAIN` (pre-RFC 2554 drafts).
            let (keyword, first_param) = match keyword.split_once('=') {
                Some((k, p)) => (k, Some(p)),
                None => (keyword, None),
            };
            let params: Vec<&str> = first_param.into_iter().chain(words).collect();
            match keyword.to_ascii_uppercase().as_str() {
                "PIPELINING" => ext.pipelining = true,
                "SIZE" => ext.size = Some(number(&params)),
                "8BITMIME" => ext.eight_bit_mime = true,
                "DSN" => ext.dsn = true,
                "STARTTLS" => ext.starttls = true,
                "ENHANCEDSTATUSCODES" => ext.enhanced_status_codes = true,
                "SMTPUTF8" => ext.smtputf8 = true,
                "CHUNKING" => ext.chunking = true,
                "DELIVERBY" => ext.deliver_by = Some(number(&params)),
                "AUTH" => {
                    for mech in params {
                        let mech = mech.to_ascii_uppercase();
                        if !ext.auth.contains(&mech) {
                            ext.auth.push(mech);
                        }
                    }
                }
                _ => {}
            }
        }
        ext
    }
}

/// The first parameter as a number, 0 if absent or unreadable.
fn number(params: &[&str]) -> u64 {
    params.first().and_then(|p| p.parse().ok()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ehlo(lines: &[&str]) -> Extensions {
        Extensions::from_ehlo(&ServerReply {
            code: 250,
            enhanced: None,
            lines: lines.iter().map(|s| s.to_string()).collect(),
        })
    }

    #[test]
    fn sendmail_style_reply() {
        let ext = ehlo(&[
            "mx.example Hello client.example [192.0.2.1], pleased to meet you",
            "ENHANCEDSTATUSCODES",
            "PIPELINING",
            "8BITMIME",
            "SIZE 10240000",
            "DSN",
            "ETRN",
            "AUTH DIGEST-MD5 CRAM-MD5",
            "STARTTLS",
            "DELIVERBY",
            "HELP",
        ]);
        assert_eq!(
            ext,
            Extensions {
                pipelining: true,
                size: Some(10_240_000),
                eight_bit_mime: true,
                dsn: true,
                starttls: true,
                enhanced_status_codes: true,
                smtputf8: false,
                chunking: false,
                deliver_by: Some(0),
                auth: vec!["DIGEST-MD5".into(), "CRAM-MD5".into()],
            }
        );
    }

    #[test]
    fn case_insensitive_and_odd_forms() {
        let ext = ehlo(&[
            "mx",
            "pipelining",
            "Size",
            "smtputf8",
            "chunking",
            "DeliverBy 240",
            "auth=login plain",
            "AUTH PLAIN",
            "X-UNKNOWN 1 2 3",
            "",
        ]);
        assert!(ext.pipelining && ext.smtputf8 && ext.chunking);
        assert_eq!(ext.size, Some(0));
        assert_eq!(ext.deliver_by, Some(240));
        assert_eq!(ext.auth, ["LOGIN", "PLAIN"]);
    }

    #[test]
    fn greeting_line_is_not_a_keyword() {
        assert_eq!(ehlo(&["PIPELINING"]), Extensions::default());
        assert_eq!(ehlo(&["mx", "SIZE lots"]).size, Some(0));
    }
}
