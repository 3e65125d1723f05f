//! sendmail's BadRcptThrottle: a client that has had N recipients refused
//! in a session (a dictionary attack, or a spammer guessing addresses) has
//! every further RCPT answered only after a one-second pause.
//!
//! As in sendmail's `srvrsmtp.c`, the count is of RCPT commands refused
//! after MAIL (bad syntax, bad parameters, too many recipients, refused by
//! policy), for the whole connection (RSET does not forget it); the pause
//! comes before the command is looked at, and the flood is logged once,
//! when the throttle starts. The pause is linear: sendmail found that an
//! exponential one makes senders open more connections instead.

use std::time::Duration;

use super::{Event, Session};
use crate::reply::Reply;

/// How long each RCPT waits once the throttle is on (sendmail's
/// BadRcptThrottleDelay default).
pub const BAD_RCPT_DELAY: Duration = Duration::from_secs(1);

impl Session {
    /// Before a RCPT is handled: pause if the client is past
    /// BadRcptThrottle.
    pub(super) fn throttle_rcpt(&mut self) {
        let limit = self.cfg.bad_rcpt_throttle;
        if limit == 0 || self.bad_rcpts < limit {
            return;
        }
        if !self.flood_logged {
            self.flood_logged = true;
            self.event(Event::RcptFlood);
        }
        self.pause(BAD_RCPT_DELAY);
    }

    /// A RCPT was refused with `reply`: count it, and send the reply.
    pub(super) fn rcpt_refused(&mut self, reply: Reply) {
        self.bad_rcpts = self.bad_rcpts.saturating_add(1);
        self.reply(reply);
    }

    /// A RCPT was refused by a reply sent elsewhere: count it.
    pub(super) fn count_bad_rcpt(&mut self) {
        self.bad_rcpts = self.bad_rcpts.saturating_add(1);
    }
}
