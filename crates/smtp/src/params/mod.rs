//! ESMTP parameters of MAIL and RCPT: SIZE (RFC 1870), BODY (RFC 6152),
//! the DSN parameters RET, ENVID, NOTIFY, ORCPT (RFC 3461), AUTH= (RFC 4954)
//! and BY (DELIVERBY, RFC 2852).
//!
//! Values are checked here and kept, decoded, for the queue; the errors are
//! sendmail's own replies (`srvrsmtp.c`, `mail_esmtp_args`/`rcpt_esmtp_args`).

mod text;

pub use text::BadParam;

use crate::limits;
use crate::reply::{EnhancedCode, Reply};
use crate::xtext;

/// BODY=.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum BodyType {
    /// `BODY=7BIT`.
    SevenBit,
    /// `BODY=8BITMIME`.
    EightBitMime,
}

impl BodyType {
    /// The keyword as written on the wire and in sendmail's `bodytype=` log field.
    pub fn as_str(self) -> &'static str {
        match self {
            BodyType::SevenBit => "7BIT",
            BodyType::EightBitMime => "8BITMIME",
        }
    }
}

/// RET= (what a bounce carries).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Ret {
    /// The whole message.
    Full,
    /// Headers only.
    Hdrs,
}

/// BY= (RFC 2852): deliver within `seconds`, or else return (`R`) or notify (`N`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct DeliverBy {
    /// The by-time, in seconds; may be negative in mode N.
    pub seconds: i64,
    /// `R` (return) rather than `N` (notify).
    pub return_on_expiry: bool,
    /// The `T` trace flag.
    pub trace: bool,
}

/// NOTIFY= (RFC 3461 §4.1). `never` excludes the other three.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Notify {
    /// NOTIFY=NEVER.
    pub never: bool,
    /// SUCCESS.
    pub success: bool,
    /// FAILURE.
    pub failure: bool,
    /// DELAY.
    pub delay: bool,
}

/// ORCPT= (RFC 3461 §4.2): the original recipient, decoded from xtext.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Orcpt {
    /// The address type, normally `rfc822`.
    pub addr_type: String,
    /// The original address, xtext-decoded.
    pub address: String,
}

/// Parameters of one MAIL command.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MailParams {
    /// Declared size in octets.
    pub size: Option<u64>,
    /// Declared body type.
    pub body: Option<BodyType>,
    /// DSN return type.
    pub ret: Option<Ret>,
    /// DSN envelope id, xtext-decoded.
    pub envid: Option<String>,
    /// AUTH= mailbox, xtext-decoded (`<>` when the client passes none).
    pub auth: Option<String>,
    /// DELIVERBY request.
    pub by: Option<DeliverBy>,
}

/// Parameters of one RCPT command.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RcptParams {
    /// DSN notification request.
    pub notify: Option<Notify>,
    /// DSN original recipient.
    pub orcpt: Option<Orcpt>,
}

impl MailParams {
    /// The parameters as a client writes them after `MAIL FROM:<…>`, one
    /// `KEY=value` each (mail filters get them so).
    pub fn wire_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(size) = self.size {
            args.push(format!("SIZE={size}"));
        }
        if let Some(body) = self.body {
            args.push(format!("BODY={}", body.as_str()));
        }
        if let Some(ret) = self.ret {
            args.push(format!("RET={}", ret.as_str()));
        }
        if let Some(envid) = &self.envid {
            args.push(format!("ENVID={}", crate::xtext::encode(envid.as_bytes())));
        }
        if let Some(auth) = &self.auth {
            let value = if auth == "<>" {
                auth.clone()
            } else {
                crate::xtext::encode(auth.as_bytes())
            };
            args.push(format!("AUTH={value}"));
        }
        if let Some(by) = &self.by {
            args.push(format!("BY={by}"));
        }
        args
    }
}

impl RcptParams {
    /// The parameters as a client writes them after `RCPT TO:<…>`.
    pub fn wire_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(notify) = &self.notify {
            args.push(format!("NOTIFY={notify}"));
        }
        if let Some(orcpt) = &self.orcpt {
            args.push(format!("ORCPT={}", orcpt.to_xtext()));
        }
        args
    }
}

/// What the server offers, which decides how parameters are judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParamPolicy {
    /// MaxMessageSize; 0 means no limit.
    pub max_size: u64,
    /// DSN is offered (PrivacyOptions has no `noreceipts`).
    pub dsn: bool,
    /// DELIVERBY is offered with this minimum (sendmail's DeliverByMin);
    /// `None` when it is not offered.
    pub deliver_by_min: Option<i64>,
}

fn err(code: u16, enhanced: (u8, u16, u16), text: String) -> Reply {
    let (c, s, d) = enhanced;
    Reply::new(code, EnhancedCode::new(c, s, d), text)
}

/// Splits `KEY[=VALUE] …` into pairs; esmtp-keyword is alnum and `-`,
/// esmtp-value is printable ASCII other than `=` (RFC 5321 §4.1.2).
fn split_params(text: &str) -> Result<Vec<(&str, Option<&str>)>, Reply> {
    text.split(' ')
        .filter(|word| !word.is_empty())
        .map(|word| {
            let (key, value) = match word.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (word, None),
            };
            let key_ok = key
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphanumeric())
                && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            let value_ok =
                value.is_none_or(|v| v.bytes().all(|b| (33..=126).contains(&b) && b != b'='));
            if key_ok && value_ok {
                Ok((key, value))
            } else {
                Err(err(
                    501,
                    (5, 5, 4),
                    format!("Syntax error in parameter \"{word}\""),
                ))
            }
        })
        .collect()
}

fn dsn_refused(key: &str) -> Reply {
    err(
        504,
        (5, 7, 0),
        format!("Sorry, {key} not supported, we do not allow DSN"),
    )
}

fn duplicate(key: &str) -> Reply {
    err(501, (5, 5, 0), format!("Duplicate {key} parameter"))
}

fn unrecognized(key: &str) -> Reply {
    err(555, (5, 5, 4), format!("{key} parameter unrecognized"))
}

/// Parses the parameters of MAIL FROM.
pub fn parse_mail_params(text: &str, policy: &ParamPolicy) -> Result<MailParams, Reply> {
    let mut params = MailParams::default();
    for (key, value) in split_params(text)? {
        let upper = key.to_ascii_uppercase();
        match upper.as_str() {
            "SIZE" => params.size = Some(parse_size(value, policy.max_size)?),
            "BODY" => params.body = Some(parse_body(value)?),
            "RET" | "ENVID" if !policy.dsn => return Err(dsn_refused(&upper)),
            "RET" if params.ret.is_some() => return Err(duplicate("RET")),
            "RET" => params.ret = Some(parse_ret(value)?),
            "ENVID" if params.envid.is_some() => return Err(duplicate("ENVID")),
            "ENVID" => params.envid = Some(parse_envid(value)?),
            "AUTH" => params.auth = Some(parse_auth(value)?),
            "BY" => match policy.deliver_by_min {
                Some(min) => params.by = Some(parse_by(value, min)?),
                None => return Err(unrecognized(key)),
            },
            _ => return Err(unrecognized(key)),
        }
    }
    Ok(params)
}

/// Parses the parameters of RCPT TO.
pub fn parse_rcpt_params(text: &str, policy: &ParamPolicy) -> Result<RcptParams, Reply> {
    let mut params = RcptParams::default();
    for (key, value) in split_params(text)? {
        let upper = key.to_ascii_uppercase();
        match upper.as_str() {
            "NOTIFY" | "ORCPT" if !policy.dsn => return Err(dsn_refused(&upper)),
            "NOTIFY" if params.notify.is_some() => return Err(duplicate("NOTIFY")),
            "NOTIFY" => params.notify = Some(parse_notify(value)?),
            "ORCPT" if params.orcpt.is_some() => return Err(duplicate("ORCPT")),
            "ORCPT" => params.orcpt = Some(parse_orcpt(value)?),
            _ => return Err(unrecognized(key)),
        }
    }
    Ok(params)
}

/// The DSN and BODY values as `sendmail -N`, `-R`, `-V` and `-B` take
/// them on the command line: the words of NOTIFY=, RET=, BODY= in any
/// case (`-N` a comma-separated list, `never` alone), and `-V` an xtext
/// ENVID, checked and decoded as MAIL FROM's ENVID= is. `None` for a
/// value MAIL FROM or RCPT TO would refuse.
pub mod command_line {
    use super::{BodyType, Notify, Ret};

    /// `-N never` or a list of `success`, `failure`, `delay`.
    pub fn notify(value: &str) -> Option<Notify> {
        super::parse_notify(Some(value)).ok()
    }

    /// `-R hdrs` or `-R full`.
    pub fn ret(value: &str) -> Option<Ret> {
        super::parse_ret(Some(value)).ok()
    }

    /// `-V envid`, xtext: the decoded envelope ID.
    pub fn envid(value: &str) -> Option<String> {
        super::parse_envid(Some(value)).ok()
    }

    /// `-B 7bit` or `-B 8bitmime`.
    pub fn body(value: &str) -> Option<BodyType> {
        super::parse_body(Some(value)).ok()
    }
}

fn parse_size(value: Option<&str>, max_size: u64) -> Result<u64, Reply> {
    let required = || err(501, (5, 5, 2), "SIZE requires a value".into());
    let value = value.filter(|v| !v.is_empty()).ok_or_else(required)?;
    if !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(required());
    }
    // sendmail's two refusals: a number it cannot hold (strtol's ERANGE),
    // and a size over MaxMessageSize.
    let Ok(size) = value.parse::<u64>() else {
        return Err(err(
            552,
            (5, 2, 3),
            "Message size exceeds maximum value".into(),
        ));
    };
    if max_size > 0 && size > max_size {
        return Err(err(
            552,
            (5, 2, 3),
            format!("Message size exceeds fixed maximum message size ({max_size})"),
        ));
    }
    Ok(size)
}

fn parse_body(value: Option<&str>) -> Result<BodyType, Reply> {
    match value.map(str::to_ascii_uppercase).as_deref() {
        Some("7BIT") => Ok(BodyType::SevenBit),
        Some("8BITMIME") => Ok(BodyType::EightBitMime),
        other => Err(err(
            501,
            (5, 5, 4),
            format!("Unknown BODY type {}", other.unwrap_or("")),
        )),
    }
}

fn parse_ret(value: Option<&str>) -> Result<Ret, Reply> {
    match value.map(str::to_ascii_uppercase).as_deref() {
        Some("FULL") => Ok(Ret::Full),
        Some("HDRS") => Ok(Ret::Hdrs),
        _ => Err(err(
            501,
            (5, 5, 2),
            format!("Bad argument \"{}\" to RET", value.unwrap_or("")),
        )),
    }
}

fn parse_envid(value: Option<&str>) -> Result<String, Reply> {
    let syntax = || {
        err(
            501,
            (5, 5, 4),
            "Syntax error in ENVID parameter value".into(),
        )
    };
    let raw = xtext::decode(value.ok_or_else(syntax)?).map_err(|_| syntax())?;
    if raw.is_empty() || raw.len() > limits::ENVID {
        return Err(syntax());
    }
    // Kept as text because it is copied into DSNs; xtext let through only
    // bytes that RFC 3461 allows, so control characters are refused here.
    printable(raw).ok_or_else(syntax)
}

fn parse_auth(value: Option<&str>) -> Result<String, Reply> {
    let syntax = || {
        err(
            501,
            (5, 5, 4),
            "Syntax error in AUTH parameter value".into(),
        )
    };
    let raw = xtext::decode(value.ok_or_else(syntax)?).map_err(|_| syntax())?;
    printable(raw).ok_or_else(syntax)
}

fn parse_notify(value: Option<&str>) -> Result<Notify, Reply> {
    let bad = || {
        err(
            501,
            (5, 5, 4),
            // Two spaces before "to": sendmail's text, verbatim.
            format!("Bad argument \"{}\"  to NOTIFY", value.unwrap_or("")),
        )
    };
    let mut notify = Notify::default();
    for word in value.ok_or_else(bad)?.split(',') {
        match word.to_ascii_uppercase().as_str() {
            "NEVER" => notify.never = true,
            "SUCCESS" => notify.success = true,
            "FAILURE" => notify.failure = true,
            "DELAY" => notify.delay = true,
            _ => return Err(bad()),
        }
    }
    if notify.never && (notify.success || notify.failure || notify.delay) {
        return Err(bad());
    }
    Ok(notify)
}

fn parse_orcpt(value: Option<&str>) -> Result<Orcpt, Reply> {
    let syntax = || {
        err(
            501,
            (5, 5, 4),
            "Syntax error in ORCPT parameter value".into(),
        )
    };
    let value = value.ok_or_else(syntax)?;
    let (addr_type, encoded) = value.split_once(';').ok_or_else(syntax)?;
    let type_ok = !addr_type.is_empty()
        && addr_type
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if !type_ok || value.len() > limits::ORCPT {
        return Err(syntax());
    }
    let raw = xtext::decode(encoded).map_err(|_| syntax())?;
    let address = printable(raw)
        .filter(|a| !a.is_empty())
        .ok_or_else(syntax)?;
    Ok(Orcpt {
        addr_type: addr_type.to_string(),
        address,
    })
}

/// `BY=<time>;<R|N>[T]`, checked in sendmail's order with sendmail's replies.
fn parse_by(value: Option<&str>, min: i64) -> Result<DeliverBy, Reply> {
    let value = value
        .filter(|v| !v.is_empty())
        .ok_or_else(|| err(501, (5, 5, 2), "BY= requires a value".into()))?;
    let digits_end = value
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || (i == 0 && (c == '-' || c == '+'))))
        .map_or(value.len(), |(i, _)| i);
    let (number, rest) = value.split_at(digits_end);
    let out_of_range = || err(501, (5, 5, 2), format!("BY={value} out of range"));
    let seconds: i64 = number.parse().map_err(|_| out_of_range())?;
    if seconds.abs() > 999_999_999 {
        return Err(out_of_range());
    }
    let rest = rest
        .strip_prefix(';')
        .ok_or_else(|| err(501, (5, 5, 2), "BY= missing ';'".into()))?;
    let mut chars = rest.chars();
    let return_on_expiry = match chars.next().map(|c| c.to_ascii_uppercase()) {
        Some('R') => true,
        Some('N') => false,
        c => {
            let shown = c.map(String::from).unwrap_or_default();
            return Err(err(501, (5, 5, 2), format!("illegal by-mode '{shown}'")));
        }
    };
    let trace = match chars.next().map(|c| c.to_ascii_uppercase()) {
        None => false,
        Some('T') if chars.next().is_none() => true,
        Some(c) => return Err(err(501, (5, 5, 2), format!("illegal by-trace '{c}'"))),
    };
    if return_on_expiry && seconds <= 0 {
        return Err(err(501, (5, 5, 4), "mode R requires BY time > 0".into()));
    }
    if return_on_expiry && min > 0 && seconds < min {
        return Err(err(
            555,
            (5, 5, 2),
            format!("time {seconds} less than {min}"),
        ));
    }
    Ok(DeliverBy {
        seconds,
        return_on_expiry,
        trace,
    })
}

/// Bytes that are printable ASCII, as a String; anything else refused.
fn printable(raw: Vec<u8>) -> Option<String> {
    if raw.iter().all(|b| (32..=126).contains(b)) {
        String::from_utf8(raw).ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: ParamPolicy = ParamPolicy {
        max_size: 1000,
        dsn: true,
        deliver_by_min: Some(0),
    };

    fn mail_err(text: &str) -> String {
        parse_mail_params(text, &POLICY).unwrap_err().to_string()
    }

    fn rcpt_err(text: &str) -> String {
        parse_rcpt_params(text, &POLICY).unwrap_err().to_string()
    }

    #[test]
    fn wire_args_parse_back_to_the_same_parameters() {
        let text = "SIZE=999 BODY=8bitmime RET=HDRS ENVID=QQ+2Bx AUTH=a+2Bb@c BY=120;RT";
        let p = parse_mail_params(text, &POLICY).unwrap();
        assert_eq!(
            p.wire_args(),
            [
                "SIZE=999",
                "BODY=8BITMIME",
                "RET=HDRS",
                "ENVID=QQ+2Bx",
                "AUTH=a+2Bb@c",
                "BY=120;RT"
            ]
        );
        assert_eq!(
            parse_mail_params(&p.wire_args().join(" "), &POLICY).unwrap(),
            p
        );
        let r = parse_rcpt_params("NOTIFY=SUCCESS,DELAY ORCPT=rfc822;a+2Bb@c", &POLICY).unwrap();
        assert_eq!(
            r.wire_args(),
            ["NOTIFY=SUCCESS,DELAY", "ORCPT=rfc822;a+2Bb@c"]
        );
        assert_eq!(
            parse_rcpt_params(&r.wire_args().join(" "), &POLICY).unwrap(),
            r
        );
    }

    #[test]
    fn all_mail_params() {
        let p = parse_mail_params(
            "SIZE=999 BODY=8bitmime RET=HDRS ENVID=QQ+2Bx AUTH=<> BY=120;RT",
            &POLICY,
        )
        .unwrap();
        assert_eq!(p.size, Some(999));
        assert_eq!(p.body, Some(BodyType::EightBitMime));
        assert_eq!(p.ret, Some(Ret::Hdrs));
        assert_eq!(p.envid.as_deref(), Some("QQ+x"));
        assert_eq!(p.auth.as_deref(), Some("<>"));
        assert_eq!(
            p.by,
            Some(DeliverBy {
                seconds: 120,
                return_on_expiry: true,
                trace: true
            })
        );
    }

    #[test]
    fn size_errors() {
        assert_eq!(
            mail_err("SIZE=1001"),
            "552 5.2.3 Message size exceeds fixed maximum message size (1000)"
        );
        assert_eq!(
            mail_err("SIZE=99999999999999999999999"),
            "552 5.2.3 Message size exceeds maximum value"
        );
        assert_eq!(mail_err("SIZE"), "501 5.5.2 SIZE requires a value");
        assert_eq!(mail_err("SIZE=12x"), "501 5.5.2 SIZE requires a value");
        let unlimited = ParamPolicy {
            max_size: 0,
            ..POLICY
        };
        assert!(parse_mail_params("SIZE=99999999999", &unlimited).is_ok());
    }

    #[test]
    fn dsn_errors() {
        assert_eq!(
            mail_err("BODY=BINARYMIME"),
            "501 5.5.4 Unknown BODY type BINARYMIME"
        );
        assert_eq!(
            mail_err("RET=SOME"),
            "501 5.5.2 Bad argument \"SOME\" to RET"
        );
        assert_eq!(
            mail_err("RET=FULL RET=HDRS"),
            "501 5.5.0 Duplicate RET parameter"
        );
        assert_eq!(
            mail_err("ENVID=a+zz"),
            "501 5.5.4 Syntax error in ENVID parameter value"
        );
        assert_eq!(
            mail_err("ENVID=a ENVID=b"),
            "501 5.5.0 Duplicate ENVID parameter"
        );
        assert_eq!(
            rcpt_err("NOTIFY=NEVER,SUCCESS"),
            "501 5.5.4 Bad argument \"NEVER,SUCCESS\"  to NOTIFY"
        );
        assert_eq!(
            rcpt_err("NOTIFY=SOMETIMES"),
            "501 5.5.4 Bad argument \"SOMETIMES\"  to NOTIFY"
        );
        assert_eq!(
            rcpt_err("ORCPT=rfc822"),
            "501 5.5.4 Syntax error in ORCPT parameter value"
        );
        assert_eq!(
            rcpt_err("ORCPT=rfc822;a ORCPT=rfc822;b"),
            "501 5.5.0 Duplicate ORCPT parameter"
        );
        assert_eq!(mail_err("XFOO=1"), "555 5.5.4 XFOO parameter unrecognized");
        assert_eq!(rcpt_err("SIZE=1"), "555 5.5.4 SIZE parameter unrecognized");
    }

    #[test]
    fn noreceipts_refuses_every_dsn_parameter() {
        let off = ParamPolicy {
            dsn: false,
            ..POLICY
        };
        for (text, key) in [("RET=FULL", "RET"), ("ENVID=x", "ENVID")] {
            let e = parse_mail_params(text, &off).unwrap_err().to_string();
            assert_eq!(
                e,
                format!("504 5.7.0 Sorry, {key} not supported, we do not allow DSN")
            );
        }
        for (text, key) in [("NOTIFY=NEVER", "NOTIFY"), ("ORCPT=rfc822;a@b", "ORCPT")] {
            let e = parse_rcpt_params(text, &off).unwrap_err().to_string();
            assert_eq!(
                e,
                format!("504 5.7.0 Sorry, {key} not supported, we do not allow DSN")
            );
        }
    }

    #[test]
    fn rcpt_params() {
        let p = parse_rcpt_params(
            "NOTIFY=SUCCESS,DELAY ORCPT=rfc822;a+2Bb@example.org",
            &POLICY,
        )
        .unwrap();
        let n = p.notify.unwrap();
        assert!(n.success && n.delay && !n.failure && !n.never);
        assert_eq!(p.orcpt.unwrap().address, "a+b@example.org");
    }

    #[test]
    fn deliver_by_errors_in_sendmail_order() {
        assert_eq!(mail_err("BY="), "501 5.5.2 BY= requires a value");
        assert_eq!(
            mail_err("BY=1000000000;R"),
            "501 5.5.2 BY=1000000000;R out of range"
        );
        assert_eq!(mail_err("BY=x;R"), "501 5.5.2 BY=x;R out of range");
        assert_eq!(mail_err("BY=100"), "501 5.5.2 BY= missing ';'");
        assert_eq!(mail_err("BY=100;X"), "501 5.5.2 illegal by-mode 'X'");
        assert_eq!(mail_err("BY=100;RX"), "501 5.5.2 illegal by-trace 'X'");
        assert_eq!(mail_err("BY=0;R"), "501 5.5.4 mode R requires BY time > 0");
        let strict = ParamPolicy {
            deliver_by_min: Some(600),
            ..POLICY
        };
        let e = parse_mail_params("BY=100;R", &strict)
            .unwrap_err()
            .to_string();
        assert_eq!(e, "555 5.5.2 time 100 less than 600");
        assert!(parse_mail_params("BY=-10;N", &POLICY).is_ok());
        let off = ParamPolicy {
            deliver_by_min: None,
            ..POLICY
        };
        let e = parse_mail_params("BY=100;R", &off).unwrap_err().to_string();
        assert_eq!(e, "555 5.5.4 BY parameter unrecognized");
    }

    #[test]
    fn command_line_values_are_the_parameters_words() {
        let n = command_line::notify("success,Delay").unwrap();
        assert!(n.success && n.delay && !n.failure && !n.never);
        assert!(command_line::notify("never").unwrap().never);
        assert_eq!(command_line::notify("never,success"), None);
        assert_eq!(command_line::notify("bogus"), None);
        assert_eq!(command_line::notify(""), None);
        assert_eq!(command_line::ret("hdrs"), Some(Ret::Hdrs));
        assert_eq!(command_line::ret("FULL"), Some(Ret::Full));
        assert_eq!(command_line::ret("xyz"), None);
        assert_eq!(command_line::envid("a+2Bb").as_deref(), Some("a+b"));
        assert_eq!(command_line::envid("a+zz"), None);
        assert_eq!(command_line::envid(""), None);
        assert_eq!(command_line::body("8bitmime"), Some(BodyType::EightBitMime));
        assert_eq!(command_line::body("7BIT"), Some(BodyType::SevenBit));
        assert_eq!(command_line::body("binarymime"), None);
    }

    #[test]
    fn malformed_parameter_words() {
        assert_eq!(
            mail_err("SIZE=1=2"),
            "501 5.5.4 Syntax error in parameter \"SIZE=1=2\""
        );
        assert_eq!(
            mail_err("-X=1"),
            "501 5.5.4 Syntax error in parameter \"-X=1\""
        );
    }
}
