//! HELP: sendmail's help-file format and Postern's own text.
//!
//! A help file holds lines `topic<TAB>text`, optionally after a `#vers 2`
//! line; `$v` in the text becomes the version. HELP without an argument
//! shows the topic `smtp`.

use std::borrow::Cow;

/// A help text in sendmail's format, read when a client asks: HELP is
/// rare, and every session carries the text (each front would otherwise
/// parse the built-in one into a hundred strings it never shows).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HelpText {
    text: Cow<'static, str>,
    version: Cow<'static, str>,
}

const BUILTIN: &str = "\
smtp\tThis is Postern version $v
smtp\tTopics:
smtp\t\tHELO\tEHLO\tMAIL\tRCPT\tDATA
smtp\t\tRSET\tNOOP\tQUIT\tHELP\tVRFY
smtp\t\tEXPN\tVERB\tETRN\tDSN\tAUTH
smtp\t\tSTARTTLS
smtp\tFor more information, use \"HELP <topic>\".
smtp\tTo report bugs in the implementation, contact your postmaster.
helo\tHELO <hostname>
helo\t\tIntroduce yourself.
ehlo\tEHLO <hostname>
ehlo\t\tIntroduce yourself, and ask for the extended SMTP services.
mail\tMAIL FROM: <sender> [ <parameters> ]
mail\t\tSpecify the sender. Parameters are ESMTP extensions:
mail\t\tSIZE, BODY, RET, ENVID, AUTH and BY; see \"HELP DSN\".
rcpt\tRCPT TO: <recipient> [ <parameters> ]
rcpt\t\tSpecify a recipient. Parameters are NOTIFY and ORCPT.
data\tDATA
data\t\tThe lines that follow are the message, ending with a line
data\t\tthat holds only \".\".
rset\tRSET
rset\t\tReset the system.
quit\tQUIT
quit\t\tExit.
help\tHELP [ <topic> ]
help\t\tShow help on a topic.
vrfy\tVRFY <recipient>
vrfy\t\tVerify an address.
expn\tEXPN <recipient>
expn\t\tExpand an address.
verb\tVERB
verb\t\tGo into verbose mode.
etrn\tETRN [ <hostname> | @<domain> | #<queuename> ]
etrn\t\tRun the queue for the given host or domain.
noop\tNOOP
noop\t\tDo nothing.
dsn\tMAIL FROM: <sender> [ RET={ FULL | HDRS} ] [ ENVID=<envid> ]
dsn\tRCPT TO: <recipient> [ NOTIFY={NEVER,SUCCESS,FAILURE,DELAY} ]
dsn\t\t[ ORCPT=<recipient> ]
dsn\t\tDelivery status notifications, RFC 3461.
auth\tAUTH <mechanism> [ <initial-response> ]
auth\t\tAuthenticate with the given SASL mechanism.
starttls\tSTARTTLS
starttls\t\tStart TLS negotiation.
";

impl HelpText {
    /// Postern's built-in help.
    pub fn builtin() -> Self {
        Self {
            text: Cow::Borrowed(BUILTIN),
            version: Cow::Borrowed(env!("CARGO_PKG_VERSION")),
        }
    }

    /// A text in sendmail's help-file format, `$v` standing for `version`.
    pub fn parse(text: &str, version: &str) -> Self {
        Self {
            text: Cow::Owned(text.to_string()),
            version: Cow::Owned(version.to_string()),
        }
    }

    /// The lines of `topic` (`smtp` for an empty topic); empty if unknown.
    /// Lines without a TAB and comment lines are skipped, as sendmail
    /// skips them.
    pub fn topic(&self, topic: &str) -> Vec<String> {
        let topic = if topic.is_empty() { "smtp" } else { topic };
        self.text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once('\t'))
            .filter(|(t, _)| t.eq_ignore_ascii_case(topic))
            .map(|(_, line)| line.replace("$v", &self.version))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sendmail_format() {
        let h = HelpText::parse("#vers 2\nsmtp\tThis is v$v\nquit\tQUIT\nnotab\n", "1.2");
        assert_eq!(h.topic(""), vec!["This is v1.2"]);
        assert_eq!(h.topic("QUIT"), vec!["QUIT"]);
        assert!(h.topic("nosuch").is_empty());
    }

    #[test]
    fn builtin_covers_every_command() {
        let h = HelpText::builtin();
        for t in [
            "helo", "ehlo", "mail", "rcpt", "data", "rset", "quit", "help", "vrfy", "expn", "verb",
            "etrn", "noop", "dsn", "auth", "starttls",
        ] {
            assert!(!h.topic(t).is_empty(), "{t}");
        }
    }
}
