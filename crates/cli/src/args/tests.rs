//! Tests of the sendmail argument parser.
use super::*;
use postern_ipc::Sysexit;

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn sendmail(list: &[&str]) -> Result<Options, UsageError> {
    parse(Program::Sendmail, &args(list), false)
}

fn ok(list: &[&str]) -> Options {
    sendmail(list).unwrap_or_else(|e| panic!("{list:?}: {}", e.message))
}

fn err(list: &[&str]) -> String {
    let e = sendmail(list).expect_err("should be refused");
    assert_eq!(e.exit_code, Sysexit::Usage);
    e.message
}

#[test]
fn argv0_dispatch() {
    assert_eq!(Program::from_argv0("/usr/sbin/sendmail"), Program::Sendmail);
    assert_eq!(Program::from_argv0("mailq"), Program::Mailq);
    assert_eq!(Program::from_argv0("/usr/bin/runq"), Program::Runq);
    assert_eq!(Program::from_argv0("newaliases"), Program::Newaliases);
    assert_eq!(Program::from_argv0("postern"), Program::Postern);
    assert_eq!(Program::from_argv0("whatever"), Program::Postern);
}

#[test]
fn default_is_delivery_with_recipients() {
    let o = ok(&["a@example.com", "b@example.com, c@example.com"]);
    assert_eq!(o.mode, Mode::Deliver);
    assert_eq!(
        o.addresses,
        ["a@example.com", "b@example.com", "c@example.com"]
    );
    assert!(!o.ignore_dots && !o.extract_recipients && !o.verbose);
}

#[test]
fn sender_glued_and_separate() {
    assert_eq!(ok(&["-fuser@x", "r"]).sender.as_deref(), Some("user@x"));
    assert_eq!(ok(&["-f", "user@x", "r"]).sender.as_deref(), Some("user@x"));
    assert_eq!(
        ok(&["-r", "<user@x>", "r"]).sender.as_deref(),
        Some("user@x")
    );
    assert_eq!(ok(&["-f<>", "r"]).sender.as_deref(), Some(""));
    assert!(err(&["-fa", "-fb", "r"]).contains("More than one \"from\" person"));
    assert!(err(&["-f"]).contains("option requires an argument -- f"));
}

#[test]
fn full_name_glued_separate_and_cleaned() {
    assert_eq!(
        ok(&["-FJoe User", "r"]).full_name.as_deref(),
        Some("Joe User")
    );
    assert_eq!(ok(&["-F", "Joe", "r"]).full_name.as_deref(), Some("Joe"));
    let o = ok(&["-F", "Joe\r\nBcc: victim@x\0", "r"]);
    assert_eq!(o.full_name.as_deref(), Some("Joe  Bcc: victim@x"));
    let long = "x".repeat(1000);
    assert_eq!(
        ok(&["-F", &long, "r"]).full_name.unwrap().len(),
        MAX_FULL_NAME
    );
}

#[test]
fn dots_and_clusters() {
    assert!(ok(&["-oi", "r"]).ignore_dots);
    assert!(ok(&["-i", "r"]).ignore_dots);
    assert!(ok(&["-o", "i", "r"]).ignore_dots);
    let o = ok(&["-ti"]);
    assert!(o.ignore_dots && o.extract_recipients);
    let o = ok(&["-tvFName"]);
    assert!(o.verbose && o.extract_recipients);
    assert_eq!(o.full_name.as_deref(), Some("Name"));
    assert!(
        ok(&["-oem", "-oee", "-odb", "-odi", "-odq", "-om", "-Am", "-Ac", "r"]).addresses == ["r"]
    );
}

#[test]
fn dsn_and_body_flags_accepted() {
    let o = ok(&[
        "-N",
        "success,failure",
        "-Rhdrs",
        "-V",
        "env1",
        "-B8BITMIME",
        "r",
    ]);
    assert_eq!(o.addresses, ["r"]);
    let n = o.notify.unwrap();
    assert!(n.success && n.failure && !n.delay && !n.never);
    assert_eq!(o.ret, Some(Ret::Hdrs));
    assert_eq!(o.envid.as_deref(), Some("env1"));
    assert_eq!(o.body, Some(BodyType::EightBitMime));
    assert!(err(&["-Bbinary", "r"]).contains("Illegal body type binary"));
    assert!(err(&["-Ax", "r"]).contains("-Ax"));
    // Nothing given: nothing passed on (the daemon's defaults apply).
    let plain = ok(&["r"]);
    assert_eq!(
        (plain.notify, plain.ret, plain.envid, plain.body),
        (None, None, None, None)
    );
}

#[test]
fn dsn_values_as_sendmail_takes_them() {
    assert_eq!(ok(&["-Rfull", "r"]).ret, Some(Ret::Full));
    assert_eq!(ok(&["-B", "7bit", "r"]).body, Some(BodyType::SevenBit));
    assert!(ok(&["-N", "NEVER", "r"]).notify.unwrap().never);
    // Several -N add up, as sendmail's DefaultNotify bits do.
    let n = ok(&["-Nsuccess", "-Ndelay", "r"]).notify.unwrap();
    assert!(n.success && n.delay && !n.failure && !n.never);
    let n = ok(&["-Nnever", "-Nfailure", "r"]).notify.unwrap();
    assert!(n.failure && !n.never);
    // -V is xtext, decoded as ENVID= is.
    assert_eq!(ok(&["-Vq+2Bx", "r"]).envid.as_deref(), Some("q+x"));
}

#[test]
fn bad_dsn_values_are_usage_errors() {
    for (args, text) in [
        (
            &["-N", "bogus", "r"][..],
            "sendmail: Invalid -N argument \"bogus\"",
        ),
        (&["-Nnever,success", "r"], "sendmail: Invalid -N argument"),
        (&["-Nsuccess,", "r"], "sendmail: Invalid -N argument"),
        (&["-R", "xyz", "r"], "sendmail: Invalid -R value \"xyz\""),
        (&["-Rhdrs", "-Rfull", "r"], "sendmail: Duplicate -R flag"),
        (&["-Va+zz", "r"], "sendmail: Invalid syntax in -V flag"),
        (&["-B8bit", "r"], "sendmail: Illegal body type 8bit"),
    ] {
        let e = sendmail(args).expect_err("should be refused");
        assert_eq!(e.exit_code, Sysexit::Usage, "{args:?}");
        assert!(e.message.starts_with(text), "{args:?}: {}", e.message);
    }
}

#[test]
fn modes() {
    assert_eq!(ok(&["-bp"]).mode, Mode::PrintQueue);
    assert_eq!(ok(&["-b", "p"]).mode, Mode::PrintQueue);
    assert_eq!(ok(&["-bs"]).mode, Mode::Smtp);
    assert_eq!(ok(&["-bm", "r"]).mode, Mode::Deliver);
    assert_eq!(ok(&["-bi"]).mode, Mode::NewAliases);
    let o = ok(&["-bv", "a@x", "b@y"]);
    assert_eq!((o.mode, o.addresses.len()), (Mode::Verify, 2));
    assert!(err(&["-bt"]).contains("-bt: mode not supported"));
    assert_eq!(err(&["-bd"]), NOT_TRUSTED);
    assert!(err(&["-bp", "user"]).contains("unexpected argument"));
}

#[test]
fn queue_runs_and_selectors() {
    let o = ok(&["-q"]);
    assert_eq!((o.mode, o.selector), (Mode::RunQueue, None));
    assert_eq!(ok(&["-qf"]).mode, Mode::RunQueue);
    let sel = |f, s: &str, n| {
        Some(QueueSelector {
            field: f,
            substring: s.to_string(),
            negate: n,
        })
    };
    assert_eq!(
        ok(&["-qRfoo"]).selector,
        sel(SelectorField::Recipient, "foo", false)
    );
    assert_eq!(
        ok(&["-qSbar@x"]).selector,
        sel(SelectorField::Sender, "bar@x", false)
    );
    assert_eq!(
        ok(&["-qI6AP8"]).selector,
        sel(SelectorField::QueueId, "6AP8", false)
    );
    assert_eq!(
        ok(&["-q!Rfoo"]).selector,
        sel(SelectorField::Recipient, "foo", true)
    );
    assert_eq!(ok(&["-q!Sx"]).mode, Mode::RunQueue);
    // -bp with a selector lists only what it picks.
    let o = ok(&["-bp", "-qRfoo"]);
    assert_eq!(o.mode, Mode::PrintQueue);
    assert!(o.selector.is_some());
    assert!(err(&["-qR"]).contains("needs a substring"));
    assert!(err(&["-qRa", "-qSb"]).contains("only one"));
    assert!(err(&["-qX"]).contains("unknown option -qX"));
    assert!(err(&["-q!"]).contains("unknown option"));
    assert!(err(&["-qGgroup"]).contains("queue groups"));
}

#[test]
fn queue_intervals_are_root_only() {
    assert_eq!(err(&["-q15m"]), NOT_TRUSTED);
    assert_eq!(err(&["-qp"]), NOT_TRUSTED);
    assert_eq!(err(&["-qQ"]), NOT_TRUSTED);
    let e = parse(Program::Sendmail, &args(&["-q15m"]), true).unwrap_err();
    assert_eq!(e.exit_code, Sysexit::Usage);
    assert!(e.message.contains("posternd schedules its own queue runs"));
}

#[test]
fn config_flag_is_root_only() {
    assert_eq!(err(&["-C", "/tmp/evil.cf", "-bp"]), NOT_TRUSTED);
    assert_eq!(err(&["-C/tmp/evil.cf", "r"]), NOT_TRUSTED);
    let o = parse(
        Program::Sendmail,
        &args(&["-C", "/etc/mail/other.cf", "-bp"]),
        true,
    )
    .unwrap();
    assert_eq!(o.config, Some(PathBuf::from("/etc/mail/other.cf")));
    let o = parse(Program::Mailq, &args(&["-C/x.cf"]), true).unwrap();
    assert_eq!(o.config, Some(PathBuf::from("/x.cf")));
}

#[test]
fn injection_flags_refused() {
    // PHPMailer CVE-2016-10033: the sender smuggles -X and -O/-C.
    assert_eq!(
        err(&["-fattacker", "-X/var/www/shell.php", "r"]),
        NOT_TRUSTED
    );
    assert!(parse(Program::Sendmail, &args(&["-X/tmp/log", "r"]), true).is_err());
    assert!(err(&["-oQ/tmp/", "r"]).contains("option -oQ/tmp/ is not supported"));
    assert!(err(&["-OQueueDirectory=/tmp", "r"]).contains("cannot be set"));
    assert!(err(&["-oXfoo", "r"]).contains("not supported"));
    assert_eq!(err(&["-d0.1", "r"]), "sendmail: unknown option -d");
    assert_eq!(err(&["-x", "r"]), "sendmail: unknown option -x");
    assert_eq!(err(&["-h", "5"]), "sendmail: unknown option -h");
    // A flag glued into a sender stays the sender's text.
    let o = ok(&["-fa@b -X/tmp/x", "r"]);
    assert_eq!(o.sender.as_deref(), Some("a@b -X/tmp/x"));
}

#[test]
fn operands_end_flags_and_dashes_are_not_addresses() {
    assert!(err(&["user", "-X/tmp/log"]).contains("may not begin with \"-\""));
    assert!(err(&["-f", "-oQ/tmp", "r"]).contains("may not begin"));
    let o = ok(&["--", "user@x"]);
    assert_eq!(o.addresses, ["user@x"]);
    assert!(err(&["--", "-t"]).contains("may not begin"));
    assert!(err(&["a\r\nb@x"]).contains("illegal characters"));
}

#[test]
fn mailq_and_runq_take_sendmail_flags() {
    let o = parse(Program::Mailq, &args(&["-v"]), false).unwrap();
    assert_eq!(o.mode, Mode::PrintQueue);
    assert!(o.verbose);
    let o = parse(Program::Runq, &args(&["-qSfoo"]), false).unwrap();
    assert_eq!(o.mode, Mode::RunQueue);
    assert!(o.selector.is_some());
    assert_eq!(
        parse(Program::Runq, &args(&[]), false).unwrap().mode,
        Mode::RunQueue
    );
    let e = parse(Program::Mailq, &args(&["-k"]), false).unwrap_err();
    assert_eq!(e.message, "mailq: unknown option -k");
}
