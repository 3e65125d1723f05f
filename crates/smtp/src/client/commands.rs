//! The text of the commands the client sends, without line ends.
//!
//! Owns: which ESMTP parameters go on MAIL and RCPT given what the server
//! offered. Does not own: validation (the envelope is checked when the
//! session is created, so nothing here can contain CR or LF) or ordering.

use super::envelope::{Envelope, Recipient};
use super::extensions::Extensions;
use crate::params::DeliverBy;

pub(crate) fn ehlo(name: &str) -> String {
    format!("EHLO {name}")
}

pub(crate) fn lhlo(name: &str) -> String {
    format!("LHLO {name}")
}

pub(crate) fn helo(name: &str) -> String {
    format!("HELO {name}")
}

/// `MAIL From:<rp>` (sendmail's spelling) then SIZE, BODY, DSN and BY
/// parameters, each only when the server offered the extension (RFC 1870,
/// 6152, 3461, 2852 forbid them otherwise). BY carries the time left, as
/// sendmail's `usersmtp.c` does; in mode R never less than 1 second (the
/// session refuses to send a message whose time is up before it gets here).
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
    if let (Some(_), Some(by)) = (ext.deliver_by, env.deliver_by) {
        let seconds = if by.return_on_expiry {
            by.seconds.max(1)
        } else {
            by.seconds
        };
        cmd.push_str(&format!(" BY={}", DeliverBy { seconds, ..by }));
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
