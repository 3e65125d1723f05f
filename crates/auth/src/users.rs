//! A passwd-file in Dovecot's format, read into a table of users: the
//! parser, and the one question asked of the table, "is this the user's
//! password?". Text in, table and errors out; no file I/O here.
//!
//! The format, one user a line:
//!
//! ```text
//! user:{SCHEME}hash[:uid:gid:gecos:home:shell:extra fields]
//! ```
//!
//! Blank lines and `#` comments are ignored. Only the first two fields
//! matter for authentication; the rest (Dovecot's userdb fields) are read
//! past, except the extra fields that would restrict a login: we cannot
//! honour `allow_nets` or `nologin`, so a user who has them cannot log in
//! at all (failing closed), and that is reported. A malformed line is
//! skipped and reported as `file:line: message`; so is a line whose user
//! cannot log in (unknown scheme, damaged hash). User names are compared
//! exactly, as Dovecot does by default; the first of two lines for one
//! user wins, as in Dovecot.

use std::collections::HashMap;
use std::path::Path;

use crate::schemes::Stored;
use crate::AuthError;

/// Extra fields that restrict when a user may log in, which this backend
/// cannot honour.
const RESTRICTING: [&str; 4] = ["allow_nets", "allow_real_nets", "nologin", "deny"];

/// Verified for a user that does not exist when the file has no usable
/// entry at all: SHA512-CRYPT of a password nobody knows, 5000 rounds
/// (what `doveadm pw` writes by default).
const FALLBACK_DUMMY: &str =
    "$6$4oStzD4LVMh79DpZ$IQxXGsadw6cI5olIAtCwZN4tqzjfcpKmmCx9reUgsip7chXstQzY6obuOkN5wh8D87D5XNYxHUTX/hZHI3F8s.";

/// The users of one passwd-file.
#[derive(Debug)]
pub(crate) struct Users {
    /// `None`: listed, but cannot log in (reported when read).
    entries: HashMap<String, Option<Stored>>,
    /// What an unknown user's password is checked against, so that "no
    /// such user" takes as long as "wrong password": the first usable
    /// entry's stored password (same scheme, same cost as real users;
    /// its answer is thrown away).
    dummy: Stored,
}

impl Users {
    /// Reads `text`, the contents of `path` (named in the errors).
    pub(crate) fn parse(path: &Path, text: &[u8]) -> (Users, Vec<AuthError>) {
        let mut entries = HashMap::new();
        let mut dummy = None;
        let mut errors = Vec::new();
        for (index, line) in text.split(|&b| b == b'\n').enumerate() {
            let error = |message: String| AuthError::Line {
                path: path.to_path_buf(),
                line: index + 1,
                message,
            };
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let Ok(line) = std::str::from_utf8(line) else {
                errors.push(error("not UTF-8: line skipped".into()));
                continue;
            };
            let (user, password) = match parse_line(line) {
                Line::Ignored => continue,
                Line::Malformed(message) => {
                    errors.push(error(format!("{message}: line skipped")));
                    continue;
                }
                Line::User { user, password } => (user, password),
            };
            if entries.contains_key(user) {
                errors.push(error(format!(
                    "user {user} is listed again: the first line counts"
                )));
                continue;
            }
            let password = password.map_err(|message| error(format!("user {user}: {message}")));
            let stored = match password {
                Ok(stored) => {
                    dummy.get_or_insert_with(|| stored.clone());
                    Some(stored)
                }
                Err(e) => {
                    errors.push(e);
                    None
                }
            };
            entries.insert(user.to_string(), stored);
        }
        let dummy = dummy.unwrap_or_else(|| Stored::ShaCrypt(FALLBACK_DUMMY.to_string()));
        (Users { entries, dummy }, errors)
    }

    /// True if `user` exists, may log in, and `password` is theirs. Every
    /// false answer costs one hash verification, like a true one.
    pub(crate) fn check(&self, user: &str, password: &[u8]) -> bool {
        match self.entries.get(user) {
            Some(Some(stored)) => stored.verify(password),
            Some(None) | None => {
                let _ = self.dummy.verify(password);
                false
            }
        }
    }

    /// How many users are listed (usable or not).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

/// One line, understood.
#[derive(Debug)]
enum Line<'a> {
    /// Blank or a comment.
    Ignored,
    /// Skipped: why.
    Malformed(String),
    /// A user, and their password or why they cannot log in.
    User {
        user: &'a str,
        password: Result<Stored, String>,
    },
}

fn parse_line(line: &str) -> Line<'_> {
    if line.trim().is_empty() || line.starts_with('#') {
        return Line::Ignored;
    }
    let mut fields = line.split(':');
    let user = fields.next().unwrap_or_default();
    let Some(password) = fields.next() else {
        return Line::Malformed("no `:` after the user name".into());
    };
    if user.is_empty() {
        return Line::Malformed("no user name".into());
    }
    if password.is_empty() {
        return Line::User {
            user,
            password: Err("no password: the user cannot log in".into()),
        };
    }
    // uid, gid, gecos, home, shell: the userdb's, not ours.
    let extra: Vec<&str> = fields.skip(5).collect();
    let extra = extra.join(":");
    if let Some(field) = extra.split_whitespace().find(|f| {
        let name = f.split('=').next().unwrap_or_default();
        RESTRICTING.contains(&name.trim_start_matches("passdb_"))
    }) {
        return Line::User {
            user,
            password: Err(format!(
                "extra field `{field}` cannot be honoured by Postern: the user cannot log in"
            )),
        };
    }
    Line::User {
        user,
        password: Stored::parse(password),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA512: &str = "{SHA512-CRYPT}$6$6maULFHW./7L5w6c$sTLbfUD.Ol4YTwZJOMcdxdbenIVufWfsGk11wntziALeloXdpp3oHaMDrzowx4LqQvtz.r9AESeoS8IrYJ14h/";

    fn parse(text: impl AsRef<[u8]>) -> (Users, Vec<String>) {
        let (users, errors) = Users::parse(Path::new("auth-users"), text.as_ref());
        (users, errors.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn reads_users_and_ignores_comments_and_blank_lines() {
        let text = format!(
            "# users of this host\n\
             \n   \n\
             alice:{SHA512}\n\
             bob:{{PLAIN}}hunter2:1000:1000::/home/bob:/bin/sh\n\
             carol:{{CLEARTEXT}}pw:::::: userdb_quota_rule=*:storage=1G\r\n"
        );
        let (users, errors) = parse(&text);
        assert_eq!(errors, Vec::<String>::new());
        assert_eq!(users.len(), 3);
        assert!(users.check("alice", b"secret"));
        assert!(!users.check("alice", b"hunter2"));
        assert!(users.check("bob", b"hunter2"));
        assert!(users.check("carol", b"pw"));
    }

    #[test]
    fn malformed_lines_are_skipped_and_named_by_file_and_line() {
        let text = "alice:{PLAIN}a\njustaname\n:{PLAIN}x\nbob:{PLAIN}b\n";
        let (users, errors) = parse(text);
        assert_eq!(
            errors,
            [
                "auth-users:2: no `:` after the user name: line skipped",
                "auth-users:3: no user name: line skipped",
            ]
        );
        assert!(users.check("alice", b"a"));
        assert!(users.check("bob", b"b"));
        assert!(!users.check("justaname", b""));
    }

    #[test]
    fn users_who_cannot_log_in_are_reported_and_refused() {
        let text = b"a:{SSHA}abc\nb:\nc:{BLF-CRYPT}$2y$05$short\nd:{PLAIN}x:::::: allow_nets=10.0.0.0/8\ne:{PLAIN}x\xff\n";
        let (users, errors) = parse(text);
        assert_eq!(errors.len(), 5, "{errors:?}");
        assert!(errors[0].starts_with("auth-users:1: user a: unknown password scheme {SSHA}"));
        assert!(errors[1].starts_with("auth-users:2: user b: no password"));
        assert!(errors[2].starts_with("auth-users:3: user c: {BLF-CRYPT}"));
        assert!(errors[3].starts_with("auth-users:4: user d: extra field `allow_nets=10.0.0.0/8`"));
        assert_eq!(errors[4], "auth-users:5: not UTF-8: line skipped");
        assert!(!users.check("a", b"abc"));
        assert!(!users.check("b", b""));
        assert!(!users.check("d", b"x"));
    }

    #[test]
    fn the_first_line_of_a_user_counts() {
        let (users, errors) = parse("alice:{PLAIN}one\nalice:{PLAIN}two\n");
        assert_eq!(
            errors,
            ["auth-users:2: user alice is listed again: the first line counts"]
        );
        assert!(users.check("alice", b"one"));
        assert!(!users.check("alice", b"two"));
    }

    #[test]
    fn user_names_are_compared_exactly() {
        let (users, _) = parse("Alice:{PLAIN}pw\n");
        assert!(users.check("Alice", b"pw"));
        assert!(!users.check("alice", b"pw"));
        assert!(!users.check("Alice ", b"pw"));
    }

    #[test]
    fn an_unknown_user_is_checked_against_the_dummy() {
        let (users, _) = parse("");
        assert!(!users.check("nobody", b"secret"));
        assert!(!users.dummy.verify(b"secret"));
    }

    /// Bytes that make passwd-file lines, and some that break them.
    const ALPHABET: &[u8] = b"alice:{}PLAINSHA512-CRYPT$6$2y#\n\r\t :=x\xff";

    proptest::proptest! {
        /// No file makes the parser panic, and every error names a line
        /// of the file.
        #[test]
        fn any_file_is_read(
            text in proptest::collection::vec(proptest::sample::select(ALPHABET), 0..200),
        ) {
            let (users, errors) = Users::parse(Path::new("f"), &text);
            let lines = text.split(|&b| b == b'\n').count();
            for e in &errors {
                let AuthError::Line { line, .. } = e else { panic!("{e}") };
                proptest::prop_assert!((1..=lines).contains(line));
            }
            let _ = users.check("alice", b"x");
        }
    }
}
