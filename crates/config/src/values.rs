//! Small value types of the configuration and the checks on plain values
//! (numbers, paths, host names) that several options share.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use postern_smtp::PrivacyFlags;

/// `TLSSrvOptions` / `confTLS_SRV_OPTIONS`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TlsSrvOptions {
    /// `V`: do not ask the client for a certificate.
    pub no_client_cert_request: bool,
    /// `C`: the server needs no certificate of its own.
    pub no_server_cert: bool,
}

impl TlsSrvOptions {
    /// Parses letters separated by commas or white space, or adjacent.
    pub fn parse(value: &str) -> Result<Self, String> {
        let mut o = Self::default();
        for c in value.chars().filter(|c| *c != ',' && !c.is_whitespace()) {
            match c.to_ascii_uppercase() {
                'V' => o.no_client_cert_request = true,
                'C' => o.no_server_cert = true,
                _ => return Err(format!("unknown flag \"{c}\" (expected V or C)")),
            }
        }
        Ok(o)
    }
}

impl fmt::Display for TlsSrvOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let letters: Vec<&str> = [
            (self.no_client_cert_request, "V"),
            (self.no_server_cert, "C"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|&(_, l)| l)
        .collect();
        f.write_str(&letters.join(","))
    }
}

/// The TLS settings of §1.11 of the reference. File existence is the TLS
/// layer's check, not ours: it knows which files it actually needs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// `CACertPath`: directory of hashed CA certificates.
    pub ca_cert_path: Option<PathBuf>,
    /// `CACertFile`: file of CA certificates.
    pub ca_cert_file: Option<PathBuf>,
    /// `ServerCertFile`.
    pub server_cert_file: Option<PathBuf>,
    /// `ServerKeyFile`.
    pub server_key_file: Option<PathBuf>,
    /// `ClientCertFile`.
    pub client_cert_file: Option<PathBuf>,
    /// `ClientKeyFile`.
    pub client_key_file: Option<PathBuf>,
    /// `CRLFile`.
    pub crl_file: Option<PathBuf>,
    /// `CipherList` (OpenSSL syntax, TLS ≤ 1.2).
    pub cipher_list: Option<String>,
    /// `TLSSrvOptions`.
    pub srv_options: TlsSrvOptions,
}

/// The `Timeout.*` options.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Timeouts {
    /// `Timeout.initial`: wait for the greeting.
    pub initial: Duration,
    /// `Timeout.connect`: `connect(2)`; zero means the system's default.
    pub connect: Duration,
    /// `Timeout.iconnect`: first connect attempt; zero means as `connect`.
    pub iconnect: Duration,
    /// `Timeout.helo`.
    pub helo: Duration,
    /// `Timeout.mail`.
    pub mail: Duration,
    /// `Timeout.rcpt`.
    pub rcpt: Duration,
    /// `Timeout.datainit`.
    pub datainit: Duration,
    /// `Timeout.datablock`.
    pub datablock: Duration,
    /// `Timeout.datafinal`.
    pub datafinal: Duration,
    /// `Timeout.rset`.
    pub rset: Duration,
    /// `Timeout.quit`.
    pub quit: Duration,
    /// `Timeout.misc`.
    pub misc: Duration,
    /// `Timeout.command`: the server's wait for the next command.
    pub command: Duration,
    /// `Timeout.starttls`.
    pub starttls: Duration,
    /// `Timeout.queuereply` (Postern's own): a front's wait for the queue
    /// runner's answer.
    pub queuereply: Duration,
    /// `Timeout.queuereturn`: bounce after this long in the queue.
    pub queuereturn: Duration,
    /// `Timeout.queuewarn`: warn the sender after this long.
    pub queuewarn: Duration,
}

/// The m4 `FEATURE`s Postern understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Feature {
    /// `mailertable`: per-domain routing from the `mailertable` side table.
    Mailertable,
    /// `access_db`: the `access` side table.
    AccessDb,
    /// `use_cw_file`: local host names from `local-host-names`.
    UseCwFile,
    /// `relay_entire_domain`: relay for hosts in our own domain.
    RelayEntireDomain,
    /// `greet_pause`: hold the greeting this many milliseconds (the
    /// argument, when given) or as the access map's `GreetPause:` says,
    /// and refuse a client that talks first.
    GreetPause,
}

impl Feature {
    /// Every feature with its m4 name.
    pub const ALL: &'static [(&'static str, Feature)] = &[
        ("mailertable", Feature::Mailertable),
        ("access_db", Feature::AccessDb),
        ("use_cw_file", Feature::UseCwFile),
        ("relay_entire_domain", Feature::RelayEntireDomain),
        ("greet_pause", Feature::GreetPause),
    ];

    /// The feature for an m4 name (case-sensitive, as m4 is).
    pub fn from_name(name: &str) -> Option<Feature> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|&(_, f)| f)
    }

    /// Refuses an argument the feature cannot use: greet_pause's must be
    /// a number of milliseconds.
    pub(crate) fn check_argument(self, arg: Option<&str>) -> Result<(), String> {
        match (self, arg) {
            (Feature::GreetPause, Some(ms)) => number::<u64>(ms)
                .map(|_| ())
                .map_err(|e| format!("FEATURE(`greet_pause'): {e} (milliseconds)")),
            _ => Ok(()),
        }
    }

    /// The m4 name.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, f)| *f == self)
            .map_or("", |&(n, _)| n)
    }
}

/// ORs the words of a `PrivacyOptions` value into `flags`. Words are split on
/// white space and commas and matched without regard to case, as sendmail
/// does; an empty value adds nothing (`public`).
pub(crate) fn add_privacy(flags: &mut PrivacyFlags, value: &str) -> Result<(), String> {
    for word in value.split(|c: char| c == ',' || c.is_whitespace()) {
        if word.is_empty() {
            continue;
        }
        match PrivacyFlags::from_word(word) {
            Some(f) => *flags |= f,
            None => return Err(format!("unknown PrivacyOptions flag \"{word}\"")),
        }
    }
    Ok(())
}

/// A decimal number, digits only (no sign, no white space): sendmail's
/// `atoi` would read `1O` as 1, which hides typos.
pub(crate) fn number<T: std::str::FromStr>(value: &str) -> Result<T, String> {
    let bad = || format!("bad number \"{value}\"");
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    value.parse().map_err(|_| bad())
}

/// An absolute path; the empty value means "not set".
pub(crate) fn abs_path(value: &str) -> Result<Option<PathBuf>, String> {
    if value.is_empty() {
        return Ok(None);
    }
    let p = PathBuf::from(value);
    if p.is_absolute() {
        Ok(Some(p))
    } else {
        Err(format!("\"{value}\" is not an absolute path"))
    }
}

/// A text value; the empty value means "not set".
pub(crate) fn text(value: &str) -> Option<String> {
    (!value.is_empty()).then(|| value.to_string())
}

/// A DNS name as written in mail: letters, digits and hyphens in dot-separated
/// labels of 1 to 63 characters, 255 at most in all. An all-numeric last
/// label is refused, because it is an IP address written without brackets.
pub(crate) fn check_domain(name: &str) -> Result<(), String> {
    if name.contains('$') {
        return Err(format!("\"{name}\": macros are not expanded in this file"));
    }
    let bad = |why: &str| Err(format!("bad host name \"{name}\": {why}"));
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > 255 {
        return bad("longer than 255 characters");
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return bad("each dot-separated part must have 1 to 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return bad("only letters, digits, hyphens and dots are allowed");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return bad("a part may not start or end with a hyphen");
        }
    }
    if name
        .rsplit('.')
        .next()
        .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()))
    {
        return bad("the last part may not be all digits");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_srv_options() {
        let both = TlsSrvOptions {
            no_client_cert_request: true,
            no_server_cert: true,
        };
        for s in ["V,C", "VC", "v c", " C , V "] {
            assert_eq!(TlsSrvOptions::parse(s).unwrap(), both, "{s}");
        }
        assert_eq!(TlsSrvOptions::parse("").unwrap(), TlsSrvOptions::default());
        assert!(TlsSrvOptions::parse("V,X").unwrap_err().contains("\"X\""));
        assert_eq!(both.to_string(), "V,C");
    }

    #[test]
    fn domains() {
        for ok in ["localhost", "mail.example.com", "a-b.c0", "x1"] {
            check_domain(ok).unwrap();
        }
        let long_label = "a".repeat(64);
        let long_name = vec!["a".repeat(60); 5].join(".");
        for bad in [
            "",
            "a..b",
            ".a",
            "a.",
            "-a",
            "a-",
            "a_b",
            "a b",
            "192.0.2.1",
            "$w.x",
            &long_label,
            &long_name,
        ] {
            assert!(check_domain(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn privacy_words_round_trip() {
        for text in [
            "goaway,noetrn",
            "public",
            "noexpn novrfy",
            "goaway",
            "authwarnings,restrictqrun",
        ] {
            let mut f = PrivacyFlags::PUBLIC;
            add_privacy(&mut f, text).unwrap();
            let mut again = PrivacyFlags::PUBLIC;
            add_privacy(&mut again, &f.to_string()).unwrap();
            assert_eq!(again, f, "{text} -> {f}");
        }
        assert_eq!(
            (PrivacyFlags::GOAWAY | PrivacyFlags::NO_ETRN).to_string(),
            "goaway,noetrn"
        );
    }

    #[test]
    fn numbers_and_paths() {
        assert_eq!(number::<u32>("14"), Ok(14));
        assert!(number::<u32>("4294967296").is_err());
        assert!(number::<u32>("+1").is_err());
        assert!(number::<u32>("").is_err());
        assert_eq!(abs_path(""), Ok(None));
        assert_eq!(
            abs_path("certs"),
            Err("\"certs\" is not an absolute path".to_string())
        );
    }

    #[test]
    fn feature_names() {
        for &(n, f) in Feature::ALL {
            assert_eq!(Feature::from_name(n), Some(f));
            assert_eq!(f.name(), n);
        }
        assert_eq!(Feature::from_name("virtusertable"), None);
    }
}
