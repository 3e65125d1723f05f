//! The SMTP envelope of a session: the job's sender and some of its
//! recipients, with their DSN parameters (RFC 3461) in the form the client
//! session sends when the server offers DSN.
//!
//! Owns: turning a [`DeliveryJob`]'s `RET`, `ENVID`, `NOTIFY` and `ORCPT`
//! into parameters. Does not own: checking them for line breaks (the
//! session refuses an envelope that could break a command line).

use postern_ipc::{DeliveryJob, EnvelopeRecipient};
use postern_smtp::client::{Envelope, Recipient};
use postern_smtp::xtext;

/// The envelope for some recipients of `job`, with its DSN parameters
/// (sent only when the server offers DSN).
///
/// ENVID is held decoded (as the front's parser gives it) and is
/// xtext-encoded here. ORCPT is held as given (`rfc822;a+2Bb@c`) and is
/// passed on when its address part is valid xtext, else re-encoded.
pub fn envelope(job: &DeliveryJob, indices: &[usize]) -> Envelope {
    let mut mail_params = Vec::new();
    if let Some(ret) = &job.ret {
        mail_params.push(format!("RET={ret}"));
    }
    if let Some(envid) = &job.envid {
        mail_params.push(format!("ENVID={}", xtext::encode(envid.as_bytes())));
    }
    let recipients = indices
        .iter()
        .map(|&i| recipient(&job.recipients[i]))
        .collect();
    Envelope {
        reverse_path: job.sender.clone(),
        mail_params,
        body_8bit: job.eight_bit,
        size_hint: Some(job.size),
        recipients,
    }
}

fn recipient(r: &EnvelopeRecipient) -> Recipient {
    let mut dsn_params = Vec::new();
    if let Some(notify) = &r.notify {
        dsn_params.push(format!("NOTIFY={notify}"));
    }
    if let Some(orcpt) = &r.orcpt {
        let (kind, addr) = orcpt.split_once(';').unwrap_or(("rfc822", orcpt));
        let addr = match xtext::decode(addr) {
            Ok(_) => addr.to_string(),
            Err(_) => xtext::encode(addr.as_bytes()),
        };
        dsn_params.push(format!("ORCPT={kind};{addr}"));
    }
    Recipient {
        address: r.address.clone(),
        dsn_params,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::tests::job;

    #[test]
    fn envelope_carries_dsn_parameters() {
        let mut j = job(1, &["a@x.test", "b@x.test"]);
        j.ret = Some("HDRS".into());
        j.envid = Some("QQ+x y".into());
        j.eight_bit = true;
        j.recipients[1].notify = Some("SUCCESS,FAILURE".into());
        j.recipients[1].orcpt = Some("rfc822;b+2Bx@x.test".into());
        j.recipients[0].orcpt = Some("rfc822;a b@x.test".into());
        let e = envelope(&j, &[0, 1]);
        assert_eq!(e.mail_params, ["RET=HDRS", "ENVID=QQ+2Bx+20y"]);
        assert!(e.body_8bit);
        assert_eq!(e.size_hint, Some(j.size));
        assert_eq!(e.recipients[0].dsn_params, ["ORCPT=rfc822;a+20b@x.test"]);
        assert_eq!(
            e.recipients[1].dsn_params,
            ["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;b+2Bx@x.test"]
        );
        assert_eq!(e.validate(), Ok(()));
    }
}
