//! The configuration parser, both syntaxes (sendmail.cf lines and the m4
//! defines of the cookbook, mixed line by line as a file may mix them).
//!
//! Input: the file's text (invalid UTF-8 is replaced, as `Config::load`
//! does).
//!
//! Asserts, beyond "does not panic": a file that parses gives
//! `effective_lines` (what `postern check-config` prints, in .cf syntax)
//! that parse back to the same configuration, that is to the same
//! effective lines; every error names a line of the file.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use postern_config::Config;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let origin = Path::new("/etc/mail/postern.cf");
    let config = match Config::parse_str(&text, origin) {
        Ok(config) => config,
        Err(errors) => {
            let lines = text.lines().count();
            for e in errors.errors() {
                assert!(e.line <= lines, "error on line {} of {lines}: {e}", e.line);
            }
            return;
        }
    };
    let effective = config.effective_lines().join("\n");
    let again = Config::parse_str(&effective, origin)
        .unwrap_or_else(|e| panic!("effective lines do not parse:\n{effective}\n{e}"));
    assert_eq!(again.effective_lines().join("\n"), effective);
});
