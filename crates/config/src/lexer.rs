//! Splits one line of the configuration file into its syntactic form.
//!
//! Two syntaxes share the file: sendmail.cf lines (`O Name=value`,
//! `Dxvalue`) and m4 macro calls as the sendmail cookbook prints them
//! (`` define(`confX', `value')dnl ``). This module only recognises the
//! shape of a line and undoes m4 quoting; what the names mean is decided by
//! the option table.
//!
//! The file is read line by line: an m4 call must open and close on one
//! line. Real m4 lets quoted arguments span lines, but no define Postern
//! reads needs that, and a per-line rule keeps error positions exact.

/// The shape of one line.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line<'a> {
    /// Blank, `#` comment or `dnl` comment.
    Empty,
    /// `O Name=value` (name and value trimmed).
    CfOption { name: &'a str, value: &'a str },
    /// `Dxvalue` or `Dx value` (value trimmed).
    CfMacro { name: char, value: &'a str },
    /// `name(args…)`, quotes removed, followed by nothing or a `dnl` comment.
    M4Call { name: &'a str, args: Vec<String> },
    /// `Xname, S=…, F=…, T=…`: a mail filter.
    CfFilter { name: &'a str, equates: &'a str },
}

/// Classifies one line (without its newline).
pub(crate) fn lex(line: &str) -> Result<Line<'_>, String> {
    // Leading whitespace is tolerated everywhere; sendmail.cf continuation
    // lines (a line starting with white space) are not supported.
    let t = line.trim();
    if t.is_empty() || t.starts_with('#') {
        return Ok(Line::Empty);
    }
    // m4 first: `OSTYPE(` and `DAEMON_OPTIONS(` start like .cf lines.
    let ident_len = m4_name_len(t);
    if ident_len > 0 {
        let (name, after) = t.split_at(ident_len);
        if name == "dnl" {
            return Ok(Line::Empty);
        }
        if let Some(inner) = after.strip_prefix('(') {
            let (args, rest) = m4_args(inner)?;
            check_after_call(rest)?;
            return Ok(Line::M4Call { name, args });
        }
    }
    if let Some(rest) = t.strip_prefix('O') {
        return cf_option(rest);
    }
    if let Some(rest) = t.strip_prefix('X') {
        let (name, equates) = rest.split_once(',').unwrap_or((rest, ""));
        return Ok(Line::CfFilter {
            name: name.trim(),
            equates: equates.trim(),
        });
    }
    if let Some(rest) = t.strip_prefix('D') {
        let mut chars = rest.chars();
        return match chars.next() {
            Some('{') => {
                let long = rest.split_inclusive('}').next().unwrap_or(rest);
                Err(unsupported_macro(&format!("D{long}")))
            }
            Some(c) if c.is_ascii_alphanumeric() => Ok(Line::CfMacro {
                name: c,
                value: chars.as_str().trim(),
            }),
            _ => Err(malformed(t)),
        };
    }
    Err(malformed(t))
}

/// `O Name=value`: the character after `O` must be white space, as in
/// sendmail.cf, where `Ox…` is the old single-character form.
fn cf_option(rest: &str) -> Result<Line<'_>, String> {
    if !rest.is_empty() && !rest.starts_with(char::is_whitespace) {
        let opt: String = rest.chars().take(1).collect();
        return Err(format!(
            "single-character option \"O{opt}\" is not supported; use the long name (O Name=value)"
        ));
    }
    match rest.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => Ok(Line::CfOption {
            name: name.trim(),
            value: value.trim(),
        }),
        _ => Err("malformed option line; expected O Name=value".to_string()),
    }
}

/// The length of the m4 name (`[A-Za-z_][A-Za-z0-9_]*`) at the start of `s`.
fn m4_name_len(s: &str) -> usize {
    let first_ok = s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_');
    if !first_ok {
        return 0;
    }
    s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len())
}

/// After the closing parenthesis only white space or a `dnl` comment may
/// follow; anything else would be copied to m4's output, which is a mistake.
fn check_after_call(rest: &str) -> Result<(), String> {
    let rest = rest.trim_start();
    let is_dnl = rest
        .strip_prefix("dnl")
        .is_some_and(|after| !after.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_'));
    if rest.is_empty() || is_dnl {
        Ok(())
    } else {
        Err(format!(
            "unexpected text after \")\": \"{}\"",
            shorten(rest)
        ))
    }
}

/// Reads m4 arguments after the opening parenthesis, as m4 does: leading
/// white space of an argument is skipped, `` ` `` and `'` quote (and nest),
/// one level of quotes is removed, unquoted parentheses nest, and a comma or
/// `)` at the top level ends an argument. Unlike m4, trailing unquoted white
/// space is trimmed too (`define(a , b)` names `a`, not `a `).
/// Returns the arguments and the text after the closing parenthesis.
fn m4_args(s: &str) -> Result<(Vec<String>, &str), String> {
    let mut args = Vec::new();
    let mut cur = String::new();
    let mut keep = 0; // length of `cur` that is not trailing unquoted space
    let mut quote = 0usize;
    let mut paren = 0usize;
    let mut skipping = true; // leading white space of the current argument
    for (i, ch) in s.char_indices() {
        if quote > 0 {
            match ch {
                '`' => quote += 1,
                '\'' => quote -= 1,
                _ => {}
            }
            if quote > 0 {
                cur.push(ch);
            }
            keep = cur.len();
            continue;
        }
        if skipping && ch.is_whitespace() {
            continue;
        }
        skipping = false;
        match ch {
            '`' => {
                quote = 1;
                keep = cur.len();
            }
            ',' if paren == 0 => {
                cur.truncate(keep);
                args.push(std::mem::take(&mut cur));
                keep = 0;
                skipping = true;
            }
            ')' if paren == 0 => {
                cur.truncate(keep);
                args.push(cur);
                return Ok((args, &s[i + ch.len_utf8()..]));
            }
            _ => {
                if ch == '(' {
                    paren += 1;
                } else if ch == ')' {
                    paren -= 1;
                }
                cur.push(ch);
                if !ch.is_whitespace() {
                    keep = cur.len();
                }
            }
        }
    }
    if quote > 0 {
        Err("unbalanced quotes: a ` is never closed by '".to_string())
    } else {
        Err("unbalanced parentheses: missing \")\"".to_string())
    }
}

/// The message for a `D` line naming a macro Postern does not read.
pub(crate) fn unsupported_macro(name: &str) -> String {
    format!("unsupported macro \"{name}\"; only Dj (hostname) and DS (smart host) are read")
}

fn malformed(t: &str) -> String {
    format!("malformed line \"{}\"", shorten(t))
}

/// At most 40 characters of `s`, for quoting in messages.
pub(crate) fn shorten(s: &str) -> String {
    match s.char_indices().nth(40) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(line: &str) -> (String, Vec<String>) {
        match lex(line) {
            Ok(Line::M4Call { name, args }) => (name.to_string(), args),
            other => panic!("{line:?}: {other:?}"),
        }
    }

    #[test]
    fn cookbook_define() {
        let (name, args) = call("define(`confCACERT_PATH', `/etc/mail/certs')");
        assert_eq!(name, "define");
        assert_eq!(args, ["confCACERT_PATH", "/etc/mail/certs"]);
    }

    #[test]
    fn quotes_nest_and_protect_commas() {
        let (_, args) = call("define(`x', `a `b' c, d')dnl trailing");
        assert_eq!(args, ["x", "a `b' c, d"]);
    }

    #[test]
    fn unquoted_arguments_are_trimmed_and_parens_nest() {
        let (_, args) = call("define( confLOG_LEVEL ,  14 )");
        assert_eq!(args, ["confLOG_LEVEL", "14"]);
        let (_, args) = call("X((a, b), c)");
        assert_eq!(args, ["(a, b)", "c"]);
        let (_, args) = call("X(`  keep ', it's)");
        assert_eq!(args, ["  keep ", "it's"]);
    }

    #[test]
    fn cf_lines() {
        assert_eq!(
            lex("O  LogLevel = 14 ").unwrap(),
            Line::CfOption {
                name: "LogLevel",
                value: "14"
            }
        );
        assert_eq!(
            lex("Djmail.example.com").unwrap(),
            Line::CfMacro {
                name: 'j',
                value: "mail.example.com"
            }
        );
        assert_eq!(
            lex("DS").unwrap(),
            Line::CfMacro {
                name: 'S',
                value: ""
            }
        );
        assert!(lex("OL9").unwrap_err().contains("single-character"));
        assert!(lex("D{foo}bar").unwrap_err().contains("\"D{foo}\""));
    }

    #[test]
    fn comments_and_errors() {
        for l in ["", "   ", "# x", "  # y", "dnl", "dnl comment", "dnl#x"] {
            assert_eq!(lex(l).unwrap(), Line::Empty, "{l:?}");
        }
        assert!(lex("dnlx").unwrap_err().starts_with("malformed line"));
        assert!(lex("define(`a', `b)")
            .unwrap_err()
            .contains("unbalanced quotes"));
        assert!(lex("define(`a', b")
            .unwrap_err()
            .contains("unbalanced paren"));
        assert!(lex("define(a, b) x")
            .unwrap_err()
            .contains("unexpected text"));
        assert!(lex("define(a, b)dnlx").is_err());
        assert!(lex("define(a, b) dnl ok").is_ok());
    }
}
