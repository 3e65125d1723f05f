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

use crate::TlsError;

/// Settings both roles share: TLS 1.2 at least, `CipherList`.
pub(crate) fn common(ctx: &mut SslContextBuilder, files: &TlsFiles) -> Result<(), TlsError> {
    ctx.set_min_proto_version(Some(SslVersion::TLS1_2))
        .map_err(|e| TlsError::Config(format!("cannot require TLS 1.2: {}", reason(&e))))?;
    if let Some(list) = &files.cipher_list {
        // OpenSSL ignores unknown words in a list as long as one cipher
        // remains; only a list that matches nothing is refused here.
        ctx.set_cipher_list(list)
            .map_err(|e| TlsError::Config(format!("CipherList \"{list}\": {}", reason(&e))))?;
    }
    Ok(())
}

/// Loads a certificate (chain) and its private key, checking on the way
/// that the key is readable, not accessible to group or others, and
/// belongs to the certificate, each failure its own error.
pub(crate) fn cert_and_key(
    ctx: &mut SslContextBuilder,
    cert: &Path,
    key: &Path,
) -> Result<(), TlsError> {
    let pem = read(cert)?;
    let chain = X509::stack_from_pem(&pem).unwrap_or_default();
    let Some(leaf) = chain.first() else {
        return Err(TlsError::unreadable(cert, "no PEM certificate in file"));
    };
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
    // The chain file loader keeps the intermediate certificates with this
    // certificate (SSL_CTX_use_certificate_chain_file).
    ctx.set_certificate_chain_file(c_path(cert)?)
        .map_err(|e| TlsError::unreadable(cert, reason(&e)))?;
    ctx.set_private_key(&pkey)
        .map_err(|e| TlsError::unreadable(key, reason(&e)))?;
    ctx.check_private_key().map_err(|_| TlsError::KeyMismatch {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
    })
}

/// Reads an unencrypted PEM private key after sendmail's safety check:
/// no permission bits for group or others.
fn private_key(key: &Path) -> Result<PKey<openssl::pkey::Private>, TlsError> {
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
        let certs = X509::stack_from_pem(&read(file)?).unwrap_or_default();
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
        if let Ok(pem) = fs::read(&path) {
            certs.extend(X509::stack_from_pem(&pem).unwrap_or_default());
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
    use super::looks_like_certificate;

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
