//! SMTP AUTH settings: sendmail's `AuthMechanisms` and `AuthOptions`, and
//! Postern's own `AuthDovecotSocket` and `AuthMaxFailures`.
//!
//! Which backend checks passwords follows from the files: with
//! `AuthDovecotSocket` set, Dovecot's authentication service; otherwise
//! the `auth-users` side table (Dovecot's passwd-file format) when it
//! exists; otherwise no AUTH at all.

use std::fmt;
use std::path::PathBuf;

/// sendmail's default `AuthMechanisms` (cf.README: `confAUTH_MECHANISMS`).
pub const DEFAULT_AUTH_MECHANISMS: &str = "GSSAPI KERBEROS_V4 DIGEST-MD5 CRAM-MD5";

/// The `AuthOptions` letters the server side acts on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthOptions {
    /// `p`: no plain-text mechanism (PLAIN, LOGIN) before STARTTLS.
    pub no_plaintext: bool,
    /// `a`: no mechanism open to active (non-dictionary) attacks.
    pub no_active: bool,
    /// `d`: no mechanism open to passive dictionary attacks.
    pub no_dictionary: bool,
    /// `y`: no anonymous mechanism.
    pub no_anonymous: bool,
    /// `A`: on the client side, `AUTH=` on MAIL only when we authenticated
    /// to the server. Postern's client never authenticates, so it then
    /// sends no `AUTH=` at all.
    pub auth_param_only_when_authenticated: bool,
    /// The letters as written, for `check-config`.
    written: String,
}

impl AuthOptions {
    /// Parses sendmail's letters (`p,y`, `A p`, `Ap`): commas and spaces
    /// separate, each letter is one flag. `c`, `f`, `m` and `T` are
    /// accepted (sendmail knows them) and do nothing here.
    pub fn parse(value: &str) -> Result<AuthOptions, String> {
        let mut o = AuthOptions::default();
        for c in value.chars().filter(|c| !matches!(c, ',' | ' ' | '\t')) {
            match c {
                'p' => o.no_plaintext = true,
                'a' => o.no_active = true,
                'd' => o.no_dictionary = true,
                'y' => o.no_anonymous = true,
                'A' => o.auth_param_only_when_authenticated = true,
                'c' | 'f' | 'm' | 'T' => {}
                other => return Err(format!("unknown AuthOptions flag \"{other}\"")),
            }
        }
        o.written = value.to_string();
        Ok(o)
    }
}

impl fmt::Display for AuthOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.written)
    }
}

/// Everything about AUTH from the configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthSettings {
    /// `AuthMechanisms`, upper case, in the order written: offered when
    /// the backend has them too, in this order.
    pub mechanisms: Vec<String>,
    /// `AuthOptions`.
    pub options: AuthOptions,
    /// `AuthDovecotSocket`: Dovecot's auth-client socket.
    pub dovecot_socket: Option<PathBuf>,
    /// `AuthMaxFailures`: failed AUTH attempts a session may make before
    /// it is closed.
    pub max_failures: u32,
}

/// Splits `AuthMechanisms` (spaces or commas) into upper-case names.
pub(crate) fn parse_mechanisms(value: &str) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    for word in value.split([' ', ',', '\t']).filter(|w| !w.is_empty()) {
        let valid = word.len() <= 20
            && word
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return Err(format!("bad SASL mechanism name \"{word}\""));
        }
        let upper = word.to_ascii_uppercase();
        if !names.contains(&upper) {
            names.push(upper);
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_letters() {
        let o = AuthOptions::parse("A,p y").unwrap();
        assert!(o.no_plaintext && o.no_anonymous && o.auth_param_only_when_authenticated);
        assert!(!o.no_active && !o.no_dictionary);
        assert_eq!(o.to_string(), "A,p y");
        assert_eq!(
            AuthOptions::parse("pq").unwrap_err(),
            "unknown AuthOptions flag \"q\""
        );
    }

    #[test]
    fn mechanism_names() {
        assert_eq!(
            parse_mechanisms("plain LOGIN,cram-md5 PLAIN").unwrap(),
            ["PLAIN", "LOGIN", "CRAM-MD5"]
        );
        assert!(parse_mechanisms("PLAIN $x").is_err());
        assert!(parse_mechanisms("").unwrap().is_empty());
    }
}
