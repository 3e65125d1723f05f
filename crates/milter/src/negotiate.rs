//! Option negotiation (`SMFIC_OPTNEG`): the MTA offers the protocol
//! version, the actions it can carry out and the protocol steps it can
//! leave out; the filter answers with what it wants of each, and may add
//! the macros it wants at each stage (version 6's `smfi_setsymlist`).

use crate::macros::Stage as MacroStage;
use crate::wire::split_c_strings;

/// The protocol version spoken (libmilter's SMFI_PROT_VERSION).
pub const VERSION: u32 = 6;
/// The oldest filter version still spoken to (sendmail's minimum).
pub const OLDEST_VERSION: u32 = 2;

/// What a filter may do at end of message (`SMFIF_*`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Actions(pub u32);

impl Actions {
    pub const ADD_HEADERS: u32 = 0x01;
    pub const CHANGE_BODY: u32 = 0x02;
    pub const ADD_RCPT: u32 = 0x04;
    pub const DEL_RCPT: u32 = 0x08;
    pub const CHANGE_HEADERS: u32 = 0x10;
    pub const QUARANTINE: u32 = 0x20;
    pub const CHANGE_FROM: u32 = 0x40;
    pub const ADD_RCPT_PAR: u32 = 0x80;
    pub const SET_SYMBOL_LIST: u32 = 0x100;
    /// Everything above: what Postern offers.
    pub const ALL: u32 = 0x1ff;

    pub fn allows(self, action: u32) -> bool {
        self.0 & action != 0
    }
}

/// Protocol steps a filter does without (`SMFIP_*`): `NO_*` are not sent
/// at all, `NR_*` are sent but not answered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Steps(pub u32);

impl Steps {
    pub const NO_CONNECT: u32 = 0x01;
    pub const NO_HELO: u32 = 0x02;
    pub const NO_MAIL: u32 = 0x04;
    pub const NO_RCPT: u32 = 0x08;
    pub const NO_BODY: u32 = 0x10;
    pub const NO_HEADERS: u32 = 0x20;
    pub const NO_EOH: u32 = 0x40;
    pub const NR_HEADER: u32 = 0x80;
    pub const NO_UNKNOWN: u32 = 0x100;
    pub const NO_DATA: u32 = 0x200;
    /// The MTA understands `SMFIR_SKIP` (the rest of the body is not
    /// wanted).
    pub const SKIP: u32 = 0x400;
    /// Rejected recipients are sent too. Not offered: Postern sends the
    /// recipients it accepted only.
    pub const RCPT_REJECTED: u32 = 0x800;
    pub const NR_CONNECT: u32 = 0x1000;
    pub const NR_HELO: u32 = 0x2000;
    pub const NR_MAIL: u32 = 0x4000;
    pub const NR_RCPT: u32 = 0x8000;
    pub const NR_DATA: u32 = 0x10000;
    pub const NR_UNKNOWN: u32 = 0x20000;
    pub const NR_EOH: u32 = 0x40000;
    pub const NR_BODY: u32 = 0x80000;
    /// Header values are sent, and taken back, with the space after the
    /// colon kept.
    pub const HEADER_LEADING_SPACE: u32 = 0x100000;
    /// What Postern offers: everything but RCPT_REJECTED (and the larger
    /// packet sizes: body chunks stay at 64 KiB).
    pub const OFFERED: u32 = 0x1f_ffff & !Self::RCPT_REJECTED;

    pub fn has(self, step: u32) -> bool {
        self.0 & step != 0
    }
}

/// The filter's side of the negotiation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Negotiated {
    pub version: u32,
    pub actions: Actions,
    pub steps: Steps,
    /// Macros the filter asked for, by stage, replacing the configured
    /// list for that stage.
    pub macro_requests: Vec<(MacroStage, Vec<String>)>,
}

/// A negotiation answer that cannot be used.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum NegotiationError {
    #[error("negotiation reply of {0} bytes is too short")]
    TooShort(usize),
    #[error("filter speaks protocol version {0}, not 2 to 6")]
    Version(u32),
    #[error("filter asks for actions 0x{asked:x}, more than offered 0x{offered:x}")]
    Actions { asked: u32, offered: u32 },
    #[error("filter asks for protocol steps 0x{asked:x}, more than offered 0x{offered:x}")]
    Steps { asked: u32, offered: u32 },
    #[error("filter's macro list is malformed")]
    MacroList,
}

/// The MTA's offer: the data of the `SMFIC_OPTNEG` packet.
pub fn offer() -> Vec<u8> {
    let mut data = Vec::with_capacity(12);
    data.extend_from_slice(&VERSION.to_be_bytes());
    data.extend_from_slice(&Actions::ALL.to_be_bytes());
    data.extend_from_slice(&Steps::OFFERED.to_be_bytes());
    data
}

/// Reads the filter's answer to [`offer`], as sendmail checks it: a
/// version it speaks, and no action or step beyond the offer.
pub fn accept(data: &[u8]) -> Result<Negotiated, NegotiationError> {
    let word = |i: usize| -> Option<u32> {
        data.get(i * 4..i * 4 + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    let (Some(version), Some(actions), Some(steps)) = (word(0), word(1), word(2)) else {
        return Err(NegotiationError::TooShort(data.len()));
    };
    if !(OLDEST_VERSION..=VERSION).contains(&version) {
        return Err(NegotiationError::Version(version));
    }
    if actions & !Actions::ALL != 0 {
        return Err(NegotiationError::Actions {
            asked: actions,
            offered: Actions::ALL,
        });
    }
    // libmilter sets the larger-size bits on its own; they change nothing
    // here (Postern never sends more than 64 KiB in a packet).
    let steps_asked = steps & 0x0fff_ffff;
    if steps_asked & !Steps::OFFERED != 0 {
        return Err(NegotiationError::Steps {
            asked: steps,
            offered: Steps::OFFERED,
        });
    }
    let macro_requests = macro_requests(&data[12..])?;
    Ok(Negotiated {
        version,
        actions: Actions(actions),
        steps: Steps(steps_asked),
        macro_requests,
    })
}

/// The `(stage, "{a} b {c}")` pairs after the three words.
fn macro_requests(mut rest: &[u8]) -> Result<Vec<(MacroStage, Vec<String>)>, NegotiationError> {
    let mut found = Vec::new();
    while !rest.is_empty() {
        let (stage, tail) = rest
            .split_first_chunk::<4>()
            .ok_or(NegotiationError::MacroList)?;
        let stage = MacroStage::from_number(u32::from_be_bytes(*stage))
            .ok_or(NegotiationError::MacroList)?;
        let end = tail
            .iter()
            .position(|&b| b == 0)
            .ok_or(NegotiationError::MacroList)?;
        let names = split_c_strings(&tail[..=end])
            .and_then(|v| v.first().copied())
            .ok_or(NegotiationError::MacroList)?;
        let names = String::from_utf8_lossy(names)
            .split([' ', ','])
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        found.push((stage, names));
        rest = &tail[end + 1..];
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(version: u32, actions: u32, steps: u32, extra: &[u8]) -> Vec<u8> {
        let mut d = Vec::new();
        for w in [version, actions, steps] {
            d.extend_from_slice(&w.to_be_bytes());
        }
        d.extend_from_slice(extra);
        d
    }

    #[test]
    fn the_offer_is_version_6_everything_but_rejected_recipients() {
        assert_eq!(
            offer(),
            [0, 0, 0, 6, 0, 0, 1, 0xff, 0, 0x1f, 0xf7, 0xff].to_vec()
        );
    }

    #[test]
    fn an_answer_within_the_offer_is_taken() {
        let n = accept(&answer(6, 0x03, Steps::NO_CONNECT | Steps::NR_HEADER, &[])).unwrap();
        assert_eq!(n.version, 6);
        assert!(n.actions.allows(Actions::ADD_HEADERS));
        assert!(!n.actions.allows(Actions::CHANGE_FROM));
        assert!(n.steps.has(Steps::NR_HEADER));
        assert!(n.macro_requests.is_empty());
    }

    #[test]
    fn libmilters_size_bits_are_ignored() {
        let n = accept(&answer(6, 0, 0x1000_0000 | Steps::SKIP, &[])).unwrap();
        assert_eq!(n.steps, Steps(Steps::SKIP));
    }

    #[test]
    fn answers_beyond_the_offer_are_refused() {
        assert_eq!(
            accept(&answer(7, 0, 0, &[])),
            Err(NegotiationError::Version(7))
        );
        assert_eq!(
            accept(&answer(1, 0, 0, &[])),
            Err(NegotiationError::Version(1))
        );
        assert!(matches!(
            accept(&answer(6, 0x200, 0, &[])),
            Err(NegotiationError::Actions { .. })
        ));
        assert!(matches!(
            accept(&answer(6, 0, Steps::RCPT_REJECTED, &[])),
            Err(NegotiationError::Steps { .. })
        ));
        assert_eq!(accept(&[0, 0, 0, 6]), Err(NegotiationError::TooShort(4)));
    }

    #[test]
    fn macro_lists_are_read_by_stage() {
        let mut extra = Vec::new();
        extra.extend_from_slice(&2u32.to_be_bytes());
        extra.extend_from_slice(b"{auth_authen} i\0");
        extra.extend_from_slice(&5u32.to_be_bytes());
        extra.extend_from_slice(b"{msg_id}\0");
        let n = accept(&answer(6, Actions::SET_SYMBOL_LIST, 0, &extra)).unwrap();
        assert_eq!(
            n.macro_requests,
            vec![
                (
                    MacroStage::EnvFrom,
                    vec!["{auth_authen}".into(), "i".into()]
                ),
                (MacroStage::Eom, vec!["{msg_id}".into()]),
            ]
        );
        let mut bad = 9u32.to_be_bytes().to_vec();
        bad.extend_from_slice(b"j\0");
        assert_eq!(
            accept(&answer(6, 0, 0, &bad)),
            Err(NegotiationError::MacroList)
        );
        assert_eq!(
            accept(&answer(6, 0, 0, &[0, 0, 0, 1, b'j'])),
            Err(NegotiationError::MacroList)
        );
    }
}
