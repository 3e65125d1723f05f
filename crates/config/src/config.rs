//! The validated configuration and the pass over the file that builds it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use postern_smtp::PrivacyFlags;

use crate::daemon_port::DaemonPort;
use crate::error::{ConfigError, ConfigErrors};
use crate::lexer::{lex, unsupported_macro, Line};
use crate::options::OPTIONS;
use crate::relay::Relay;
use crate::suggest::did_you_mean;
use crate::table::{
    by_cf_macro, by_cf_option, by_m4_define, by_m4_macro, cf_option_names, m4_define_names, CfName,
};
use crate::values::{Feature, Timeouts, TlsFiles};

/// A validated configuration. Every field holds its built-in default unless
/// the file set it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The file the configuration was read from; side tables live next to it.
    pub source: PathBuf,
    /// `$j` (`Dj`, `confDOMAIN_NAME`) as configured; see [`Config::hostname`].
    pub domain_name: Option<String>,
    /// `$S` (`DS`, `SMART_HOST`): all outbound mail goes there.
    pub smart_host: Option<Relay>,
    /// Certificates, keys and TLS switches.
    pub tls: TlsFiles,
    /// `PrivacyOptions`: the union of every occurrence, or `authwarnings`.
    pub privacy: PrivacyFlags,
    /// `LogLevel` (default 9).
    pub log_level: u32,
    /// `QueueDirectory` (default /var/spool/postern).
    pub queue_directory: PathBuf,
    /// `MaxMessageSize` in bytes; 0 means unlimited.
    pub max_message_size: u64,
    /// `MaxRecipientsPerMessage`; 0 means unlimited.
    pub max_recipients_per_message: u32,
    /// `MaxDaemonChildren`; 0 means unlimited.
    pub max_daemon_children: u32,
    /// `ConnectionRateThrottle`, connections per second; 0 means off.
    pub connection_rate_throttle: u32,
    /// `ConnectionRateWindowSize`: the window over which the access map's
    /// `ClientRate:` counts a client's connections (default 60 s).
    pub connection_rate_window: std::time::Duration,
    /// `BadRcptThrottle`: refused RCPTs in a session after which each
    /// RCPT waits a second; 0 means never.
    pub bad_rcpt_throttle: u32,
    /// `MaxNOOPCommands`: NOOP and VERB commands in a session before each
    /// is slowed down (or, with MaxDaemonChildren, the session ended); 0
    /// means no limit.
    pub max_noop_commands: u32,
    /// `DaemonPortOptions`: the listeners, in file order (MTA on 25 and MSA
    /// on 587 when none is configured).
    pub daemons: Vec<DaemonPort>,
    /// `RunAsUser`: `user` or `user:group`, as written.
    pub run_as_user: String,
    /// `TrustedUser`.
    pub trusted_user: Option<String>,
    /// `QueueOwner` (Postern's own): the user that owns QueueDirectory and
    /// runs the queue runner. It must differ from RunAsUser, so that the
    /// per-connection processes cannot open the spool.
    pub queue_owner: String,
    /// `FrontUser` (Postern's own): the user the per-connection fronts run
    /// as. It must differ from RunAsUser and QueueOwner, so that a front
    /// taken over can signal neither the delivery client nor the queue
    /// runner.
    pub front_user: String,
    /// `MailboxDirectory` (Postern's own): where local mail is delivered,
    /// one Maildir per user (`<dir>/<user>/Maildir`) or one mbox file
    /// per user (`<dir>/<user>`).
    pub mailbox_directory: PathBuf,
    /// `LocalMailbox` (Postern's own): Maildir, mbox or `~/Maildir`.
    pub local_mailbox: crate::LocalMailbox,
    /// `QueueSync` (Postern's own): how commits are made durable.
    pub queue_sync: crate::QueueSync,
    /// `ListenQueueSize` (m4 `confLISTEN_QUEUE_SIZE`): the listen backlog
    /// of each SMTP listener (the kernel caps it at `net.core.somaxconn`).
    pub listen_queue_size: u32,
    /// `RelayNetworks` (Postern's own): clients that may relay by address.
    pub relay_networks: Vec<crate::Network>,
    /// `AliasFile` (m4 `ALIAS_FILE`): the aliases file; unset means
    /// `aliases` next to the configuration file ([`Config::alias_path`]).
    pub alias_file: Option<PathBuf>,
    /// `LocalDelivery` (Postern's own): how local users get their mail,
    /// Postern's Maildir writer (the default) or an LMTP server.
    pub local_delivery: crate::LocalDelivery,
    /// `ControlSocket` (Postern's own): the Unix socket master serves for
    /// mailq, runq and sendmail.
    pub control_socket: PathBuf,
    /// `TLSFallbacktoClear`: after a failed STARTTLS handshake, try the
    /// same server again at once without STARTTLS (sendmail's option; off
    /// by default: the message is deferred instead).
    pub tls_fallback_to_clear: bool,
    /// `MinQueueAge`: the wait before the first retry of a deferred
    /// message; each later retry waits twice as long, up to four hours.
    pub min_queue_age: std::time::Duration,
    /// `ConnectionCacheSize`: outbound connections kept open, idle, for the
    /// next message to the same server; 0 closes each after its message.
    pub connection_cache_size: u32,
    /// `ConnectionCacheTimeout`: how long an idle connection is kept.
    pub connection_cache_timeout: std::time::Duration,
    /// `SmtpGreetingMessage`, unexpanded (`$j Postern $v; $b`).
    pub smtp_greeting: String,
    /// The `Timeout.*` options.
    pub timeouts: Timeouts,
    /// `NameServers` (Postern's own): the DNS servers asked for MX and
    /// address records; empty means those of `/etc/resolv.conf`.
    pub name_servers: Vec<std::net::SocketAddr>,
    /// The ports of the SMTP mailers (`SMTP_MAILER_ARGS` and its siblings).
    pub mailer_ports: crate::MailerPorts,
    /// `AuthMechanisms`, `AuthOptions`, `AuthDovecotSocket`,
    /// `AuthMaxFailures`.
    pub auth: crate::AuthSettings,
    /// The `FEATURE`s turned on, with their argument as written. Map
    /// specifications are not interpreted: side tables are plain text.
    pub features: BTreeMap<Feature, Option<String>>,
    /// Mail filters defined (`INPUT_MAIL_FILTER`, `MAIL_FILTER`, `X`
    /// lines), in file order.
    pub mail_filters: Vec<crate::MailFilter>,
    /// `InputMailFilters` as written, if it was.
    pub(crate) input_mail_filters: Option<Vec<String>>,
    /// The filters `INPUT_MAIL_FILTER` put in the list, in order.
    pub(crate) m4_input_filters: Vec<String>,
    /// The macros sent to filters at each stage
    /// (`confMILTER_MACROS_CONNECT` and its siblings).
    pub milter_macros: BTreeMap<postern_milter::macros::Stage, Vec<String>>,
}

impl Config {
    /// Reads and validates the file at `path`.
    ///
    /// # Errors
    /// Every problem of the file, each with its line; an unreadable file is
    /// a single error on line 0.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        match std::fs::read(path) {
            // Invalid UTF-8 becomes U+FFFD and is then reported on its line.
            Ok(bytes) => Self::parse_str(&String::from_utf8_lossy(&bytes), path),
            Err(e) => Err(ConfigErrors(vec![ConfigError::new(
                path,
                0,
                format!("cannot read configuration file: {e}"),
            )])),
        }
    }

    /// Validates configuration text; `origin` names it in errors and is the
    /// directory for side tables.
    ///
    /// # Errors
    /// Every problem of the text at once, in line order.
    pub fn parse_str(text: &str, origin: &Path) -> Result<Config, ConfigErrors> {
        let mut cfg = Config::blank(origin);
        let mut seen = vec![false; OPTIONS.len()];
        let mut errors = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if let Err(msg) = cfg.apply_line(line, &mut seen) {
                errors.push(ConfigError::new(origin, i + 1, msg));
            }
        }
        // Defaults only for options the file never mentions, so that a
        // configured listener replaces the default ones and an explicit
        // (even empty) PrivacyOptions replaces `authwarnings`.
        for (opt, _) in OPTIONS.iter().zip(&seen).filter(|(_, s)| !**s) {
            for value in opt.default {
                if let Err(msg) = (opt.set)(&mut cfg, &opt.cf_display(), value) {
                    errors.push(ConfigError::new(
                        origin,
                        0,
                        format!("built-in default: {msg}"),
                    ));
                }
            }
        }
        if let Err(msg) = cfg.check_input_filters() {
            errors.push(ConfigError::new(origin, 0, msg));
        }
        // One form from here on, whichever syntax gave the list.
        cfg.input_mail_filters = Some(cfg.input_filter_names().to_vec());
        cfg.m4_input_filters.clear();
        if errors.is_empty() {
            Ok(cfg)
        } else {
            Err(ConfigErrors(errors))
        }
    }

    /// `$j`: the configured name, else the kernel's host name, else
    /// `localhost`. Never asks DNS: a name lookup at startup can hang.
    pub fn hostname(&self) -> String {
        if let Some(h) = &self.domain_name {
            return h.clone();
        }
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "localhost".to_string())
    }

    /// Every option in .cf syntax, defaults included, then the features, in
    /// a form that parses back to the same configuration. For
    /// `postern check-config`.
    pub fn effective_lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        for opt in OPTIONS {
            for value in (opt.show)(self) {
                out.push(match opt.cf {
                    CfName::Option(_) => format!("O {}={value}", opt.cf_display()),
                    CfName::Macro(c) => format!("D{c}{value}"),
                });
            }
        }
        for f in &self.mail_filters {
            out.push(format!("X{}, {}", f.name, f.equates()));
        }
        for (feature, arg) in &self.features {
            out.push(match arg {
                None => format!("FEATURE(`{}')", feature.name()),
                Some(a) => format!("FEATURE(`{}', `{a}')", feature.name()),
            });
        }
        out
    }

    /// The filters mail goes through, in order: `InputMailFilters` if
    /// given, else those of `INPUT_MAIL_FILTER`, in file order.
    pub fn input_filters(&self) -> Vec<&crate::MailFilter> {
        self.input_filter_names()
            .iter()
            .filter_map(|n| self.mail_filters.iter().find(|f| &f.name == n))
            .collect()
    }

    pub(crate) fn input_filter_names(&self) -> &[String] {
        self.input_mail_filters
            .as_deref()
            .unwrap_or(&self.m4_input_filters)
    }

    /// Every filter in the list is defined, and none twice.
    fn check_input_filters(&self) -> Result<(), String> {
        let names = self.input_filter_names();
        for (i, n) in names.iter().enumerate() {
            if !self.mail_filters.iter().any(|f| &f.name == n) {
                return Err(format!(
                    "InputMailFilters: no mail filter named \"{n}\" (define it with INPUT_MAIL_FILTER, MAIL_FILTER or an X line)"
                ));
            }
            if names[..i].contains(n) {
                return Err(format!("InputMailFilters: \"{n}\" is listed twice"));
            }
        }
        Ok(())
    }

    /// Defines a filter; `input` also puts it in the list
    /// (`INPUT_MAIL_FILTER`).
    fn define_filter(&mut self, name: &str, equates: &str, input: bool) -> Result<(), String> {
        let filter = crate::MailFilter::parse(name, equates)?;
        if self.mail_filters.iter().any(|f| f.name == filter.name) {
            return Err(format!("mail filter \"{}\" is defined twice", filter.name));
        }
        if input {
            self.m4_input_filters.push(filter.name.clone());
        }
        self.mail_filters.push(filter);
        Ok(())
    }

    /// Where the side table `name` (`access`, `aliases`, `local-host-names`,
    /// `mailertable`, `relay-domains`) lives: next to the configuration file.
    pub fn table_path(&self, name: &str) -> PathBuf {
        match self.source.parent() {
            Some(dir) => dir.join(name),
            None => PathBuf::from(name),
        }
    }

    /// The aliases file: `AliasFile` when set, else `aliases` next to the
    /// configuration file, like the other side tables.
    pub fn alias_path(&self) -> PathBuf {
        self.alias_file
            .clone()
            .unwrap_or_else(|| self.table_path("aliases"))
    }

    /// Type-zero values; the option table supplies the real defaults.
    fn blank(origin: &Path) -> Config {
        Config {
            source: origin.to_path_buf(),
            domain_name: None,
            smart_host: None,
            tls: TlsFiles::default(),
            privacy: PrivacyFlags::PUBLIC,
            log_level: 0,
            queue_directory: PathBuf::new(),
            max_message_size: 0,
            max_recipients_per_message: 0,
            max_daemon_children: 0,
            connection_rate_throttle: 0,
            connection_rate_window: std::time::Duration::ZERO,
            bad_rcpt_throttle: 0,
            max_noop_commands: 0,
            daemons: Vec::new(),
            run_as_user: String::new(),
            queue_owner: String::new(),
            front_user: String::new(),
            mailbox_directory: PathBuf::new(),
            local_mailbox: crate::LocalMailbox::default(),
            queue_sync: crate::QueueSync::default(),
            listen_queue_size: 0,
            relay_networks: Vec::new(),
            alias_file: None,
            local_delivery: crate::LocalDelivery::Maildir,
            min_queue_age: std::time::Duration::ZERO,
            connection_cache_size: 0,
            connection_cache_timeout: std::time::Duration::ZERO,
            tls_fallback_to_clear: false,
            control_socket: PathBuf::new(),
            trusted_user: None,
            smtp_greeting: String::new(),
            timeouts: Timeouts::default(),
            name_servers: Vec::new(),
            mailer_ports: crate::MailerPorts::default(),
            auth: crate::AuthSettings::default(),
            features: BTreeMap::new(),
            mail_filters: Vec::new(),
            input_mail_filters: None,
            m4_input_filters: Vec::new(),
            milter_macros: BTreeMap::new(),
        }
    }

    fn apply_line(&mut self, line: &str, seen: &mut [bool]) -> Result<(), String> {
        match lex(line)? {
            Line::Empty => Ok(()),
            Line::CfOption { name, value } => {
                let (i, opt) = by_cf_option(name).ok_or_else(|| {
                    format!(
                        "unknown option \"{name}\"{}",
                        did_you_mean(name, cf_option_names())
                    )
                })?;
                self.set(seen, i, &opt.cf_display(), value)
            }
            Line::CfMacro { name, value } => {
                let (i, _) =
                    by_cf_macro(name).ok_or_else(|| unsupported_macro(&format!("D{name}")))?;
                self.set(seen, i, &format!("D{name}"), value)
            }
            Line::M4Call { name, args } => self.m4_call(name, &args, seen),
            Line::CfFilter { name, equates } => self.define_filter(name, equates, false),
        }
    }

    fn set(&mut self, seen: &mut [bool], i: usize, name: &str, value: &str) -> Result<(), String> {
        if let Some(s) = seen.get_mut(i) {
            *s = true;
        }
        match OPTIONS.get(i) {
            Some(opt) => (opt.set)(self, name, value),
            None => Err(format!("{name}: internal error: no such option")),
        }
    }

    fn m4_call(&mut self, name: &str, args: &[String], seen: &mut [bool]) -> Result<(), String> {
        if let Some((i, _)) = by_m4_macro(name) {
            return match args {
                [value] => self.set(seen, i, name, value),
                _ => Err(format!("{name} takes one argument")),
            };
        }
        match name {
            "define" => {
                let (key, value) = match args {
                    [key] => (key.as_str(), ""),
                    [key, value] => (key.as_str(), value.as_str()),
                    _ => return Err("define takes a name and a value".to_string()),
                };
                match by_m4_define(key) {
                    Some((i, _)) => self.set(seen, i, key, value),
                    None if key.starts_with("conf") => Err(format!(
                        "unknown option \"{key}\"{}",
                        did_you_mean(key, m4_define_names())
                    )),
                    None => Err(format!(
                        "unknown define \"{key}\"{}",
                        did_you_mean(key, m4_define_names())
                    )),
                }
            }
            "FEATURE" => {
                let (feature, arg) = match args {
                    [f] => (f, None),
                    [f, a] => (f, Some(a.clone())),
                    _ => return Err("FEATURE takes a name and at most one argument".to_string()),
                };
                let f = Feature::from_name(feature)
                    .ok_or_else(|| format!("unsupported FEATURE \"{feature}\""))?;
                f.check_argument(arg.as_deref())?;
                self.features.insert(f, arg);
                Ok(())
            }
            "INPUT_MAIL_FILTER" | "MAIL_FILTER" => match args {
                [filter, equates @ ..] if !equates.is_empty() => {
                    let input = name == "INPUT_MAIL_FILTER";
                    self.define_filter(filter, &equates.join(", "), input)
                }
                _ => Err(format!(
                    "{name} takes a filter name and its equates (S=…, F=…, T=…)"
                )),
            },
            "divert" => match args {
                [a] if a == "-1" || a == "0" => Ok(()),
                _ => Err("only divert(-1) and divert(0) are accepted".to_string()),
            },
            // Boilerplate of every .mc file; Postern has nothing to take from
            // it (OSTYPE and DOMAIN would include sendmail's own m4 files).
            "VERSIONID" | "OSTYPE" | "DOMAIN" | "MAILER" => Ok(()),
            "include" | "sinclude" => Err(format!(
                "{name}() is not supported: keep the whole configuration in one file"
            )),
            _ => Err(format!("unknown m4 macro \"{name}\"")),
        }
    }
}
