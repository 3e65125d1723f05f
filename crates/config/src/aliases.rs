//! The aliases file (`/etc/mail/aliases`, or `AliasFile`), read as sendmail
//! reads it (`alias.c`, `readaliases`), and the address lists of
//! `:include:` files.
//!
//! This module owns the syntax only: it turns text into [`Aliases`] (name →
//! targets) or an [`AliasTarget`] list, with `file:line: …` errors in
//! sendmail's words. Expanding a recipient through the table (nesting,
//! includes, loops, owners) is the queue runner's (`crates/daemon`,
//! `aliases/`); delivering to files and programs is the local delivery
//! agent's.
//!
//! The syntax:
//! - `name: target, target, …`; the name is matched without regard to case
//!   (sendmail lower-cases keys); it may be quoted (`"john doe": jd`);
//! - `#` at the start of a line is a comment, as is an empty line;
//! - a line that starts with a space or a tab continues the previous one;
//!   a backslash at the end of a line joins the next one too;
//! - targets: a local user (`bob`, or `\bob`: that user's mailbox, not
//!   aliased again), an address (`bob@example.com`, `<bob@example.com>`),
//!   `:include:/path` (a list, one or more addresses per line),
//!   `/path/file` (append to that file), `|program args` or
//!   `"|program args"` (pipe to a program; the quotes keep its commas);
//! - `owner-list: addr` names where errors for `list`'s deliveries go, and
//!   `list-request` is an ordinary alias by convention.
//!
//! A missing file is an empty table (and `postmaster` and `MAILER-DAEMON`
//! are then missing: [`Aliases::missing_required`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use postern_smtp::address::parse_mailbox;

use crate::error::{ConfigError, ConfigErrors};

/// Aliases every site must have (RFC 5321 §4.5.1 for postmaster; the
/// sender of sendmail's bounces for MAILER-DAEMON).
pub const REQUIRED_ALIASES: [&str; 2] = ["postmaster", "MAILER-DAEMON"];

/// Where one member of an alias sends mail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AliasTarget {
    /// A local user or an address, as written (angle brackets removed). A
    /// leading backslash (`\bob`) means "this user's own mailbox": no
    /// further alias lookup.
    Address(String),
    /// `:include:/path`: the addresses listed in that file.
    Include(PathBuf),
    /// `/path/file`: append the message to this file.
    File(PathBuf),
    /// `|program args`: pipe the message to this command (without the `|`).
    Program(String),
}

impl std::fmt::Display for AliasTarget {
    /// The target as an aliases file writes it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // In angle brackets when it would read as a file, a program
            // or an include (`</x>` is the local user `/x`).
            AliasTarget::Address(a) if a.starts_with(['/', '|']) || a.starts_with(":include:") => {
                write!(f, "<{a}>")
            }
            AliasTarget::Address(a) => f.write_str(a),
            AliasTarget::Include(p) => write!(f, ":include:{}", p.display()),
            // Quoted when the list syntax would cut or trim it.
            AliasTarget::File(p) => {
                let path = p.display().to_string();
                let plain = !path.contains([',', '"', '<', '>']) && path.trim() == path;
                if plain {
                    f.write_str(&path)
                } else {
                    write!(f, "\"{path}\"")
                }
            }
            AliasTarget::Program(c) => write!(f, "\"|{c}\""),
        }
    }
}

/// One alias.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alias {
    /// The name as written.
    pub name: String,
    /// Its targets, in order.
    pub targets: Vec<AliasTarget>,
    /// The line it starts on.
    pub line: usize,
}

/// sendmail's statistics line: `N aliases, longest L bytes, T bytes total`
/// (the longest right-hand side; the total of names and right-hand sides).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AliasStats {
    /// Aliases read.
    pub aliases: usize,
    /// Length of the longest right-hand side.
    pub longest: usize,
    /// Sum of the lengths of names and right-hand sides.
    pub total: usize,
}

/// The aliases table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Aliases {
    path: PathBuf,
    entries: BTreeMap<String, Alias>,
    stats: AliasStats,
}

impl Aliases {
    /// Reads the file at `path`; a missing file is an empty table.
    pub fn load(path: &Path) -> Result<Self, ConfigErrors> {
        match std::fs::read(path) {
            Ok(bytes) => Self::parse_str(&String::from_utf8_lossy(&bytes), path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self {
                path: path.to_path_buf(),
                ..Self::default()
            }),
            Err(e) => Err(ConfigErrors(vec![ConfigError::new(
                path,
                0,
                format!("cannot read: {e}"),
            )])),
        }
    }

    /// Parses `text` as the aliases file `path`. Every bad line is
    /// reported; the table is returned only when there are none.
    pub fn parse_str(text: &str, path: &Path) -> Result<Self, ConfigErrors> {
        let mut table = Self {
            path: path.to_path_buf(),
            ..Self::default()
        };
        let mut errors = Vec::new();
        for (line, entry) in logical_lines(text, path, &mut errors) {
            let err = |m: String| ConfigError::new(path, line, m);
            match parse_entry(&entry) {
                Ok((name, rhs, targets)) => {
                    let key = name.to_ascii_lowercase();
                    if let Some(first) = table.entries.get(&key) {
                        errors.push(err(format!(
                            "{name}... duplicate alias name (first at line {})",
                            first.line
                        )));
                        continue;
                    }
                    table.stats.aliases += 1;
                    table.stats.longest = table.stats.longest.max(rhs.len());
                    table.stats.total += key.len() + rhs.len();
                    table.entries.insert(
                        key,
                        Alias {
                            name,
                            targets,
                            line,
                        },
                    );
                }
                Err(messages) => errors.extend(messages.into_iter().map(err)),
            }
        }
        if errors.is_empty() {
            Ok(table)
        } else {
            Err(ConfigErrors(errors))
        }
    }

    /// The file this table was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every alias's name, as written.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.values().map(|a| a.name.as_str())
    }

    /// The alias `name` (without regard to case).
    pub fn lookup(&self, name: &str) -> Option<&Alias> {
        self.entries.get(&name.to_ascii_lowercase())
    }

    /// sendmail's statistics for newaliases.
    pub fn stats(&self) -> AliasStats {
        self.stats
    }

    /// The required aliases ([`REQUIRED_ALIASES`]) the table lacks.
    pub fn missing_required(&self) -> Vec<&'static str> {
        REQUIRED_ALIASES
            .into_iter()
            .filter(|n| self.lookup(n).is_none())
            .collect()
    }

    /// Number of aliases.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no aliases.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The targets listed in an `:include:` file: one or more addresses per
/// line, `#` comments, blank lines (sendmail's `include()`). Errors name
/// the file and line.
pub fn parse_include(text: &str, path: &Path) -> Result<Vec<AliasTarget>, ConfigErrors> {
    let mut targets = Vec::new();
    let mut errors = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match parse_targets(line) {
            Ok(t) => targets.extend(t),
            Err(m) => errors.extend(m.into_iter().map(|m| ConfigError::new(path, i + 1, m))),
        }
    }
    if errors.is_empty() {
        Ok(targets)
    } else {
        Err(ConfigErrors(errors))
    }
}

/// Joins continuation lines: `(first line number, whole entry)` for each
/// entry; comment and blank lines end an entry (as in sendmail).
fn logical_lines(text: &str, path: &Path, errors: &mut Vec<ConfigError>) -> Vec<(usize, String)> {
    let mut out: Vec<(usize, String)> = Vec::new();
    // True while the previous physical line belongs to an entry that a
    // continuation line may extend.
    let mut open = false;
    let mut joined_by_backslash = false;
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        if joined_by_backslash {
            if let Some((_, entry)) = out.last_mut() {
                push_part(entry, raw);
            }
            joined_by_backslash = entry_ends_in_backslash(out.last_mut());
            continue;
        }
        if raw.starts_with('#') || raw.trim().is_empty() {
            open = false;
            continue;
        }
        if raw.starts_with([' ', '\t']) {
            match out.last_mut() {
                Some((_, entry)) if open => push_part(entry, raw.trim()),
                _ => errors.push(ConfigError::new(
                    path,
                    line_no,
                    "Non-continuation line starts with space",
                )),
            }
            joined_by_backslash = open && entry_ends_in_backslash(out.last_mut());
            continue;
        }
        out.push((line_no, raw.trim_end().to_string()));
        open = true;
        joined_by_backslash = entry_ends_in_backslash(out.last_mut());
    }
    out
}

fn push_part(entry: &mut String, part: &str) {
    if !entry.is_empty() && !entry.ends_with(' ') {
        entry.push(' ');
    }
    entry.push_str(part.trim_end());
}

/// Strips a trailing backslash (a joined line) and says whether there was one.
fn entry_ends_in_backslash(last: Option<&mut (usize, String)>) -> bool {
    match last {
        Some((_, entry)) if entry.ends_with('\\') => {
            entry.pop();
            true
        }
        _ => false,
    }
}

/// `name: rhs` → (name, rhs as written, targets), or sendmail's complaints.
fn parse_entry(entry: &str) -> Result<(String, String, Vec<AliasTarget>), Vec<String>> {
    let colon = if entry.starts_with('"') {
        quoted_end(entry).and_then(|end| entry[end..].find(':').map(|c| c + end))
    } else {
        entry.find(':')
    };
    let Some(colon) = colon else {
        return Err(vec!["missing colon".into()]);
    };
    let name = entry[..colon].trim();
    let rhs = entry[colon + 1..].trim();
    let short: String = name.chars().take(40).collect();
    let bare = name.trim_matches('"');
    if name.is_empty() || name.chars().any(|c| c.is_control()) || bare.is_empty() {
        return Err(vec![format!("{short}... illegal alias name")]);
    }
    if name.starts_with(['|', '/', '\\']) || name.starts_with(":include:") {
        return Err(vec![format!("{short}... illegal alias name")]);
    }
    match parse_mailbox(name) {
        Ok(m) if m.domain.is_some() => {
            return Err(vec![format!("{name}... cannot alias non-local names")])
        }
        Ok(_) => {}
        Err(_) => return Err(vec![format!("{short}... illegal alias name")]),
    }
    if rhs.is_empty() {
        return Err(vec![format!("{short}... missing value for alias")]);
    }
    let targets = parse_targets(rhs)?;
    Ok((bare.to_string(), rhs.to_string(), targets))
}

/// A comma-separated list of targets. Commas inside double quotes or
/// angle brackets do not separate.
fn parse_targets(list: &str) -> Result<Vec<AliasTarget>, Vec<String>> {
    let mut targets = Vec::new();
    let mut errors = Vec::new();
    let Some(items) = split_list(list) else {
        return Err(vec![format!("{list}... Unbalanced '\"'")]);
    };
    for item in items {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        match parse_target(item) {
            Ok(t) => targets.push(t),
            Err(m) => errors.push(m),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    if targets.is_empty() {
        return Err(vec![format!("{list}... missing value for alias")]);
    }
    Ok(targets)
}

/// `None` when a quote is left open: where the list was meant to be cut
/// cannot be known (sendmail refuses it too).
fn split_list(list: &str) -> Option<Vec<&str>> {
    let mut out = Vec::new();
    let (mut quoted, mut angle, mut escaped) = (false, 0usize, false);
    let mut start = 0;
    for (i, c) in list.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => angle += 1,
            '>' if !quoted => angle = angle.saturating_sub(1),
            ',' if !quoted && angle == 0 => {
                out.push(&list[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&list[start..]);
    (!quoted).then_some(out)
}

/// One target; `Err` is sendmail's `<addr>... bad address` (with why).
fn parse_target(item: &str) -> Result<AliasTarget, String> {
    let bad = |why: &str| format!("{item}... bad address ({why})");
    // "|program args" and "/path/file" may be quoted whole.
    let unquoted = item
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .filter(|s| s.starts_with(['|', '/']));
    let item_text = unquoted.unwrap_or(item);
    if let Some(cmd) = item_text.strip_prefix('|') {
        let cmd = cmd.trim();
        if cmd.is_empty() {
            return Err(bad("empty program"));
        }
        return Ok(AliasTarget::Program(cmd.to_string()));
    }
    if item_text.starts_with('/') {
        if item_text.contains('\0') || item_text.ends_with('/') {
            return Err(bad("not a file"));
        }
        return Ok(AliasTarget::File(PathBuf::from(item_text)));
    }
    if let Some(path) = item.strip_prefix(":include:") {
        let path = path.trim();
        if !path.starts_with('/') {
            return Err(bad(":include: needs an absolute path"));
        }
        return Ok(AliasTarget::Include(PathBuf::from(path)));
    }
    // `Full Name <addr>` or `<addr>`: the address in the brackets.
    let address = match (item.rfind('<'), item.ends_with('>')) {
        (Some(open), true) => &item[open + 1..item.len() - 1],
        _ => item,
    };
    let (literal, address) = match address.strip_prefix('\\') {
        Some(rest) => (true, rest),
        None => (false, address),
    };
    match parse_mailbox(address) {
        Ok(m) if literal && m.domain.is_some() => Err(bad("\\ applies to local users only")),
        Ok(_) if literal => Ok(AliasTarget::Address(format!("\\{address}"))),
        Ok(_) => Ok(AliasTarget::Address(address.to_string())),
        Err(e) => Err(bad(&e.to_string())),
    }
}

/// Index just past the closing quote of a quoted string at the start.
fn quoted_end(text: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in text.char_indices().skip(1) {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return Some(i + 1),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests;
