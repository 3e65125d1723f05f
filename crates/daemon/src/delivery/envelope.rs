//! The SMTP envelope of a session: the job's sender and some of its
//! recipients, with their DSN parameters (RFC 3461) in the form the client
//! session sends when the server offers DSN.
//!
//! Owns: turning a [`DeliveryJob`]'s `RET`, `ENVID`, `NOTIFY` and `ORCPT`
//! into parameters, and its DELIVERBY request into the time left now
//! (RFC 2852 §4: the by-time passed on is the deadline minus now). Does
//! not own: checking them for line breaks (the session refuses an
//! envelope that could break a command line), nor what a next hop with
//! or without DELIVERBY gets (the session decides).

use postern_ipc::{DeliveryJob, EnvelopeRecipient};
use postern_smtp::client::{Envelope, Recipient};
use postern_smtp::params::DeliverBy;
use postern_smtp::xtext;

/// The envelope for some recipients of `job`, with its DSN parameters
/// (sent only when the server offers DSN).
///
/// ENVID and ORCPT's address are held decoded (as the front's parser gives
/// them) and are xtext-encoded here.
pub fn envelope(job: &DeliveryJob, indices: &[usize]) -> Envelope {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    envelope_at(job, indices, now)
}

/// [`envelope`] at `now` (unix seconds).
fn envelope_at(job: &DeliveryJob, indices: &[usize], now: u64) -> Envelope {
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
        deliver_by: job.deliver_by.map(|by| DeliverBy {
            seconds: time_left(job.arrival, by.seconds, now),
            ..by
        }),
        recipients,
    }
}

/// The by-time left at `now` of a message that arrived at `arrival` with
/// `by` seconds to go.
fn time_left(arrival: u64, by: i64, now: u64) -> i64 {
    let spent = i64::try_from(now.saturating_sub(arrival)).unwrap_or(i64::MAX);
    by.saturating_sub(spent)
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
        assert_eq!(e.deliver_by, None);
    }

    #[test]
    fn deliver_by_passes_on_the_time_left() {
        let mut j = job(1, &["a@x.test"]);
        j.arrival = 1_000;
        j.deliver_by = Some("60;RT".parse().unwrap());
        let e = envelope_at(&j, &[0], 1_025);
        assert_eq!(e.deliver_by, Some("35;RT".parse().unwrap()));
        // Mode N past its time: the negative by-time RFC 2852 §4 allows.
        j.deliver_by = Some("10;N".parse().unwrap());
        let e = envelope_at(&j, &[0], 1_025);
        assert_eq!(e.deliver_by, Some("-15;N".parse().unwrap()));
    }
}
