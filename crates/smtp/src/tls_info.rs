//! What a TLS handshake established, as sendmail's macros name it.
//!
//! The TLS crate fills this in; the session keeps it for the `Received:`
//! header (`(version=… cipher=… bits=… verify=…)`) and the log lines.

/// sendmail's `{verify}`: the outcome of checking the peer's certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verify {
    /// Verified.
    Ok,
    /// No certificate presented.
    No,
    /// No certificate requested (TLSSrvOptions `V`).
    Not,
    /// The certificate could not be verified.
    Fail,
    /// No STARTTLS took place.
    None,
    /// A temporary error.
    Temp,
    /// An SMTP-level protocol error.
    Protocol,
    /// The handshake failed.
    Software,
}

impl Verify {
    /// The macro value as sendmail writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Verify::Ok => "OK",
            Verify::No => "NO",
            Verify::Not => "NOT",
            Verify::Fail => "FAIL",
            Verify::None => "NONE",
            Verify::Temp => "TEMP",
            Verify::Protocol => "PROTOCOL",
            Verify::Software => "SOFTWARE",
        }
    }
}

/// The TLS macros of one connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsInfo {
    /// `{tls_version}`, e.g. `TLSv1.3`.
    pub version: String,
    /// `{cipher}`, OpenSSL's name, e.g. `TLS_AES_256_GCM_SHA384`.
    pub cipher: String,
    /// `{cipher_bits}`: the symmetric key length.
    pub cipher_bits: u32,
    /// `{alg_bits}`.
    pub alg_bits: u32,
    /// `{verify}`.
    pub verify: Verify,
    /// `{cert_subject}`, when the peer sent a certificate.
    pub cert_subject: Option<String>,
    /// `{cert_issuer}`, when the peer sent a certificate.
    pub cert_issuer: Option<String>,
}
