//! Postern's configuration: one file in sendmail's vocabulary, read into a
//! validated, typed [`Config`].
//!
//! The file mixes two syntaxes line by line: sendmail.cf lines
//! (`O PrivacyOptions=goaway`, `Dj mail.example.com`) and the m4 lines of the
//! sendmail cookbook, quotes and `dnl` comments included
//! (`` define(`confPRIVACY_FLAGS', `noexpn,novrfy')dnl ``).
//!
//! The shaping decision: **one option table drives both syntaxes**
//! (`options.rs`). Each option appears once, with its .cf name, its m4 name,
//! its default written as a value of the option, and the function that
//! validates a value into its typed field. The lexer only decides which
//! syntax a line uses and undoes m4 quoting, giving a name and a value; the
//! table then turns names and values into typed fields. So the two
//! syntaxes cannot drift apart, defaults go through the same checks as
//! values from the file, and `check-config` prints every option from the
//! same table ([`Config::effective_lines`]).
//!
//! Errors carry the file and line; all errors of a file are collected and
//! returned together ([`ConfigErrors`]). No input makes the parser panic.
//!
//! ```
//! use std::path::Path;
//! use postern_config::Config;
//! use postern_smtp::PrivacyFlags;
//!
//! let text = "O PrivacyOptions=goaway\ndefine(`confPRIVACY_FLAGS', `noetrn')dnl\n";
//! let cfg = Config::parse_str(text, Path::new("/etc/mail/postern.cf")).unwrap();
//! assert!(cfg.privacy.contains(PrivacyFlags::GOAWAY | PrivacyFlags::NO_ETRN));
//! assert_eq!(cfg.table_path("access"), Path::new("/etc/mail/access"));
//! ```
#![forbid(unsafe_code)]

mod access;
mod aliases;
mod auth;
mod config;
mod daemon_port;
mod duration;
mod error;
mod lexer;
mod lmtp;
mod mailbox;
mod milter;
mod networks;
mod options;
mod outbound;
mod queue_sync;
mod relay;
mod smtp_server;
mod suggest;
mod table;
mod tables;
mod values;

pub use access::{AccessAction, AccessMap, CertCheck, Severity, TlsLevel, TlsRequirement};
pub use aliases::{parse_include, Alias, AliasStats, AliasTarget, Aliases, REQUIRED_ALIASES};
pub use auth::{AuthOptions, AuthSettings, DEFAULT_AUTH_MECHANISMS};
pub use config::Config;
pub use daemon_port::{DaemonPort, Family};
pub use duration::{format_duration, parse_duration, Unit};
pub use error::{ConfigError, ConfigErrors};
pub use lmtp::{LmtpTarget, LocalDelivery, LMTP_PORT};
pub use mailbox::LocalMailbox;
pub use milter::{FailureMode, FilterSocket, FilterTimeouts, MailFilter};
pub use networks::{parse_networks, Network};
pub use options::DEFAULT_CIPHER_LIST;
pub use outbound::{MailerPorts, SMTP_PORT};
pub use queue_sync::QueueSync;
pub use relay::Relay;
pub use smtp_server::{MAX_RECIPIENTS, SUBMISSION_LIMIT};
pub use tables::{LocalHostNames, MailerRoute, Mailertable, RelayDomains};
pub use values::{Feature, Timeouts, TlsFiles, TlsSrvOptions};

/// The configuration file used when none is named on the command line.
pub const DEFAULT_PATH: &str = "/etc/mail/postern.cf";
