//! The shape of the option table and lookups in it, by the name a line uses.
//! The table itself, the data, is in `options.rs`.

use crate::options::OPTIONS;
use crate::Config;

/// How the option is written in a sendmail.cf file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CfName {
    /// `O Name=value`; the first name is canonical, the rest are aliases.
    /// Matched without regard to case, like sendmail's `strcasecmp`.
    Option(&'static [&'static str]),
    /// `Dxvalue`, a one-character macro.
    Macro(char),
}

/// How the option is written in m4.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum M4Name {
    /// `` define(`name', `value') ``; names are case-sensitive, as in m4.
    Define(&'static [&'static str]),
    /// `` NAME(`value') ``, a macro of its own (`DAEMON_OPTIONS`).
    Macro(&'static str),
}

/// Reads one value into the configuration. The second argument is the
/// option's name as it should appear in error messages.
type Setter = fn(&mut Config, &str, &str) -> Result<(), String>;

/// One option.
pub(crate) struct Opt {
    pub cf: CfName,
    pub m4: M4Name,
    /// Values applied when the file never mentions the option. Repeatable
    /// options (`DaemonPortOptions`) may have several, and none means unset.
    pub default: &'static [&'static str],
    pub set: Setter,
    /// The current values, in the option's own syntax (one per line for
    /// repeatable options).
    pub show: fn(&Config) -> Vec<String>,
}

impl Opt {
    /// The canonical .cf spelling (`O Name` or `Dx`), for messages.
    pub fn cf_display(&self) -> String {
        match self.cf {
            CfName::Option(names) => names.first().copied().unwrap_or("").to_string(),
            CfName::Macro(c) => format!("D{c}"),
        }
    }
}

/// The option written `O name=…` (any case, aliases included).
pub(crate) fn by_cf_option(name: &str) -> Option<(usize, &'static Opt)> {
    OPTIONS.iter().enumerate().find(|(_, o)| match o.cf {
        CfName::Option(names) => names.iter().any(|n| n.eq_ignore_ascii_case(name)),
        CfName::Macro(_) => false,
    })
}

/// The option written `Dc…`.
pub(crate) fn by_cf_macro(c: char) -> Option<(usize, &'static Opt)> {
    OPTIONS
        .iter()
        .enumerate()
        .find(|(_, o)| o.cf == CfName::Macro(c))
}

/// The option written `` define(`name', …) ``.
pub(crate) fn by_m4_define(name: &str) -> Option<(usize, &'static Opt)> {
    OPTIONS.iter().enumerate().find(|(_, o)| match o.m4 {
        M4Name::Define(names) => names.contains(&name),
        M4Name::Macro(_) => false,
    })
}

/// Every `O` name (aliases included), for "did you mean".
pub(crate) fn cf_option_names() -> impl Iterator<Item = &'static str> {
    OPTIONS.iter().flat_map(|o| match o.cf {
        CfName::Option(names) => names.iter().copied(),
        CfName::Macro(_) => [].iter().copied(),
    })
}

/// Every m4 `define` name, for "did you mean".
pub(crate) fn m4_define_names() -> impl Iterator<Item = &'static str> {
    OPTIONS.iter().flat_map(|o| match o.m4 {
        M4Name::Define(names) => names.iter().copied(),
        M4Name::Macro(_) => [].iter().copied(),
    })
}

/// The option written as its own m4 macro, `` NAME(`value') ``.
pub(crate) fn by_m4_macro(name: &str) -> Option<(usize, &'static Opt)> {
    OPTIONS
        .iter()
        .enumerate()
        .find(|(_, o)| matches!(o.m4, M4Name::Macro(m) if m == name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_are_unique_in_each_syntax() {
        let mut cf = HashSet::new();
        let mut m4 = HashSet::new();
        for o in OPTIONS {
            match o.cf {
                CfName::Option(names) => names.iter().for_each(|n| {
                    assert!(cf.insert(n.to_ascii_lowercase()), "{n}");
                }),
                CfName::Macro(c) => assert!(cf.insert(format!("${c}"))),
            }
            match o.m4 {
                M4Name::Define(names) => names.iter().for_each(|n| assert!(m4.insert(*n), "{n}")),
                M4Name::Macro(n) => assert!(m4.insert(n)),
            }
        }
    }

    #[test]
    fn lookups() {
        assert_eq!(
            by_cf_option("loglevel")
                .map(|(_, o)| o.cf_display())
                .as_deref(),
            Some("LogLevel")
        );
        assert!(by_cf_option("Timeout.QueueReturn.Normal").is_some());
        assert!(by_m4_define("conflog_level").is_none());
        assert!(by_cf_macro('j').is_some() && by_cf_macro('s').is_none());
        assert!(by_m4_macro("DAEMON_OPTIONS").is_some());
    }
}
