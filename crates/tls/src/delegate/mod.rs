//! Keys whose private half lives in another process (the key holder):
//! the requesting side.
//!
//! A context built with [`crate::Keys::AskHolder`] holds, for each
//! certificate, a key object made from the certificate's *public*
//! components ([`ffi`]). When a handshake needs a signature, OpenSSL calls
//! that key's method, which hands the input to this process's
//! [`KeySigner`]: in a front or the delivery client, a socket to the key
//! holder. No private key byte ever exists in the requesting process.
//!
//! The signer is per process ([`set_process_signer`]), installed after
//! fork by the process that will do handshakes, with a per-thread
//! override ([`with_thread_signer`]) for the holder's own start-up check
//! and for tests.

mod ffi;

pub(crate) use ffi::{add_chain_cert, build_chain};

use std::cell::RefCell;
use std::sync::Mutex;

use openssl::pkey::{PKey, Private, Public};

use crate::TlsError;

/// Which private-key operation a signature needs. These are the only
/// three the holder performs; it never decrypts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignOp {
    /// RSA PKCS#1 v1.5 signature of a DigestInfo (TLS 1.2's
    /// `rsa_pkcs1_*`).
    RsaPkcs1,
    /// The raw RSA operation on a block OpenSSL has already PSS-encoded
    /// (`rsa_pss_rsae_*`, the only RSA signatures of TLS 1.3).
    RsaRaw,
    /// ECDSA over a digest; the signature in DER.
    Ecdsa,
}

/// A key's name between requester and holder: the SHA-256 of its DER
/// SubjectPublicKeyInfo, so that both sides find the same key without
/// agreeing on an order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KeyFingerprint(pub [u8; 32]);

impl KeyFingerprint {
    /// The fingerprint of a public (or private) key.
    pub fn of<T: openssl::pkey::HasPublic>(key: &PKey<T>) -> Result<KeyFingerprint, TlsError> {
        let der = key
            .public_key_to_der()
            .map_err(crate::load::openssl_failure)?;
        Ok(KeyFingerprint(openssl::sha::sha256(&der)))
    }
}

/// Whoever performs a delegated key's private operations for this
/// process.
pub trait KeySigner: Send {
    /// The signature (or raw RSA result) for `input` with the key named
    /// `key`; `Err` with the reason when it cannot be had (the handshake
    /// then fails).
    fn sign(&mut self, key: KeyFingerprint, op: SignOp, input: &[u8]) -> Result<Vec<u8>, String>;
}

static PROCESS_SIGNER: Mutex<Option<Box<dyn KeySigner>>> = Mutex::new(None);

thread_local! {
    static THREAD_SIGNER: RefCell<Option<Box<dyn KeySigner>>> = const { RefCell::new(None) };
}

/// Installs (or with `None` removes) the signer of every delegated key in
/// this process.
pub fn set_process_signer(signer: Option<Box<dyn KeySigner>>) {
    let mut slot = PROCESS_SIGNER.lock().unwrap_or_else(|e| e.into_inner());
    *slot = signer;
}

/// Runs `f` with `signer` answering this thread's delegated operations
/// (ahead of the process's signer).
pub fn with_thread_signer<R>(signer: Box<dyn KeySigner>, f: impl FnOnce() -> R) -> R {
    let previous = THREAD_SIGNER.with(|slot| slot.borrow_mut().replace(signer));
    let result = f();
    THREAD_SIGNER.with(|slot| *slot.borrow_mut() = previous);
    result
}

/// Asks the thread's signer, else the process's. `None` when there is
/// none or it refused; the reason goes to OpenSSL's caller as a failed
/// handshake, and the refusal is the holder's to log.
fn call_signer(key: KeyFingerprint, op: SignOp, input: &[u8]) -> Option<Vec<u8>> {
    let local = THREAD_SIGNER.with(|slot| {
        slot.borrow_mut()
            .as_mut()
            .map(|signer| signer.sign(key, op, input))
    });
    let result = match local {
        Some(result) => result,
        None => {
            let mut slot = PROCESS_SIGNER.lock().unwrap_or_else(|e| e.into_inner());
            match slot.as_mut() {
                Some(signer) => signer.sign(key, op, input),
                None => Err("no key holder in this process".into()),
            }
        }
    };
    result.ok()
}

/// A key object for the certificate key `public` whose private operations
/// go to the signer.
pub fn delegated_key(public: &PKey<Public>) -> Result<PKey<Private>, TlsError> {
    ffi::delegated_key(public)
}
