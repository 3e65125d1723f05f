//! Every kind of error, with its exact `file:line: message`.

use std::path::Path;

use postern_config::Config;

const FILE: &str = "/etc/mail/postern.cf";

/// The errors of `text`, one string per error.
fn errors(text: &str) -> Vec<String> {
    match Config::parse_str(text, Path::new(FILE)) {
        Ok(_) => panic!("accepted: {text:?}"),
        Err(e) => e.errors().iter().map(ToString::to_string).collect(),
    }
}

/// The single error of a one-line text, which must be on line 1.
fn error(line: &str) -> String {
    let all = errors(line);
    assert_eq!(all.len(), 1, "{all:?}");
    let prefix = format!("{FILE}:1: ");
    match all[0].strip_prefix(&prefix) {
        Some(m) => m.to_string(),
        None => panic!("{:?} does not start with {prefix:?}", all[0]),
    }
}

#[test]
fn unknown_option_in_both_syntaxes() {
    assert_eq!(
        error("O NoSuchOption=1"),
        r#"unknown option "NoSuchOption""#
    );
    assert_eq!(
        error("define(`confNO_SUCH', `1')"),
        r#"unknown option "confNO_SUCH""#
    );
    assert_eq!(
        error("define(`NO_SUCH', `1')"),
        r#"unknown define "NO_SUCH""#
    );
    // m4 names are case-sensitive, .cf names are not; a near miss gets
    // the name it probably meant.
    assert_eq!(
        error("define(`conflog_level', `1')"),
        r#"unknown option "conflog_level"; did you mean "confLOG_LEVEL"?"#
    );
    assert_eq!(
        error("define(`confMAX_MESAGE_SIZE', `1000')"),
        r#"unknown option "confMAX_MESAGE_SIZE"; did you mean "confMAX_MESSAGE_SIZE"?"#
    );
    assert_eq!(
        error("O MaxMesageSize=1000"),
        r#"unknown option "MaxMesageSize"; did you mean "MaxMessageSize"?"#
    );
    assert_eq!(
        error("define(`SMART_HOTS', `relay.example.com')"),
        r#"unknown define "SMART_HOTS"; did you mean "SMART_HOST"?"#
    );
}

#[test]
fn unknown_privacy_flag() {
    let all = errors("dnl\nO PrivacyOptions=noexpn,noexpm\n");
    assert_eq!(
        all,
        [format!("{FILE}:2: unknown PrivacyOptions flag \"noexpm\"")]
    );
    assert_eq!(
        error("define(`confPRIVACY_FLAGS', `novrfy nosuch')"),
        r#"unknown PrivacyOptions flag "nosuch""#
    );
}

#[test]
fn malformed_lines() {
    assert_eq!(error("hello world"), r#"malformed line "hello world""#);
    assert_eq!(
        error("define confLOG_LEVEL 9"),
        r#"malformed line "define confLOG_LEVEL 9""#
    );
    assert_eq!(
        error("O LogLevel"),
        "malformed option line; expected O Name=value"
    );
    assert_eq!(
        error("OL9"),
        r#"single-character option "OL" is not supported; use the long name (O Name=value)"#
    );
    assert_eq!(
        error("DMexample.com"),
        r#"unsupported macro "DM"; only Dj (hostname) and DS (smart host) are read"#
    );
    assert_eq!(
        error("define(`confLOG_LEVEL', `9') x"),
        r#"unexpected text after ")": "x""#
    );
}

#[test]
fn unbalanced_quotes_and_parentheses() {
    assert_eq!(
        error("define(`confLOG_LEVEL', `14)"),
        "unbalanced quotes: a ` is never closed by '"
    );
    assert_eq!(
        error("define(`confLOG_LEVEL', `14'"),
        r#"unbalanced parentheses: missing ")""#
    );
    assert_eq!(
        error("define(confLOG_LEVEL, (14)"),
        r#"unbalanced parentheses: missing ")""#
    );
}

#[test]
fn bad_values() {
    assert_eq!(error("O LogLevel=1O"), r#"LogLevel: bad number "1O""#);
    assert_eq!(
        error("define(`confLOG_LEVEL', `-1')"),
        r#"confLOG_LEVEL: bad number "-1""#
    );
    assert_eq!(
        error("O MaxMessageSize=99999999999999999999"),
        r#"MaxMessageSize: bad number "99999999999999999999""#
    );
    assert_eq!(
        error("O Timeout.helo=5x"),
        r#"Timeout.helo: bad duration "5x" (expected e.g. 30s, 5m, 1h30m, 2d, 1w)"#
    );
    assert_eq!(
        error("define(`confCACERT', `certs/cacert.pem')"),
        r#"confCACERT: "certs/cacert.pem" is not an absolute path"#
    );
    assert_eq!(
        error("O QueueDirectory=spool"),
        r#"QueueDirectory: "spool" is not an absolute path"#
    );
    assert_eq!(
        error("O TLSSrvOptions=V,X"),
        r#"TLSSrvOptions: unknown flag "X" (expected V or C)"#
    );
    assert_eq!(error("O RunAsUser="), "RunAsUser: a user name is required");
    assert_eq!(
        error("Dj mail_host.example.com"),
        r#"Dj: bad host name "mail_host.example.com": only letters, digits, hyphens and dots are allowed"#
    );
}

#[test]
fn daemon_port_options() {
    assert_eq!(
        error("DAEMON_OPTIONS(`Port=99999, Name=MTA')"),
        r#"DAEMON_OPTIONS: bad port "99999" (expected 1-65535, smtp, submission or smtps)"#
    );
    assert_eq!(
        error("O DaemonPortOptions=Port=25, Addr=1.2.3"),
        r#"DaemonPortOptions: bad Addr "1.2.3""#
    );
    assert_eq!(
        error("O DaemonPortOptions=Port=25, Listen=10"),
        r#"DaemonPortOptions: unknown key "Listen""#
    );
}

#[test]
fn bad_smart_host() {
    assert_eq!(
        error("define(`SMART_HOST', `[relay.example.com')"),
        r#"SMART_HOST: bad smart host "[relay.example.com": missing "]""#
    );
    assert_eq!(
        error("DSrelay.example.com:smtp"),
        r#"DS: bad smart host "relay.example.com:smtp": bad port"#
    );
}

#[test]
fn unsupported_m4() {
    assert_eq!(
        error("FEATURE(`virtusertable')"),
        r#"unsupported FEATURE "virtusertable""#
    );
    assert_eq!(
        error("include(`/etc/mail/other.m4')"),
        "include() is not supported: keep the whole configuration in one file"
    );
    assert_eq!(
        error("LOCAL_RULESETS(`x')"),
        r#"unknown m4 macro "LOCAL_RULESETS""#
    );
    assert_eq!(
        error("divert(2)"),
        "only divert(-1) and divert(0) are accepted"
    );
    assert_eq!(
        error("define(`a', `b', `c')"),
        "define takes a name and a value"
    );
}

#[test]
fn all_errors_are_collected_in_line_order() {
    let text = "\
O LogLevel=x
dnl fine
O Bogus=1
define(`confPRIVACY_FLAGS', `noexpm')
O Timeout.queuereturn=5d
garbage
";
    let all = Config::parse_str(text, Path::new(FILE)).unwrap_err();
    assert_eq!(
        all.to_string(),
        format!(
            "{FILE}:1: LogLevel: bad number \"x\"\n\
             {FILE}:3: unknown option \"Bogus\"\n\
             {FILE}:4: unknown PrivacyOptions flag \"noexpm\"\n\
             {FILE}:6: malformed line \"garbage\""
        )
    );
}

#[test]
fn unreadable_file_is_one_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.cf");
    let e = Config::load(&path).unwrap_err();
    assert_eq!(e.errors().len(), 1);
    assert_eq!(e.errors()[0].line, 0);
    let shown = e.to_string();
    assert!(
        shown.starts_with(&format!(
            "{}: cannot read configuration file: ",
            path.display()
        )),
        "{shown}"
    );
}
