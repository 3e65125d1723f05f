//! The `Received:` trace header, laid out exactly as sendmail's default
//! `confRECEIVED_HEADER` in `cf/m4/cfhead.m4` (8.17). Continuation
//! lines start with a TAB, shown as `→`; this crate ends every line with CRLF:
//!
//! ```text
//! $?sfrom $s $.$?_($?s$|from $.$_)
//! →$.$?{auth_type}(authenticated$?{auth_ssf} bits=${auth_ssf}$.)
//! →$.by $j ($v/$Z)$?r with $r$. id $i$?{tls_version}
//! →(version=${tls_version} cipher=${cipher} bits=${cipher_bits} verify=${verify})$.$?u
//! →for $u; $|;
//! →$.$b
//! ```
//!
//! Every inserted value comes from the network or a local user (HELO name,
//! rDNS, AUTH identity, recipient), so each is stripped of control
//! characters (CR, LF, NUL, TAB, …) and cut to [`MAX_FIELD`] characters
//! before it goes in: a HELO of `x\r\nX-Evil: 1` must not become a header.

/// Longest value inserted for one macro (sendmail's MAXNAME).
pub const MAX_FIELD: usize = 256;

/// The TLS part: `{tls_version}`, `{cipher}`, `{cipher_bits}`, `{verify}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlsLine<'a> {
    /// e.g. `TLSv1.3`.
    pub version: &'a str,
    /// e.g. `TLS_AES_256_GCM_SHA384`.
    pub cipher: &'a str,
    /// Symmetric key length.
    pub bits: u32,
    /// sendmail's `{verify}`, e.g. `NOT`, `OK`.
    pub verify: &'a str,
}

/// What goes into one `Received:` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReceivedInfo<'a> {
    /// `$s`: the HELO/EHLO name, if any.
    pub helo: Option<&'a str>,
    /// `$_`: `rdns [addr]` for SMTP, `user@localhost` for local
    /// submission; empty leaves the part out, as an unset `$_` does.
    pub client: &'a str,
    /// The line `(authenticated …)` appears only when true.
    pub authenticated: bool,
    /// `{auth_ssf}`: shown as ` bits=N` when `Some(N)`. sendmail sets it
    /// after every successful AUTH, to 0 for mechanisms without a
    /// security layer (PLAIN, LOGIN, CRAM-MD5): `(authenticated bits=0)`.
    pub auth_bits: Option<u32>,
    /// `$j`: our host name.
    pub hostname: &'a str,
    /// What goes in the parentheses after `$j`, e.g. `Postern 0.1.0`.
    pub version: &'a str,
    /// `$r`: `SMTP`, `ESMTP`, `ESMTPS`, `ESMTPA`, `ESMTPSA`; `None` for
    /// local submission (no `with` clause).
    pub protocol: Option<&'a str>,
    /// `$i`.
    pub queue_id: &'a str,
    /// TLS parameters, when the session used STARTTLS.
    pub tls: Option<TlsLine<'a>>,
    /// `$u`: the recipient, only when there is exactly one, written as
    /// sendmail writes it: `<addr>` for SMTP, the address as given on the
    /// command line for a local submission.
    pub for_recipient: Option<&'a str>,
    /// `$b`: the RFC 5322 date, see [`postern_smtp::date::rfc5322_date`].
    pub date: &'a str,
}

/// Removes control characters and bounds the length.
fn clean(value: &str) -> String {
    value
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_FIELD)
        .collect()
}

/// Renders the complete header, `Received: …` through the final CRLF;
/// continuation lines start with a TAB.
pub fn received_header(info: &ReceivedInfo) -> String {
    let mut h = String::from("Received: ");
    let helo = info.helo.map(clean).filter(|s| !s.is_empty());
    if let Some(helo) = &helo {
        h.push_str("from ");
        h.push_str(helo);
        h.push(' ');
    }
    let client = clean(info.client);
    if !client.is_empty() {
        h.push('(');
        if helo.is_none() {
            h.push_str("from ");
        }
        h.push_str(&client);
        h.push_str(")\r\n\t");
    }
    if info.authenticated {
        h.push_str("(authenticated");
        if let Some(bits) = info.auth_bits {
            h.push_str(&format!(" bits={bits}"));
        }
        h.push_str(")\r\n\t");
    }
    h.push_str(&format!(
        "by {} ({})",
        clean(info.hostname),
        clean(info.version)
    ));
    if let Some(proto) = info.protocol {
        h.push_str(" with ");
        h.push_str(&clean(proto));
    }
    h.push_str(" id ");
    h.push_str(&clean(info.queue_id));
    if let Some(tls) = &info.tls {
        h.push_str(&format!(
            "\r\n\t(version={} cipher={} bits={} verify={})",
            clean(tls.version),
            clean(tls.cipher),
            tls.bits,
            clean(tls.verify)
        ));
    }
    match info.for_recipient {
        Some(rcpt) => h.push_str(&format!("\r\n\tfor {}; ", clean(rcpt))),
        None => h.push_str(";\r\n\t"),
    }
    h.push_str(&clean(info.date));
    h.push_str("\r\n");
    h
}
