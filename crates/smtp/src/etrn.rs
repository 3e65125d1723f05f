//! What an ETRN argument names (RFC 1985), in sendmail's three forms:
//! `host` (the queued mail for recipients at that host), `@domain` (that
//! domain and its subdomains) and `#queue` (a whole queue group).
//!
//! Postern has one queue group, named [`QUEUE_GROUP`] after sendmail's
//! default (`mqueue`, the queue directory's name there); sendmail finds
//! groups by name without regard to case (`name2qid`, a symbol table
//! lookup with `sm_strcasecmp`), and so does [`Target::is_known_group`].

/// The name of Postern's one queue group, as `ETRN #mqueue` gives it.
pub const QUEUE_GROUP: &str = "mqueue";

/// An ETRN argument, parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target<'a> {
    /// `ETRN host`: recipients whose domain is `host`.
    Node(&'a str),
    /// `ETRN @domain`: recipients in `domain` or one of its subdomains.
    Domain(&'a str),
    /// `ETRN #queue`: every message of the queue group.
    QueueGroup(&'a str),
}

impl<'a> Target<'a> {
    /// Reads an ETRN argument (never empty: the session answers `500 5.5.2
    /// Parameter required` first).
    pub fn parse(argument: &'a str) -> Target<'a> {
        if let Some(group) = argument.strip_prefix('#') {
            Target::QueueGroup(group)
        } else if let Some(domain) = argument.strip_prefix('@') {
            Target::Domain(domain)
        } else {
            Target::Node(argument)
        }
    }

    /// A `#queue` naming the queue group Postern has.
    pub fn is_known_group(&self) -> bool {
        matches!(self, Target::QueueGroup(g) if g.eq_ignore_ascii_case(QUEUE_GROUP))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_forms() {
        assert_eq!(Target::parse("example.com"), Target::Node("example.com"));
        assert_eq!(Target::parse("@example.com"), Target::Domain("example.com"));
        assert_eq!(Target::parse("#mqueue"), Target::QueueGroup("mqueue"));
        assert!(Target::parse("#mqueue").is_known_group());
        assert!(Target::parse("#MQueue").is_known_group());
        assert!(!Target::parse("#nosuch").is_known_group());
        assert!(!Target::parse("mqueue").is_known_group());
    }
}
