//! Repeated commands that do nothing useful, as sendmail's
//! `checksmtpattack` counts them: HELO/EHLO (MAXHELOCOMMANDS, 3),
//! VRFY/EXPN (MAXVRFYCOMMANDS, 6), ETRN (MAXETRNCOMMANDS, 8), NOOP and
//! VERB (MaxNOOPCommands, 20). From the limit on, each such command is
//! slowed down (`n / limit` seconds at once, then the rest of `2^(n -
//! limit)` seconds, at most four minutes), and the first one over is
//! logged as `possible SMTP attack`.
//!
//! A slowed-down session still holds a process, so when the number of
//! sessions is limited (MaxDaemonChildren above 0) sendmail does not keep
//! it: after the first pause it answers `421 4.7.0 <host> Too many bad
//! commands; closing connection`. A client that sends NOOPs and never
//! reads the replies is ended this way after its twentieth.

use std::time::Duration;

use super::{replies, Event, Session};
use crate::limits;

/// The counted kinds of command, each with its own counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Repeated {
    /// HELO and EHLO.
    Hello,
    /// VRFY and EXPN.
    Verify,
    /// ETRN.
    Etrn,
    /// NOOP and VERB: "noise".
    Noise,
}

/// How many of each a session has seen.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Repetitions {
    hello: u32,
    verify: u32,
    etrn: u32,
    noise: u32,
}

/// What one more command of a kind costs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Slowdown {
    /// Waited whatever the command's reply.
    pub before: Duration,
    /// Waited more before a command that is carried out (sendmail
    /// sleeps it for the "waitnow" commands, or between a VRFY's lookup
    /// and its answer).
    pub answer: Duration,
    /// The count just reached the limit: log it.
    pub first_over: Option<u32>,
    /// End the session after `before` (MaxDaemonChildren is set).
    pub stop: bool,
}

impl Repetitions {
    /// Counts one more command of `kind`, with at most `noise_limit`
    /// NOOPs and VERBs (0: no limit); `stop_over_limit` ends the session
    /// instead of slowing it down.
    pub(super) fn count(
        &mut self,
        kind: Repeated,
        noise_limit: u32,
        stop_over_limit: bool,
    ) -> Slowdown {
        let (counter, limit) = match kind {
            Repeated::Hello => (&mut self.hello, limits::HELO_COMMANDS),
            Repeated::Verify => (&mut self.verify, limits::VRFY_COMMANDS),
            Repeated::Etrn => (&mut self.etrn, limits::ETRN_COMMANDS),
            Repeated::Noise => (&mut self.noise, noise_limit),
        };
        if limit == 0 {
            return Slowdown::default();
        }
        *counter = counter.saturating_add(1);
        let n = *counter;
        if n < limit {
            return Slowdown::default();
        }
        let shift = n - limit;
        let total = if shift > 8 {
            limits::MAX_SLOWDOWN_SECS
        } else {
            (1u64 << shift).min(limits::MAX_SLOWDOWN_SECS)
        };
        let before = u64::from(n / limit).min(limits::MAX_SLOWDOWN_SECS);
        Slowdown {
            before: Duration::from_secs(before),
            answer: Duration::from_secs(total.saturating_sub(before)),
            first_over: (n == limit).then_some(n),
            stop: stop_over_limit,
        }
    }

    /// STARTTLS starts the session over: the client must greet again
    /// (RFC 3207 §4.2), and that EHLO is not a repetition.
    pub(super) fn forget_hellos(&mut self) {
        self.hello = 0;
    }
}

impl Session {
    /// Counts one more command of `kind` (named `verb` in the log); the
    /// slowdown to apply, or `None` when the session was ended for it.
    pub(super) fn repeated(&mut self, kind: Repeated, verb: &'static str) -> Option<Slowdown> {
        let slow = self
            .repetitions
            .count(kind, self.cfg.max_noop_commands, self.cfg.stop_attacks);
        if let Some(count) = slow.first_over {
            self.event(Event::PossibleAttack {
                command: verb,
                count,
            });
        }
        if slow.stop {
            self.pause(slow.before);
            let reply = replies::too_many_bad_commands(&self.cfg.hostname);
            self.reply(reply);
            self.close();
            return None;
        }
        Some(slow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(kind: Repeated, times: u32, limit: u32) -> Vec<Slowdown> {
        let mut r = Repetitions::default();
        (0..times).map(|_| r.count(kind, limit, false)).collect()
    }

    #[test]
    fn below_the_limit_costs_nothing() {
        let s = run(Repeated::Noise, 19, 20);
        assert!(s.iter().all(|s| *s == Slowdown::default()));
    }

    #[test]
    fn from_the_limit_the_wait_doubles_up_to_four_minutes() {
        let s = run(Repeated::Noise, 40, 20);
        assert_eq!(s[19].before, Duration::from_secs(1));
        assert_eq!(s[19].answer, Duration::ZERO);
        assert_eq!(s[19].first_over, Some(20));
        assert_eq!(s[20].first_over, None);
        assert_eq!(s[20].before + s[20].answer, Duration::from_secs(2));
        assert_eq!(s[22].before + s[22].answer, Duration::from_secs(8));
        assert_eq!(s[39].before, Duration::from_secs(2));
        assert_eq!(s[39].before + s[39].answer, Duration::from_secs(240));
    }

    #[test]
    fn each_kind_has_its_own_count_and_limit() {
        let mut r = Repetitions::default();
        for _ in 0..2 {
            assert_eq!(r.count(Repeated::Hello, 20, false), Slowdown::default());
        }
        assert_eq!(r.count(Repeated::Etrn, 20, false), Slowdown::default());
        assert_eq!(r.count(Repeated::Hello, 20, false).first_over, Some(3));
        let etrn: Vec<_> = (0..7).map(|_| r.count(Repeated::Etrn, 20, false)).collect();
        assert_eq!(etrn[6].first_over, Some(8));
    }

    #[test]
    fn no_limit_for_noise_when_the_option_is_zero() {
        assert!(run(Repeated::Noise, 100, 0)
            .iter()
            .all(|s| *s == Slowdown::default()));
    }

    #[test]
    fn a_limited_server_stops_instead_of_waiting() {
        let mut r = Repetitions::default();
        let s = (0..3)
            .map(|_| r.count(Repeated::Hello, 20, true))
            .last()
            .unwrap();
        assert!(s.stop);
        assert_eq!(s.before, Duration::from_secs(1));
    }

    #[test]
    fn starttls_forgets_the_greetings() {
        let mut r = Repetitions::default();
        r.count(Repeated::Hello, 20, false);
        r.count(Repeated::Hello, 20, false);
        r.forget_hellos();
        assert_eq!(r.count(Repeated::Hello, 20, false), Slowdown::default());
    }
}
