//! A requester that behaves as a compromised front would (issue 16): it
//! asks the key holder to decrypt, sends malformed, wrong-length and
//! oversized requests, asks for more signatures than a session needs, and
//! sends frames that are not requests. Each is refused and logged, and
//! the holder goes on signing correctly. The test plays master too: it
//! starts `posternd --key-holder` with its channel on descriptor 3.

mod common;

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::WAIT;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Padding;
use openssl::sign::{RsaPssSaltlen, Signer, Verifier};
use postern_ipc::{KeyHolderControl, KeyHolderReport, KeyOp, KeyReply, KeyRequest, Requester};
use postern_testkit::{ensure_test_users, make_certs, running_as_root, DaemonBuilder};

fn read_key(path: &Path) -> PKey<Private> {
    PKey::private_key_from_pem(&fs::read(path).unwrap()).unwrap()
}

/// The key holder alone, as master starts it (its channel on descriptor
/// 3), logging to a file; the test is master, and then a compromised
/// front.
struct LoneHolder {
    child: std::process::Child,
    master: postern_ipc::KeyRegistrarChannel,
    log: PathBuf,
    _instance: postern_testkit::Instance,
}

impl LoneHolder {
    fn start(certs: &Path) -> LoneHolder {
        ensure_test_users();
        if running_as_root() {
            // The jail master prepares: root's, empty, 0555.
            let jail = Path::new("/run/postern/empty");
            fs::create_dir_all(jail).unwrap();
            fs::set_permissions(jail, fs::Permissions::from_mode(0o555)).unwrap();
        }
        let d = certs.display();
        let instance = DaemonBuilder::new(postern_testkit::binary("posternd"))
            .config_line(&format!("define(`confSERVER_CERT', `{d}/cert.pem')"))
            .config_line(&format!("define(`confSERVER_KEY', `{d}/key.pem')"))
            .prepare();
        let log = instance.state_dir().join("holder.log");
        let (ours, theirs) = UnixStream::pair().unwrap();
        let child = Command::new("sh")
            .arg("-c")
            .arg(r#"exec "$0" --key-holder -C "$1" --log-stderr 3<&0 0</dev/null"#)
            .arg(postern_testkit::binary("posternd"))
            .arg(instance.config_path())
            .stdin(Stdio::from(std::os::fd::OwnedFd::from(theirs)))
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        ours.set_read_timeout(Some(WAIT)).unwrap();
        let mut master = postern_ipc::key_registrar_channel(ours);
        master
            .send(
                &KeyHolderControl::Hello {
                    version: postern_ipc::PROTOCOL_VERSION,
                },
                &[],
            )
            .unwrap();
        match master.recv().unwrap().0 {
            KeyHolderReport::Ready { keys } => {
                assert!(keys[0].starts_with("RSA 2048 "), "{keys:?}")
            }
            other => panic!("{other:?}"),
        }
        LoneHolder {
            child,
            master,
            log,
            _instance: instance,
        }
    }

    /// A new requester's socket, as master or the factory makes one.
    fn requester(&mut self, role: Requester) -> UnixStream {
        let (ours, theirs) = UnixStream::pair().unwrap();
        self.master
            .send(
                &KeyHolderControl::Requester(role),
                &[std::os::fd::AsFd::as_fd(&theirs)],
            )
            .unwrap();
        ours.set_read_timeout(Some(WAIT)).unwrap();
        ours
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap()
    }
}

impl Drop for LoneHolder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ask(
    channel: &mut postern_ipc::KeyRequesterChannel,
    key: [u8; 32],
    op: KeyOp,
    input: Vec<u8>,
) -> KeyReply {
    channel
        .send(&KeyRequest::Sign { key, op, input }, &[])
        .unwrap();
    channel.recv().unwrap().0
}

/// The block OpenSSL hands the holder for a PSS signature, and that
/// signature: the holder's raw operation on the block must give it back.
fn pss_request(key: &PKey<Private>, message: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut signer = Signer::new(MessageDigest::sha256(), key).unwrap();
    signer.set_rsa_padding(Padding::PKCS1_PSS).unwrap();
    signer
        .set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH)
        .unwrap();
    signer.update(message).unwrap();
    let signature = signer.sign_to_vec().unwrap();
    let rsa = key.rsa().unwrap();
    let mut block = vec![0; rsa.size() as usize];
    let n = rsa
        .public_decrypt(&signature, &mut block, Padding::NONE)
        .unwrap();
    block.truncate(n);
    (block, signature)
}

/// True once the holder has closed this socket.
fn closed_by_holder(stream: &mut UnixStream) -> bool {
    let mut byte = [0u8; 1];
    matches!(std::io::Read::read(stream, &mut byte), Ok(0))
}

/// What it is, the key named, the operation, the input, and the words
/// the refusal must contain.
type HostileRequest = (&'static str, [u8; 32], KeyOp, Vec<u8>, &'static str);

#[test]
fn a_hostile_requester_is_refused_and_logged_and_the_holder_goes_on() {
    let certs = make_certs();
    let key = read_key(&certs.path().join("key.pem"));
    let fingerprint = openssl::sha::sha256(&key.public_key_to_der().unwrap());
    let mut holder = LoneHolder::start(certs.path());

    // What a handshake asks: done, and the signature verifies.
    let mut delivery =
        postern_ipc::key_requester_channel(holder.requester(Requester::DeliveryClient));
    let (block, expected) = pss_request(&key, b"a TLS 1.3 transcript");
    assert_eq!(
        ask(&mut delivery, fingerprint, KeyOp::RsaRaw, block),
        KeyReply::Signature(expected.clone())
    );
    let mut verifier = Verifier::new(MessageDigest::sha256(), &key).unwrap();
    verifier.set_rsa_padding(Padding::PKCS1_PSS).unwrap();
    verifier.update(b"a TLS 1.3 transcript").unwrap();
    assert!(verifier.verify(&expected).unwrap());

    // What a compromised front would ask instead.
    let mut ciphertext = vec![0; 256];
    key.rsa()
        .unwrap()
        .public_encrypt(
            b"a recorded session's secret",
            &mut ciphertext,
            Padding::PKCS1,
        )
        .unwrap();
    let hostile: [HostileRequest; 5] = [
        (
            "decryption",
            fingerprint,
            KeyOp::RsaRaw,
            ciphertext,
            "not a PSS-encoded block",
        ),
        (
            "oversized DigestInfo",
            fingerprint,
            KeyOp::RsaPkcs1,
            vec![0x30; 300],
            "DigestInfo",
        ),
        (
            "wrong length",
            fingerprint,
            KeyOp::RsaRaw,
            vec![1; 255],
            "for a 256-byte modulus",
        ),
        (
            "ECDSA with an RSA key",
            fingerprint,
            KeyOp::Ecdsa,
            vec![1; 32],
            "ECDSA asked of an RSA key",
        ),
        (
            "unknown key",
            [7; 32],
            KeyOp::RsaPkcs1,
            vec![0; 51],
            "no such key",
        ),
    ];
    for (what, key_id, op, input, reason) in hostile {
        match ask(&mut delivery, key_id, op, input) {
            KeyReply::Refused(why) => assert!(why.contains(reason), "{what}: {why}"),
            other => panic!("{what}: {other:?}"),
        }
        let log = holder.log();
        assert!(
            log.lines()
                .any(|l| l.contains("key holder: refused") && l.contains(reason)),
            "{what}: not logged:\n{log}"
        );
    }

    // A front's budget: a session's handshake needs one signature.
    let mut front = postern_ipc::key_requester_channel(holder.requester(Requester::Front));
    for _ in 0..4 {
        let (block, _) = pss_request(&key, b"again");
        assert!(matches!(
            ask(&mut front, fingerprint, KeyOp::RsaRaw, block),
            KeyReply::Signature(_)
        ));
    }
    let (block, _) = pss_request(&key, b"one too many");
    assert_eq!(
        ask(&mut front, fingerprint, KeyOp::RsaRaw, block),
        KeyReply::Refused("over its signature budget".into())
    );

    // Frames that are not requests: cut off, logged.
    let mut oversized = holder.requester(Requester::Front);
    oversized.write_all(&[0, 0x10, 0, 0, 0]).unwrap();
    assert!(closed_by_holder(&mut oversized));
    let mut garbage = holder.requester(Requester::Front);
    garbage
        .write_all(&[0, 0, 0, 4, 0, 0xff, 0xff, 0xff, 0xff])
        .unwrap();
    assert!(closed_by_holder(&mut garbage));
    let log = holder.log();
    assert!(log.contains("exceeds the limit"), "{log}");
    assert!(log.contains("undecodable frame"), "{log}");

    // And the holder goes on serving.
    assert!(
        holder.child.try_wait().unwrap().is_none(),
        "{}",
        holder.log()
    );
    let mut next = postern_ipc::key_requester_channel(holder.requester(Requester::Front));
    let (block, expected) = pss_request(&key, b"after all that");
    assert_eq!(
        ask(&mut next, fingerprint, KeyOp::RsaRaw, block),
        KeyReply::Signature(expected)
    );
}
