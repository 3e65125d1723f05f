//! Values, defaults and the two syntaxes mixed in one file.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use postern_config::{Config, DaemonPort, Family, Feature, Relay};
use postern_smtp::PrivacyFlags;

fn parse(text: &str) -> Config {
    match Config::parse_str(text, Path::new("/etc/mail/postern.cf")) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    }
}

const MIN: u64 = 60;
const HOUR: u64 = 3600;
const DAY: u64 = 86_400;

#[test]
fn defaults() {
    let c = parse("");
    assert_eq!(c.log_level, 9);
    assert_eq!(c.queue_directory, PathBuf::from("/var/spool/postern"));
    assert_eq!(
        (
            c.max_message_size,
            c.max_recipients_per_message,
            c.max_daemon_children
        ),
        // Not sendmail's unlimited: 35 MiB and 256 children protect a
        // small host.
        (36_700_160, 0, 256)
    );
    assert_eq!(c.connection_rate_throttle, 0);
    assert_eq!(c.connection_rate_window, Duration::from_secs(60));
    assert_eq!(c.bad_rcpt_throttle, 0);
    assert_eq!(c.run_as_user, "postern");
    assert_eq!(c.queue_owner, "posternq");
    assert_eq!(c.front_user, "posternf");
    assert_eq!(c.trusted_user, None);
    assert_eq!(c.smtp_greeting, "$j Postern $v; $b");
    assert_eq!(c.smart_host, None);
    assert_eq!(c.domain_name, None);
    assert!(c.features.is_empty());
    // Forward secrecy only: no RSA key exchange in TLS 1.2.
    assert_eq!(
        c.tls.cipher_list.as_deref(),
        Some("ECDHE+AESGCM:ECDHE+CHACHA20:ECDHE+AES:!aNULL:!eNULL:!MD5")
    );
    assert!(!c.tls.srv_options.no_client_cert_request);
    let t = &c.timeouts;
    let secs = |d: Duration| d.as_secs();
    assert_eq!(secs(t.initial), 5 * MIN);
    assert_eq!((secs(t.connect), secs(t.iconnect)), (0, 0));
    assert_eq!(
        (secs(t.helo), secs(t.mail), secs(t.rcpt)),
        (5 * MIN, 10 * MIN, HOUR)
    );
    assert_eq!(
        (secs(t.datainit), secs(t.datablock), secs(t.datafinal)),
        (5 * MIN, HOUR, HOUR)
    );
    assert_eq!(
        (secs(t.rset), secs(t.quit), secs(t.misc)),
        (5 * MIN, 2 * MIN, 2 * MIN)
    );
    assert_eq!((secs(t.command), secs(t.starttls)), (HOUR, HOUR));
    assert_eq!(
        (secs(t.queuereturn), secs(t.queuewarn)),
        (5 * DAY, 4 * HOUR)
    );
    // m4's two default listeners.
    assert_eq!(c.daemons.len(), 2);
    assert_eq!(
        (c.daemons[0].port, c.daemons[0].name.as_deref()),
        (25, Some("MTA"))
    );
    assert_eq!(c.daemons[0].addr, None);
    assert_eq!(c.daemons[0].family, Family::Inet);
    assert_eq!(
        (c.daemons[1].port, c.daemons[1].name.as_deref()),
        (587, Some("MSA"))
    );
    assert_eq!(c.daemons[1].modifiers, "Ea");
}

#[test]
fn mixed_syntaxes_in_one_file() {
    let c = parse(
        "\
divert(-1)dnl
# sendmail.cf style
VERSIONID(`$Id: postern.mc $')
OSTYPE(`linux')dnl
DOMAIN(`generic')
Dj mail.example.com
O LogLevel = 14
define(`confMAX_MESSAGE_SIZE', `10485760')dnl limit to 10 MB
define(confMAX_RCPTS_PER_MESSAGE, 100)
O maxdaemonchildren=40
define(`confCONNECTION_RATE_THROTTLE', `3')
define(`confCONNECTION_RATE_WINDOW_SIZE', `2m')
O BadRcptThrottle=20
FEATURE(`greet_pause', `5000')
define(`SMART_HOST', `esmtp:[relay.example.com]:587')
O TrustedUser=smmsp
define(`confRUN_AS_USER', `mail:mail')
O SmtpGreetingMessage=$j ESMTP ready
define(`confCIPHER_LIST', `HIGH:!aNULL')
O TLSSrvOptions=V
O CRLFile=/etc/mail/crl.pem
define(`QUEUE_DIR', `/var/spool/mqueue')
FEATURE(`access_db', `hash -T<TMPF> /etc/mail/access')
FEATURE(mailertable)
MAILER(`local')
MAILER(`smtp')
divert(0)
",
    );
    assert_eq!(c.domain_name.as_deref(), Some("mail.example.com"));
    assert_eq!(c.hostname(), "mail.example.com");
    assert_eq!(c.log_level, 14);
    assert_eq!(c.max_message_size, 10_485_760);
    assert_eq!(c.max_recipients_per_message, 100);
    assert_eq!(c.max_daemon_children, 40);
    assert_eq!(c.connection_rate_throttle, 3);
    assert_eq!(c.connection_rate_window, Duration::from_secs(120));
    assert_eq!(c.bad_rcpt_throttle, 20);
    assert_eq!(
        c.features.get(&Feature::GreetPause),
        Some(&Some("5000".to_string()))
    );
    assert_eq!(
        c.smart_host,
        Some(Relay {
            mailer: Some("esmtp".into()),
            host: "relay.example.com".into(),
            mx_lookup: false,
            port: Some(587),
        })
    );
    assert_eq!(c.trusted_user.as_deref(), Some("smmsp"));
    assert_eq!(c.run_as_user, "mail:mail");
    assert_eq!(c.smtp_greeting, "$j ESMTP ready");
    assert_eq!(c.tls.cipher_list.as_deref(), Some("HIGH:!aNULL"));
    assert!(c.tls.srv_options.no_client_cert_request && !c.tls.srv_options.no_server_cert);
    assert_eq!(c.tls.crl_file, Some(PathBuf::from("/etc/mail/crl.pem")));
    assert_eq!(c.queue_directory, PathBuf::from("/var/spool/mqueue"));
    assert_eq!(
        c.features.get(&Feature::AccessDb),
        Some(&Some("hash -T<TMPF> /etc/mail/access".to_string()))
    );
    assert_eq!(c.features.get(&Feature::Mailertable), Some(&None));
    assert_eq!(c.privacy, PrivacyFlags::AUTH_WARNINGS);
}

#[test]
fn later_setting_wins_and_daemons_append() {
    let c = parse(
        "O LogLevel=3\n\
         define(`confLOG_LEVEL', `12')\n\
         DAEMON_OPTIONS(`Port=smtp, Addr=127.0.0.1, Name=MTA')\n\
         O DaemonPortOptions=P=2525, A=::1, N=alt, F=inet6, M=b\n",
    );
    assert_eq!(c.log_level, 12);
    let want = [
        DaemonPort {
            port: 25,
            addr: Some(IpAddr::from([127, 0, 0, 1])),
            name: Some("MTA".into()),
            family: Family::Inet,
            modifiers: String::new(),
        },
        DaemonPort {
            port: 2525,
            addr: Some("::1".parse().unwrap()),
            name: Some("alt".into()),
            family: Family::Inet6,
            modifiers: "b".into(),
        },
    ];
    // Configured listeners replace the two defaults rather than adding to them.
    assert_eq!(c.daemons, want);
}

#[test]
fn timeouts_in_both_syntaxes_with_default_units() {
    let c = parse(
        "O Timeout.queuereturn=3\n\
         define(`confTO_QUEUEWARN', `2')\n\
         O Timeout.helo=90\n\
         define(`confTO_COMMAND', `1h30m')\n\
         O Timeout.connect=30s\n",
    );
    assert_eq!(c.timeouts.queuereturn.as_secs(), 3 * DAY);
    assert_eq!(c.timeouts.queuewarn.as_secs(), 2 * HOUR);
    assert_eq!(c.timeouts.helo.as_secs(), 90 * MIN);
    assert_eq!(c.timeouts.command.as_secs(), 90 * MIN);
    assert_eq!(c.timeouts.connect.as_secs(), 30);
}

#[test]
fn queue_timeout_aliases() {
    let c = parse(
        "O Timeout.queuereturn.normal=2d\n\
         define(`confTO_QUEUEWARN_NORMAL', `1h')\n",
    );
    assert_eq!(c.timeouts.queuereturn.as_secs(), 2 * DAY);
    assert_eq!(c.timeouts.queuewarn.as_secs(), HOUR);
}

#[test]
fn hostname_macro_forms() {
    assert_eq!(
        parse("Djmail.example.com").domain_name.as_deref(),
        Some("mail.example.com")
    );
    let c = parse("define(`confDOMAIN_NAME', `mx.example.org')");
    assert_eq!(c.hostname(), "mx.example.org");
    // Unset: the kernel's name or localhost, never empty.
    assert!(!parse("").hostname().is_empty());
}

#[test]
fn smart_host_forms() {
    assert_eq!(parse("DS").smart_host, None);
    let c = parse("DS[192.0.2.1]");
    let r = c.smart_host.unwrap();
    assert_eq!(
        (r.host.as_str(), r.mx_lookup, r.port),
        ("192.0.2.1", false, None)
    );
    let r = parse("define(`SMART_HOST', `relay.example.com')")
        .smart_host
        .unwrap();
    assert_eq!((r.host.as_str(), r.mx_lookup), ("relay.example.com", true));
}

#[test]
fn effective_lines_list_every_option_and_parse_back() {
    let c = parse(
        "Dj mail.example.com\n\
         DS smtp:relay.example.com:2525\n\
         O PrivacyOptions=goaway,noetrn\n\
         O CACertFile=/etc/mail/ca.pem\n\
         O TLSSrvOptions=V C\n\
         O Timeout.queuewarn=90m\n\
         DAEMON_OPTIONS(`Port=2525, Addr=::1')\n\
         FEATURE(`use_cw_file')\n\
         FEATURE(`mailertable', `hash /etc/mail/mailertable')\n",
    );
    let lines = c.effective_lines();
    for want in [
        "Djmail.example.com",
        "DSsmtp:relay.example.com:2525",
        "O LogLevel=9",
        "O CACertFile=/etc/mail/ca.pem",
        "O PrivacyOptions=goaway,noetrn",
        "O CACertPath=",
        "O TLSSrvOptions=V,C",
        "O Timeout.queuewarn=1h30m",
        "O Timeout.queuereturn=5d",
        "O DaemonPortOptions=Port=2525, Addr=::1, Family=inet6",
        "O SmtpGreetingMessage=$j Postern $v; $b",
        "FEATURE(`use_cw_file')",
    ] {
        assert!(
            lines.iter().any(|l| l == want),
            "{want:?} missing from {lines:#?}"
        );
    }
    assert!(lines.iter().any(|l| l == "O PrivacyOptions=goaway,noetrn"));
    let again = Config::parse_str(&lines.join("\n"), Path::new("/etc/mail/postern.cf")).unwrap();
    assert_eq!(again, c);
    // Defaults parse back too (listeners, privacy).
    let d = parse("Dj localhost");
    let again = Config::parse_str(
        &d.effective_lines().join("\n"),
        Path::new("/etc/mail/postern.cf"),
    );
    assert_eq!(again.unwrap(), d);
}

#[test]
fn side_tables_live_next_to_the_config_file() {
    let c = Config::parse_str("", Path::new("/srv/mail/postern.cf")).unwrap();
    assert_eq!(c.table_path("aliases"), Path::new("/srv/mail/aliases"));
    assert_eq!(
        c.table_path("relay-domains"),
        Path::new("/srv/mail/relay-domains")
    );
}

#[test]
fn alias_file_is_next_to_the_config_file_unless_named() {
    let at = |text: &str| {
        Config::parse_str(text, Path::new("/srv/mail/postern.cf"))
            .map(|c| c.alias_path())
            .map_err(|e| e.to_string())
    };
    assert_eq!(at("").unwrap(), Path::new("/srv/mail/aliases"));
    assert_eq!(
        at("O AliasFile=/etc/aliases").unwrap(),
        Path::new("/etc/aliases")
    );
    assert_eq!(
        at("define(`ALIAS_FILE', `hash:/etc/mail/aliases2')dnl").unwrap(),
        Path::new("/etc/mail/aliases2")
    );
    let e = at("O AliasFile=aliases").unwrap_err();
    assert!(
        e.contains(":1: AliasFile: \"aliases\" is not an absolute path"),
        "{e}"
    );
    let e = at("O AliasFile=/a,/b").unwrap_err();
    assert!(e.contains(":1: AliasFile: one alias file only"), "{e}");
}

#[test]
fn local_delivery_in_both_syntaxes() {
    use postern_config::{LmtpTarget, LocalDelivery};
    assert_eq!(parse("").local_delivery, LocalDelivery::Maildir);
    assert_eq!(
        parse("O LocalDelivery=lmtp:unix:/run/dovecot/lmtp").local_delivery,
        LocalDelivery::Lmtp(LmtpTarget::Unix("/run/dovecot/lmtp".into()))
    );
    let c = parse("define(`confLOCAL_DELIVERY', `lmtp:[127.0.0.1]:24')dnl\n");
    assert_eq!(
        c.local_delivery,
        LocalDelivery::Lmtp(LmtpTarget::Tcp {
            host: "127.0.0.1".into(),
            port: 24
        })
    );
    assert!(c
        .effective_lines()
        .iter()
        .any(|l| l == "O LocalDelivery=lmtp:[127.0.0.1]:24"));
    assert!(parse("O LocalDelivery=maildir")
        .effective_lines()
        .iter()
        .any(|l| l == "O LocalDelivery=maildir"));
    let e = Config::parse_str(
        "O LocalDelivery=lmtp:dovecot\n",
        Path::new("/etc/mail/postern.cf"),
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        e.trim_end(),
        "/etc/mail/postern.cf:1: LocalDelivery: bad LMTP route \"lmtp:dovecot\": write the host in brackets, lmtp:[host]:port"
    );
}

#[test]
fn auth_options_in_both_syntaxes() {
    let c = parse("");
    assert_eq!(
        c.auth.mechanisms,
        ["GSSAPI", "KERBEROS_V4", "DIGEST-MD5", "CRAM-MD5"]
    );
    assert_eq!(c.auth.max_failures, 3);
    assert!(c.auth.dovecot_socket.is_none());
    let c = parse(
        "define(`confAUTH_MECHANISMS', `plain login')dnl\n\
         O AuthOptions=p,y\n\
         O AuthDovecotSocket=/run/dovecot/auth-postern\n\
         define(`confAUTH_MAX_FAILURES', `5')dnl\n",
    );
    assert_eq!(c.auth.mechanisms, ["PLAIN", "LOGIN"]);
    assert!(c.auth.options.no_plaintext && c.auth.options.no_anonymous);
    assert_eq!(
        c.auth.dovecot_socket.as_deref(),
        Some(Path::new("/run/dovecot/auth-postern"))
    );
    assert_eq!(c.auth.max_failures, 5);
    let e = Config::parse_str("O AuthOptions=pz\n", Path::new("/etc/mail/postern.cf"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("postern.cf:1: AuthOptions: unknown AuthOptions flag \"z\""),
        "{e}"
    );
}

#[test]
fn listeners_sharing_a_name_share_their_modifiers() {
    let e = Config::parse_str(
        "O DaemonPortOptions=Port=587, Name=MSA, M=Ea\nO DaemonPortOptions=Port=2587, Name=MSA\n",
        Path::new("/etc/mail/postern.cf"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("postern.cf:2: DaemonPortOptions: another listener named MSA"),
        "{e}"
    );
    let c = parse("O DaemonPortOptions=Port=25\nO DaemonPortOptions=Port=2525\n");
    assert_eq!(c.daemons.len(), 2);
}
