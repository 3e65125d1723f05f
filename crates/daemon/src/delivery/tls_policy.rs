//! sendmail's `tls_server` and `try_tls` for outbound connections, from the
//! access map: `Try_TLS:` says whether to offer STARTTLS to a server at
//! all, `TLS_Srv:` what a connection must achieve before mail goes over it
//! (`VERIFY`, `VERIFY:bits`, `ENCR:bits`, with `+CN`, `+CN:name`,
//! `+CS:subject`, `+CI:issuer`; `PERM+`/`TEMP+`).
//!
//! A destination with a requirement is never delivered to in clear text:
//! not when the server does not offer STARTTLS (a man in the middle who
//! strips it gets `403 4.7.0 other side does not support STARTTLS`), and
//! not after a failed handshake (no TLSFallbacktoClear). The replies are
//! sendmail's (`cf/m4/proto.m4`, `TLS_connection` and `TLS_req`).

use std::net::IpAddr;

use postern_config::{CertCheck, Severity, TlsLevel, TlsRequirement};
use postern_smtp::{EnhancedCode, TlsInfo};

use super::route::Host;
use crate::settings::Settings;

/// What the access map says about one server.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsPolicy {
    /// `Try_TLS:` is not `NO`: offer STARTTLS when the server does.
    pub try_tls: bool,
    /// `TLS_Srv:`: what the connection must achieve.
    pub requirement: Option<TlsRequirement>,
}

/// The policy for `host` at `addr` (sendmail looks the name up first,
/// then the address, then the bare tag).
pub fn for_server(settings: &Settings, host: &Host, addr: IpAddr) -> TlsPolicy {
    let name = match host {
        Host::Name(name) | Host::Mx(name) => Some(name.as_str()),
        Host::Literal(_) | Host::Unix(_) => None,
    };
    TlsPolicy {
        try_tls: settings.access.try_tls(name, addr),
        requirement: settings.access.tls_requirement(name, addr).cloned(),
    }
}

/// What a finished handshake achieved, as far as a requirement asks.
#[derive(Clone, Debug)]
pub struct Achieved {
    /// The TLS macros.
    pub info: TlsInfo,
    /// The certificate's CN (`{cn_subject}`), for the reply.
    pub common_name: Option<String>,
    /// For each `+CN` check of the requirement, in order: the name it
    /// wants and whether the certificate names it.
    pub names: Vec<(String, bool)>,
}

/// The names a requirement's `+CN` checks want: the given one, or the
/// server's own (`mx.example.`, `[192.0.2.1]`).
pub fn wanted_names(requirement: &TlsRequirement, server: &str) -> Vec<String> {
    requirement
        .checks
        .iter()
        .filter_map(|c| match c {
            CertCheck::Name(name) => Some(name.clone().unwrap_or_else(|| server.to_string())),
            _ => None,
        })
        .collect()
}

/// Why a connection is not good enough: the reply every recipient gets,
/// and sendmail's `{verify}` for the log line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// 403 or 503.
    pub code: u16,
    /// 4.7.0 or 5.7.0.
    pub enhanced: EnhancedCode,
    /// sendmail's text.
    pub text: String,
    /// `OK`, `FAIL`, `NO`, `NOT`, or `NONE` without TLS.
    pub verify: String,
}

/// Checks `achieved` (None: no TLS) against `requirement`, in sendmail's
/// order: verification, then bits, then the certificate checks.
pub fn check(requirement: &TlsRequirement, achieved: Option<&Achieved>) -> Result<(), Refusal> {
    let verify = achieved.map_or("NONE", |a| a.info.verify.as_str());
    let refuse = |text: String| {
        let (code, enhanced) = match requirement.severity {
            Severity::Temporary => (403, EnhancedCode::new(4, 7, 0)),
            Severity::Permanent => (503, EnhancedCode::new(5, 7, 0)),
        };
        Err(Refusal {
            code,
            enhanced,
            text,
            verify: verify.to_string(),
        })
    };
    let bits_needed = match requirement.level {
        TlsLevel::Verify(bits) => {
            match verify {
                "OK" => {}
                "NONE" => return refuse("other side does not support STARTTLS".into()),
                "FAIL" => return refuse("authentication failed".into()),
                "NO" => return refuse("not authenticated".into()),
                "NOT" => return refuse("no authentication requested".into()),
                other => return refuse(format!("authentication failure {other}")),
            }
            bits
        }
        TlsLevel::Encrypt(bits) => bits,
    };
    let bits = achieved.map_or(0, |a| a.info.cipher_bits);
    if bits < bits_needed {
        return refuse(format!(
            "encryption too weak {bits} less than {bits_needed}"
        ));
    }
    let Some(achieved) = achieved else {
        // ENCR:0 or VERIFY… cannot get here without TLS; nothing to check.
        return Ok(());
    };
    let mut names = achieved.names.iter();
    for c in &requirement.checks {
        match c {
            CertCheck::Name(_) => {
                if let Some((name, false)) = names.next() {
                    let cn = achieved.common_name.as_deref().unwrap_or("");
                    return refuse(format!("CN {cn} does not match {name}"));
                }
            }
            CertCheck::Subject(want) => {
                let have = achieved.info.cert_subject.as_deref().unwrap_or("");
                if have != want {
                    return refuse(format!("Cert Subject {have} does not match {want}"));
                }
            }
            CertCheck::Issuer(want) => {
                let have = achieved.info.cert_issuer.as_deref().unwrap_or("");
                if have != want {
                    return refuse(format!("Cert Issuer {have} does not match {want}"));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use postern_smtp::Verify;

    use super::*;

    fn req(text: &str) -> TlsRequirement {
        TlsRequirement::parse(text).unwrap()
    }

    fn achieved(verify: Verify, bits: u32, names: &[(&str, bool)]) -> Achieved {
        Achieved {
            info: TlsInfo {
                version: "TLSv1.3".into(),
                cipher: "TLS_AES_256_GCM_SHA384".into(),
                cipher_bits: bits,
                alg_bits: bits,
                verify,
                cert_subject: Some("/CN=mx.example.com".into()),
                cert_issuer: Some("/CN=Test CA".into()),
            },
            common_name: Some("mx.example.com".into()),
            names: names.iter().map(|(n, ok)| (n.to_string(), *ok)).collect(),
        }
    }

    fn text(r: Result<(), Refusal>) -> String {
        match r {
            Ok(()) => "ok".into(),
            Err(r) => format!("{} {} {}", r.code, r.enhanced, r.text),
        }
    }

    #[test]
    fn sendmails_replies() {
        let ok = achieved(Verify::Ok, 256, &[]);
        assert_eq!(text(check(&req("VERIFY"), Some(&ok))), "ok");
        assert_eq!(
            text(check(&req("VERIFY"), None)),
            "403 4.7.0 other side does not support STARTTLS"
        );
        assert_eq!(
            text(check(&req("PERM+VERIFY"), None)),
            "503 5.7.0 other side does not support STARTTLS"
        );
        assert_eq!(
            text(check(
                &req("VERIFY"),
                Some(&achieved(Verify::Fail, 256, &[]))
            )),
            "403 4.7.0 authentication failed"
        );
        assert_eq!(
            text(check(&req("VERIFY"), Some(&achieved(Verify::No, 256, &[])))),
            "403 4.7.0 not authenticated"
        );
        assert_eq!(
            text(check(&req("ENCR:128"), None)),
            "403 4.7.0 encryption too weak 0 less than 128"
        );
        assert_eq!(
            text(check(&req("VERIFY:512"), Some(&ok))),
            "403 4.7.0 encryption too weak 256 less than 512"
        );
        // ENCR needs no verified certificate.
        let unverified = achieved(Verify::Fail, 128, &[]);
        assert_eq!(text(check(&req("ENCR:128"), Some(&unverified))), "ok");
    }

    #[test]
    fn certificate_checks() {
        let r = req("VERIFY+CN");
        let good = achieved(Verify::Ok, 256, &[("mx.example.com.", true)]);
        assert_eq!(text(check(&r, Some(&good))), "ok");
        let bad = achieved(Verify::Ok, 256, &[("mx.other.example.", false)]);
        assert_eq!(
            text(check(&r, Some(&bad))),
            "403 4.7.0 CN mx.example.com does not match mx.other.example."
        );
        let ok = achieved(Verify::Ok, 256, &[]);
        assert_eq!(
            text(check(&req("VERIFY+CS:/CN=mx.example.com"), Some(&ok))),
            "ok"
        );
        assert_eq!(
            text(check(&req("VERIFY+CI:/CN=Other CA"), Some(&ok))),
            "403 4.7.0 Cert Issuer /CN=Test CA does not match /CN=Other CA"
        );
        assert_eq!(
            wanted_names(&req("VERIFY+CN++CN:b.example"), "a.example."),
            ["a.example.", "b.example"]
        );
    }
}
