//! What a client session is asked to do: its configuration and the envelope
//! of the one message it delivers, checked before any byte is written.
//!
//! Owns: [`ClientConfig`], [`Envelope`], [`Recipient`] and their validation.
//! Does not own: address syntax (the queue hands us addresses it already
//! parsed) or routing. The one thing checked here is that nothing can break
//! out of its command line: CR, LF, NUL and other control bytes are refused
//! everywhere, and spaces in parameters and the HELO name (a space would add
//! a parameter the caller did not ask for).

use crate::params::DeliverBy;

/// Whether to use STARTTLS when the server offers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartTlsPolicy {
    /// Never send STARTTLS.
    Never,
    /// Send STARTTLS when offered; when the server then refuses it (454,
    /// 5xx) the session goes on in clear text. A failed handshake ends the
    /// session ([`super::ClientSession::tls_failed`]); whether to retry in
    /// clear text is the shell's choice.
    Opportunistic,
}

/// The protocol a session speaks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Protocol {
    /// SMTP (RFC 5321): EHLO, HELO when EHLO is refused, one reply to the
    /// end of the message for all recipients.
    #[default]
    Smtp,
    /// LMTP (RFC 2033): LHLO (there is no HELO to fall back to), and after
    /// the end of the message one reply per accepted recipient, in RCPT
    /// order, each deciding that recipient alone.
    Lmtp,
}

/// How a session behaves.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// SMTP or LMTP.
    pub protocol: Protocol,
    /// The name we give in EHLO/HELO (LHLO).
    pub helo_name: String,
    /// STARTTLS use.
    pub starttls: StartTlsPolicy,
    /// The connection is already encrypted (SMTPS, RFC 8314): never STARTTLS.
    pub already_tls: bool,
    /// After the last EHLO/HELO (the one inside TLS, or the only one),
    /// stop and ask the shell whether the connection is good enough to
    /// send mail over ([`ClientOutput::CheckTls`](super::ClientOutput::CheckTls),
    /// sendmail's `tls_server` ruleset); off, the transaction starts at once.
    pub check_tls: bool,
    /// After a transaction that got its final reply, stay connected
    /// instead of sending QUIT ([`super::ClientSession::is_idle`]), so that
    /// the shell can run another with
    /// [`next_transaction`](super::ClientSession::next_transaction) or end
    /// it with [`quit_idle`](super::ClientSession::quit_idle).
    pub keep_open: bool,
}

/// One recipient of the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recipient {
    /// The address, without angle brackets.
    pub address: String,
    /// DSN parameters (`NOTIFY=…`, `ORCPT=…`), sent only when the server
    /// offers DSN.
    pub dsn_params: Vec<String>,
}

/// The envelope of the message the session delivers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// The reverse path without angle brackets; `""` for the null sender.
    pub reverse_path: String,
    /// DSN parameters of MAIL (`RET=…`, `ENVID=…`), sent only when the
    /// server offers DSN.
    pub mail_params: Vec<String>,
    /// The body has 8-bit content: `BODY=8BITMIME` is sent when offered.
    /// When it is not offered the session sends the body as it is; converting
    /// or bouncing instead is the caller's policy.
    pub body_8bit: bool,
    /// The message size in bytes, for `SIZE=` and the early size check.
    pub size_hint: Option<u64>,
    /// DELIVERBY (RFC 2852) with the by-time *remaining* now (the
    /// caller's deadline minus the time spent): `BY=` is sent when the
    /// server offers DELIVERBY; in mode R a server that does not offer it,
    /// or whose minimum the time left does not reach, fails the recipients
    /// (sendmail's `554 5.4.7`).
    pub deliver_by: Option<DeliverBy>,
    /// The recipients, at least one.
    pub recipients: Vec<Recipient>,
}

/// Why a session could not be created. Always the caller's fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// A field contains a byte that could break the command line.
    #[error("{field} contains forbidden byte {byte:#04x}")]
    ForbiddenByte {
        /// Which field.
        field: &'static str,
        /// The first offending byte.
        byte: u8,
    },
    /// An empty HELO name or parameter.
    #[error("{0} is empty")]
    Empty(&'static str),
    /// A next transaction was asked of a session that is not idle.
    #[error("the session cannot take another message")]
    NotIdle,
    /// No recipients.
    #[error("envelope has no recipients")]
    NoRecipients,
}

/// Control bytes (including CR, LF, NUL) and DEL.
fn is_control(b: u8) -> bool {
    b < 0x20 || b == 0x7f
}

fn check(field: &'static str, value: &str, allow_space: bool) -> Result<(), EnvelopeError> {
    match value
        .bytes()
        .find(|&b| is_control(b) || (!allow_space && b == b' '))
    {
        Some(byte) => Err(EnvelopeError::ForbiddenByte { field, byte }),
        None => Ok(()),
    }
}

fn check_token(field: &'static str, value: &str) -> Result<(), EnvelopeError> {
    if value.is_empty() {
        return Err(EnvelopeError::Empty(field));
    }
    check(field, value, false)
}

impl ClientConfig {
    /// Checks the HELO name.
    pub fn validate(&self) -> Result<(), EnvelopeError> {
        check_token("HELO name", &self.helo_name)
    }
}

impl Envelope {
    /// Checks every field that ends up in a command.
    pub fn validate(&self) -> Result<(), EnvelopeError> {
        // Quoted local parts may legally contain spaces, so addresses may too.
        check("reverse path", &self.reverse_path, true)?;
        for p in &self.mail_params {
            check_token("MAIL parameter", p)?;
        }
        if self.recipients.is_empty() {
            return Err(EnvelopeError::NoRecipients);
        }
        for r in &self.recipients {
            if r.address.is_empty() {
                return Err(EnvelopeError::Empty("recipient address"));
            }
            check("recipient address", &r.address, true)?;
            for p in &r.dsn_params {
                check_token("RCPT parameter", p)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope() -> Envelope {
        Envelope {
            reverse_path: "a@b".into(),
            mail_params: vec!["RET=HDRS".into()],
            body_8bit: false,
            size_hint: None,
            deliver_by: None,
            recipients: vec![Recipient {
                address: "c@d".into(),
                dsn_params: vec!["NOTIFY=NEVER".into()],
            }],
        }
    }

    #[test]
    fn valid_envelope() {
        assert_eq!(envelope().validate(), Ok(()));
        let null = Envelope {
            reverse_path: String::new(),
            ..envelope()
        };
        assert_eq!(null.validate(), Ok(()));
    }

    #[test]
    fn line_breaks_are_refused_everywhere() {
        let mut e = envelope();
        e.reverse_path = "a@b>\r\nRCPT TO:<x@y".into();
        assert!(matches!(
            e.validate(),
            Err(EnvelopeError::ForbiddenByte { byte: b'\r', .. })
        ));
        let mut e = envelope();
        e.recipients[0].address = "c@d\n".into();
        assert!(e.validate().is_err());
        let mut e = envelope();
        e.recipients[0].dsn_params[0] = "NOTIFY=NEVER\0".into();
        assert!(e.validate().is_err());
        let mut e = envelope();
        e.mail_params[0] = "RET=HDRS ENVID=x".into();
        assert!(e.validate().is_err());
        let mut e = envelope();
        e.recipients.clear();
        assert_eq!(e.validate(), Err(EnvelopeError::NoRecipients));
    }

    #[test]
    fn helo_name() {
        let mut c = ClientConfig {
            protocol: Protocol::Smtp,
            helo_name: "client.example".into(),
            starttls: StartTlsPolicy::Never,
            already_tls: false,
            check_tls: false,
            keep_open: false,
        };
        assert_eq!(c.validate(), Ok(()));
        c.helo_name = "x\r\nMAIL".into();
        assert!(c.validate().is_err());
        c.helo_name.clear();
        assert_eq!(c.validate(), Err(EnvelopeError::Empty("HELO name")));
    }
}
