//! The command table and the first cut of a command line: verb and argument.
//!
//! The table is data (Postfix `smtpd_cmd_table`, OpenSMTPD `commands[]`):
//! each verb says whether it must end a pipelined group (RFC 2920 §3.1)
//! and whether traffic already queued behind it is a protocol violation.
//! Arguments are parsed by the session's handlers, which know the policy
//! (what is offered, the size limit) that decides their replies.

/// The verbs Postern knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verb {
    /// HELO (RFC 5321).
    Helo,
    /// EHLO (RFC 5321).
    Ehlo,
    /// MAIL FROM.
    Mail,
    /// RCPT TO.
    Rcpt,
    /// DATA.
    Data,
    /// RSET.
    Rset,
    /// NOOP.
    Noop,
    /// QUIT.
    Quit,
    /// VRFY.
    Vrfy,
    /// EXPN.
    Expn,
    /// HELP.
    Help,
    /// VERB (sendmail's verbose mode).
    Verb,
    /// ETRN (RFC 1985).
    Etrn,
    /// STARTTLS (RFC 3207).
    StartTls,
    /// AUTH (RFC 4954).
    Auth,
}

/// One row of the command table.
#[derive(Debug)]
pub struct CommandSpec {
    /// The verb as written on the wire (upper case).
    pub name: &'static str,
    /// Which verb this is.
    pub verb: Verb,
    /// RFC 2920 §3.1: may only be the last command of a pipelined group.
    pub ends_group: bool,
    /// Commands a client must not pipeline behind: input already waiting
    /// when this command is handled is a synchronisation error (sendmail
    /// 8.18 "traffic before response", Postfix `smtpd_forbid_unauth_pipelining`).
    /// STARTTLS is not listed: what follows it is discarded instead.
    pub sync_point: bool,
    /// Longest line this command may have, CRLF included.
    pub max_line: usize,
}

const fn spec(name: &'static str, verb: Verb, ends_group: bool, sync_point: bool) -> CommandSpec {
    CommandSpec {
        name,
        verb,
        ends_group,
        sync_point,
        max_line: crate::limits::COMMAND_LINE,
    }
}

/// The command table.
pub const COMMANDS: &[CommandSpec] = &[
    spec("HELO", Verb::Helo, true, true),
    spec("EHLO", Verb::Ehlo, true, true),
    CommandSpec {
        max_line: crate::limits::MAIL_RCPT_LINE,
        ..spec("MAIL", Verb::Mail, false, false)
    },
    CommandSpec {
        max_line: crate::limits::MAIL_RCPT_LINE,
        ..spec("RCPT", Verb::Rcpt, false, false)
    },
    spec("DATA", Verb::Data, true, true),
    spec("RSET", Verb::Rset, false, false),
    spec("NOOP", Verb::Noop, true, false),
    spec("QUIT", Verb::Quit, true, false),
    spec("VRFY", Verb::Vrfy, true, false),
    spec("EXPN", Verb::Expn, true, false),
    spec("HELP", Verb::Help, false, false),
    spec("VERB", Verb::Verb, false, false),
    spec("ETRN", Verb::Etrn, false, false),
    spec("STARTTLS", Verb::StartTls, true, false),
    CommandSpec {
        max_line: crate::limits::AUTH_LINE,
        ..spec("AUTH", Verb::Auth, true, false)
    },
];

/// A command line split into its table row and its argument.
#[derive(Debug)]
pub struct CommandLine<'a> {
    /// The row of the table.
    pub spec: &'static CommandSpec,
    /// Everything after the verb and the spaces that follow it.
    pub arg: &'a str,
}

/// Looks the verb of `line` (no CRLF) up in the table. `None` means an
/// unrecognised command; the caller quotes the line back (sendmail's 500).
pub fn split_command(line: &str) -> Option<CommandLine<'_>> {
    let (word, arg) = match line.find(' ') {
        Some(i) => (&line[..i], line[i..].trim_start_matches(' ')),
        None => (line, ""),
    };
    COMMANDS
        .iter()
        .find(|c| c.name.eq_ignore_ascii_case(word))
        .map(|spec| CommandLine { spec, arg })
}

/// Splits the argument of MAIL or RCPT, `FROM:<path> params` or
/// `TO:<path> params`, into path text and parameter text. The keyword is
/// matched without case and spaces after the colon are tolerated, as
/// sendmail tolerates them. A path in angle brackets ends at the `>` that
/// is not inside a quoted local part.
pub fn split_path_arg<'a>(arg: &'a str, keyword: &str) -> Option<(&'a str, &'a str)> {
    let head = arg.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = arg[keyword.len()..].trim_start_matches(' ');
    if rest.is_empty() {
        return None;
    }
    let end = if rest.starts_with('<') {
        closing_bracket(rest)? + 1
    } else {
        rest.find(' ').unwrap_or(rest.len())
    };
    let (path, params) = rest.split_at(end);
    if !params.is_empty() && !params.starts_with(' ') {
        return None;
    }
    Some((path, params.trim_start_matches(' ')))
}

fn closing_bracket(text: &str) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, b) in text.bytes().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            b'>' if !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_are_matched_without_case() {
        let c = split_command("ehlo  localhost").unwrap();
        assert_eq!(c.spec.verb, Verb::Ehlo);
        assert_eq!(c.arg, "localhost");
        assert!(split_command("EHLOX a").is_none());
        assert!(split_command("").is_none());
    }

    #[test]
    fn path_arguments() {
        assert_eq!(
            split_path_arg("FROM:<a@b> SIZE=1", "FROM:"),
            Some(("<a@b>", "SIZE=1"))
        );
        assert_eq!(split_path_arg("from: <a@b>", "FROM:"), Some(("<a@b>", "")));
        assert_eq!(split_path_arg("TO:a@b", "TO:"), Some(("a@b", "")));
        assert_eq!(
            split_path_arg("TO:<\"x>y\"@b> NOTIFY=NEVER", "TO:"),
            Some(("<\"x>y\"@b>", "NOTIFY=NEVER"))
        );
        assert_eq!(split_path_arg("FROM:", "FROM:"), None);
        assert_eq!(split_path_arg("FROM<a@b>", "FROM:"), None);
        assert_eq!(split_path_arg("FROM:<a@b>x", "FROM:"), None);
        assert_eq!(split_path_arg("FROM:<a@b", "FROM:"), None);
    }
}
