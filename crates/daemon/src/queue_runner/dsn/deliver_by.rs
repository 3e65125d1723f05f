//! DELIVERBY (RFC 2852) deadlines as the queue runner keeps them: a
//! message's by-time counts from its arrival; in mode R the recipients
//! still undelivered then fail (status 5.4.7) and the message is returned,
//! in mode N the sender gets one delay notice and delivery goes on.
//!
//! Owns: when a deadline falls and whether it calls for a return, a
//! notice, or a wake-up of the schedule. Does not own: failing the
//! recipients and the reports themselves (`mod.rs`, `message.rs`), what
//! goes to a next hop (the delivery client's envelope and the SMTP
//! client session).

use postern_queue::ControlFile;

/// The deadline of a message with a DELIVERBY request (unix seconds); in
/// mode N the by-time may be negative, a deadline before arrival.
pub fn deadline(control: &ControlFile) -> Option<u64> {
    let by = control.deliver_by?;
    Some(if by.seconds >= 0 {
        control.created.saturating_add(by.seconds.unsigned_abs())
    } else {
        control.created.saturating_sub(by.seconds.unsigned_abs())
    })
}

/// Mode R and the deadline has come: what is undelivered is returned.
pub fn return_due(control: &ControlFile, now: u64) -> bool {
    control.deliver_by.is_some_and(|by| by.return_on_expiry)
        && deadline(control).is_some_and(|at| now >= at)
}

/// Mode N, the deadline has come and no delay warning has gone yet
/// (sendmail sends one per message, Timeout.queuewarn's or this).
pub fn notice_due(control: &ControlFile, now: u64) -> bool {
    control.deliver_by.is_some_and(|by| !by.return_on_expiry)
        && !control.warned
        && deadline(control).is_some_and(|at| now >= at)
}

/// When the schedule must look at the message for its deadline, between
/// retries: the deadline itself while it still calls for something.
pub fn next_check(control: &ControlFile) -> Option<u64> {
    let by = control.deliver_by?;
    (by.return_on_expiry || !control.warned)
        .then(|| deadline(control))
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn control(by: Option<&str>) -> ControlFile {
        let mut c = ControlFile::new("6AP8Cx00000001".parse().unwrap(), 1_000, "a@b.test");
        c.deliver_by = by.map(|b| b.parse().unwrap());
        c
    }

    #[test]
    fn return_mode_is_due_at_its_deadline() {
        let c = control(Some("30;R"));
        assert_eq!(deadline(&c), Some(1_030));
        assert!(!return_due(&c, 1_029));
        assert!(return_due(&c, 1_030));
        assert!(!notice_due(&c, 2_000));
        assert_eq!(next_check(&c), Some(1_030));
    }

    #[test]
    fn notify_mode_gives_one_notice() {
        let mut c = control(Some("-5;NT"));
        assert_eq!(deadline(&c), Some(995));
        assert!(notice_due(&c, 1_000));
        assert!(!return_due(&c, 5_000));
        c.warned = true;
        assert!(!notice_due(&c, 1_000));
        assert_eq!(next_check(&c), None);
    }

    #[test]
    fn no_request_no_deadline() {
        let c = control(None);
        assert_eq!((deadline(&c), next_check(&c)), (None, None));
        assert!(!return_due(&c, u64::MAX) && !notice_due(&c, u64::MAX));
    }
}
