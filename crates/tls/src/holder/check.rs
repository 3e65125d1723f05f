//! What the key holder agrees to sign. A delegated private-key operation
//! is an oracle for whoever can ask: raw RSA on a chosen block is
//! decryption, so each request must have exactly the shape a TLS
//! handshake produces, checked before the key is touched.

use openssl::hash::{hash, MessageDigest};

use crate::SignOp;

/// The DER prefixes of PKCS#1's DigestInfo for the digests TLS 1.2 signs
/// with, followed by the digest's length.
const DIGEST_INFOS: [(&[u8], usize); 5] = [
    // SHA-1
    (
        &[
            0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04,
            0x14,
        ],
        20,
    ),
    // SHA-224
    (
        &[
            0x30, 0x2d, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x04, 0x05, 0x00, 0x04, 0x1c,
        ],
        28,
    ),
    // SHA-256
    (
        &[
            0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x01, 0x05, 0x00, 0x04, 0x20,
        ],
        32,
    ),
    // SHA-384
    (
        &[
            0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x02, 0x05, 0x00, 0x04, 0x30,
        ],
        48,
    ),
    // SHA-512
    (
        &[
            0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x03, 0x05, 0x00, 0x04, 0x40,
        ],
        64,
    ),
];

/// The digest lengths ECDSA is asked to sign in TLS (SHA-1 to SHA-512).
const ECDSA_DIGEST_LENGTHS: [usize; 5] = [20, 28, 32, 48, 64];

/// The key a request names, as far as the checks need it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum KeyShape {
    /// An RSA key with a modulus of this many bits.
    Rsa { bits: usize },
    /// An EC key.
    Ec,
}

/// `Ok` when `input` is what a handshake asks `op` of this key to do;
/// else why not.
pub(crate) fn acceptable(shape: KeyShape, op: SignOp, input: &[u8]) -> Result<(), String> {
    match (shape, op) {
        (KeyShape::Rsa { .. }, SignOp::RsaPkcs1) => digest_info(input),
        (KeyShape::Rsa { bits }, SignOp::RsaRaw) => pss_block(input, bits),
        (KeyShape::Ec, SignOp::Ecdsa) => {
            if ECDSA_DIGEST_LENGTHS.contains(&input.len()) {
                Ok(())
            } else {
                Err(format!(
                    "an ECDSA digest of {} bytes is no digest TLS uses",
                    input.len()
                ))
            }
        }
        (KeyShape::Rsa { .. }, SignOp::Ecdsa) => Err("ECDSA asked of an RSA key".into()),
        (KeyShape::Ec, _) => Err("an RSA operation asked of an EC key".into()),
    }
}

fn digest_info(input: &[u8]) -> Result<(), String> {
    let known = DIGEST_INFOS
        .iter()
        .any(|(prefix, len)| input.len() == prefix.len() + len && input.starts_with(prefix));
    if known {
        Ok(())
    } else {
        Err(format!(
            "a PKCS#1 input of {} bytes is not a SHA-1/SHA-2 DigestInfo",
            input.len()
        ))
    }
}

/// RFC 8017 §9.1.2's checks, without the message: the block is an
/// EMSA-PSS encoding with MGF1 and SHA-256, -384 or -512, whose salt is as
/// long as the digest (as TLS 1.3 requires, RFC 8446 §4.2.3).
fn pss_block(block: &[u8], mod_bits: usize) -> Result<(), String> {
    let k = mod_bits.div_ceil(8);
    if block.len() != k {
        return Err(format!(
            "a raw RSA input of {} bytes for a {}-byte modulus",
            block.len(),
            k
        ));
    }
    let em_bits = mod_bits - 1;
    let em_len = em_bits.div_ceil(8);
    let em = if em_len < k {
        if block[0] != 0 {
            return Err("not a PSS-encoded block (leading byte)".into());
        }
        &block[1..]
    } else {
        block
    };
    let digests = [
        MessageDigest::sha256(),
        MessageDigest::sha384(),
        MessageDigest::sha512(),
    ];
    if digests
        .iter()
        .any(|md| pss_with(em, em_bits, *md).unwrap_or(false))
    {
        Ok(())
    } else {
        Err("not a PSS-encoded block (refused: raw RSA on other input is decryption)".into())
    }
}

/// Whether `em` decodes as EMSA-PSS with `md` and a salt of its length.
fn pss_with(em: &[u8], em_bits: usize, md: MessageDigest) -> Option<bool> {
    let h_len = md.size();
    let em_len = em.len();
    if em_len < 2 * h_len + 2 || em[em_len - 1] != 0xbc {
        return Some(false);
    }
    let db_len = em_len - h_len - 1;
    let (masked_db, rest) = em.split_at(db_len);
    let h = &rest[..h_len];
    let top_bits = 8 * em_len - em_bits;
    let top_mask = 0xffu8.checked_shr(top_bits as u32).unwrap_or(0);
    if masked_db[0] & !top_mask != 0 {
        return Some(false);
    }
    let mask = mgf1(md, h, db_len)?;
    let mut db: Vec<u8> = masked_db.iter().zip(&mask).map(|(a, b)| a ^ b).collect();
    db[0] &= top_mask;
    // DB = PS (zeros) || 0x01 || salt, the salt h_len bytes.
    let ps_len = db_len - h_len - 1;
    Some(db[..ps_len].iter().all(|&b| b == 0) && db[ps_len] == 0x01)
}

/// MGF1 (RFC 8017 §B.2.1).
fn mgf1(md: MessageDigest, seed: &[u8], len: usize) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(len + md.size());
    let mut counter: u32 = 0;
    while out.len() < len {
        let mut input = seed.to_vec();
        input.extend_from_slice(&counter.to_be_bytes());
        out.extend_from_slice(&hash(md, &input).ok()?);
        counter += 1;
    }
    out.truncate(len);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::pkey::PKey;
    use openssl::rsa::{Padding, Rsa};
    use openssl::sign::{RsaPssSaltlen, Signer};

    /// The block OpenSSL hands `priv_enc` for a PSS signature: the
    /// signature "decrypted" with the public key.
    fn pss_block_of(rsa: &Rsa<openssl::pkey::Private>, md: MessageDigest) -> Vec<u8> {
        let pkey = PKey::from_rsa(rsa.clone()).unwrap();
        let mut signer = Signer::new(md, &pkey).unwrap();
        signer.set_rsa_padding(Padding::PKCS1_PSS).unwrap();
        signer
            .set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH)
            .unwrap();
        signer.update(b"handshake transcript").unwrap();
        let sig = signer.sign_to_vec().unwrap();
        let mut block = vec![0; rsa.size() as usize];
        let n = rsa.public_decrypt(&sig, &mut block, Padding::NONE).unwrap();
        block.truncate(n);
        block
    }

    #[test]
    fn pss_blocks_of_real_signatures_pass_and_other_blocks_do_not() {
        for bits in [2048, 2049, 3072] {
            let rsa = Rsa::generate(bits).unwrap();
            let shape = KeyShape::Rsa {
                bits: rsa.n().num_bits() as usize,
            };
            for md in [
                MessageDigest::sha256(),
                MessageDigest::sha384(),
                MessageDigest::sha512(),
            ] {
                let block = pss_block_of(&rsa, md);
                assert_eq!(acceptable(shape, SignOp::RsaRaw, &block), Ok(()), "{bits}");
                // A byte of the zero padding, of the digest (which
                // changes the whole mask), and the trailer.
                for at in [1, block.len() - 2, block.len() - 1] {
                    let mut tampered = block.clone();
                    tampered[at] ^= 1;
                    assert!(
                        acceptable(shape, SignOp::RsaRaw, &tampered).is_err(),
                        "{bits} {at}"
                    );
                }
            }
            // A "ciphertext": what a decryption oracle would be asked.
            let mut ciphertext = vec![0; rsa.size() as usize];
            rsa.public_encrypt(b"session key", &mut ciphertext, Padding::PKCS1)
                .unwrap();
            assert!(acceptable(shape, SignOp::RsaRaw, &ciphertext).is_err());
            let short = &pss_block_of(&rsa, MessageDigest::sha256())[1..];
            assert!(acceptable(shape, SignOp::RsaRaw, short).is_err());
        }
    }

    #[test]
    fn digest_infos_and_ecdsa_digests() {
        let rsa = KeyShape::Rsa { bits: 2048 };
        let mut sha256 = DIGEST_INFOS[2].0.to_vec();
        sha256.extend_from_slice(&[7; 32]);
        assert_eq!(acceptable(rsa, SignOp::RsaPkcs1, &sha256), Ok(()));
        assert!(acceptable(rsa, SignOp::RsaPkcs1, &sha256[..50]).is_err());
        assert!(acceptable(rsa, SignOp::RsaPkcs1, &[0; 36]).is_err());
        assert!(acceptable(rsa, SignOp::Ecdsa, &[0; 32]).is_err());
        assert_eq!(acceptable(KeyShape::Ec, SignOp::Ecdsa, &[1; 32]), Ok(()));
        assert!(acceptable(KeyShape::Ec, SignOp::Ecdsa, &[1; 33]).is_err());
        assert!(acceptable(KeyShape::Ec, SignOp::RsaRaw, &[1; 32]).is_err());
    }
}
