//! The parameters' text forms outside the SMTP wire's parsing: how the
//! queue's control file writes them and reads them back (strictly: a value
//! that does not parse is an error, never a silent default), and how the
//! delivery client puts NOTIFY and ORCPT back on the wire.

use std::fmt;
use std::str::FromStr;

use super::{BodyType, DeliverBy, Notify, Orcpt, Ret};
use crate::xtext;

/// A stored parameter that does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {value:?}")]
pub struct BadParam {
    /// Which parameter.
    pub what: &'static str,
    /// The text, capped.
    pub value: String,
}

fn bad(what: &'static str, value: &str) -> BadParam {
    BadParam {
        what,
        value: value.chars().take(64).collect(),
    }
}

impl Ret {
    /// `FULL` or `HDRS`.
    pub fn as_str(self) -> &'static str {
        match self {
            Ret::Full => "FULL",
            Ret::Hdrs => "HDRS",
        }
    }
}

impl FromStr for Ret {
    type Err = BadParam;

    fn from_str(s: &str) -> Result<Self, BadParam> {
        match s {
            "FULL" => Ok(Ret::Full),
            "HDRS" => Ok(Ret::Hdrs),
            _ => Err(bad("RET", s)),
        }
    }
}

impl FromStr for BodyType {
    type Err = BadParam;

    fn from_str(s: &str) -> Result<Self, BadParam> {
        match s {
            "7BIT" => Ok(BodyType::SevenBit),
            "8BITMIME" => Ok(BodyType::EightBitMime),
            _ => Err(bad("BODY", s)),
        }
    }
}

/// `<seconds>;R|N[T]`, as on the wire.
impl fmt::Display for DeliverBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = if self.return_on_expiry { 'R' } else { 'N' };
        let trace = if self.trace { "T" } else { "" };
        write!(f, "{};{mode}{trace}", self.seconds)
    }
}

impl FromStr for DeliverBy {
    type Err = BadParam;

    fn from_str(s: &str) -> Result<Self, BadParam> {
        let (secs, mode) = s.split_once(';').ok_or_else(|| bad("BY", s))?;
        let seconds = secs.parse().map_err(|_| bad("BY", s))?;
        let (return_on_expiry, trace) = match mode {
            "R" => (true, false),
            "RT" => (true, true),
            "N" => (false, false),
            "NT" => (false, true),
            _ => return Err(bad("BY", s)),
        };
        Ok(DeliverBy {
            seconds,
            return_on_expiry,
            trace,
        })
    }
}

/// `NEVER`, or the requested conditions joined by commas, as on the wire.
impl fmt::Display for Notify {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.never {
            return f.write_str("NEVER");
        }
        let words: Vec<&str> = [
            (self.success, "SUCCESS"),
            (self.failure, "FAILURE"),
            (self.delay, "DELAY"),
        ]
        .into_iter()
        .filter_map(|(on, word)| on.then_some(word))
        .collect();
        f.write_str(&words.join(","))
    }
}

impl FromStr for Notify {
    type Err = BadParam;

    fn from_str(s: &str) -> Result<Self, BadParam> {
        let mut notify = Notify::default();
        for word in s.split(',') {
            match word {
                "NEVER" => notify.never = true,
                "SUCCESS" => notify.success = true,
                "FAILURE" => notify.failure = true,
                "DELAY" => notify.delay = true,
                _ => return Err(bad("NOTIFY", s)),
            }
        }
        if notify.never && (notify.success || notify.failure || notify.delay) {
            return Err(bad("NOTIFY", s));
        }
        Ok(notify)
    }
}

impl Orcpt {
    /// `type;address` with the address xtext-encoded, as on the wire.
    pub fn to_xtext(&self) -> String {
        format!(
            "{};{}",
            self.addr_type,
            xtext::encode(self.address.as_bytes())
        )
    }
}

/// `type;address`, the address decoded (the control file escapes it).
impl fmt::Display for Orcpt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{};{}", self.addr_type, self.address)
    }
}

impl FromStr for Orcpt {
    type Err = BadParam;

    fn from_str(s: &str) -> Result<Self, BadParam> {
        let (addr_type, address) = s.split_once(';').ok_or_else(|| bad("ORCPT", s))?;
        let type_ok = !addr_type.is_empty()
            && addr_type
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !type_ok || address.is_empty() || address.chars().any(char::is_control) {
            return Err(bad("ORCPT", s));
        }
        Ok(Orcpt {
            addr_type: addr_type.to_string(),
            address: address.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T: fmt::Display + FromStr + PartialEq + fmt::Debug>(text: &str)
    where
        T::Err: fmt::Debug,
    {
        let value: T = text.parse().unwrap();
        assert_eq!(value.to_string(), text);
    }

    #[test]
    fn stored_forms_round_trip() {
        round_trip::<DeliverBy>("3600;R");
        round_trip::<DeliverBy>("-5;NT");
        round_trip::<Notify>("NEVER");
        round_trip::<Notify>("SUCCESS,FAILURE,DELAY");
        round_trip::<Orcpt>("rfc822;a b@example.org");
        assert_eq!("FULL".parse::<Ret>().unwrap().as_str(), "FULL");
        assert_eq!("8BITMIME".parse::<BodyType>().unwrap().as_str(), "8BITMIME");
    }

    #[test]
    fn bad_stored_forms_are_errors() {
        assert!("full".parse::<Ret>().is_err());
        assert!("8BIT".parse::<BodyType>().is_err());
        assert!("1;X".parse::<DeliverBy>().is_err());
        assert!("NEVER,SUCCESS".parse::<Notify>().is_err());
        assert!("SOMETIMES".parse::<Notify>().is_err());
        assert!("rfc822".parse::<Orcpt>().is_err());
        assert!(";a@b".parse::<Orcpt>().is_err());
        assert!("rfc822;a\nb".parse::<Orcpt>().is_err());
    }

    #[test]
    fn orcpt_goes_back_on_the_wire_xtext_encoded() {
        let o: Orcpt = "rfc822;a+b c@x.test".parse().unwrap();
        assert_eq!(o.to_xtext(), "rfc822;a+2Bb+20c@x.test");
    }
}
