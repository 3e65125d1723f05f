//! The aliases file and the address lists of `:include:` files.
//!
//! Input: one selector byte (aliases file or include file), then the text.
//!
//! Asserts, beyond "does not panic": each alias that parses (but for
//! the few targets that cannot be written back, see `writable`), written
//! back as a line of an aliases file (`name: target, target`, targets
//! as `AliasTarget`'s Display writes them), parses to the same targets;
//! an include list written back as one line parses to the same list;
//! every error names a line of the text.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use postern_config::{parse_include, AliasTarget, Aliases, ConfigErrors};
use postern_smtp::address::parse_mailbox;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, text)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(text);
    let path = Path::new("/etc/mail/aliases");
    if selector % 2 == 0 {
        match Aliases::parse_str(&text, path) {
            Ok(table) => aliases_round_trip(&table),
            Err(e) => check_lines(&e, &text),
        }
    } else {
        match parse_include(&text, path) {
            Ok(targets) if targets.iter().all(writable) => {
                let written = include_line(&targets);
                let again = parse_include(&written, path).expect("written back, it parses");
                assert_eq!(again, targets, "{written:?}");
            }
            Ok(_) => {}
            Err(e) => check_lines(&e, &text),
        }
    }
});

/// Targets with no written form that reads back the same: a file or
/// program with a `"` or a `\\` (the list syntax takes them as quoting
/// and escaping, and the target parser undoes neither), and an include
/// whose path has those or an angle bracket or a comma (an include
/// cannot be quoted, and an open `<` takes in the targets after it).
fn writable(target: &AliasTarget) -> bool {
    let (text, special) = match target {
        AliasTarget::File(path) => (path.to_string_lossy().into_owned(), &['"', '\\'][..]),
        AliasTarget::Program(command) => (command.clone(), &['"', '\\'][..]),
        AliasTarget::Include(path) => (
            path.to_string_lossy().into_owned(),
            &['"', '\\', '<', '>', ','][..],
        ),
        AliasTarget::Address(_) => return true,
    };
    !text.contains(special)
}

fn aliases_round_trip(table: &Aliases) {
    let path = table.path();
    let names: Vec<&str> = table.names().collect();
    for name in names {
        let alias = table.lookup(name).expect("every name is found");
        if !alias.targets.iter().all(writable) {
            continue;
        }
        let line = format!("{}: {}", written_name(name), join(&alias.targets, ", "));
        let again = Aliases::parse_str(&line, path)
            .unwrap_or_else(|e| panic!("{line:?} does not parse: {e}"));
        let found = again.lookup(name).expect("the name is found again");
        assert_eq!(found.targets, alias.targets, "{line:?}");
    }
}

/// The name as an aliases file must write it: quoted unless it is a
/// plain local part that does not start a comment or read as a target.
fn written_name(name: &str) -> String {
    match parse_mailbox(name) {
        Ok(m) if m.domain.is_none() && !name.starts_with(['"', '#', '|', '/', '\\', ':']) => {
            name.to_string()
        }
        _ => format!("\"{name}\""),
    }
}

/// An include list as one line. A first address that starts with `#`
/// is written in angle brackets, or the line would be a comment.
fn include_line(targets: &[AliasTarget]) -> String {
    let line = join(targets, ", ");
    match targets.first() {
        Some(AliasTarget::Address(a)) if a.starts_with('#') => {
            line.replacen(a.as_str(), &format!("<{a}>"), 1)
        }
        _ => line,
    }
}

fn join(targets: &[AliasTarget], separator: &str) -> String {
    let written: Vec<String> = targets.iter().map(ToString::to_string).collect();
    written.join(separator)
}

fn check_lines(errors: &ConfigErrors, text: &str) {
    let lines = text.lines().count();
    for e in errors.errors() {
        assert!(
            e.line >= 1 && e.line <= lines,
            "error on line {} of {lines}: {e}",
            e.line
        );
    }
}
