//! The option table: every option once, with its .cf spelling, its m4
//! spelling, its built-in default (written in the option's own syntax) and
//! how to read and show its value.
//!
//! Both syntaxes and `check-config` go through this one table, so an option
//! cannot be known to one syntax and missing from the other, and a default
//! is checked by the same parser as a value from the file.

use crate::daemon_port::{DaemonPort, DEFAULT_LISTENERS};
use crate::duration::{format_duration, parse_duration, Unit};
use crate::lmtp::LocalDelivery;
use crate::outbound::{parse_mailer_args, parse_name_servers, ShowArgs};
use crate::relay::Relay;
use crate::table::{CfName, M4Name, Opt};
use crate::values::{abs_path, add_privacy, check_domain, number, text, TlsSrvOptions};

/// sendmail's `atobool`: an empty value, or one starting with `t` or `y`
/// (any case), is true; anything else is false.
fn sendmail_bool(value: &str) -> bool {
    value.is_empty() || value.starts_with(['t', 'T', 'y', 'Y'])
}

/// Prefixes a value error with the option name.
fn at<T>(name: &str, r: Result<T, String>) -> Result<T, String> {
    r.map_err(|e| format!("{name}: {e}"))
}

fn show_opt<T: std::fmt::Display>(v: Option<T>) -> Vec<String> {
    vec![v.map(|v| v.to_string()).unwrap_or_default()]
}

/// An optional absolute path under `c.<field>`.
macro_rules! path_opt {
    ($cf:literal, $m4:literal, $($field:tt)+) => {
        Opt {
            cf: CfName::Option(&[$cf]),
            m4: M4Name::Define(&[$m4]),
            default: &[],
            set: |c, n, v| {
                c.$($field)+ = at(n, abs_path(v))?;
                Ok(())
            },
            show: |c| show_opt(c.$($field)+.as_ref().map(|p| p.display())),
        }
    };
}

/// A number under `c.<field>`.
macro_rules! num_opt {
    ($cf:literal, $m4:literal, $default:literal, $field:ident) => {
        Opt {
            cf: CfName::Option(&[$cf]),
            m4: M4Name::Define(&[$m4]),
            default: &[$default],
            set: |c, n, v| {
                c.$field = at(n, number(v))?;
                Ok(())
            },
            show: |c| vec![c.$field.to_string()],
        }
    };
}

/// The macros sent to mail filters at one stage.
macro_rules! milter_macros {
    ($cf:literal, $m4:literal, $default:literal, $stage:ident) => {
        Opt {
            cf: CfName::Option(&[$cf]),
            m4: M4Name::Define(&[$m4]),
            default: &[$default],
            set: |c, _, v| {
                c.milter_macros.insert(
                    postern_milter::macros::Stage::$stage,
                    postern_milter::macros::parse_list(v),
                );
                Ok(())
            },
            show: |c| {
                vec![c
                    .milter_macros
                    .get(&postern_milter::macros::Stage::$stage)
                    .map(|names| names.join(", "))
                    .unwrap_or_default()]
            },
        }
    };
}

/// A timeout under `c.timeouts.<field>`, with the unit of a bare number.
macro_rules! timeout {
    ([$($cf:literal),+], [$($m4:literal),+], $default:literal, $unit:ident, $field:ident) => {
        Opt {
            cf: CfName::Option(&[$($cf),+]),
            m4: M4Name::Define(&[$($m4),+]),
            default: &[$default],
            set: |c, n, v| {
                c.timeouts.$field = at(n, parse_duration(v, Unit::$unit))?;
                Ok(())
            },
            show: |c| vec![format_duration(c.timeouts.$field)],
        }
    };
}

/// One SMTP mailer's arguments (`` define(`ESMTP_MAILER_ARGS', `TCP $h 2525') ``),
/// read for the port; `O MailerArgs.esmtp=…` in .cf syntax.
macro_rules! mailer_args {
    ($cf:literal, $m4:literal, $field:ident) => {
        Opt {
            cf: CfName::Option(&[$cf]),
            m4: M4Name::Define(&[$m4]),
            default: &["TCP $h"],
            set: |c, n, v| {
                c.mailer_ports.$field = at(n, parse_mailer_args(v))?;
                Ok(())
            },
            show: |c| vec![ShowArgs(c.mailer_ports.$field).to_string()],
        }
    };
}

/// `CipherList` unless the configuration sets one: ECDHE key exchange only.
pub const DEFAULT_CIPHER_LIST: &str = "ECDHE+AESGCM:ECDHE+CHACHA20:ECDHE+AES:!aNULL:!eNULL:!MD5";

/// Every option Postern reads.
pub(crate) static OPTIONS: &[Opt] = &[
    Opt {
        cf: CfName::Macro('j'),
        m4: M4Name::Define(&["confDOMAIN_NAME"]),
        default: &[],
        set: |c, n, v| {
            at(
                n,
                check_domain(v).map(|()| c.domain_name = Some(v.to_string())),
            )
        },
        show: |c| vec![c.hostname()],
    },
    Opt {
        cf: CfName::Macro('S'),
        m4: M4Name::Define(&["SMART_HOST"]),
        default: &[],
        set: |c, n, v| {
            c.smart_host = match v {
                "" => None,
                _ => Some(at(n, Relay::parse(v))?),
            };
            Ok(())
        },
        show: |c| show_opt(c.smart_host.as_ref()),
    },
    path_opt!("CACertPath", "confCACERT_PATH", tls.ca_cert_path),
    path_opt!("CACertFile", "confCACERT", tls.ca_cert_file),
    path_opt!("ServerCertFile", "confSERVER_CERT", tls.server_cert_file),
    path_opt!("ServerKeyFile", "confSERVER_KEY", tls.server_key_file),
    path_opt!("ClientCertFile", "confCLIENT_CERT", tls.client_cert_file),
    path_opt!("ClientKeyFile", "confCLIENT_KEY", tls.client_key_file),
    path_opt!("CRLFile", "confCRL", tls.crl_file),
    Opt {
        cf: CfName::Option(&["CipherList"]),
        m4: M4Name::Define(&["confCIPHER_LIST"]),
        // TLS 1.2 suites with forward secrecy only (TLS 1.3 has no others):
        // no RSA key exchange, no anonymous or null suites.
        default: &[DEFAULT_CIPHER_LIST],
        set: |c, _, v| {
            c.tls.cipher_list = text(v);
            Ok(())
        },
        show: |c| show_opt(c.tls.cipher_list.as_ref()),
    },
    Opt {
        cf: CfName::Option(&["TLSSrvOptions"]),
        m4: M4Name::Define(&["confTLS_SRV_OPTIONS"]),
        default: &[],
        set: |c, n, v| {
            c.tls.srv_options = at(n, TlsSrvOptions::parse(v))?;
            Ok(())
        },
        show: |c| vec![c.tls.srv_options.to_string()],
    },
    Opt {
        // Every occurrence adds flags; none at all gives m4's default.
        cf: CfName::Option(&["PrivacyOptions"]),
        m4: M4Name::Define(&["confPRIVACY_FLAGS"]),
        default: &["authwarnings"],
        set: |c, _, v| add_privacy(&mut c.privacy, v),
        show: |c| vec![c.privacy.to_string()],
    },
    num_opt!("LogLevel", "confLOG_LEVEL", "9", log_level),
    Opt {
        cf: CfName::Option(&["QueueDirectory"]),
        m4: M4Name::Define(&["QUEUE_DIR"]),
        default: &["/var/spool/postern"],
        set: |c, n, v| match at(n, abs_path(v))? {
            Some(p) => {
                c.queue_directory = p;
                Ok(())
            }
            None => Err(format!("{n}: a queue directory is required")),
        },
        show: |c| vec![c.queue_directory.display().to_string()],
    },
    // Not sendmail's 0 (unlimited): a host on the internet should not take
    // messages of any size from anyone (35 MiB, as OpenSMTPD).
    num_opt!(
        "MaxMessageSize",
        "confMAX_MESSAGE_SIZE",
        "36700160",
        max_message_size
    ),
    num_opt!(
        "MaxRecipientsPerMessage",
        "confMAX_RCPTS_PER_MESSAGE",
        "0",
        max_recipients_per_message
    ),
    // Not sendmail's 0 (unlimited): idle connections must not be able to
    // fork a small host to death.
    num_opt!(
        "MaxDaemonChildren",
        "confMAX_DAEMON_CHILDREN",
        "256",
        max_daemon_children
    ),
    num_opt!(
        "ListenQueueSize",
        "confLISTEN_QUEUE_SIZE",
        "4096",
        listen_queue_size
    ),
    num_opt!(
        "ConnectionRateThrottle",
        "confCONNECTION_RATE_THROTTLE",
        "0",
        connection_rate_throttle
    ),
    Opt {
        cf: CfName::Option(&["ConnectionRateWindowSize"]),
        m4: M4Name::Define(&["confCONNECTION_RATE_WINDOW_SIZE"]),
        default: &["60s"],
        set: |c, n, v| {
            let window = at(n, parse_duration(v, Unit::Seconds))?;
            if window.is_zero() {
                return Err(format!("{n}: the window must be longer than 0"));
            }
            c.connection_rate_window = window;
            Ok(())
        },
        show: |c| vec![format_duration(c.connection_rate_window)],
    },
    num_opt!(
        "MaxNOOPCommands",
        "confMAX_NOOP_COMMANDS",
        "20",
        max_noop_commands
    ),
    Opt {
        // The order mail goes through the filters; without it, the order
        // of the INPUT_MAIL_FILTER lines.
        cf: CfName::Option(&["InputMailFilters"]),
        m4: M4Name::Define(&["confINPUT_MAIL_FILTERS"]),
        default: &[],
        set: |c, _, v| {
            c.input_mail_filters = Some(
                v.split(',')
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .map(str::to_string)
                    .collect(),
            );
            Ok(())
        },
        show: |c| vec![c.input_filter_names().join(",")],
    },
    milter_macros!(
        "Milter.macros.connect",
        "confMILTER_MACROS_CONNECT",
        "j, _, {daemon_name}, {if_name}, {if_addr}",
        Connect
    ),
    milter_macros!(
        "Milter.macros.helo",
        "confMILTER_MACROS_HELO",
        "{tls_version}, {cipher}, {cipher_bits}, {cert_subject}, {cert_issuer}",
        Helo
    ),
    milter_macros!(
        "Milter.macros.envfrom",
        "confMILTER_MACROS_ENVFROM",
        "i, {auth_type}, {auth_authen}, {auth_ssf}, {auth_author}, {mail_mailer}, {mail_host}, {mail_addr}",
        EnvFrom
    ),
    milter_macros!(
        "Milter.macros.envrcpt",
        "confMILTER_MACROS_ENVRCPT",
        "{rcpt_mailer}, {rcpt_host}, {rcpt_addr}",
        EnvRcpt
    ),
    milter_macros!("Milter.macros.data", "confMILTER_MACROS_DATA", "", Data),
    milter_macros!("Milter.macros.eoh", "confMILTER_MACROS_EOH", "", Eoh),
    milter_macros!("Milter.macros.eom", "confMILTER_MACROS_EOM", "{msg_id}", Eom),
    num_opt!(
        "BadRcptThrottle",
        "confBAD_RCPT_THROTTLE",
        "0",
        bad_rcpt_throttle
    ),
    Opt {
        // Each line is one more listener.
        cf: CfName::Option(&["DaemonPortOptions"]),
        m4: M4Name::Macro("DAEMON_OPTIONS"),
        default: DEFAULT_LISTENERS,
        set: |c, n, v| {
            let port = at(n, DaemonPort::parse(v))?;
            // The name is how a session finds its listener's M= letters.
            let name = port.name.as_deref().unwrap_or("MTA");
            let clash = c.daemons.iter().any(|d| {
                d.name.as_deref().unwrap_or("MTA") == name && d.modifiers != port.modifiers
            });
            if clash {
                return Err(format!(
                    "{n}: another listener named {name} has other M= letters; give this one its own Name="
                ));
            }
            c.daemons.push(port);
            Ok(())
        },
        show: |c| c.daemons.iter().map(ToString::to_string).collect(),
    },
    Opt {
        cf: CfName::Option(&["RunAsUser"]),
        m4: M4Name::Define(&["confRUN_AS_USER"]),
        default: &["postern"],
        set: |c, n, v| {
            c.run_as_user = text(v).ok_or_else(|| format!("{n}: a user name is required"))?;
            Ok(())
        },
        show: |c| vec![c.run_as_user.clone()],
    },
    Opt {
        cf: CfName::Option(&["QueueOwner"]),
        m4: M4Name::Define(&["confQUEUE_OWNER"]),
        default: &["posternq"],
        set: |c, n, v| {
            c.queue_owner = text(v).ok_or_else(|| format!("{n}: a user name is required"))?;
            Ok(())
        },
        show: |c| vec![c.queue_owner.clone()],
    },
    Opt {
        cf: CfName::Option(&["FrontUser"]),
        m4: M4Name::Define(&["confFRONT_USER"]),
        default: &["posternf"],
        set: |c, n, v| {
            c.front_user = text(v).ok_or_else(|| format!("{n}: a user name is required"))?;
            Ok(())
        },
        show: |c| vec![c.front_user.clone()],
    },
    Opt {
        cf: CfName::Option(&["MailboxDirectory"]),
        m4: M4Name::Define(&["confMAILBOX_DIR"]),
        default: &["/var/mail/postern"],
        set: |c, n, v| match at(n, abs_path(v))? {
            Some(p) => {
                c.mailbox_directory = p;
                Ok(())
            }
            None => Err(format!("{n}: a mailbox directory is required")),
        },
        show: |c| vec![c.mailbox_directory.display().to_string()],
    },
    Opt {
        cf: CfName::Option(&["AuthMechanisms"]),
        m4: M4Name::Define(&["confAUTH_MECHANISMS"]),
        default: &[crate::auth::DEFAULT_AUTH_MECHANISMS],
        set: |c, n, v| {
            c.auth.mechanisms = at(n, crate::auth::parse_mechanisms(v))?;
            Ok(())
        },
        show: |c| vec![c.auth.mechanisms.join(" ")],
    },
    Opt {
        cf: CfName::Option(&["AuthOptions"]),
        m4: M4Name::Define(&["confAUTH_OPTIONS"]),
        default: &[],
        set: |c, n, v| {
            c.auth.options = at(n, crate::AuthOptions::parse(v))?;
            Ok(())
        },
        show: |c| vec![c.auth.options.to_string()],
    },
    path_opt!(
        "AuthDovecotSocket",
        "confAUTH_DOVECOT_SOCKET",
        auth.dovecot_socket
    ),
    Opt {
        cf: CfName::Option(&["AuthMaxFailures"]),
        m4: M4Name::Define(&["confAUTH_MAX_FAILURES"]),
        default: &["3"],
        set: |c, n, v| {
            c.auth.max_failures = at(n, number(v))?;
            Ok(())
        },
        show: |c| vec![c.auth.max_failures.to_string()],
    },
    Opt {
        cf: CfName::Option(&["RelayNetworks"]),
        m4: M4Name::Define(&["confRELAY_NETWORKS"]),
        default: &["127.0.0.0/8,[::1]/128"],
        set: |c, n, v| {
            c.relay_networks = crate::parse_networks(v).map_err(|e| format!("{n}: {e}"))?;
            Ok(())
        },
        show: |c| {
            vec![c
                .relay_networks
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")]
        },
    },
    Opt {
        cf: CfName::Option(&["QueueSync"]),
        m4: M4Name::Define(&["confQUEUE_SYNC"]),
        default: &["syncfs"],
        set: |c, n, v| {
            c.queue_sync = crate::QueueSync::parse(v).map_err(|e| format!("{n}: {e}"))?;
            Ok(())
        },
        show: |c| vec![c.queue_sync.as_str().to_string()],
    },
    Opt {
        cf: CfName::Option(&["LocalMailbox"]),
        m4: M4Name::Define(&["confLOCAL_MAILBOX"]),
        default: &["maildir"],
        set: |c, n, v| {
            c.local_mailbox = crate::LocalMailbox::parse(v).map_err(|e| format!("{n}: {e}"))?;
            Ok(())
        },
        show: |c| vec![c.local_mailbox.as_str().to_string()],
    },
    Opt {
        cf: CfName::Option(&["AliasFile"]),
        m4: M4Name::Define(&["ALIAS_FILE"]),
        default: &[],
        // sendmail's `hash:`/`implicit:` map types name a database built by
        // newaliases; Postern reads the text file itself, so the type is
        // dropped and the path is what counts.
        set: |c, n, v| {
            let v = v.trim();
            let path = v
                .split_once(':')
                .filter(|(t, _)| !t.starts_with('/'))
                .map_or(v, |(_, p)| p);
            if path.contains(',') {
                return Err(format!("{n}: one alias file only (\"{v}\")"));
            }
            c.alias_file = at(n, abs_path(path))?;
            Ok(())
        },
        show: |c| show_opt(c.alias_file.as_ref().map(|p| p.display())),
    },
    Opt {
        cf: CfName::Option(&["LocalDelivery"]),
        m4: M4Name::Define(&["confLOCAL_DELIVERY"]),
        default: &["maildir"],
        set: |c, n, v| {
            c.local_delivery = at(n, LocalDelivery::parse(v))?;
            Ok(())
        },
        show: |c| vec![c.local_delivery.to_string()],
    },
    Opt {
        cf: CfName::Option(&["ControlSocket"]),
        m4: M4Name::Define(&["confCONTROL_SOCKET"]),
        default: &["/run/postern/control.sock"],
        set: |c, n, v| match at(n, abs_path(v))? {
            Some(p) => {
                c.control_socket = p;
                Ok(())
            }
            None => Err(format!("{n}: a socket path is required")),
        },
        show: |c| vec![c.control_socket.display().to_string()],
    },
    Opt {
        cf: CfName::Option(&["TLSFallbacktoClear"]),
        m4: M4Name::Define(&["confTLS_FALLBACK_TO_CLEAR"]),
        default: &["false"],
        set: |c, _, v| {
            c.tls_fallback_to_clear = sendmail_bool(v);
            Ok(())
        },
        show: |c| vec![c.tls_fallback_to_clear.to_string()],
    },
    Opt {
        cf: CfName::Option(&["MinQueueAge"]),
        m4: M4Name::Define(&["confMIN_QUEUE_AGE"]),
        default: &["1m"],
        set: |c, n, v| {
            c.min_queue_age = at(n, parse_duration(v, Unit::Minutes))?;
            Ok(())
        },
        show: |c| vec![format_duration(c.min_queue_age)],
    },
    num_opt!(
        "ConnectionCacheSize",
        "confMCI_CACHE_SIZE",
        "2",
        connection_cache_size
    ),
    Opt {
        cf: CfName::Option(&["ConnectionCacheTimeout"]),
        m4: M4Name::Define(&["confMCI_CACHE_TIMEOUT"]),
        default: &["5s"],
        set: |c, n, v| {
            c.connection_cache_timeout = at(n, parse_duration(v, Unit::Seconds))?;
            Ok(())
        },
        show: |c| vec![format_duration(c.connection_cache_timeout)],
    },
    Opt {
        cf: CfName::Option(&["TrustedUser"]),
        m4: M4Name::Define(&["confTRUSTED_USER"]),
        default: &[],
        set: |c, _, v| {
            c.trusted_user = text(v);
            Ok(())
        },
        show: |c| show_opt(c.trusted_user.as_ref()),
    },
    Opt {
        cf: CfName::Option(&["NameServers"]),
        m4: M4Name::Define(&["confNAME_SERVERS"]),
        default: &[],
        set: |c, n, v| {
            c.name_servers = at(n, parse_name_servers(v))?;
            Ok(())
        },
        show: |c| {
            let all: Vec<String> = c.name_servers.iter().map(|a| a.to_string()).collect();
            vec![all.join(",")]
        },
    },
    mailer_args!("MailerArgs.smtp", "SMTP_MAILER_ARGS", smtp),
    mailer_args!("MailerArgs.esmtp", "ESMTP_MAILER_ARGS", esmtp),
    mailer_args!("MailerArgs.smtp8", "SMTP8_MAILER_ARGS", smtp8),
    mailer_args!("MailerArgs.dsmtp", "DSMTP_MAILER_ARGS", dsmtp),
    mailer_args!("MailerArgs.relay", "RELAY_MAILER_ARGS", relay),
    Opt {
        cf: CfName::Option(&["SmtpGreetingMessage"]),
        m4: M4Name::Define(&["confSMTP_LOGIN_MSG"]),
        default: &["$j Postern $v; $b"],
        set: |c, _, v| {
            c.smtp_greeting = v.to_string();
            Ok(())
        },
        show: |c| vec![c.smtp_greeting.clone()],
    },
    timeout!(
        ["Timeout.initial"],
        ["confTO_INITIAL"],
        "5m",
        Minutes,
        initial
    ),
    timeout!(
        ["Timeout.connect"],
        ["confTO_CONNECT"],
        "0",
        Minutes,
        connect
    ),
    timeout!(
        ["Timeout.iconnect"],
        ["confTO_ICONNECT"],
        "0",
        Minutes,
        iconnect
    ),
    timeout!(["Timeout.helo"], ["confTO_HELO"], "5m", Minutes, helo),
    timeout!(["Timeout.mail"], ["confTO_MAIL"], "10m", Minutes, mail),
    timeout!(["Timeout.rcpt"], ["confTO_RCPT"], "1h", Minutes, rcpt),
    timeout!(
        ["Timeout.datainit"],
        ["confTO_DATAINIT"],
        "5m",
        Minutes,
        datainit
    ),
    timeout!(
        ["Timeout.datablock"],
        ["confTO_DATABLOCK"],
        "1h",
        Minutes,
        datablock
    ),
    timeout!(
        ["Timeout.datafinal"],
        ["confTO_DATAFINAL"],
        "1h",
        Minutes,
        datafinal
    ),
    timeout!(["Timeout.rset"], ["confTO_RSET"], "5m", Minutes, rset),
    timeout!(["Timeout.quit"], ["confTO_QUIT"], "2m", Minutes, quit),
    timeout!(["Timeout.misc"], ["confTO_MISC"], "2m", Minutes, misc),
    timeout!(
        ["Timeout.command"],
        ["confTO_COMMAND"],
        "1h",
        Minutes,
        command
    ),
    timeout!(
        ["Timeout.starttls"],
        ["confTO_STARTTLS"],
        "1h",
        Minutes,
        starttls
    ),
    // Postern's own: how long a front waits for the queue runner's answer
    // (a commit, a user lookup) before it tells the client 451 4.3.0.
    timeout!(
        ["Timeout.queuereply"],
        ["confTO_QUEUEREPLY"],
        "2m",
        Minutes,
        queuereply
    ),
    timeout!(
        ["Timeout.queuereturn", "Timeout.queuereturn.normal"],
        ["confTO_QUEUERETURN", "confTO_QUEUERETURN_NORMAL"],
        "5d",
        Days,
        queuereturn
    ),
    timeout!(
        ["Timeout.queuewarn", "Timeout.queuewarn.normal"],
        ["confTO_QUEUEWARN", "confTO_QUEUEWARN_NORMAL"],
        "4h",
        Hours,
        queuewarn
    ),
];
