//! The values of sendmail's macros a filter may ask for, as the session
//! learns them: `j`, `_`, `{daemon_name}`, `{if_addr}` from the start,
//! the TLS ones after STARTTLS, `{auth_*}` after AUTH, `{mail_*}` at
//! MAIL, `{rcpt_*}` at each RCPT, `i` once the queue ID is known,
//! `{msg_id}` at end of message. Names are kept bare (`daemon_name`).

use std::collections::BTreeMap;

use postern_smtp::TlsInfo;

/// Macro name → value.
#[derive(Clone, Debug, Default)]
pub struct Values {
    map: BTreeMap<&'static str, String>,
}

impl Values {
    pub fn set(&mut self, name: &'static str, value: impl Into<String>) {
        self.map.insert(name, value.into());
    }

    pub fn get(&self, name: &str) -> Option<String> {
        self.map.get(name).cloned()
    }

    /// `{tls_version}`, `{cipher}`, `{cipher_bits}`, `{cert_subject}`,
    /// `{cert_issuer}`, `{verify}`.
    pub fn set_tls(&mut self, tls: &TlsInfo) {
        self.set("tls_version", tls.version.clone());
        self.set("cipher", tls.cipher.clone());
        self.set("cipher_bits", tls.cipher_bits.to_string());
        self.set("verify", tls.verify.as_str());
        if let Some(s) = &tls.cert_subject {
            self.set("cert_subject", s.clone());
        }
        if let Some(s) = &tls.cert_issuer {
            self.set("cert_issuer", s.clone());
        }
    }

    /// `{auth_type}`, `{auth_authen}`, `{auth_ssf}`.
    pub fn set_auth(&mut self, mechanism: Option<&str>, identity: &str) {
        if let Some(m) = mechanism {
            self.set("auth_type", m);
        }
        self.set("auth_authen", identity);
        self.set("auth_ssf", "0");
    }

    /// The sender's: `{mail_mailer}` (`local` for a local domain, else
    /// `esmtp`), `{mail_host}`, `{mail_addr}`.
    pub fn set_sender(&mut self, address: &str, local: bool) {
        let host = address.rsplit_once('@').map_or("", |(_, h)| h);
        self.set("mail_mailer", if local { "local" } else { "esmtp" });
        self.set("mail_host", host);
        self.set("mail_addr", address);
    }

    /// The recipient's: `{rcpt_mailer}`, `{rcpt_host}`, `{rcpt_addr}`.
    pub fn set_recipient(&mut self, address: &str, local: bool) {
        let (user, host) = address.rsplit_once('@').unwrap_or((address, ""));
        if local {
            self.set("rcpt_mailer", "local");
            self.set("rcpt_host", "");
            self.set("rcpt_addr", user);
        } else {
            self.set("rcpt_mailer", "esmtp");
            self.set("rcpt_host", host);
            self.set("rcpt_addr", address);
        }
    }

    /// A new transaction forgets the last one's.
    pub fn forget_transaction(&mut self) {
        for name in [
            "mail_mailer",
            "mail_host",
            "mail_addr",
            "rcpt_mailer",
            "rcpt_host",
            "rcpt_addr",
            "i",
            "msg_id",
        ] {
            self.map.remove(name);
        }
    }
}
