//! The key holder's side: the private keys, loaded once, and the only
//! operations done with them.
//!
//! [`KeyStore::load`] reads every key the configuration names
//! (`ServerKeyFile`, `ClientKeyFile`, each with its optional second pair),
//! with sendmail's checks, and proves each one: a signature made through
//! the same delegation a front uses, verified against the certificate.
//! [`KeyStore::sign`] then answers requests that pass [`check`]: a
//! handshake's signatures and nothing else.

mod check;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use openssl::ec::EcKey;
use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::{Padding, Rsa};
use openssl::sign::{RsaPssSaltlen, Signer, Verifier};
use postern_config::TlsFiles;

use crate::delegate::{delegated_key, with_thread_signer, KeyFingerprint, KeySigner, SignOp};
use crate::load::{self, openssl_failure};
use crate::TlsError;
use check::KeyShape;

/// The private keys of a configuration.
pub struct KeyStore {
    keys: Vec<HeldKey>,
}

struct HeldKey {
    fingerprint: KeyFingerprint,
    file: PathBuf,
    /// The certificate whose key this is (for the self-test).
    cert: PathBuf,
    secret: Secret,
}

#[derive(Clone)]
enum Secret {
    Rsa(Rsa<Private>),
    Ec(EcKey<Private>),
}

impl HeldKey {
    fn shape(&self) -> KeyShape {
        match &self.secret {
            Secret::Rsa(rsa) => KeyShape::Rsa {
                bits: rsa.n().num_bits() as usize,
            },
            Secret::Ec(_) => KeyShape::Ec,
        }
    }
}

impl std::fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.keys.iter().map(|k| &k.file))
            .finish()
    }
}

impl KeyStore {
    /// Reads every private key `files` names and checks each against its
    /// certificate (mode, match, one signature verified). The first
    /// failure names its file, and the side (`server`, `client`) it is
    /// for.
    pub fn load(files: &TlsFiles) -> Result<Arc<KeyStore>, KeyLoadError> {
        let mut keys: Vec<HeldKey> = Vec::new();
        let sides = [
            ("server", load::server_pairs(files)),
            ("client", load::client_pairs(files)),
        ];
        for (side, pairs) in sides {
            let in_side = |error| KeyLoadError { side, error };
            for (cert, key) in pairs.map_err(in_side)? {
                let held = read_pair(&cert, &key).map_err(in_side)?;
                // The same key for server and client is held once.
                if !keys.iter().any(|k| k.fingerprint == held.fingerprint) {
                    held.self_test().map_err(in_side)?;
                    keys.push(held);
                }
            }
        }
        Ok(Arc::new(KeyStore { keys }))
    }

    /// How many keys it holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when it holds none (no certificate is configured).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// One line per key for the log: kind, size and file.
    pub fn describe(&self) -> Vec<String> {
        self.keys
            .iter()
            .map(|k| match &k.secret {
                Secret::Rsa(rsa) => format!("RSA {} {}", rsa.n().num_bits(), k.file.display()),
                Secret::Ec(ec) => format!("EC {} {}", ec.group().degree(), k.file.display()),
            })
            .collect()
    }

    /// Performs `op` on `input` with the key named `key`, if the request
    /// has a handshake's exact shape; else says why not, touching no key.
    pub fn sign(&self, key: &KeyFingerprint, op: SignOp, input: &[u8]) -> Result<Vec<u8>, String> {
        let held = self
            .keys
            .iter()
            .find(|k| k.fingerprint == *key)
            .ok_or("no such key")?;
        check::acceptable(held.shape(), op, input)?;
        let failed = |e: openssl::error::ErrorStack| format!("signature failed: {e}");
        match (&held.secret, op) {
            (Secret::Rsa(rsa), SignOp::RsaPkcs1 | SignOp::RsaRaw) => {
                let padding = if op == SignOp::RsaRaw {
                    Padding::NONE
                } else {
                    Padding::PKCS1
                };
                let mut out = vec![0; rsa.size() as usize];
                let n = rsa
                    .private_encrypt(input, &mut out, padding)
                    .map_err(failed)?;
                out.truncate(n);
                Ok(out)
            }
            (Secret::Ec(ec), SignOp::Ecdsa) => EcdsaSig::sign(input, ec)
                .and_then(|sig| sig.to_der())
                .map_err(failed),
            _ => Err("operation does not fit the key".into()),
        }
    }
}

impl HeldKey {
    /// One signature through a delegated key, as a front makes it,
    /// verified with the certificate's public key: a key that does not
    /// work stops the start here, naming its file, rather than failing
    /// the first handshake.
    fn self_test(&self) -> Result<(), TlsError> {
        let failed = |reason: String| TlsError::SelfTest {
            key: self.file.clone(),
            reason,
        };
        let public = load::leaf_certificate(&self.cert)?
            .public_key()
            .map_err(openssl_failure)?;
        let delegated = delegated_key(&public).map_err(|e| failed(e.to_string()))?;
        let paddings: &[Option<Padding>] = match self.secret {
            Secret::Rsa(_) => &[Some(Padding::PKCS1), Some(Padding::PKCS1_PSS)],
            Secret::Ec(_) => &[None],
        };
        // The key alone, answering in this thread: what the holder will
        // answer for it.
        let alone = Arc::new(KeyStore {
            keys: vec![HeldKey {
                fingerprint: self.fingerprint,
                file: self.file.clone(),
                cert: self.cert.clone(),
                secret: self.secret.clone(),
            }],
        });
        for padding in paddings {
            let signer = Box::new(LocalSigner(Arc::clone(&alone)));
            let signature = with_thread_signer(signer, || sign_test(&delegated, *padding))
                .map_err(|e| failed(format!("signing: {e}")))?;
            let verified = verify_test(&public, *padding, &signature)
                .map_err(|e| failed(format!("verifying: {e}")))?;
            if !verified {
                return Err(failed(
                    "the signature does not verify with the certificate's key".into(),
                ));
            }
        }
        Ok(())
    }
}

/// A key that cannot be held: which side's, and why.
#[derive(Debug, thiserror::Error)]
#[error("STARTTLS={side}: {error}")]
pub struct KeyLoadError {
    /// `server` or `client`.
    pub side: &'static str,
    /// What is wrong, naming the file.
    pub error: TlsError,
}

const SELF_TEST_DATA: &[u8] = b"postern key holder self-test";

fn sign_test(
    key: &PKey<Private>,
    padding: Option<Padding>,
) -> Result<Vec<u8>, openssl::error::ErrorStack> {
    let mut signer = Signer::new(MessageDigest::sha256(), key)?;
    if let Some(padding) = padding {
        signer.set_rsa_padding(padding)?;
        if padding == Padding::PKCS1_PSS {
            signer.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH)?;
        }
    }
    signer.update(SELF_TEST_DATA)?;
    signer.sign_to_vec()
}

fn verify_test(
    key: &PKey<openssl::pkey::Public>,
    padding: Option<Padding>,
    signature: &[u8],
) -> Result<bool, openssl::error::ErrorStack> {
    let mut verifier = Verifier::new(MessageDigest::sha256(), key)?;
    if let Some(padding) = padding {
        verifier.set_rsa_padding(padding)?;
        if padding == Padding::PKCS1_PSS {
            verifier.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH)?;
        }
    }
    verifier.update(SELF_TEST_DATA)?;
    verifier.verify(signature)
}

/// A store answering in this process: the holder's self-test, and tests.
pub struct LocalSigner(pub Arc<KeyStore>);

impl KeySigner for LocalSigner {
    fn sign(&mut self, key: KeyFingerprint, op: SignOp, input: &[u8]) -> Result<Vec<u8>, String> {
        self.0.sign(&key, op, input)
    }
}

/// Reads one certificate and its key, as sendmail checks them.
fn read_pair(cert: &Path, key: &Path) -> Result<HeldKey, TlsError> {
    let leaf = load::leaf_certificate(cert)?;
    let pkey = load::certificates_key(&leaf, cert, key)?;
    let fingerprint = KeyFingerprint::of(&pkey)?;
    let secret = if let Ok(rsa) = pkey.rsa() {
        Secret::Rsa(rsa)
    } else if let Ok(ec) = pkey.ec_key() {
        Secret::Ec(ec)
    } else {
        return Err(TlsError::unreadable(
            key,
            "only RSA and ECDSA keys can be used",
        ));
    };
    Ok(HeldKey {
        fingerprint,
        file: key.to_path_buf(),
        cert: cert.to_path_buf(),
        secret,
    })
}
