//! The OpenSSL calls that make a key whose private operations are done
//! elsewhere: an `RSA_METHOD` whose `priv_enc` and an `EC_KEY_METHOD`
//! whose signing callbacks hand the work to this process's
//! [`super::KeySigner`]. `openssl-sys` binds none of the method functions,
//! so they are declared here; this is the only unsafe code of the crate
//! (with two `SSL_CTX_ctrl` macros of C the openssl crate does not wrap:
//! adding a chain certificate, and building a chain once).
//!
//! These are OpenSSL's "legacy" key APIs, deprecated in 3.0 but present
//! in every 3.x. Should they go, the same delegation is an OpenSSL
//! provider offering a signature operation for a key handle (what
//! `pkcs11-provider` does); the holder's side would not change.
//!
//! Two pitfalls this code is shaped by (both found by experiment on
//! OpenSSL 3.0): the method must be set on the `RSA`/`EC_KEY` *before* it
//! is assigned to an `EVP_PKEY` (set afterwards, OpenSSL exports the key
//! to its default provider as public-only, and every handshake fails with
//! "missing private key"); and the key is a fresh object built from the
//! certificate's public components, never the certificate's own key.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, c_uchar, c_uint};
use std::ptr;
use std::sync::OnceLock;

use foreign_types::{ForeignType, ForeignTypeRef};
use openssl::pkey::{PKey, Private, Public};
use openssl_sys as sys;

use super::{call_signer, KeyFingerprint, SignOp};
use crate::TlsError;

#[allow(non_camel_case_types)]
enum EC_KEY_METHOD {}

type PrivEnc =
    unsafe extern "C" fn(c_int, *const c_uchar, *mut c_uchar, *mut sys::RSA, c_int) -> c_int;
type EcSign = unsafe extern "C" fn(
    c_int,
    *const c_uchar,
    c_int,
    *mut c_uchar,
    *mut c_uint,
    *const sys::BIGNUM,
    *const sys::BIGNUM,
    *mut sys::EC_KEY,
) -> c_int;
type EcSignSetup = unsafe extern "C" fn(
    *mut sys::EC_KEY,
    *mut sys::BN_CTX,
    *mut *mut sys::BIGNUM,
    *mut *mut sys::BIGNUM,
) -> c_int;
type EcSignSig = unsafe extern "C" fn(
    *const c_uchar,
    c_int,
    *const sys::BIGNUM,
    *const sys::BIGNUM,
    *mut sys::EC_KEY,
) -> *mut sys::ECDSA_SIG;

extern "C" {
    fn RSA_get_default_method() -> *const sys::RSA_METHOD;
    fn RSA_meth_dup(meth: *const sys::RSA_METHOD) -> *mut sys::RSA_METHOD;
    fn RSA_meth_set1_name(meth: *mut sys::RSA_METHOD, name: *const c_char) -> c_int;
    fn RSA_meth_set_priv_enc(meth: *mut sys::RSA_METHOD, f: Option<PrivEnc>) -> c_int;
    fn RSA_meth_set_priv_dec(meth: *mut sys::RSA_METHOD, f: Option<PrivEnc>) -> c_int;
    fn RSA_set_method(rsa: *mut sys::RSA, meth: *const sys::RSA_METHOD) -> c_int;
    fn EC_KEY_get_default_method() -> *const EC_KEY_METHOD;
    fn EC_KEY_METHOD_new(meth: *const EC_KEY_METHOD) -> *mut EC_KEY_METHOD;
    fn EC_KEY_METHOD_set_sign(
        meth: *mut EC_KEY_METHOD,
        sign: Option<EcSign>,
        sign_setup: Option<EcSignSetup>,
        sign_sig: Option<EcSignSig>,
    );
    fn EC_KEY_set_method(key: *mut sys::EC_KEY, meth: *const EC_KEY_METHOD) -> c_int;
    fn ECDSA_size(key: *const sys::EC_KEY) -> c_int;
    fn d2i_ECDSA_SIG(
        sig: *mut *mut sys::ECDSA_SIG,
        pp: *mut *const c_uchar,
        len: std::ffi::c_long,
    ) -> *mut sys::ECDSA_SIG;
}

const RSA_PKCS1_PADDING: c_int = 1;
const RSA_NO_PADDING: c_int = 3;

/// The methods, made once per process and never freed (keys made from
/// them live as long as the contexts that hold them).
struct Methods {
    rsa: usize,
    ec: usize,
}

fn methods() -> Result<&'static Methods, TlsError> {
    static METHODS: OnceLock<Result<Methods, String>> = OnceLock::new();
    METHODS
        .get_or_init(|| {
            // SAFETY: plain constructor calls on OpenSSL's own default
            // methods; every pointer is checked before use.
            unsafe {
                let rsa = RSA_meth_dup(RSA_get_default_method());
                if rsa.is_null() {
                    return Err("RSA_meth_dup failed".into());
                }
                RSA_meth_set1_name(rsa, c"postern key holder".as_ptr());
                RSA_meth_set_priv_enc(rsa, Some(rsa_priv_enc));
                RSA_meth_set_priv_dec(rsa, Some(rsa_priv_dec));
                let ec = EC_KEY_METHOD_new(EC_KEY_get_default_method());
                if ec.is_null() {
                    return Err("EC_KEY_METHOD_new failed".into());
                }
                EC_KEY_METHOD_set_sign(ec, Some(ec_sign), None, Some(ec_sign_sig));
                Ok(Methods {
                    rsa: rsa as usize,
                    ec: ec as usize,
                })
            }
        })
        .as_ref()
        .map_err(|e| TlsError::Config(format!("OpenSSL: {e}")))
}

/// A private key object for `public` (a certificate's key) holding no
/// private part: its signatures are asked of the key holder.
pub(super) fn delegated_key(public: &PKey<Public>) -> Result<PKey<Private>, TlsError> {
    let m = methods()?;
    let fail = |what: &str| TlsError::Config(format!("OpenSSL: delegated key: {what} failed"));
    if let Ok(rsa) = public.rsa() {
        // SAFETY: each object is checked for NULL, and ownership moves as
        // OpenSSL documents: RSA_set0_key takes the two BIGNUMs,
        // EVP_PKEY_assign takes the RSA, PKey::from_ptr takes the EVP_PKEY.
        unsafe {
            let key = sys::RSA_new();
            if key.is_null() {
                return Err(fail("RSA_new"));
            }
            // The method first: see the module's comment.
            RSA_set_method(key, m.rsa as *const sys::RSA_METHOD);
            let n = sys::BN_dup(rsa.n().as_ptr());
            let e = sys::BN_dup(rsa.e().as_ptr());
            if n.is_null() || e.is_null() || sys::RSA_set0_key(key, n, e, ptr::null_mut()) != 1 {
                sys::RSA_free(key);
                return Err(fail("RSA_set0_key"));
            }
            return into_pkey(sys::EVP_PKEY_RSA, key.cast(), || sys::RSA_free(key));
        }
    }
    if let Ok(ec) = public.ec_key() {
        // SAFETY: as above; EC_KEY_set_group and EC_KEY_set_public_key
        // copy what they are given.
        unsafe {
            let key = sys::EC_KEY_new();
            if key.is_null() {
                return Err(fail("EC_KEY_new"));
            }
            EC_KEY_set_method(key, m.ec as *const EC_KEY_METHOD);
            if sys::EC_KEY_set_group(key, ec.group().as_ptr()) != 1
                || sys::EC_KEY_set_public_key(key, ec.public_key().as_ptr()) != 1
            {
                sys::EC_KEY_free(key);
                return Err(fail("EC_KEY_set_public_key"));
            }
            return into_pkey(sys::EVP_PKEY_EC, key.cast(), || sys::EC_KEY_free(key));
        }
    }
    Err(TlsError::Config(
        "only RSA and ECDSA keys can be used (the certificate has another kind)".into(),
    ))
}

/// Wraps a legacy key in an `EVP_PKEY`.
///
/// SAFETY: `key` is a valid key of type `kind`, owned by the caller;
/// `free` frees it. On success the returned PKey owns it.
unsafe fn into_pkey(
    kind: c_int,
    key: *mut std::ffi::c_void,
    free: impl FnOnce(),
) -> Result<PKey<Private>, TlsError> {
    let pkey = sys::EVP_PKEY_new();
    if pkey.is_null() {
        free();
        return Err(TlsError::Config("OpenSSL: EVP_PKEY_new failed".into()));
    }
    if sys::EVP_PKEY_assign(pkey, kind, key) != 1 {
        sys::EVP_PKEY_free(pkey);
        free();
        return Err(TlsError::Config("OpenSSL: EVP_PKEY_assign failed".into()));
    }
    Ok(PKey::from_ptr(pkey))
}

/// The SHA-256 of a DER SubjectPublicKeyInfo written by `i2d`.
///
/// SAFETY: `i2d` is an OpenSSL i2d function applied to a valid key.
unsafe fn spki_fingerprint(i2d: impl Fn(*mut *mut u8) -> c_int) -> Option<KeyFingerprint> {
    let len = i2d(ptr::null_mut());
    let len = usize::try_from(len).ok().filter(|&n| n > 0)?;
    let mut der = vec![0u8; len];
    let mut out = der.as_mut_ptr();
    if i2d(&mut out) as usize != len {
        return None;
    }
    Some(KeyFingerprint(openssl::sha::sha256(&der)))
}

/// `priv_enc`: a PKCS#1 v1.5 signature over a DigestInfo, or (TLS 1.3's
/// RSA-PSS, which OpenSSL pads itself) the raw operation on an encoded
/// block.
unsafe extern "C" fn rsa_priv_enc(
    flen: c_int,
    from: *const c_uchar,
    to: *mut c_uchar,
    rsa: *mut sys::RSA,
    padding: c_int,
) -> c_int {
    let op = match padding {
        RSA_PKCS1_PADDING => SignOp::RsaPkcs1,
        RSA_NO_PADDING => SignOp::RsaRaw,
        _ => return -1,
    };
    let (Ok(flen), Ok(size)) = (usize::try_from(flen), usize::try_from(sys::RSA_size(rsa))) else {
        return -1;
    };
    if from.is_null() || to.is_null() || size == 0 {
        return -1;
    }
    let Some(key) = spki_fingerprint(|out| sys::i2d_RSA_PUBKEY(rsa, out)) else {
        return -1;
    };
    let input = std::slice::from_raw_parts(from, flen);
    match call_signer(key, op, input) {
        Some(sig) if sig.len() == size => {
            ptr::copy_nonoverlapping(sig.as_ptr(), to, size);
            size as c_int
        }
        _ => -1,
    }
}

/// `priv_dec`: never. The key exchanges that would decrypt with the
/// server's key (TLS 1.2's RSA key transport) are off, and the holder
/// refuses decryption anyway.
unsafe extern "C" fn rsa_priv_dec(
    _flen: c_int,
    _from: *const c_uchar,
    _to: *mut c_uchar,
    _rsa: *mut sys::RSA,
    _padding: c_int,
) -> c_int {
    -1
}

/// The DER ECDSA signature of a digest, from the holder.
unsafe fn ec_signature(
    dgst: *const c_uchar,
    dlen: c_int,
    key: *mut sys::EC_KEY,
) -> Option<Vec<u8>> {
    let dlen = usize::try_from(dlen).ok()?;
    if dgst.is_null() {
        return None;
    }
    let fingerprint = spki_fingerprint(|out| sys::i2d_EC_PUBKEY(key, out))?;
    call_signer(
        fingerprint,
        SignOp::Ecdsa,
        std::slice::from_raw_parts(dgst, dlen),
    )
}

/// `sign`: ECDSA_sign's form, the DER signature into `sig`.
unsafe extern "C" fn ec_sign(
    _type: c_int,
    dgst: *const c_uchar,
    dlen: c_int,
    sig: *mut c_uchar,
    siglen: *mut c_uint,
    _kinv: *const sys::BIGNUM,
    _r: *const sys::BIGNUM,
    key: *mut sys::EC_KEY,
) -> c_int {
    let Some(der) = ec_signature(dgst, dlen, key) else {
        return 0;
    };
    let room = usize::try_from(ECDSA_size(key)).unwrap_or(0);
    if sig.is_null() || siglen.is_null() || der.len() > room {
        return 0;
    }
    ptr::copy_nonoverlapping(der.as_ptr(), sig, der.len());
    *siglen = der.len() as c_uint;
    1
}

/// `sign_sig`: ECDSA_do_sign's form, the signature as an ECDSA_SIG.
unsafe extern "C" fn ec_sign_sig(
    dgst: *const c_uchar,
    dlen: c_int,
    _kinv: *const sys::BIGNUM,
    _r: *const sys::BIGNUM,
    key: *mut sys::EC_KEY,
) -> *mut sys::ECDSA_SIG {
    let Some(der) = ec_signature(dgst, dlen, key) else {
        return ptr::null_mut();
    };
    let mut p = der.as_ptr();
    d2i_ECDSA_SIG(ptr::null_mut(), &mut p, der.len() as std::ffi::c_long)
}

/// Adds `cert` to the chain of the certificate last set on `ctx`
/// (`SSL_CTX_add1_chain_cert`, a macro in C): each of two certificates
/// (RSA and ECDSA) keeps its own intermediates, as
/// `SSL_CTX_use_certificate_chain_file` would keep them.
pub(crate) fn add_chain_cert(
    ctx: &mut openssl::ssl::SslContextBuilder,
    cert: &openssl::x509::X509Ref,
) -> Result<(), TlsError> {
    // SAFETY: both pointers are valid for the call; with larg 1 ("add1")
    // OpenSSL takes its own reference to the certificate.
    let done = unsafe {
        sys::SSL_CTX_ctrl(
            ctx.as_ptr(),
            sys::SSL_CTRL_CHAIN_CERT,
            1,
            cert.as_ptr().cast(),
        )
    };
    if done == 1 {
        Ok(())
    } else {
        Err(TlsError::Config(
            "OpenSSL: cannot add a chain certificate".into(),
        ))
    }
}

/// Builds the chain of `leaf` (set on `ctx` without intermediates) from
/// the context's trust store, once, as OpenSSL would otherwise do in every
/// handshake (`SSL_CTX_select_current_cert`, `SSL_CTX_build_cert_chain`,
/// macros in C): a fifth of a front's time in a STARTTLS session went to
/// finding and verifying the issuer of our own certificate. The chain is
/// the one the handshake would have sent (the root included, errors
/// ignored). Returns false, leaving OpenSSL to build it per handshake as
/// before, if it could not be built (a chain below the security level).
pub(crate) fn build_chain(
    ctx: &mut openssl::ssl::SslContextBuilder,
    leaf: &openssl::x509::X509Ref,
) -> bool {
    const SSL_CTRL_BUILD_CERT_CHAIN: c_int = 105;
    const SSL_CTRL_SELECT_CURRENT_CERT: c_int = 116;
    const SSL_BUILD_CHAIN_FLAG_IGNORE_ERROR: std::ffi::c_long = 0x8;
    const SSL_BUILD_CHAIN_FLAG_CLEAR_ERROR: std::ffi::c_long = 0x10;
    // SAFETY: both pointers are valid for the calls; selecting only looks
    // the certificate up among those set, and building replaces the
    // selected certificate's (empty) chain with one OpenSSL owns.
    let built = unsafe {
        sys::SSL_CTX_ctrl(
            ctx.as_ptr(),
            SSL_CTRL_SELECT_CURRENT_CERT,
            0,
            leaf.as_ptr().cast(),
        ) == 1
            && sys::SSL_CTX_ctrl(
                ctx.as_ptr(),
                SSL_CTRL_BUILD_CERT_CHAIN,
                SSL_BUILD_CHAIN_FLAG_IGNORE_ERROR | SSL_BUILD_CHAIN_FLAG_CLEAR_ERROR,
                ptr::null_mut(),
            ) > 0
    };
    if !built {
        // What failed stays OpenSSL's business at handshake time.
        let _ = openssl::error::ErrorStack::get();
    }
    built
}
