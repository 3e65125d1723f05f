//! The certificate verify callback: it records, it never decides.
//!
//! sendmail completes the handshake whatever the peer's certificate looks
//! like and only *reports* the outcome as `{verify}` (`OK`, `FAIL`, `NO`,
//! `NOT`); the decision is policy made later, by rulesets (`tls_client`,
//! `tls_server`, `tls_rcpt`, the access map), with the SMTP session in
//! hand. Aborting the handshake on a bad certificate would make opportunistic
//! STARTTLS fail where sendmail delivers (most MX certificates do not verify
//! against a private CA list) and would leave nothing to report. So the
//! callback below always returns `true`, and writes down the verdict and
//! sendmail's LogLevel-14 trace lines for the session to use.

use std::sync::{Arc, Mutex, MutexGuard};

use openssl::ssl::{SslRef, SslVerifyMode};
use openssl::x509::{X509NameRef, X509StoreContextRef, X509VerifyResult};
use postern_smtp::Verify;

/// How many trace lines one handshake may add: the chain is the peer's
/// choice, and its length must not decide how much memory we use.
const MAX_TRACE: usize = 16;

/// How long a distinguished name may get in a log line or header.
const MAX_DN: usize = 256;

/// What the callback saw during one handshake.
#[derive(Debug, Default)]
pub(crate) struct VerifyLog {
    /// Some certificate in the chain failed a check.
    failed: bool,
    /// sendmail's per-certificate lines.
    trace: Vec<String>,
}

/// The log shared between one session's callback and its stream.
#[derive(Clone, Debug, Default)]
pub(crate) struct SharedLog(Arc<Mutex<VerifyLog>>);

impl SharedLog {
    fn lock(&self) -> MutexGuard<'_, VerifyLog> {
        // The callback cannot panic while holding the lock, but never let a
        // poisoned mutex turn into a panic on the peer's input anyway.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Installs the recording callback on a session: the peer is asked for
    /// (server) or must present (client) a certificate, but a missing or
    /// failing one never aborts the handshake.
    pub(crate) fn install(&self, ssl: &mut SslRef) {
        let log = self.clone();
        ssl.set_verify_callback(SslVerifyMode::PEER, move |ok, ctx| {
            log.record(ok, ctx);
            true
        });
    }

    fn record(&self, ok: bool, ctx: &X509StoreContextRef) {
        let mut log = self.lock();
        if !ok {
            log.failed = true;
        }
        if log.trace.len() < MAX_TRACE {
            let subject = ctx
                .current_cert()
                .map(|cert| one_line(cert.subject_name()))
                .unwrap_or_default();
            let error = if ok {
                X509VerifyResult::OK
            } else {
                ctx.error()
            };
            log.trace.push(format!(
                "STARTTLS: TLS cert verify: depth={} {}, state={}, reason={}",
                ctx.error_depth(),
                subject,
                if ok { "ok" } else { "fail" },
                error.error_string()
            ));
        }
    }

    /// The trace lines so far.
    pub(crate) fn trace(&self) -> Vec<String> {
        self.lock().trace.clone()
    }

    /// `{verify}` for a session where a certificate was asked for.
    pub(crate) fn verdict(&self, ssl: &SslRef) -> Verify {
        if ssl.peer_certificate().is_none() {
            return Verify::No;
        }
        // verify_result() also covers a resumed session, where the callback
        // does not run again and the stored result is what counts.
        if self.lock().failed || ssl.verify_result() != X509VerifyResult::OK {
            Verify::Fail
        } else {
            Verify::Ok
        }
    }
}

/// A distinguished name on one line, as X509_NAME_oneline writes it
/// (`/C=DE/O=Example/CN=mx.example`), with control characters removed and
/// the length capped: it ends up in log lines and in `Received:`.
pub(crate) fn one_line(name: &X509NameRef) -> String {
    let mut out = String::new();
    for entry in name.entries() {
        let object = entry.object();
        let key = object
            .nid()
            .short_name()
            .map(str::to_string)
            .unwrap_or_else(|_| object.to_string());
        // Interior NULs survive the conversion and are removed below.
        let value = entry
            .data()
            .to_string()
            .unwrap_or_else(|_| String::from_utf8_lossy(entry.data().as_slice()).into_owned());
        out.push('/');
        out.push_str(&key);
        out.push('=');
        out.push_str(&value);
    }
    out.retain(|c| !c.is_control());
    if out.len() > MAX_DN {
        let mut end = MAX_DN;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
    }
    out
}
