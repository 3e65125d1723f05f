//! Password schemes of Dovecot's passwd-file: the `{SCHEME}` prefix of a
//! password field, and verifying a password against it.
//!
//! Each scheme is checked by a well-kept crate (RustCrypto's `sha-crypt`
//! and `argon2`, the `bcrypt` crate), never by code of ours; hashes are
//! the strings `doveadm pw` writes. A hash is checked for its format when
//! the file is read, so a damaged entry is reported then, not at the
//! first login. What is not here (DES-CRYPT, MD5-CRYPT, the SHA1 and MD5
//! families, SCRAM, PBKDF2) is reported as unknown: that user cannot log
//! in until the administrator gives them a password in a scheme above.

// Both crates implement the `password-hash` crate's one verifier trait.
use std::fmt;

use argon2::{Argon2, PasswordVerifier as _};
use sha_crypt::ShaCrypt;
use subtle::ConstantTimeEq;

/// Most memory one Argon2 check may take: 16 times Dovecot's default
/// (`m=65536`, 64 MiB).
const MAX_ARGON2_KIB: u32 = 1 << 20;

/// A password as stored, ready to verify. Its `Debug` shows the scheme
/// only: neither a password nor a hash belongs in a log.
#[derive(Clone)]
pub(crate) enum Stored {
    /// `{SHA512-CRYPT}` / `{SHA256-CRYPT}`: `$6$…` / `$5$…`.
    ShaCrypt(String),
    /// `{BLF-CRYPT}`: `$2y$…` (Dovecot writes 2y; 2a and 2b verify alike).
    Bcrypt(String),
    /// `{ARGON2ID}` / `{ARGON2I}`: a PHC string, `$argon2id$v=19$…`.
    Argon2(String),
    /// `{PLAIN}` / `{CLEARTEXT}`: the password itself.
    Plain(Vec<u8>),
}

impl Stored {
    /// Parses a passwd-file password field, `{SCHEME}hash`. The scheme
    /// name is matched regardless of case, as Dovecot does. A field
    /// without a scheme is Dovecot's default for passwd-file, `CRYPT`:
    /// the hash's own `$id$` says which crypt it is.
    pub(crate) fn parse(field: &str) -> Result<Stored, String> {
        let (scheme, hash) = match field.strip_prefix('{') {
            Some(rest) => rest
                .split_once('}')
                .ok_or_else(|| "no `}` after the password scheme".to_string())?,
            None => ("CRYPT", field),
        };
        let scheme = scheme.to_ascii_uppercase();
        match scheme.as_str() {
            "SHA512-CRYPT" => sha_crypt(hash, "6", &scheme),
            "SHA256-CRYPT" => sha_crypt(hash, "5", &scheme),
            "BLF-CRYPT" => bcrypt(hash, &scheme),
            "ARGON2ID" => argon2(hash, "argon2id", &scheme),
            "ARGON2I" => argon2(hash, "argon2i", &scheme),
            "PLAIN" | "CLEARTEXT" => Ok(Stored::Plain(hash.as_bytes().to_vec())),
            "CRYPT" => crypt(hash),
            _ => Err(format!(
                "unknown password scheme {{{scheme}}}: the user cannot log in"
            )),
        }
    }

    /// True if `password` is this one. Takes as long for a wrong password
    /// as for the right one (each crate compares in constant time; so do
    /// we for plain passwords, apart from their length).
    pub(crate) fn verify(&self, password: &[u8]) -> bool {
        match self {
            Stored::ShaCrypt(hash) => ShaCrypt::default()
                .verify_password(password, hash.as_str())
                .is_ok(),
            // bcrypt reads at most 72 bytes of a password, as Dovecot's
            // (crypt_blowfish) does: `verify` truncates the same way.
            Stored::Bcrypt(hash) => bcrypt::verify(password, hash).unwrap_or(false),
            Stored::Argon2(hash) => Argon2::default()
                .verify_password(password, hash.as_str())
                .is_ok(),
            Stored::Plain(stored) => bool::from(stored.as_slice().ct_eq(password)),
        }
    }
}

impl fmt::Debug for Stored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self {
            Stored::ShaCrypt(_) => "SHA-CRYPT",
            Stored::Bcrypt(_) => "BLF-CRYPT",
            Stored::Argon2(_) => "ARGON2",
            Stored::Plain(_) => "PLAIN",
        };
        write!(f, "Stored({scheme}, …)")
    }
}

/// `$5$` or `$6$` (`id`), with optional `rounds=`, salt and hash.
fn sha_crypt(hash: &str, id: &str, scheme: &str) -> Result<Stored, String> {
    let parsed = sha_crypt::PasswordHashRef::new(hash)
        .map_err(|_| format!("{{{scheme}}}: not a crypt hash"))?;
    if parsed.id() != id {
        return Err(format!("{{{scheme}}}: the hash is not ${id}$"));
    }
    Ok(Stored::ShaCrypt(hash.to_string()))
}

fn bcrypt(hash: &str, scheme: &str) -> Result<Stored, String> {
    hash.parse::<bcrypt::HashParts>()
        .map_err(|e| format!("{{{scheme}}}: {e}"))?;
    Ok(Stored::Bcrypt(hash.to_string()))
}

/// A PHC string of the Argon2 variant `ident`.
fn argon2(hash: &str, ident: &str, scheme: &str) -> Result<Stored, String> {
    let parsed = argon2::PasswordHash::new(hash).map_err(|e| format!("{{{scheme}}}: {e}"))?;
    if parsed.algorithm.as_str() != ident {
        return Err(format!("{{{scheme}}}: the hash is not ${ident}$"));
    }
    // Checked now: a memory cost the machine cannot give would abort the
    // process at the first login instead.
    let params = argon2::Params::try_from(&parsed).map_err(|e| format!("{{{scheme}}}: {e}"))?;
    if params.m_cost() > MAX_ARGON2_KIB {
        return Err(format!(
            "{{{scheme}}}: m={} KiB is more memory than one login may take (1 GiB)",
            params.m_cost()
        ));
    }
    Ok(Stored::Argon2(hash.to_string()))
}

/// `{CRYPT}`: whichever crypt the hash names, of those above.
fn crypt(hash: &str) -> Result<Stored, String> {
    let id = hash.split('$').nth(1).unwrap_or_default();
    match id {
        "6" => sha_crypt(hash, "6", "CRYPT"),
        "5" => sha_crypt(hash, "5", "CRYPT"),
        "2y" | "2b" | "2a" => bcrypt(hash, "CRYPT"),
        _ => Err(
            "{CRYPT}: only $6$, $5$ and $2y$ hashes are supported (no DES or MD5 crypt): \
             the user cannot log in"
                .to_string(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Made by `doveadm pw -s <scheme> -p secret` (Dovecot 2.3.19); the
    // tests in tests/doveadm.rs make fresh ones each run.
    const SHA512: &str = "{SHA512-CRYPT}$6$6maULFHW./7L5w6c$sTLbfUD.Ol4YTwZJOMcdxdbenIVufWfsGk11wntziALeloXdpp3oHaMDrzowx4LqQvtz.r9AESeoS8IrYJ14h/";
    const SHA256: &str =
        "{SHA256-CRYPT}$5$DaAH1MVWaUkr.29p$bTAUfmIuBgDjHuaonq/6T3oIVcJ/ojmvxu8Mdn4kLJ4";
    const BLF: &str = "{BLF-CRYPT}$2y$05$ZQcJ1uf8OM5KFCByQWzm0u2f4cT4cl.POBJlSWdivCwplOgrorxPC";
    const ARGON2ID: &str = "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$hCX4J7UXU+P2a+96iRlssg$SwlRsRF105fjgRWqY5znIAE3+C/0WLN/1oOu5fQDlVw";
    const ARGON2I: &str = "{ARGON2I}$argon2i$v=19$m=32768,t=4,p=1$Az7aepKLSinCF9TpuJNqeg$eViwoGB3LZ85rIn6exsXQH/zuxNdcaywPT5/9qxD5zA";

    #[test]
    fn dovecot_hashes_verify_the_right_password_only() {
        for field in [
            SHA512,
            SHA256,
            BLF,
            ARGON2ID,
            ARGON2I,
            "{PLAIN}secret",
            "{cleartext}secret",
        ] {
            let stored = Stored::parse(field).unwrap_or_else(|e| panic!("{field}: {e}"));
            assert!(stored.verify(b"secret"), "{field}");
            assert!(!stored.verify(b"Secret"), "{field}");
            assert!(!stored.verify(b""), "{field}");
        }
    }

    #[test]
    fn crypt_without_scheme_goes_by_the_hash_id() {
        let bare = SHA512.trim_start_matches("{SHA512-CRYPT}");
        assert!(Stored::parse(bare).unwrap().verify(b"secret"));
        let crypt = format!("{{CRYPT}}{bare}");
        assert!(Stored::parse(&crypt).unwrap().verify(b"secret"));
        assert!(Stored::parse("{CRYPT}$1$abc$def").is_err());
        assert!(Stored::parse("abJnggxhB/yWI").is_err());
    }

    #[test]
    fn a_hash_of_another_scheme_is_refused() {
        let sha256 = SHA256.trim_start_matches("{SHA256-CRYPT}");
        assert!(Stored::parse(&format!("{{SHA512-CRYPT}}{sha256}")).is_err());
        let argon2i = ARGON2I.trim_start_matches("{ARGON2I}");
        assert!(Stored::parse(&format!("{{ARGON2ID}}{argon2i}")).is_err());
    }

    #[test]
    fn damaged_hashes_and_unknown_schemes_are_errors() {
        for bad in [
            "{SHA512-CRYPT}",
            "{SHA512-CRYPT}$6$",
            "{BLF-CRYPT}$2y$05$short",
            "{ARGON2ID}$argon2id$garbage",
            "{ARGON2ID}$argon2id$v=19$m=4194304,t=3,p=1$hCX4J7UXU+P2a+96iRlssg$SwlRsRF105fjgRWqY5znIAE3+C/0WLN/1oOu5fQDlVw",
            "{SSHA}abc",
            "{MD5-CRYPT}$1$abc$def",
            "{SHA512-CRYPT$6$abc",
        ] {
            assert!(Stored::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_output_shows_no_secret() {
        let stored = Stored::parse("{PLAIN}hunter2").unwrap();
        assert_eq!(format!("{stored:?}"), "Stored(PLAIN, …)");
        let stored = Stored::parse(SHA512).unwrap();
        assert!(!format!("{stored:?}").contains("6maULFHW"));
    }

    #[test]
    fn plain_compares_whole_passwords() {
        let stored = Stored::parse("{PLAIN}secret").unwrap();
        assert!(!stored.verify(b"secre"));
        assert!(!stored.verify(b"secrets"));
    }
}
