//! sendmail's macros sent to filters: before each stage's command, an
//! `SMFIC_MACRO` packet with the stage's macros that have a value. Which
//! ones is configuration (`confMILTER_MACROS_CONNECT` and the others),
//! with sendmail's defaults, and a version 6 filter may ask for its own
//! list at negotiation.

use crate::wire::{self, command};

/// The stages macros are sent at, numbered as in libmilter (`SMFIM_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    Connect,
    Helo,
    EnvFrom,
    EnvRcpt,
    Data,
    Eom,
    Eoh,
}

impl Stage {
    pub const ALL: [Stage; 7] = [
        Stage::Connect,
        Stage::Helo,
        Stage::EnvFrom,
        Stage::EnvRcpt,
        Stage::Data,
        Stage::Eom,
        Stage::Eoh,
    ];

    /// libmilter's number for the stage.
    pub fn from_number(n: u32) -> Option<Self> {
        Self::ALL.get(n as usize).copied()
    }

    /// The command the macros go before.
    pub fn command(self) -> u8 {
        match self {
            Stage::Connect => command::CONNECT,
            Stage::Helo => command::HELO,
            Stage::EnvFrom => command::MAIL,
            Stage::EnvRcpt => command::RCPT,
            Stage::Data => command::DATA,
            Stage::Eom => command::BODY_EOB,
            Stage::Eoh => command::EOH,
        }
    }

    /// The `.cf` option (`O Milter.macros.connect=…`) and m4 define for
    /// the stage's list.
    pub fn option_names(self) -> (&'static str, &'static str) {
        match self {
            Stage::Connect => ("Milter.macros.connect", "confMILTER_MACROS_CONNECT"),
            Stage::Helo => ("Milter.macros.helo", "confMILTER_MACROS_HELO"),
            Stage::EnvFrom => ("Milter.macros.envfrom", "confMILTER_MACROS_ENVFROM"),
            Stage::EnvRcpt => ("Milter.macros.envrcpt", "confMILTER_MACROS_ENVRCPT"),
            Stage::Data => ("Milter.macros.data", "confMILTER_MACROS_DATA"),
            Stage::Eom => ("Milter.macros.eom", "confMILTER_MACROS_EOM"),
            Stage::Eoh => ("Milter.macros.eoh", "confMILTER_MACROS_EOH"),
        }
    }

    /// sendmail's default list (`cf/m4/proto.m4`).
    pub fn default_names(self) -> &'static [&'static str] {
        match self {
            Stage::Connect => &["j", "_", "{daemon_name}", "{if_name}", "{if_addr}"],
            Stage::Helo => &[
                "{tls_version}",
                "{cipher}",
                "{cipher_bits}",
                "{cert_subject}",
                "{cert_issuer}",
            ],
            Stage::EnvFrom => &[
                "i",
                "{auth_type}",
                "{auth_authen}",
                "{auth_ssf}",
                "{auth_author}",
                "{mail_mailer}",
                "{mail_host}",
                "{mail_addr}",
            ],
            Stage::EnvRcpt => &["{rcpt_mailer}", "{rcpt_host}", "{rcpt_addr}"],
            Stage::Eom => &["{msg_id}"],
            Stage::Data | Stage::Eoh => &[],
        }
    }
}

/// Splits a configured list (`j, _, {daemon_name}`) into names.
pub fn parse_list(text: &str) -> Vec<String> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// The bare name of a macro: `{daemon_name}` and `daemon_name` are the
/// same macro, as libmilter's `smfi_getsymval` takes either.
pub fn bare(name: &str) -> &str {
    name.strip_prefix('{')
        .and_then(|n| n.strip_suffix('}'))
        .unwrap_or(name)
}

/// The data of the `SMFIC_MACRO` packet for `stage`: the names in
/// `wanted` that `value` knows, each as written in the list.
pub fn packet_data(
    stage: Stage,
    wanted: &[String],
    value: impl Fn(&str) -> Option<String>,
) -> Vec<u8> {
    let mut data = vec![stage.command()];
    for name in wanted {
        if let Some(v) = value(bare(name)) {
            wire::c_string(&mut data, name.as_bytes());
            wire::c_string(&mut data, v.as_bytes());
        }
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_macros_with_a_value_are_sent_named_as_listed() {
        let wanted = parse_list("j, _ {daemon_name},{if_addr}");
        let data = packet_data(Stage::Connect, &wanted, |n| match n {
            "j" => Some("mx.example".into()),
            "daemon_name" => Some("MTA".into()),
            _ => None,
        });
        assert_eq!(data, b"Cj\0mx.example\0{daemon_name}\0MTA\0");
    }

    #[test]
    fn stages_number_as_libmilter() {
        assert_eq!(Stage::from_number(0), Some(Stage::Connect));
        assert_eq!(Stage::from_number(6), Some(Stage::Eoh));
        assert_eq!(Stage::from_number(7), None);
        assert_eq!(Stage::Eom.command(), b'E');
    }

    #[test]
    fn defaults_are_sendmails() {
        assert_eq!(Stage::EnvRcpt.default_names().len(), 3);
        assert!(Stage::Helo.default_names().contains(&"{cipher_bits}"));
        assert_eq!(bare("{msg_id}"), "msg_id");
        assert_eq!(bare("i"), "i");
    }
}
