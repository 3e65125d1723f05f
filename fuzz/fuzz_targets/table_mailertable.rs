//! The mailertable: `domain mailer:host` routes, `.domain` for every
//! subdomain, `local:`, `lmtp:`, `error:` entries.
//!
//! Input: the table's text.
//!
//! Asserts, beyond "does not panic": in a table that parses, every key
//! is found (`.example.com` for its subdomains), and its route, written
//! back as a mailertable line, parses to the same route; lookups of
//! any word of the text answer; every error names a line of the text.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use postern_config::{MailerRoute, Mailertable};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let path = Path::new("/etc/mail/mailertable");
    let table = match Mailertable::parse_str(&text, path) {
        Ok(table) => table,
        Err(errors) => {
            let lines = text.lines().count();
            for e in errors.errors() {
                assert!(
                    e.line >= 1 && e.line <= lines,
                    "error on line {}: {e}",
                    e.line
                );
            }
            return;
        }
    };
    for key in text.lines().filter_map(|l| l.split_whitespace().next()) {
        if key.starts_with('#') {
            continue;
        }
        let domain = match key.strip_prefix('.') {
            Some(parent) => format!("sub.{parent}"),
            None => key.to_string(),
        };
        let route = table
            .lookup(&domain)
            .unwrap_or_else(|| panic!("{key} is in the table but {domain} is not found"));
        let line = format!("{key} {}", written(route));
        let again = Mailertable::parse_str(&line, path)
            .unwrap_or_else(|e| panic!("{line:?} does not parse: {e}"));
        assert_eq!(again.lookup(&domain), Some(route), "{line:?}");
    }
    for word in text.split_whitespace() {
        // What the delivery client asks: any domain a recipient may have.
        let _ = table.lookup(word);
    }
});

/// A route as a mailertable writes it.
fn written(route: &MailerRoute) -> String {
    match route {
        MailerRoute::Smtp(relay) => relay.to_string(),
        MailerRoute::Lmtp(target) => target.to_string(),
        MailerRoute::Local { user } => format!("local:{}", user.as_deref().unwrap_or("")),
        MailerRoute::Error {
            code,
            enhanced: Some(e),
            text,
        } => format!("error:{e}:{code} {text}"),
        MailerRoute::Error {
            code,
            enhanced: None,
            text,
        } => format!("error:{code} {text}"),
    }
}
