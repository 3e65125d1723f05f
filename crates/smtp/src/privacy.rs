//! sendmail's `PrivacyOptions` flags (option `p`, m4 `confPRIVACY_FLAGS`).
//!
//! The bit values are sendmail's own (`sendmail/sendmail.h`), so that a value
//! printed in hex by `postern check-config` means the same as in sendmail.
//! This module owns the flag names and the composite `goaway`; splitting an
//! option value into words and reporting errors with file and line is the
//! configuration crate's job.

use std::fmt;

/// A set of sendmail privacy flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PrivacyFlags(u32);

impl PrivacyFlags {
    /// No restrictions at all (what an empty `PrivacyOptions` means in a .cf file).
    pub const PUBLIC: Self = Self(0);
    /// MAIL before HELO/EHLO is refused.
    pub const NEED_MAIL_HELO: Self = Self(0x1);
    /// EXPN before HELO/EHLO is refused.
    pub const NEED_EXPN_HELO: Self = Self(0x2);
    /// VRFY before HELO/EHLO is refused.
    pub const NEED_VRFY_HELO: Self = Self(0x4);
    /// EXPN is disabled and not advertised; this also hides VERB.
    pub const NO_EXPN: Self = Self(0x8);
    /// VRFY gives a non-answer.
    pub const NO_VRFY: Self = Self(0x10);
    /// `X-Authentication-Warning:` headers are added where a message looks forged.
    pub const AUTH_WARNINGS: Self = Self(0x20);
    /// VERB is disabled and not advertised.
    pub const NO_VERB: Self = Self(0x40);
    /// Only privileged users and the queue directory's group may list the queue.
    pub const RESTRICT_MAILQ: Self = Self(0x1_0000);
    /// Only root and the queue directory's owner may run the queue.
    pub const RESTRICT_QRUN: Self = Self(0x2_0000);
    /// No alias expansion for untrusted users of `-bv` and `-v`.
    pub const RESTRICT_EXPAND: Self = Self(0x4_0000);
    /// ETRN is disabled and not advertised.
    pub const NO_ETRN: Self = Self(0x8_0000);
    /// Bounces never carry the message body.
    pub const NO_BODY_RETURN: Self = Self(0x10_0000);
    /// DSN is not offered and no success notifications are sent.
    pub const NO_RECEIPTS: Self = Self(0x20_0000);
    /// No `X-Actual-Recipient:` lines in DSNs.
    pub const NO_ACTUAL_RECIPIENT: Self = Self(0x40_0000);
    /// The client's own text is not echoed back in error replies.
    pub const NO_REFLECTION: Self = Self(0x80_0000);
    /// The composite: every flag of the low sixteen bits. It does not set
    /// noetrn, noreceipts, nobodyreturn, restrict* or noactualrecipient
    /// (sendmail's op.txt and sendmail.h agree), nor noreflection: the
    /// real sendmail 8.17 still echoes an unknown command under goaway
    /// (`tests/samples/sendmail-8.17/smtp-transcripts.txt`, B1), whatever
    /// a sendmail.h built with _FFR_NOREFLECT says.
    pub const GOAWAY: Self = Self(0xffff);
    /// What a configuration built from m4 gets when it says nothing
    /// (cf.README: `confPRIVACY_FLAGS PrivacyOptions [authwarnings]`).
    pub const M4_DEFAULT: Self = Self::AUTH_WARNINGS;

    /// The words sendmail accepts, in the order of its `PrivacyValues[]` table.
    pub const NAMES: &'static [(&'static str, PrivacyFlags)] = &[
        ("public", Self::PUBLIC),
        ("needmailhelo", Self::NEED_MAIL_HELO),
        ("needexpnhelo", Self::NEED_EXPN_HELO),
        ("needvrfyhelo", Self::NEED_VRFY_HELO),
        ("noexpn", Self::NO_EXPN),
        ("novrfy", Self::NO_VRFY),
        ("restrictexpand", Self::RESTRICT_EXPAND),
        ("restrictmailq", Self::RESTRICT_MAILQ),
        ("restrictqrun", Self::RESTRICT_QRUN),
        ("noetrn", Self::NO_ETRN),
        ("noverb", Self::NO_VERB),
        ("authwarnings", Self::AUTH_WARNINGS),
        ("noreceipts", Self::NO_RECEIPTS),
        ("nobodyreturn", Self::NO_BODY_RETURN),
        ("goaway", Self::GOAWAY),
        ("noactualrecipient", Self::NO_ACTUAL_RECIPIENT),
        ("noreflection", Self::NO_REFLECTION),
    ];

    /// The flag (or composite) for one word, matched without regard to case.
    pub fn from_word(word: &str) -> Option<Self> {
        Self::NAMES
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(word))
            .map(|&(_, flags)| flags)
    }

    /// Builds a set from raw sendmail bits.
    pub const fn from_bits(bits: u32) -> Self {
        Self(bits)
    }

    /// The raw sendmail bits.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// True when every flag of `other` is set here.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// The union of two sets.
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// True when EXPN is offered (not `noexpn`).
    pub const fn expn_allowed(self) -> bool {
        !self.contains(Self::NO_EXPN)
    }

    /// True when VERB is offered: sendmail offers VERB only where it offers EXPN.
    pub const fn verb_allowed(self) -> bool {
        self.expn_allowed() && !self.contains(Self::NO_VERB)
    }
}

impl std::ops::BitOr for PrivacyFlags {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        self.union(rhs)
    }
}

impl std::ops::BitOrAssign for PrivacyFlags {
    fn bitor_assign(&mut self, rhs: Self) {
        *self = self.union(rhs);
    }
}

/// Lists the flags by name, comma-separated, so that the text parses back
/// to the same set: `goaway` when it is all there (its bits 0x80–0x8000 have
/// no names of their own), then the single flags outside it; `public` for
/// the empty set.
impl fmt::Display for PrivacyFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let goaway = self.contains(Self::GOAWAY);
        let mut names: Vec<&str> = Vec::new();
        if goaway {
            names.push("goaway");
        }
        names.extend(
            Self::NAMES
                .iter()
                .filter(|(_, flag)| flag.0.count_ones() == 1 && self.contains(*flag))
                .filter(|(_, flag)| !(goaway && Self::GOAWAY.contains(*flag)))
                .map(|(name, _)| *name),
        );
        if names.is_empty() {
            names.push("public");
        }
        f.write_str(&names.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goaway_sets_the_documented_flags_and_no_others() {
        let g = PrivacyFlags::GOAWAY;
        for f in [
            PrivacyFlags::NEED_MAIL_HELO,
            PrivacyFlags::NEED_EXPN_HELO,
            PrivacyFlags::NEED_VRFY_HELO,
            PrivacyFlags::NO_EXPN,
            PrivacyFlags::NO_VRFY,
            PrivacyFlags::AUTH_WARNINGS,
            PrivacyFlags::NO_VERB,
        ] {
            assert!(g.contains(f), "{f}");
        }
        for f in [
            PrivacyFlags::NO_ETRN,
            PrivacyFlags::NO_RECEIPTS,
            PrivacyFlags::NO_BODY_RETURN,
            PrivacyFlags::RESTRICT_MAILQ,
            PrivacyFlags::RESTRICT_QRUN,
            PrivacyFlags::RESTRICT_EXPAND,
            PrivacyFlags::NO_ACTUAL_RECIPIENT,
        ] {
            assert!(!g.contains(f), "{f}");
        }
    }

    #[test]
    fn words_match_without_case() {
        assert_eq!(
            PrivacyFlags::from_word("NoExpn"),
            Some(PrivacyFlags::NO_EXPN)
        );
        assert_eq!(PrivacyFlags::from_word("nosuchflag"), None);
    }

    #[test]
    fn noexpn_hides_verb() {
        assert!(!PrivacyFlags::NO_EXPN.verb_allowed());
        assert!(PrivacyFlags::NO_VRFY.verb_allowed());
    }

    #[test]
    fn display_names_single_flags() {
        let f = PrivacyFlags::NO_EXPN | PrivacyFlags::NO_ETRN;
        assert_eq!(f.to_string(), "noexpn,noetrn");
        assert_eq!(PrivacyFlags::PUBLIC.to_string(), "public");
        let g = PrivacyFlags::GOAWAY | PrivacyFlags::NO_ETRN;
        assert_eq!(g.to_string(), "goaway,noetrn");
    }

    #[test]
    fn display_parses_back_to_the_same_set() {
        for (_, flags) in PrivacyFlags::NAMES {
            let mut set = *flags | PrivacyFlags::RESTRICT_QRUN;
            let text = set.to_string();
            let back = text
                .split(',')
                .map(|w| PrivacyFlags::from_word(w).unwrap())
                .fold(PrivacyFlags::PUBLIC, |a, b| a | b);
            assert_eq!(back, set, "{text}");
            set = PrivacyFlags::PUBLIC;
            assert_eq!(set.to_string(), "public");
        }
    }
}
