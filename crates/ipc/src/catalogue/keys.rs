//! The key holder's channels. The key holder is the only process with
//! private keys; fronts and the delivery client (the requesters) ask it
//! for a handshake's signatures over a socketpair each. master and the
//! front factory (the registrars) hand it those socketpairs' ends.

use serde::{Deserialize, Serialize};

/// The private-key operation asked for (the only three the holder knows;
/// there is no decryption).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyOp {
    /// RSA PKCS#1 v1.5 signature of a DigestInfo.
    RsaPkcs1,
    /// The raw RSA operation on a PSS-encoded block.
    RsaRaw,
    /// ECDSA over a digest.
    Ecdsa,
}

/// requester (front, delivery client, the factory's warm-up) → key holder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyRequest {
    /// Sign `input` with the key whose SubjectPublicKeyInfo has this
    /// SHA-256.
    Sign {
        /// The key's fingerprint.
        key: [u8; 32],
        /// What to do.
        op: KeyOp,
        /// The digest, DigestInfo or encoded block.
        input: Vec<u8>,
    },
}

/// key holder → requester: one reply per request, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyReply {
    /// The signature (or the raw RSA result).
    Signature(Vec<u8>),
    /// Not done, and why (also logged by the holder).
    Refused(String),
}

/// Who a requester is: what the holder allows it and names it in logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Requester {
    /// A front: one session, so a handful of signatures at most.
    Front,
    /// The delivery client: a signature per outbound handshake with a
    /// client certificate.
    DeliveryClient,
    /// The front factory's warm-up handshake at its start.
    Factory,
}

/// registrar (master, the front factory) → key holder. On master's
/// channel (the holder's descriptor 3) the first frame is `Hello`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyHolderControl {
    /// First frame: the sender's protocol version.
    Hello {
        /// [`crate::PROTOCOL_VERSION`] of the sender.
        version: u32,
    },
    /// Serve the requester whose socket travels with this frame.
    Requester(Requester),
    /// Take registrations from the socket that travels with this frame
    /// (from master only: the front factory's channel).
    Registrar,
}

/// key holder → master.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyHolderReport {
    /// Every key loaded and self-tested; one line per key (kind, size,
    /// file) for master's log.
    Ready {
        /// The keys.
        keys: Vec<String>,
    },
    /// A key could not be loaded or failed its self-test: the start
    /// fails with this sentence, which names the file.
    Failed {
        /// Why.
        reason: String,
    },
}
