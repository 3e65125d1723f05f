//! The text of the commands the client sends, without line ends.
//!
//! Owns: which ESMTP parameters go on MAIL and RCPT given what the server
//! offered. Does not own: validation (the envelope is checked when the
//! session is created, so nothing here can contain CR or LF) or ordering.

use super::envelope::{Envelope, Recipient};
use super::extensions::Extensions;

pub(crate) fn ehlo(name: &str) -> String {
    format!("EHLO {name}")
}

pub(crate) fn helo(name: &str) -> String {
    format!("HELO {name}")
}

/// `MAIL From:<rp>` (sendmail's spelling) then SIZE, BODY and DSN parameters, each only when the
/// server offered the extension (RFC 1870, 6152, 3461 forbid them otherwise).
pub(crate) fn mail(env: &Envelope, ext: &Extensions) -> String {
    let mut cmd = format!("MAIL From:<{}>", env.reverse_path);
    if let (Some(_), Some(size)) = (ext.size, env.size_hint) {
        cmd.push_str(&format!(" SIZE={size}"));
    }
    if env.body_8bit && ext.eight_bit_mime {
        cmd.push_str(" BODY=8BITMIME");
    }
    if ext.dsn {
        for p in &env.mail_params {
            cmd.push(' ');
            cmd.push_str(p);
        }
    }
    cmd
}

/// `RCPT To:<addr>` then the DSN parameters when DSN is offered.
pub(crate) fn rcpt(rcpt: &Recipient, ext: &Extensions) -> String {
    let mut cmd = format!("RCPT To:<{}>", rcpt.address);
    if ext.dsn {
        for p in &rcpt.dsn_params {
            cmd.push(' ');
            cmd.push_str(p);
        }
    }
    cmd
}
