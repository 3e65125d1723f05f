//! The SMTP server session's settings, from the configuration: the same
//! for the daemon's fronts and `sendmail -bs`, which then adjust what
//! differs (STARTTLS, AUTH, PIPELINING synchronisation, ETRN under -bs);
//! and the limits on what one message may be.

use std::net::IpAddr;
use std::time::Duration;

use postern_smtp::date::rfc5322_date;
use postern_smtp::server::ServerConfig;

use crate::{AccessMap, Config, Feature};

/// The recipient cap when MaxRecipientsPerMessage is 0 (unlimited), and
/// the most any setting allows: every recipient travels to the queue
/// runner in one bounded frame, and a client must not be able to grow a
/// front without end. RFC 5321 asks for at least 100.
pub const MAX_RECIPIENTS: u32 = 1000;

/// The longest greet pause: RFC 5321 §4.5.3.2.1 gives a client five
/// minutes for the greeting, and sendmail caps the pause there.
pub const MAX_GREET_PAUSE: Duration = Duration::from_secs(300);

/// The most a locally submitted message may be when MaxMessageSize is
/// unlimited: the queue runner reads a submission in one go.
pub const SUBMISSION_LIMIT: u64 = 64 << 20;

impl Config {
    /// The largest message a local user may submit (`sendmail`,
    /// `sendmail -bs`): MaxMessageSize, or [`SUBMISSION_LIMIT`] when that
    /// is unlimited.
    pub fn submission_limit(&self) -> u64 {
        match self.max_message_size {
            0 => SUBMISSION_LIMIT,
            n => n,
        }
    }

    /// Recipients one message may have: MaxRecipientsPerMessage, capped
    /// at [`MAX_RECIPIENTS`].
    pub fn recipient_cap(&self) -> u32 {
        match self.max_recipients_per_message {
            0 => MAX_RECIPIENTS,
            n => n.min(MAX_RECIPIENTS),
        }
    }

    /// How long to hold the greeting for a client named `host` (when it
    /// has a name) at `addr`: the access map's `GreetPause:` entry, else
    /// `FEATURE(greet_pause, N)`'s N milliseconds, at most
    /// [`MAX_GREET_PAUSE`]; nothing without the feature. As in sendmail's
    /// ruleset, no client is exempt unless an entry says `0` (loopback and
    /// RelayNetworks included: `GreetPause:127.0.0.1 0`).
    pub fn greet_pause(&self, access: &AccessMap, host: Option<&str>, addr: IpAddr) -> Duration {
        let Some(default) = self.features.get(&Feature::GreetPause) else {
            return Duration::ZERO;
        };
        let ms = access
            .greet_pause(host, addr)
            .or_else(|| default.as_deref().and_then(|n| n.parse().ok()))
            .unwrap_or(0);
        Duration::from_millis(ms).min(MAX_GREET_PAUSE)
    }

    /// The session's settings for `client` (sendmail's `$_`), as host
    /// `hostname` (`$j`), with the greeting expanded at `now` in the zone
    /// `utc_offset` seconds east of UTC.
    pub fn smtp_server(
        &self,
        hostname: &str,
        client: &str,
        now: i64,
        utc_offset: i32,
    ) -> ServerConfig {
        let mut cfg = ServerConfig::new(hostname, client);
        cfg.greeting = expand_greeting(&self.smtp_greeting, hostname, now, utc_offset);
        cfg.privacy = self.privacy;
        cfg.max_message_size = self.max_message_size;
        cfg.max_recipients = self.recipient_cap();
        cfg.command_timeout = self.timeouts.command;
        cfg.datablock_timeout = self.timeouts.datablock;
        cfg.bad_rcpt_throttle = self.bad_rcpt_throttle;
        cfg.max_noop_commands = self.max_noop_commands;
        cfg.stop_attacks = self.max_daemon_children > 0;
        cfg
    }
}

/// `$j`, `$v` and `$b` in SmtpGreetingMessage.
fn expand_greeting(template: &str, hostname: &str, now: i64, utc_offset: i32) -> String {
    template
        .replace("$j", hostname)
        .replace("$v", env!("CARGO_PKG_VERSION"))
        .replace("$b", &rfc5322_date(now, utc_offset))
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;
    use std::path::Path;
    use std::time::Duration;

    use super::MAX_GREET_PAUSE;
    use crate::{AccessMap, Config};

    fn config(text: &str) -> Config {
        Config::parse_str(text, Path::new("/etc/mail/postern.cf")).unwrap()
    }

    #[test]
    fn greeting_macros_are_expanded() {
        let cfg = config("O SmtpGreetingMessage=$j Postern $v; $b\n").smtp_server(
            "mx.example",
            "client [192.0.2.1]",
            1_704_186_000,
            3600,
        );
        assert_eq!(
            cfg.greeting,
            format!(
                "mx.example Postern {}; Tue, 2 Jan 2024 10:00:00 +0100",
                env!("CARGO_PKG_VERSION")
            )
        );
        assert_eq!(cfg.client, "client [192.0.2.1]");
    }

    #[test]
    fn greet_pause_from_the_feature_and_the_access_map() {
        let access = AccessMap::parse_str(
            "GreetPause:localhost 0\nGreetPause:192.0.2 2000\nGreetPause:slow.example 90000000\n",
        )
        .unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let ms = Duration::from_millis;
        let cfg = config("FEATURE(`greet_pause', `5000')\n");
        assert_eq!(cfg.greet_pause(&access, None, ip("198.51.100.1")), ms(5000));
        // Loopback is not exempt by itself, only by an entry.
        assert_eq!(cfg.greet_pause(&access, None, ip("127.0.0.1")), ms(5000));
        assert_eq!(
            cfg.greet_pause(&access, Some("localhost"), ip("127.0.0.1")),
            ms(0)
        );
        assert_eq!(cfg.greet_pause(&access, None, ip("192.0.2.9")), ms(2000));
        assert_eq!(
            cfg.greet_pause(&access, Some("mx.slow.example"), ip("198.51.100.1")),
            MAX_GREET_PAUSE
        );
        // Without an argument only the map's entries pause.
        let cfg = config("FEATURE(`greet_pause')\n");
        assert_eq!(cfg.greet_pause(&access, None, ip("198.51.100.1")), ms(0));
        assert_eq!(cfg.greet_pause(&access, None, ip("192.0.2.9")), ms(2000));
        // Without the feature the map is not read for it.
        let cfg = config("");
        assert_eq!(cfg.greet_pause(&access, None, ip("192.0.2.9")), ms(0));
        let err = Config::parse_str(
            "FEATURE(`greet_pause', `5s')\n",
            Path::new("/etc/mail/postern.cf"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("greet_pause"), "{err}");
    }

    #[test]
    fn noop_limit_and_attack_stop_reach_the_session() {
        let cfg =
            config("O MaxNOOPCommands=5\nO MaxDaemonChildren=0\n").smtp_server("h", "c", 0, 0);
        assert_eq!((cfg.max_noop_commands, cfg.stop_attacks), (5, false));
        let cfg = config("").smtp_server("h", "c", 0, 0);
        assert_eq!((cfg.max_noop_commands, cfg.stop_attacks), (20, true));
    }

    #[test]
    fn bad_rcpt_throttle_reaches_the_session() {
        let cfg = config("O BadRcptThrottle=3\n").smtp_server("h", "c", 0, 0);
        assert_eq!(cfg.bad_rcpt_throttle, 3);
        assert_eq!(config("").smtp_server("h", "c", 0, 0).bad_rcpt_throttle, 0);
    }

    #[test]
    fn recipients_are_capped_and_never_unlimited() {
        for (setting, cap) in [("0", 1000), ("50", 50), ("100000", 1000)] {
            let cfg = config(&format!("O MaxRecipientsPerMessage={setting}\n"));
            assert_eq!(cfg.recipient_cap(), cap, "{setting}");
            assert_eq!(cfg.smtp_server("h", "c", 0, 0).max_recipients, cap);
        }
    }
}
