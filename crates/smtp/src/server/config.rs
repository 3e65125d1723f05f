//! What a server session needs to know, decided before the first byte.

use std::time::Duration;

use crate::privacy::PrivacyFlags;
use crate::server::help::HelpText;

/// Settings of one server session, filled from the configuration by the
/// daemon (or by `sendmail -bs`).
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// `$j`, this host's name, used in replies.
    pub hostname: String,
    /// The greeting text after the code, expanded from SmtpGreetingMessage
    /// (`$j Postern $v; $b`); the session inserts `ESMTP` as its second
    /// word, as sendmail does.
    pub greeting: String,
    /// The greeting's code: 220, or 554 when a mail filter refused the
    /// connection (sendmail's greetcode; every command but QUIT, HELO,
    /// EHLO, NOOP and RSET then gets `connect_refusal`).
    pub greeting_code: u16,
    /// How the client is named in replies and logs, sendmail's `$_`:
    /// `host.example [192.0.2.1]`, or `root@localhost` for `-bs`.
    pub client: String,
    /// PrivacyOptions.
    pub privacy: PrivacyFlags,
    /// MaxMessageSize in octets; 0 means no limit.
    pub max_message_size: u64,
    /// MaxRecipientsPerMessage; 0 means no limit.
    pub max_recipients: u32,
    /// DELIVERBY is offered with this minimum (seconds); `None` hides it.
    pub deliver_by_min: Option<i64>,
    /// SASL mechanisms to offer; empty means no AUTH.
    pub auth_mechanisms: Vec<String>,
    /// Mechanisms of `auth_mechanisms` that send the password in clear
    /// (PLAIN, LOGIN) and so, under AuthOptions `p`, are neither offered
    /// nor accepted before STARTTLS (`538 5.7.11`).
    pub auth_tls_only: Vec<String>,
    /// The mechanisms are the shell's to say, when first needed (the
    /// first EHLO or AUTH), with [`Question::AuthMechanisms`]: the
    /// daemon's front learns them from the queue runner, which it must not
    /// wait for before its greeting.
    ///
    /// [`Question::AuthMechanisms`]: crate::server::Question::AuthMechanisms
    pub auth_from_shell: bool,
    /// Failed AUTH attempts after which the session is closed; 0 means
    /// no limit. Each failure is answered a little later than the last.
    pub auth_max_failures: u32,
    /// MAIL is refused until the client authenticated (the listener's
    /// `M=a`, as on a submission port).
    pub auth_required: bool,
    /// The access map's `Connect:` REJECT or ERROR for this client
    /// (sendmail's check_relay): the greeting is normal, then every
    /// command but QUIT, HELO, EHLO, NOOP and RSET gets this reply.
    pub connect_refusal: Option<crate::reply::Reply>,
    /// A usable server certificate is loaded, so STARTTLS can be offered.
    pub starttls: bool,
    /// The help text; `None` answers HELP with 502.
    pub help: Option<HelpText>,
    /// Product version for HELP replies.
    pub version: String,
    /// Refuse input queued behind EHLO, HELO or DATA (RFC 2920 sync
    /// points). Off for `sendmail -bs`, whose input is often a script.
    pub pipelining_sync: bool,
    /// Report every command as an event (LogLevel 15 and up).
    pub trace_commands: bool,
    /// Timeout.command: how long to wait for the next command.
    pub command_timeout: Duration,
    /// Timeout.datablock: how long to wait for more message text.
    pub datablock_timeout: Duration,
    /// How long to hold the greeting, watching for a client that talks
    /// first (`FEATURE(greet_pause)`); zero greets at once.
    pub greet_pause: Duration,
    /// BadRcptThrottle: refused RCPTs in a session after which each RCPT
    /// waits a second; 0 means never.
    pub bad_rcpt_throttle: u32,
    /// Ask the shell about HELO and EHLO ([`Question::Hello`]): mail
    /// filters are configured.
    ///
    /// [`Question::Hello`]: crate::server::Question::Hello
    pub ask_hello: bool,
    /// Ask the shell about unrecognised commands
    /// ([`Question::Unknown`](crate::server::Question::Unknown)): mail
    /// filters are configured.
    pub ask_unknown: bool,
    /// MaxNOOPCommands: NOOP and VERB commands in a session before each
    /// is slowed down; 0 means no limit.
    pub max_noop_commands: u32,
    /// End a session that repeats HELO, VRFY, ETRN or NOOP past its limit
    /// instead of slowing it down: sendmail does when MaxDaemonChildren is
    /// set, since a slowed-down session holds one of the processes.
    pub stop_attacks: bool,
}

impl ServerConfig {
    /// sendmail's defaults for a session with `client` on host `hostname`.
    pub fn new(hostname: &str, client: &str) -> Self {
        let version = env!("CARGO_PKG_VERSION").to_string();
        Self {
            hostname: hostname.to_string(),
            greeting: format!("{hostname} Postern {version}"),
            greeting_code: 220,
            client: client.to_string(),
            privacy: PrivacyFlags::M4_DEFAULT,
            max_message_size: 0,
            max_recipients: 0,
            deliver_by_min: Some(0),
            auth_mechanisms: Vec::new(),
            auth_tls_only: Vec::new(),
            auth_from_shell: false,
            auth_max_failures: 0,
            auth_required: false,
            connect_refusal: None,
            starttls: false,
            help: Some(HelpText::builtin()),
            version,
            pipelining_sync: true,
            trace_commands: false,
            command_timeout: Duration::from_secs(3600),
            datablock_timeout: Duration::from_secs(3600),
            greet_pause: Duration::ZERO,
            bad_rcpt_throttle: 0,
            ask_hello: false,
            ask_unknown: false,
            max_noop_commands: crate::limits::NOOP_COMMANDS,
            stop_attacks: false,
        }
    }
}
