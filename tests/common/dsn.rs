//! A delivery status notification parsed with Python's `email` package
//! (`tests/bounces/dsn.py`): its `key<TAB>value` lines.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

/// The parsed report.
pub struct Dsn(BTreeMap<String, String>);

impl Dsn {
    /// Parses `message`; panics when it is not a well-formed report.
    pub fn parse(message: &[u8]) -> Dsn {
        let script = postern_testkit::repo_root().join("tests/bounces/dsn.py");
        let mut child = Command::new("python3")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        child.stdin.take().unwrap().write_all(message).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "not a well-formed report: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(message)
        );
        Dsn(String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(k, v)| (k.to_string(), v.replace("\\n", "\n")))
            .collect())
    }

    /// The value of `key` (`rcpt.0.Action`, `returned.type` …).
    pub fn get(&self, key: &str) -> &str {
        self.0
            .get(key)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("no {key} in the report: {:#?}", self.0))
    }

    /// Whether the report has `key`.
    pub fn has(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }
}
