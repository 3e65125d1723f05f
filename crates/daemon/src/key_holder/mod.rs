//! The key holder: the only Postern process with a private key in memory.
//!
//! Exec'ed by master (`posternd --key-holder`, its channel to master on
//! descriptor 3) before anything that does handshakes exists, it reads
//! `ServerKeyFile`, `ClientKeyFile` and their second pairs, proves each
//! key with a signature verified against its certificate, drops to
//! RunAsUser in the empty jail directory, and then only answers
//! signature requests, over one socketpair per requester (a front, the
//! delivery client, the factory's warm-up), each checked to have the
//! exact shape a handshake produces (`postern_tls`'s `holder/check.rs`)
//! and rate-limited per requester. Refusals are logged.
//!
//! Why a process of its own (OpenSMTPD's `ca`, done on OpenSSL 3): a
//! front parses hostile input, and a remote code execution there would
//! otherwise read the host's key out of its own memory. Fronts and the
//! delivery client hold key objects made from the certificates' public
//! keys only (`postern_tls::Keys::AskHolder`); master never reads a key
//! file, so nothing forked from it can inherit one.
//!
//! Security posture: RunAsUser, chrooted, no new privileges, not dumpable
//! (so the delivery client, of the same uid, cannot ptrace it or read its
//! memory), dies with master. No network socket; its peers are master and
//! the factory (registrars, trusted) and the requesters (not trusted: a
//! requester is a front that may be compromised).

mod client;
mod serve;

pub use client::HolderSigner;

use std::path::Path;

use nix::sys::resource::Resource;
use postern_ipc::{KeyHolderReport, PROTOCOL_VERSION};
use postern_tls::KeyStore;

use crate::log;
use crate::privsep::{self, FIRST_CHANNEL_FD};

/// Descriptors the holder may have open: one per live requester, so as
/// many as master lets fronts run, and some to spare.
const HOLDER_MAX_FILES: u64 = 8192;

/// Runs the key holder (posternd `--key-holder`); returns the exit code.
pub fn main(config_path: &Path, log_stderr: bool) -> i32 {
    let stream = match privsep::inherited_channel(FIRST_CHANNEL_FD) {
        Ok(stream) => stream,
        Err(e) => {
            eprintln!("posternd --key-holder: {e}");
            return 2;
        }
    };
    if let Ok(name) = std::ffi::CString::new("posternd-keys") {
        let _ = nix::sys::prctl::set_name(&name);
    }
    crate::title::set("key holder");
    let mut master = postern_ipc::key_holder_channel(stream);
    let config = match postern_config::Config::load(config_path) {
        Ok(config) => config,
        Err(errors) => {
            let _ = master.send(
                &KeyHolderReport::Failed {
                    reason: errors.to_string(),
                },
                &[],
            );
            return i32::from(postern_ipc::Sysexit::Config.code());
        }
    };
    log::init(config.log_level, log_stderr);
    let store = match KeyStore::load(&config.tls) {
        Ok(store) => store,
        Err(e) => {
            let reason = format!("{}: {e}", config.source.display());
            let _ = master.send(&KeyHolderReport::Failed { reason }, &[]);
            return i32::from(postern_ipc::Sysexit::Config.code());
        }
    };
    if let Err(e) = confine(&config, log_stderr) {
        let reason = format!("key holder: cannot drop privileges: {e}");
        let _ = master.send(&KeyHolderReport::Failed { reason }, &[]);
        return 1;
    }
    let ready = KeyHolderReport::Ready {
        keys: store.describe(),
    };
    if master.send(&ready, &[]).is_err() {
        return 0;
    }
    match serve::Holder::new(store, master) {
        Ok(mut holder) => holder.run(),
        Err(e) => {
            log::crit(&format!("key holder: {e}"));
            1
        }
    }
}

/// RunAsUser in the jail directory (the invoking user without root), no
/// new privileges, not dumpable, dying with master.
fn confine(config: &postern_config::Config, log_stderr: bool) -> Result<(), String> {
    let (who, jail) = if privsep::privileged() {
        let who = privsep::lookup(&config.run_as_user).map_err(|e| e.to_string())?;
        (who, Some(privsep::open_jail(&crate::master::jail_dir())?))
    } else {
        (privsep::current_identity(), None)
    };
    // Nothing to write but standard error, when it is a log file.
    let file_size = if log_stderr { 64 << 20 } else { 0 };
    let limits = [
        (Resource::RLIMIT_NPROC, 0),
        (Resource::RLIMIT_NOFILE, HOLDER_MAX_FILES),
        (Resource::RLIMIT_FSIZE, file_size),
        (Resource::RLIMIT_CORE, 0),
    ];
    let jail = privsep::Jail {
        root: jail.as_ref().map(std::os::fd::AsFd::as_fd),
        limits: &limits,
        parent: Some(nix::unistd::getppid()),
        ..privsep::Jail::default()
    };
    privsep::drop_privileges("key holder", &who, &jail)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// The version every registrar's first frame must carry.
pub(crate) const VERSION: u32 = PROTOCOL_VERSION;
