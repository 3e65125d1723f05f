//! No input makes the parser panic.

use std::path::Path;

use postern_config::Config;
use proptest::prelude::*;

/// Pieces of the grammar, so that generated lines get past the first check.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("define(".to_string()),
        Just("DAEMON_OPTIONS(".to_string()),
        Just("FEATURE(".to_string()),
        Just("`".to_string()),
        Just("'".to_string()),
        Just("(".to_string()),
        Just(")".to_string()),
        Just(",".to_string()),
        Just(" ".to_string()),
        Just("=".to_string()),
        Just(":".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just("O ".to_string()),
        Just("D".to_string()),
        Just("dnl".to_string()),
        Just("#".to_string()),
        Just("confPRIVACY_FLAGS".to_string()),
        Just("SMART_HOST".to_string()),
        Just("PrivacyOptions".to_string()),
        Just("DaemonPortOptions".to_string()),
        Just("Timeout.queuereturn".to_string()),
        Just("Port=".to_string()),
        Just("Addr=".to_string()),
        Just("IPv6:".to_string()),
        Just("é".to_string()),
        "[0-9]{1,25}[smhdwx]?",
        "[a-zA-Z0-9_.$/-]{0,12}",
    ]
}

fn line() -> impl Strategy<Value = String> {
    prop::collection::vec(piece(), 0..12).prop_map(|p| p.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn arbitrary_text(text in any::<String>()) {
        let _ = Config::parse_str(&text, Path::new("/x.cf"));
    }

    #[test]
    fn grammar_lines(lines in prop::collection::vec(line(), 0..8)) {
        let text = lines.join("\n");
        match Config::parse_str(&text, Path::new("/x.cf")) {
            // Whatever is accepted shows and parses back.
            Ok(c) => {
                let shown = c.effective_lines().join("\n");
                prop_assert!(Config::parse_str(&shown, Path::new("/x.cf")).is_ok() || c.domain_name.is_none());
            }
            // Every error points at a real line.
            Err(e) => {
                for err in e.errors() {
                    prop_assert!(err.line >= 1 && err.line <= lines.len().max(1));
                }
            }
        }
    }
}
