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
/// ENVID and ORCPT's address are held decoded (as the front's parser gives
/// them) and are xtext-encoded here.
pub fn envelope(job: &DeliveryJob, indices: &[usize]) -> Envelope {
    let mut mail_params = Vec::new();
    if let Some(ret) = job.ret {
        mail_params.push(format!("RET={}", ret.as_str()));
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
        dsn_params.push(format!("ORCPT={}", orcpt.to_xtext()));
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
        j.ret = Some(postern_smtp::params::Ret::Hdrs);
        j.envid = Some("QQ+x y".into());
        j.eight_bit = true;
        j.recipients[1].notify = Some("SUCCESS,FAILURE".parse().unwrap());
        j.recipients[1].orcpt = Some("rfc822;b+x@x.test".parse().unwrap());
        j.recipients[0].orcpt = Some("rfc822;a b@x.test".parse().unwrap());
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
