//! The requesting side: a front's, the delivery client's or the factory's
//! socket to the key holder, as the `KeySigner` OpenSSL's delegated keys
//! call during a handshake.

use std::os::unix::net::UnixStream;
use std::time::Duration;

use postern_ipc::{KeyOp, KeyReply, KeyRequest, KeyRequesterChannel};
use postern_tls::{KeyFingerprint, KeySigner, SignOp};

/// How long a signature may take: the holder answers in about a
/// millisecond; a holder that does not answer fails the handshake rather
/// than hang the session (or the delivery client's loop).
const SIGNATURE_TIMEOUT: Duration = Duration::from_secs(10);

/// A blocking channel to the key holder.
pub struct HolderSigner {
    channel: KeyRequesterChannel,
}

impl HolderSigner {
    /// Makes `stream` blocking with the signature timeout: done by whoever
    /// made the socket, before a front's seccomp filter would refuse the
    /// calls (the settings belong to the socket, not the descriptor, so
    /// they survive the fork).
    pub fn configure(stream: &UnixStream) -> std::io::Result<()> {
        stream.set_nonblocking(false)?;
        stream.set_read_timeout(Some(SIGNATURE_TIMEOUT))?;
        stream.set_write_timeout(Some(SIGNATURE_TIMEOUT))
    }

    /// Installs a signer over `stream` (already configured) as this
    /// process's, for every delegated key. Makes no system call.
    pub fn install(stream: UnixStream) {
        let signer = HolderSigner {
            channel: postern_ipc::key_requester_channel(stream),
        };
        postern_tls::set_process_signer(Some(Box::new(signer)));
    }
}

impl KeySigner for HolderSigner {
    fn sign(&mut self, key: KeyFingerprint, op: SignOp, input: &[u8]) -> Result<Vec<u8>, String> {
        let op = match op {
            SignOp::RsaPkcs1 => KeyOp::RsaPkcs1,
            SignOp::RsaRaw => KeyOp::RsaRaw,
            SignOp::Ecdsa => KeyOp::Ecdsa,
        };
        let request = KeyRequest::Sign {
            key: key.0,
            op,
            input: input.to_vec(),
        };
        self.channel
            .send(&request, &[])
            .map_err(|e| format!("key holder: {e}"))?;
        match self.channel.recv() {
            Ok((KeyReply::Signature(signature), _)) => Ok(signature),
            Ok((KeyReply::Refused(reason), _)) => Err(format!("key holder refused: {reason}")),
            Err(e) => Err(format!("key holder: {e}")),
        }
    }
}
