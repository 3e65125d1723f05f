//! Errors that point at a file and a line.
//!
//! Every problem in a configuration file is reported, not just the first one,
//! so that an administrator fixes the file in one round instead of one error
//! per restart.

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem in a configuration file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", location(.file, *.line))]
pub struct ConfigError {
    /// The file the problem is in.
    pub file: PathBuf,
    /// The 1-based line number, or 0 when the problem concerns the whole file
    /// (for example, it cannot be read).
    pub line: usize,
    /// What is wrong, naming the option or flag involved.
    pub message: String,
}

/// `file:line`, or just `file` for whole-file problems (line 0).
fn location(file: &Path, line: usize) -> String {
    if line == 0 {
        file.display().to_string()
    } else {
        format!("{}:{line}", file.display())
    }
}

impl ConfigError {
    /// Builds an error at `line` of `file`.
    pub fn new(file: &Path, line: usize, message: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            line,
            message: message.into(),
        }
    }
}

/// All the problems found in one configuration file, in line order.
/// Never empty when returned by the parser.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// The individual errors.
    pub fn errors(&self) -> &[ConfigError] {
        &self.0
    }
}

/// One error per line, in the `file:line: message` form.
impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_with_and_without_line() {
        let p = Path::new("/etc/mail/postern.cf");
        assert_eq!(
            ConfigError::new(p, 12, "boom").to_string(),
            "/etc/mail/postern.cf:12: boom"
        );
        assert_eq!(
            ConfigError::new(p, 0, "gone").to_string(),
            "/etc/mail/postern.cf: gone"
        );
        let all = ConfigErrors(vec![
            ConfigError::new(p, 1, "a"),
            ConfigError::new(p, 2, "b"),
        ]);
        assert_eq!(
            all.to_string(),
            "/etc/mail/postern.cf:1: a\n/etc/mail/postern.cf:2: b"
        );
    }
}
