//! Loading certificates, keys, CA certificates and CRLs into a context
//! under construction, with sendmail's checks.
//!
//! Everything is read here, eagerly, while the master still sees the whole
//! file system: the fronts that use the context later run chrooted in an
//! empty directory, where no file named in the configuration exists. That
//! is why `CACertPath` is read certificate by certificate at build time
//! instead of being handed to OpenSSL as a lazily searched hashed directory.

use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use openssl::error::ErrorStack;
use openssl::pkey::PKey;
use openssl::ssl::{SslContextBuilder, SslFiletype, SslVersion};
use openssl::stack::Stack;
use openssl::x509::store::X509Lookup;
use openssl::x509::verify::X509VerifyFlags;
use openssl::x509::{X509Crl, X509Name, X509};
use postern_config::TlsFiles;

use crate::delegate::{add_chain_cert, build_chain, delegated_key};
use crate::{Keys, TlsError};

/// Settings both roles share: TLS 1.2 at least, `CipherList`. With
/// `no_rsa_key_exchange` (a server whose key is the key holder's), the
/// TLS 1.2 suites in which the client encrypts a secret to the server's
/// RSA key are removed from any list: decrypting is the one thing the
/// holder never does.
pub(crate) fn common(
    ctx: &mut SslContextBuilder,
    files: &TlsFiles,
    no_rsa_key_exchange: bool,
) -> Result<(), TlsError> {
    ctx.set_min_proto_version(Some(SslVersion::TLS1_2))
        .map_err(|e| TlsError::Config(format!("cannot require TLS 1.2: {}", reason(&e))))?;
    let list = match (&files.cipher_list, no_rsa_key_exchange) {
        (Some(list), true) => Some(format!("{list}:!kRSA")),
        (Some(list), false) => Some(list.clone()),
        (None, true) => Some("DEFAULT:!kRSA".to_string()),
        (None, false) => None,
    };
    if let Some(list) = list {
        // OpenSSL ignores unknown words in a list as long as one cipher
        // remains; only a list that matches nothing is refused here.
        let configured = files.cipher_list.as_deref().unwrap_or("DEFAULT");
        ctx.set_cipher_list(&list).map_err(|e| {
            TlsError::Config(format!("CipherList \"{configured}\": {}", reason(&e)))
        })?;
    }
    Ok(())
}

/// Loads a certificate (chain) and its private key: with [`Keys::Load`]
/// the key file itself, checking on the way that it is readable, not
/// accessible to group or others, and belongs to the certificate, each
/// failure its own error; with [`Keys::AskHolder`] a key object made from
/// the certificate's public key, whose signatures the key holder makes
/// (the key file is not opened: the holder checks it). Returns the
/// certificate when its file held no intermediates: its chain is then
/// the trust store's, for [`build_chains`] once the store is filled.
pub(crate) fn cert_and_key(
    ctx: &mut SslContextBuilder,
    cert: &Path,
    key: &Path,
    keys: Keys,
) -> Result<Option<X509>, TlsError> {
    let mut chain = read_certificates(cert)?.into_iter().peekable();
    let Some(leaf) = chain.next() else {
        return Err(TlsError::unreadable(cert, "no PEM certificate in file"));
    };
    let pkey = match keys {
        Keys::Load => certificates_key(&leaf, cert, key)?,
        Keys::AskHolder => {
            let public = leaf.public_key().map_err(openssl_failure)?;
            delegated_key(&public).map_err(|e| TlsError::unreadable(cert, e.to_string()))?
        }
    };
    // A second pair (an ECDSA certificate beside an RSA one) goes to its
    // own slot: OpenSSL keeps one certificate, chain and key per key
    // type.
    ctx.set_certificate(&leaf)
        .map_err(|e| TlsError::unreadable(cert, reason(&e)))?;
    let from_store = chain.peek().is_none();
    for intermediate in chain {
        add_chain_cert(ctx, &intermediate)?;
    }
    ctx.set_private_key(&pkey)
        .map_err(|e| TlsError::unreadable(key, reason(&e)))?;
    ctx.check_private_key().map_err(|_| TlsError::KeyMismatch {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
    })?;
    Ok(from_store.then_some(leaf))
}

/// Builds, once, the chains of the certificates [`cert_and_key`] returned,
/// from the trust store [`trust`] filled.
pub(crate) fn build_chains(ctx: &mut SslContextBuilder, leaves: &[X509]) {
    for leaf in leaves {
        build_chain(ctx, leaf);
    }
}

/// The private key in `key`, checked to be `leaf`'s (read from `cert`).
pub(crate) fn certificates_key(
    leaf: &X509,
    cert: &Path,
    key: &Path,
) -> Result<PKey<openssl::pkey::Private>, TlsError> {
    let pkey = private_key(key)?;
    let matches = leaf
        .public_key()
        .map(|public| public.public_eq(&pkey))
        .unwrap_or(false);
    if !matches {
        return Err(TlsError::KeyMismatch {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
        });
    }
    Ok(pkey)
}

/// The first certificate of a PEM file.
pub(crate) fn leaf_certificate(cert: &Path) -> Result<X509, TlsError> {
    read_certificates(cert)?
        .into_iter()
        .next()
        .ok_or_else(|| TlsError::unreadable(cert, "no PEM certificate in file"))
}

/// The certificates of a PEM file, and nothing else of it.
///
/// A file read for its certificates may hold a private key too: a
/// combined certificate-and-key file, or `key.pem` in a `CACertPath`
/// directory (the seed's `/etc/mail/certs` holds both). Decoding such a
/// file whole (OpenSSL's PEM reader decodes every block, keys included,
/// before it skips them) would leave the key's numbers in the heap of
/// master and the front factory, and from there in every front. So only
/// the certificate blocks are picked out, as text, and the bytes read
/// are overwritten before anything is decoded.
pub(crate) fn read_certificates(path: &Path) -> Result<Vec<X509>, TlsError> {
    let mut raw = read(path)?;
    let pem = certificate_blocks(&raw);
    raw.fill(0);
    std::hint::black_box(&raw);
    Ok(X509::stack_from_pem(&pem).unwrap_or_default())
}

/// The `CERTIFICATE` (also `X509 CERTIFICATE`, `TRUSTED CERTIFICATE`)
/// blocks of a PEM text, copied line by line; every other line (a key's
/// among them) is not copied anywhere.
fn certificate_blocks(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in raw.split(|&b| b == b'\n') {
        let trimmed = line.strip_suffix(b"\r").unwrap_or(line);
        let begins = trimmed.starts_with(b"-----BEGIN ")
            && trimmed.ends_with(b"CERTIFICATE-----")
            && !trimmed.windows(3).any(|w| w == b"KEY");
        if !inside && begins {
            inside = true;
        }
        if inside {
            out.extend_from_slice(trimmed);
            out.push(b'\n');
            if trimmed.starts_with(b"-----END ") {
                inside = false;
            }
        }
    }
    out
}

/// A certificate option and its key option as pairs: sendmail allows a
/// second pair after a comma (`cert.pem,ecdsa-cert.pem`), typically an
/// ECDSA certificate beside an RSA one. `what` names the options for the
/// error when the two lists differ in length.
pub(crate) fn pairs(
    cert: Option<&Path>,
    key: Option<&Path>,
    what: (&str, &str),
) -> Result<Vec<(PathBuf, PathBuf)>, TlsError> {
    let (cert, key) = match (cert, key) {
        (None, None) => return Ok(Vec::new()),
        (Some(cert), Some(key)) => (cert, key),
        (Some(_), None) => {
            return Err(TlsError::Config(format!(
                "{} is set but {} is not",
                what.0, what.1
            )))
        }
        (None, Some(_)) => {
            return Err(TlsError::Config(format!(
                "{} is set but {} is not",
                what.1, what.0
            )))
        }
    };
    let split = |p: &Path| -> Vec<PathBuf> {
        p.to_string_lossy()
            .split(',')
            .map(|s| PathBuf::from(s.trim()))
            .collect()
    };
    let (certs, keys) = (split(cert), split(key));
    if certs.len() != keys.len()
        || certs.len() > 2
        || certs.iter().chain(&keys).any(|p| p.as_os_str().is_empty())
    {
        return Err(TlsError::Config(format!(
            "{} and {} must name one file each, or two separated by a comma ({} and {} given)",
            what.0,
            what.1,
            certs.len(),
            keys.len()
        )));
    }
    Ok(certs.into_iter().zip(keys).collect())
}

/// The server's pairs.
pub(crate) fn server_pairs(files: &TlsFiles) -> Result<Vec<(PathBuf, PathBuf)>, TlsError> {
    pairs(
        files.server_cert_file.as_deref(),
        files.server_key_file.as_deref(),
        ("ServerCertFile", "ServerKeyFile"),
    )
}

/// The client's pairs.
pub(crate) fn client_pairs(files: &TlsFiles) -> Result<Vec<(PathBuf, PathBuf)>, TlsError> {
    pairs(
        files.client_cert_file.as_deref(),
        files.client_key_file.as_deref(),
        ("ClientCertFile", "ClientKeyFile"),
    )
}

/// Reads an unencrypted PEM private key after sendmail's safety check:
/// no permission bits for group or others.
pub(crate) fn private_key(key: &Path) -> Result<PKey<openssl::pkey::Private>, TlsError> {
    let mut file = File::open(key).map_err(|e| TlsError::unreadable(key, e.to_string()))?;
    // The mode of the file we opened, not of whatever the name points to
    // a moment later.
    let mode = file
        .metadata()
        .map_err(|e| TlsError::unreadable(key, e.to_string()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(TlsError::UnsafeKey {
            file: key.to_path_buf(),
            reason: format!(
                "mode {:04o} lets group or others access the key (must be 0600 or stricter)",
                mode & 0o7777
            ),
        });
    }
    let mut pem = Vec::new();
    file.read_to_end(&mut pem)
        .map_err(|e| TlsError::unreadable(key, e.to_string()))?;
    // The callback answers an encrypted key with an empty passphrase, so
    // OpenSSL never prompts on a terminal; such a key simply fails to load.
    PKey::private_key_from_pem_callback(&pem, |_| Ok(0)).map_err(|e| {
        TlsError::unreadable(
            key,
            format!("not an unencrypted PEM private key: {}", reason(&e)),
        )
    })
}

/// Fills the context's trust store from `CACertFile` and `CACertPath` and
/// loads `CRLFile`. With `send_names` (the server), the subjects of the
/// certificates in `CACertFile` are the CA names sent in the
/// CertificateRequest; those of `CACertPath` are not, as in sendmail.
pub(crate) fn trust(
    ctx: &mut SslContextBuilder,
    files: &TlsFiles,
    send_names: bool,
) -> Result<(), TlsError> {
    if let Some(file) = &files.ca_cert_file {
        let certs = read_certificates(file)?;
        if certs.is_empty() {
            return Err(TlsError::unreadable(file, "no PEM certificate in file"));
        }
        let mut names = Stack::<X509Name>::new().map_err(openssl_failure)?;
        for cert in certs {
            names
                .push(cert.subject_name().to_owned().map_err(openssl_failure)?)
                .map_err(openssl_failure)?;
            add_trusted(ctx, cert);
        }
        if send_names {
            ctx.set_client_ca_list(names);
        }
    }
    if let Some(dir) = &files.ca_cert_path {
        for cert in certificates_in(dir)? {
            add_trusted(ctx, cert);
        }
    }
    if let Some(crl) = &files.crl_file {
        load_crl(ctx, crl)?;
    }
    Ok(())
}

/// Adds one trusted certificate. The only failure OpenSSL reports here is
/// a duplicate (the hashed link and the file it points to), which is
/// harmless.
fn add_trusted(ctx: &mut SslContextBuilder, cert: X509) {
    let _ = ctx.cert_store_mut().add_cert(cert);
}

/// Every certificate in the files of a `CACertPath` directory that look
/// like certificates: `*.pem`, `*.crt`, or c_rehash's `<hash>.<n>`. Files
/// that cannot be read or hold no PEM certificate (keys, CSRs, stray
/// files) are skipped; an unreadable directory is an error.
fn certificates_in(dir: &Path) -> Result<Vec<X509>, TlsError> {
    let entries = fs::read_dir(dir).map_err(|e| TlsError::unreadable(dir, e.to_string()))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(looks_like_certificate)
        })
        .collect();
    paths.sort();
    let mut certs = Vec::new();
    for path in paths {
        if let Ok(found) = read_certificates(&path) {
            certs.extend(found);
        }
    }
    Ok(certs)
}

/// `cacert.pem`, `ca.crt`, or c_rehash's `1a2b3c4d.0`.
fn looks_like_certificate(name: &str) -> bool {
    if name.ends_with(".pem") || name.ends_with(".crt") {
        return true;
    }
    match name.split_once('.') {
        Some((hash, n)) => {
            hash.len() == 8
                && hash.bytes().all(|b| b.is_ascii_hexdigit())
                && !n.is_empty()
                && n.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

/// Loads the CRL(s) of `CRLFile` and turns on CRL checking for the leaf
/// certificate (X509_V_FLAG_CRL_CHECK, as sendmail does). A CRL file that
/// cannot be used is an error: sendmail disables STARTTLS, we refuse to
/// start rather than run without the revocation check asked for.
fn load_crl(ctx: &mut SslContextBuilder, crl: &Path) -> Result<(), TlsError> {
    let pem = read(crl)?;
    X509Crl::from_pem(&pem)
        .map_err(|e| TlsError::unreadable(crl, format!("no PEM CRL in file: {}", reason(&e))))?;
    let path = c_path(crl)?;
    let store = ctx.cert_store_mut();
    store
        .add_lookup(X509Lookup::file())
        .and_then(|lookup| lookup.load_crl_file(path, SslFiletype::PEM))
        .map_err(|e| TlsError::unreadable(crl, reason(&e)))?;
    store
        .set_flags(X509VerifyFlags::CRL_CHECK)
        .map_err(openssl_failure)
}

/// Reads a whole file, naming it on failure.
fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    fs::read(path).map_err(|e| TlsError::unreadable(path, e.to_string()))
}

/// The path as OpenSSL's file loaders need it. The openssl crate panics on
/// a path that is not UTF-8 or holds a NUL byte; refuse those first.
fn c_path(path: &Path) -> Result<&str, TlsError> {
    match path.to_str() {
        Some(s) if !s.contains('\0') => Ok(s),
        _ => Err(TlsError::unreadable(
            path,
            "OpenSSL needs a UTF-8 path without NUL bytes",
        )),
    }
}

/// OpenSSL's error stack in one line, e.g. `error:0A000118:SSL routines::no
/// cipher match`.
pub(crate) fn reason(e: &ErrorStack) -> String {
    let text = e.to_string();
    if text.is_empty() {
        "unknown OpenSSL error".to_string()
    } else {
        text
    }
}

/// An OpenSSL failure that is nobody's configuration mistake (allocation,
/// library state).
pub(crate) fn openssl_failure(e: ErrorStack) -> TlsError {
    TlsError::Config(format!("OpenSSL: {}", reason(&e)))
}

#[cfg(test)]
mod tests {
    use super::{certificate_blocks, looks_like_certificate};

    #[test]
    fn only_certificate_blocks_are_kept() {
        let text = b"-----BEGIN PRIVATE KEY-----\r\nS2VZ\r\n-----END PRIVATE KEY-----\r\n\
junk\n-----BEGIN CERTIFICATE-----\nQ0VSVA==\n-----END CERTIFICATE-----\n\
-----BEGIN EC PRIVATE KEY-----\nRUM=\n-----END EC PRIVATE KEY-----\n\
-----BEGIN TRUSTED CERTIFICATE-----\nVFJVU1Q=\n-----END TRUSTED CERTIFICATE-----\n";
        assert_eq!(
            String::from_utf8(certificate_blocks(text)).unwrap(),
            "-----BEGIN CERTIFICATE-----\nQ0VSVA==\n-----END CERTIFICATE-----\n\
-----BEGIN TRUSTED CERTIFICATE-----\nVFJVU1Q=\n-----END TRUSTED CERTIFICATE-----\n"
        );
    }

    #[test]
    fn certificate_file_names() {
        for yes in ["cacert.pem", "ca.crt", "1a2b3c4d.0", "ABCDEF01.12"] {
            assert!(looks_like_certificate(yes), "{yes}");
        }
        for no in [
            "key",
            "1a2b3c4d",
            "1a2b3c4d.r0",
            "1a2b3c.0",
            "cert.csr",
            "x.pem.bak",
        ] {
            assert!(!looks_like_certificate(no), "{no}");
        }
    }
}
