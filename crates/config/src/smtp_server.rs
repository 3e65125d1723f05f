//! The SMTP server session's settings, from the configuration: the same
//! for the daemon's fronts and `sendmail -bs`, which then adjust what
//! differs (STARTTLS, AUTH, PIPELINING synchronisation, ETRN under -bs);
//! and the limits on what one message may be.

use postern_smtp::date::rfc5322_date;
use postern_smtp::server::ServerConfig;

use crate::Config;

/// The recipient cap when MaxRecipientsPerMessage is 0 (unlimited), and
/// the most any setting allows: every recipient travels to the queue
/// runner in one bounded frame, and a client must not be able to grow a
/// front without end. RFC 5321 asks for at least 100.
pub const MAX_RECIPIENTS: u32 = 1000;

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
    use std::path::Path;

    use crate::Config;

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
    fn recipients_are_capped_and_never_unlimited() {
        for (setting, cap) in [("0", 1000), ("50", 50), ("100000", 1000)] {
            let cfg = config(&format!("O MaxRecipientsPerMessage={setting}\n"));
            assert_eq!(cfg.recipient_cap(), cap, "{setting}");
            assert_eq!(cfg.smtp_server("h", "c", 0, 0).max_recipients, cap);
        }
    }
}
