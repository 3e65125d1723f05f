use std::path::Path;

use postern_config::Aliases;
use postern_ipc::{Caller, ControlReply, QueueToFront, Sysexit, VerifiedAddress};

use super::*;

fn table(text: &str) -> Aliases {
    Aliases::parse_str(text, Path::new("/nonexistent/aliases")).unwrap()
}

const ALIASES: &str = "postmaster: root\n\
staff: ops, bob@example.com, /var/log/staff, \"|/bin/cat -u\"\n\
ops: root, \\root\n\
broken: root, nosuchuser\n";

/// What root's GECOS gives (sendmail's full name), as this host has it.
fn root_line() -> String {
    match full_name("root") {
        Some(name) => format!("{name} <root@mx.test>"),
        None => "<root@mx.test>".into(),
    }
}

/// The reply a front would send, as text.
fn reply(answer: QueueToFront, expn: bool) -> Vec<String> {
    match answer {
        QueueToFront::Verified {
            addresses,
            definitive,
        } => {
            let code = if expn || definitive { 250 } else { 252 };
            let n = addresses.len();
            addresses
                .into_iter()
                .enumerate()
                .map(|(i, VerifiedAddress { full_name, address })| {
                    let sep = if i + 1 == n { ' ' } else { '-' };
                    match full_name {
                        Some(name) => format!("{code}{sep}2.1.5 {name} <{address}>"),
                        None => format!("{code}{sep}2.1.5 <{address}>"),
                    }
                })
                .collect()
        }
        QueueToFront::Refused {
            code,
            enhanced,
            text,
        } => vec![format!("{code} {enhanced} {text}")],
        other => panic!("{other:?}"),
    }
}

#[test]
fn vrfy_names_users_aliases_and_remote_addresses_without_expanding() {
    let dir = tempfile::tempdir().unwrap();
    let s = crate::settings::for_tests(dir.path(), "");
    let t = table(ALIASES);
    let vrfy = |arg: &str| reply(smtp_answer(&t, &s, arg, false, false), false);
    assert_eq!(vrfy("root"), [format!("250 2.1.5 {}", root_line())]);
    assert_eq!(
        vrfy("<ROOT@MX.TEST>"),
        [format!("250 2.1.5 {}", root_line())]
    );
    // An alias is itself, never its members (sendmail's QS_VERIFIED).
    assert_eq!(vrfy("staff"), ["250 2.1.5 <staff@mx.test>"]);
    // Remote: 252, the address as it is.
    assert_eq!(vrfy("rcpt@example.net"), ["252 2.1.5 <rcpt@example.net>"]);
    assert_eq!(vrfy("nosuchuser"), ["550 5.1.1 nosuchuser... User unknown"]);
    assert_eq!(
        vrfy("<nosuchuser@mx.test>"),
        ["550 5.1.1 <nosuchuser@mx.test>... User unknown"]
    );
    // A list of addresses, as sendmail's sendtolist reads one.
    assert_eq!(
        vrfy("root, staff"),
        [
            format!("250-2.1.5 {}", root_line()),
            "250 2.1.5 <staff@mx.test>".to_string()
        ]
    );
    assert_eq!(
        vrfy("root, nosuchuser"),
        ["550 5.1.1 nosuchuser... User unknown"]
    );
}

#[test]
fn expn_expands_fully_or_only_the_top_level_under_restrictexpand() {
    let dir = tempfile::tempdir().unwrap();
    let s = crate::settings::for_tests(dir.path(), "");
    let t = table(ALIASES);
    let expn = |s: &Settings, arg: &str| reply(smtp_answer(&t, s, arg, true, false), true);
    assert_eq!(
        expn(&s, "staff"),
        [
            format!("250-2.1.5 {}", root_line()),
            "250-2.1.5 <bob@example.com>".into(),
            "250-2.1.5 </var/log/staff>".into(),
            "250 2.1.5 <|/bin/cat -u>".into(),
        ]
    );
    assert_eq!(expn(&s, "root"), [format!("250 2.1.5 {}", root_line())]);
    assert_eq!(
        expn(&s, "rcpt@example.net"),
        ["250 2.1.5 <rcpt@example.net>"]
    );
    // One member that cannot be delivered is the whole answer.
    assert_eq!(
        expn(&s, "broken"),
        ["550 5.1.1 <nosuchuser@mx.test>... User unknown"]
    );
    let r = crate::settings::for_tests(dir.path(), "O PrivacyOptions=restrictexpand\n");
    assert_eq!(
        expn(&r, "staff"),
        [
            "250-2.1.5 <ops@mx.test>",
            "250-2.1.5 <bob@example.com>",
            "250-2.1.5 </var/log/staff>",
            "250 2.1.5 <|/bin/cat -u>",
        ]
    );
    // A trusted `sendmail -bs` caller sees through restrictexpand.
    let trusted = reply(smtp_answer(&t, &r, "staff", true, true), true);
    assert_eq!(trusted[0], format!("250-2.1.5 {}", root_line()));
}

#[test]
fn a_front_asking_what_privacyoptions_forbid_gets_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for (words, vrfy, expn) in [
        ("novrfy", false, true),
        ("noexpn", true, false),
        ("goaway", false, false),
    ] {
        let s = crate::settings::for_tests(dir.path(), &format!("O PrivacyOptions={words}\n"));
        let t = table(ALIASES);
        assert_eq!(
            front_answer(&t, &s, "root", false).is_some(),
            vrfy,
            "{words}"
        );
        assert_eq!(
            front_answer(&t, &s, "root", true).is_some(),
            expn,
            "{words}"
        );
    }
}

#[test]
fn full_names_follow_sendmails_buildfname() {
    // root exists everywhere; its GECOS is at least not a control character.
    if let Some(name) = full_name("root") {
        assert!(!name.contains(',') && !name.chars().any(char::is_control));
    }
    assert_eq!(full_name("no-such-user-here"), None);
}

#[test]
fn lists_split_on_commas_outside_quotes_and_brackets() {
    assert_eq!(
        split_list("a, <b@x>,\"c,d\"@y , ,<\"e,f\"@z>"),
        ["a", "<b@x>", "\"c,d\"@y", "<\"e,f\"@z>"]
    );
}

fn caller(uid: u32, trusted: bool) -> Caller {
    Caller {
        uid,
        gid: uid,
        user: if uid == 0 {
            "root".into()
        } else {
            "user".into()
        },
        trusted,
    }
}

fn bv(s: Settings, who: &Caller, addresses: &[&str]) -> (String, Sysexit) {
    let t = table(ALIASES);
    let addresses: Vec<String> = addresses.iter().map(|a| a.to_string()).collect();
    match tool_answer(&t, &s, who, &addresses) {
        ControlReply::Verified { message, exit_code } => (message, exit_code),
        other => panic!("{other:?}"),
    }
}

#[test]
fn bv_prints_sendmails_lines() {
    let dir = tempfile::tempdir().unwrap();
    let s = || crate::settings::for_tests(dir.path(), "O PrivacyOptions=restrictexpand\n");
    let root = caller(0, true);
    let (text, code) = bv(s(), &root, &["staff", "<bob@example.org>"]);
    assert_eq!(
        text,
        "root@mx.test... deliverable: mailer local, user root\n\
         bob@example.com... deliverable: mailer esmtp, host example.com., user bob@example.com\n\
         /var/log/staff... deliverable: mailer *file*, user /var/log/staff\n\
         |/bin/cat -u... deliverable: mailer prog, user |/bin/cat -u\n\
         <bob@example.org>... deliverable: mailer esmtp, host example.org., user bob@example.org\n"
    );
    assert_eq!(code, Sysexit::Ok);
    // Under restrictexpand an ordinary user sees the first level only.
    let (text, code) = bv(s(), &caller(1000, false), &["staff"]);
    assert_eq!(
        text,
        "ops@mx.test... deliverable: mailer local, user ops\n\
         bob@example.com... deliverable: mailer esmtp, host example.com., user bob@example.com\n\
         /var/log/staff... deliverable: mailer *file*, user /var/log/staff\n\
         |/bin/cat -u... deliverable: mailer prog, user |/bin/cat -u\n"
    );
    assert_eq!(code, Sysexit::Ok);
    // A trusted user sees it all.
    let (text, _) = bv(s(), &caller(1000, true), &["ops"]);
    assert_eq!(
        text,
        "root@mx.test... deliverable: mailer local, user root\n"
    );
    // Unknown users: sendmail's line, and EX_NOUSER.
    let (text, code) = bv(s(), &root, &["root", "nosuchuser", "broken"]);
    assert_eq!(
        text,
        "root... deliverable: mailer local, user root\n\
         nosuchuser... User unknown\n\
         root@mx.test... deliverable: mailer local, user root\n\
         nosuchuser@mx.test... User unknown\n"
    );
    assert_eq!(code, Sysexit::NoUser);
}
