//! Dovecot's authentication protocol, client side, version 1.2, as
//! lines: what we send and what we understand of the answers. Pure: no
//! socket here ([`super::connection`] has it).
//!
//! The protocol is a line per command, fields separated by TAB:
//!
//! ```text
//! C: VERSION 1 2            S: VERSION 1 2
//! C: CPID <pid>             S: MECH PLAIN plaintext    (one per mechanism)
//!                           S: SPID … / CUID … / COOKIE …
//!                           S: DONE
//! C: AUTH <id> PLAIN service=smtp nologin lip=… rip=… secured resp=<base64>
//!                           S: CONT <id> <base64>  |  OK <id> user=…  |  FAIL <id> reason=… temp
//! C: CONT <id> <base64>
//! C: CANCEL <id>
//! ```
//!
//! Values use Dovecot's "tab-escaping" (`\x01` then `1`, `t`, `r`, `n`
//! for `\x01`, TAB, CR, LF). Everything we put into a request is escaped,
//! although the callers only hand us names from Dovecot's own MECH list,
//! addresses we format, and base64 we re-encoded: a client string can
//! never add a field or a line. `nologin` says the request is not for a
//! login (no master userdb lookup follows), which is what an MTA wants.

use std::fmt::Write as _;

use crate::{printable, ClientInfo, Step};

/// The protocol version we speak; the major must match Dovecot's.
const MAJOR: u32 = 1;
const MINOR: u32 = 2;

/// Dovecot's `service=`: its `protocol smtp { }` settings and its logs
/// go by it.
const SERVICE: &str = "smtp";

/// Escapes a value with Dovecot's tab-escaping.
pub(crate) fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\x01' => out.push_str("\x011"),
            '\t' => out.push_str("\x01t"),
            '\r' => out.push_str("\x01r"),
            '\n' => out.push_str("\x01n"),
            // NUL cannot pass through Dovecot's C strings either way.
            '\0' => out.push_str("\x010"),
            c => out.push(c),
        }
    }
    out
}

/// Undoes [`escape`]; an unknown escape stands for the character itself,
/// and a lone `\x01` at the end is dropped, as in Dovecot.
pub(crate) fn unescape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\x01' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('1') => out.push('\x01'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('n') => out.push('\n'),
            Some('0') => out.push('\0'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// Our half of the handshake, sent at once on connecting.
pub(crate) fn handshake(pid: u32) -> String {
    format!("VERSION\t{MAJOR}\t{MINOR}\nCPID\t{pid}\n")
}

/// A mechanism as a MECH line describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MechInfo {
    /// Upper case.
    pub(crate) name: String,
    pub(crate) plaintext: bool,
    /// Not to be offered to clients (Dovecot's own, such as EXTERNAL
    /// without a certificate).
    pub(crate) private: bool,
}

/// Dovecot's half of the handshake, taken line by line.
#[derive(Debug, Default)]
pub(crate) struct Handshake {
    version_seen: bool,
    mechanisms: Vec<MechInfo>,
}

impl Handshake {
    /// Takes one line; `Ok(true)` once `DONE` came. SPID, CUID, COOKIE
    /// and lines of later minor versions are ignored: we make no master
    /// requests.
    pub(crate) fn feed(&mut self, line: &str) -> Result<bool, String> {
        let mut fields = line.split('\t');
        match fields.next().unwrap_or_default() {
            "VERSION" => {
                let major = fields.next().unwrap_or_default();
                if major.parse::<u32>() != Ok(MAJOR) {
                    return Err(format!(
                        "Dovecot speaks auth protocol version {}, not {MAJOR}",
                        printable(major)
                    ));
                }
                self.version_seen = true;
            }
            "MECH" => {
                let name = unescape(fields.next().unwrap_or_default()).to_ascii_uppercase();
                let flags: Vec<&str> = fields.collect();
                if is_mechanism_name(&name) {
                    self.mechanisms.push(MechInfo {
                        name,
                        plaintext: flags.contains(&"plaintext"),
                        private: flags.contains(&"private"),
                    });
                }
            }
            "DONE" if !self.version_seen => {
                return Err("Dovecot finished its handshake without VERSION".into())
            }
            "DONE" => return Ok(true),
            _ => {}
        }
        Ok(false)
    }

    /// The mechanisms Dovecot listed.
    pub(crate) fn into_mechanisms(self) -> Vec<MechInfo> {
        self.mechanisms
    }
}

/// RFC 4422's `sasl-mech`: upper-case letters, digits, `-` and `_`, at
/// most 20 characters. A MECH line with anything else is skipped, so
/// nothing odd is ever offered in EHLO.
fn is_mechanism_name(name: &str) -> bool {
    (1..=20).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// `AUTH`: starts request `id` with `mechanism` (a name from Dovecot's
/// own list) and the initial response (`Some("")`: an empty one, which
/// is `resp=` with nothing after it).
pub(crate) fn auth(id: u32, mechanism: &str, client: &ClientInfo, initial: Option<&str>) -> String {
    let mut line = format!(
        "AUTH\t{id}\t{}\tservice={SERVICE}\tnologin",
        escape(mechanism)
    );
    if let Some(ip) = client.local_ip {
        let _ = write!(line, "\tlip={ip}");
    }
    if let Some(ip) = client.remote_ip {
        let _ = write!(line, "\trip={ip}");
    }
    if client.secured {
        line.push_str("\tsecured");
    }
    if let Some(initial) = initial {
        let _ = write!(line, "\tresp={}", escape(initial));
    }
    line.push('\n');
    line
}

/// `CONT`: the client's answer (base64) to a challenge of request `id`.
pub(crate) fn cont(id: u32, response: &str) -> String {
    format!("CONT\t{id}\t{}\n", escape(response))
}

/// `CANCEL`: forget request `id`.
pub(crate) fn cancel(id: u32) -> String {
    format!("CANCEL\t{id}\n")
}

/// An answer to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply {
    /// Authenticated.
    Ok { id: u32, user: Option<String> },
    /// A challenge (base64) to pass to the client.
    Cont { id: u32, data: String },
    /// Refused; `temp`: Dovecot could not decide (its passdb is down).
    Fail {
        id: u32,
        reason: Option<String>,
        temp: bool,
    },
}

impl Reply {
    /// Parses a line from Dovecot after the handshake; `None` for lines
    /// that answer no request of ours (2.4's `CANCELLED`, or anything a
    /// later version adds): they are skipped.
    pub(crate) fn parse(line: &str) -> Option<Reply> {
        let mut fields = line.split('\t');
        let command = fields.next()?;
        let id = fields.next()?.parse::<u32>().ok()?;
        match command {
            "OK" => {
                let user = fields.find_map(|f| f.strip_prefix("user=")).map(unescape);
                Some(Reply::Ok { id, user })
            }
            "CONT" => Some(Reply::Cont {
                id,
                data: unescape(fields.next().unwrap_or_default()),
            }),
            "FAIL" => {
                let (mut reason, mut temp) = (None, false);
                for field in fields {
                    if let Some(r) = field.strip_prefix("reason=") {
                        reason = Some(unescape(r));
                    } else if field == "temp" || field == "code=temp_fail" {
                        temp = true;
                    }
                }
                Some(Reply::Fail { id, reason, temp })
            }
            _ => None,
        }
    }

    /// The request this answers.
    pub(crate) fn id(&self) -> u32 {
        match self {
            Reply::Ok { id, .. } | Reply::Cont { id, .. } | Reply::Fail { id, .. } => *id,
        }
    }

    /// What the daemon tells the client. What Dovecot sends is checked
    /// too before it reaches an SMTP reply: a challenge must be base64, a
    /// user name must be there and hold no control characters.
    pub(crate) fn into_step(self) -> Step {
        match self {
            Reply::Ok {
                user: Some(user), ..
            } if !user.is_empty() && !user.chars().any(char::is_control) => Step::Success { user },
            Reply::Ok { .. } => Step::TemporaryFailure {
                reason: "Dovecot answered OK without a usable user name".into(),
            },
            Reply::Cont { data, .. } if is_base64_text(&data) => Step::Challenge(data),
            Reply::Cont { .. } => Step::TemporaryFailure {
                reason: "Dovecot sent a challenge that is not base64".into(),
            },
            Reply::Fail { reason, temp, .. } => {
                let reason = printable(reason.as_deref().unwrap_or("authentication failed"));
                if temp {
                    Step::TemporaryFailure { reason }
                } else {
                    Step::Failure { reason }
                }
            }
        }
    }
}

/// Only base64's characters: nothing that could end an SMTP reply line.
fn is_base64_text(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    #[test]
    fn escaping_round_trips_and_leaves_no_tab_or_newline() {
        let nasty = "a\tb\nc\rd\x01e\0f\\g";
        let escaped = escape(nasty);
        assert_eq!(escaped, "a\x01tb\x01nc\x01rd\x011e\x010f\\g");
        assert!(!escaped.contains(['\t', '\n', '\r', '\0']));
        assert_eq!(unescape(&escaped), nasty);
        assert_eq!(unescape("x\x01qy\x01"), "xqy");
    }

    #[test]
    fn handshake_collects_mechanisms_until_done() {
        let mut h = Handshake::default();
        for line in [
            "VERSION\t1\t2",
            "MECH\tPLAIN\tplaintext",
            "MECH\tLOGIN\tplaintext",
            "MECH\tCRAM-MD5\tdictionary\tactive",
            "MECH\tEXTERNAL\tprivate",
            "MECH\tbad name\tplaintext",
            "SPID\t1234",
            "CUID\t7",
            "COOKIE\t0123456789abcdef",
        ] {
            assert_eq!(h.feed(line), Ok(false), "{line}");
        }
        assert_eq!(h.feed("DONE"), Ok(true));
        let mechs = h.into_mechanisms();
        let names: Vec<_> = mechs.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["PLAIN", "LOGIN", "CRAM-MD5", "EXTERNAL"]);
        assert!(mechs[0].plaintext && !mechs[0].private);
        assert!(!mechs[2].plaintext);
        assert!(mechs[3].private);
    }

    #[test]
    fn handshake_refuses_another_major_version_or_none() {
        assert!(Handshake::default().feed("VERSION\t2\t0").is_err());
        assert!(Handshake::default().feed("DONE").is_err());
    }

    #[test]
    fn auth_request_as_dovecot_expects_it() {
        let client = ClientInfo {
            local_ip: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))),
            remote_ip: Some(IpAddr::V6(Ipv6Addr::LOCALHOST)),
            secured: true,
        };
        assert_eq!(
            auth(7, "PLAIN", &client, Some("AGEAYg==")),
            "AUTH\t7\tPLAIN\tservice=smtp\tnologin\tlip=192.0.2.1\trip=::1\tsecured\tresp=AGEAYg==\n"
        );
        let plain = ClientInfo::default();
        assert_eq!(
            auth(8, "LOGIN", &plain, None),
            "AUTH\t8\tLOGIN\tservice=smtp\tnologin\n"
        );
        assert_eq!(
            auth(9, "PLAIN", &plain, Some("")),
            "AUTH\t9\tPLAIN\tservice=smtp\tnologin\tresp=\n"
        );
    }

    #[test]
    fn a_tab_in_a_value_cannot_add_a_field() {
        let line = auth(
            1,
            "PLAIN\tuser=root",
            &ClientInfo::default(),
            Some("x\tsecured\nOK"),
        );
        assert_eq!(line.matches('\t').count(), 5, "{line:?}");
        assert_eq!(line.matches('\n').count(), 1);
        assert_eq!(cont(2, "a\tb\nc").matches(['\t', '\n']).count(), 3);
    }

    #[test]
    fn replies_are_parsed() {
        assert_eq!(
            Reply::parse("OK\t3\tuser=al\x01tice\tfoo"),
            Some(Reply::Ok {
                id: 3,
                user: Some("al\tice".into())
            })
        );
        assert_eq!(
            Reply::parse("CONT\t4\tVXNlcm5hbWU6"),
            Some(Reply::Cont {
                id: 4,
                data: "VXNlcm5hbWU6".into()
            })
        );
        assert_eq!(
            Reply::parse("FAIL\t5\tuser=x\treason=Password expired\ttemp"),
            Some(Reply::Fail {
                id: 5,
                reason: Some("Password expired".into()),
                temp: true
            })
        );
        assert_eq!(
            Reply::parse("FAIL\t6"),
            Some(Reply::Fail {
                id: 6,
                reason: None,
                temp: false
            })
        );
        for other in ["CANCELLED\t5", "OK", "OK\tx", "NOTICE\t1\tfoo", ""] {
            assert_eq!(Reply::parse(other), None, "{other:?}");
        }
    }

    #[test]
    fn replies_become_steps_only_when_safe() {
        let ok = |user: Option<&str>| Reply::Ok {
            id: 1,
            user: user.map(str::to_string),
        };
        assert_eq!(
            ok(Some("alice")).into_step(),
            Step::Success {
                user: "alice".into()
            }
        );
        for bad in [None, Some(""), Some("al\r\nice")] {
            assert!(matches!(ok(bad).into_step(), Step::TemporaryFailure { .. }));
        }
        let cont = |data: &str| Reply::Cont {
            id: 1,
            data: data.into(),
        };
        assert_eq!(cont("").into_step(), Step::Challenge(String::new()));
        assert!(matches!(
            cont("abc\r\n250 OK").into_step(),
            Step::TemporaryFailure { .. }
        ));
        let fail = Reply::Fail {
            id: 1,
            reason: Some("no\r\nway".into()),
            temp: false,
        };
        assert_eq!(
            fail.into_step(),
            Step::Failure {
                reason: "no  way".into()
            }
        );
    }

    proptest::proptest! {
        /// Escaping round-trips and leaves no separator, whatever the
        /// value; no line from Dovecot makes the parsers panic.
        #[test]
        fn escaping_and_parsing_hold_for_any_text(
            text in r"\PC{0,40}|[\t\n\r\x01\x00a-z=]{0,40}",
        ) {
            let escaped = escape(&text);
            proptest::prop_assert!(!escaped.contains(['\t', '\n', '\r', '\0']));
            proptest::prop_assert_eq!(unescape(&escaped), text.clone());
            let _ = Reply::parse(&text).map(Reply::into_step);
            let _ = Handshake::default().feed(&text);
        }
    }
}
