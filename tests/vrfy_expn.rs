//! VRFY and EXPN against the real daemon, asked by Python's smtplib
//! (`SMTP.verify`, `SMTP.expn`), with an aliases file and a real user
//! whose GECOS holds a full name, under PrivacyOptions authwarnings,
//! novrfy, noexpn, restrictexpand and goaway: sendmail's replies, its
//! `<client>: VRFY <arg>` log lines, and the slowdown after six (its
//! `possible SMTP attack` line, and the sixth reply's wait). Then
//! `sendmail -bv` as root (the whole expansion) and as an ordinary user
//! under restrictexpand (the first level), and its exit status.
//!
//! Run as root (as CI does) to make the user; otherwise the test says so
//! and stops.

mod common;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::WAIT;
use postern_testkit::{ensure_mail_user, ensure_test_users, running_as_root, DaemonBuilder};

/// The user the test makes, and the full name its GECOS gives.
const USER: &str = "vrfytest";
const FULL_NAME: &str = "Vera Fry";

const ALIASES: &str = "postmaster: root\n\
MAILER-DAEMON: postmaster\n\
staff: vrfytest, remote@example.net, ops\n\
ops: root\n\
broken: vrfytest, nosuchuser\n";

/// Makes the user (once: the tests of this file run in parallel, and
/// `/etc/passwd` is rewritten by each change) with `Vera Fry,Room 7,,`
/// as its GECOS; its uid and gid.
fn user() -> (u32, u32) {
    static USER_IDS: std::sync::OnceLock<(u32, u32)> = std::sync::OnceLock::new();
    *USER_IDS.get_or_init(|| {
        let (uid, _) = ensure_mail_user(USER);
        let status = Command::new("usermod")
            .args(["-c", &format!("{FULL_NAME},Room 7,,"), USER])
            .status()
            .expect("usermod runs");
        assert!(status.success(), "usermod -c failed: {status}");
        let gid = nix::unistd::User::from_name(USER)
            .unwrap()
            .expect("the user exists")
            .gid
            .as_raw();
        (uid, gid)
    })
}

fn daemon(privacy: &str) -> postern_testkit::Daemon {
    ensure_test_users();
    DaemonBuilder::new(postern_testkit::binary("posternd"))
        .table("local-host-names", "mx.test\n")
        .table("aliases", ALIASES)
        .config_line(&format!("O PrivacyOptions={privacy}"))
        .config_line("O LogLevel=9")
        // sendmail's default, no limit: the harvesting slowdown is
        // tested (with a limit, the sixth VRFY ends the session instead,
        // crates/smtp/tests/repetitions.rs).
        .config_line("O MaxDaemonChildren=0")
        .start()
}

/// Python's smtplib asks each `(command, argument)` after EHLO; each
/// answer as `code text`, the lines of a multi-line reply joined by `|`,
/// and how long each took, in seconds.
fn ask(daemon: &postern_testkit::Daemon, commands: &[(&str, &str)]) -> Vec<(String, f64)> {
    const SCRIPT: &str = r#"
import smtplib, sys, time
port = int(sys.argv[1])
args = sys.argv[2:]
s = smtplib.SMTP("127.0.0.1", port, timeout=60)
s.ehlo("client.test")
for cmd, arg in zip(args[::2], args[1::2]):
    start = time.monotonic()
    if cmd == "VRFY":
        code, text = s.verify(arg)
    else:
        code, text = s.expn(arg)
    took = time.monotonic() - start
    print("%.3f\t%d %s" % (took, code, text.decode().replace("\n", "|")))
s.quit()
"#;
    let out = Command::new("python3")
        .args(["-c", SCRIPT])
        .arg(daemon.smtp_addr().port().to_string())
        .args(commands.iter().flat_map(|&(c, a)| [c, a]))
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "smtplib: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (took, reply) = l.split_once('\t').unwrap();
            (reply.to_string(), took.parse().unwrap())
        })
        .collect()
}

fn replies(daemon: &postern_testkit::Daemon, commands: &[(&str, &str)]) -> Vec<String> {
    ask(daemon, commands).into_iter().map(|(r, _)| r).collect()
}

/// What `root`'s GECOS gives on this host (`root` on Debian).
fn root_name() -> String {
    let gecos = nix::unistd::User::from_name("root")
        .unwrap()
        .unwrap()
        .gecos
        .to_string_lossy()
        .into_owned();
    match gecos.split(',').next().unwrap_or("").trim() {
        "" => "<root@mx.test>".into(),
        name => format!("{name} <root@mx.test>"),
    }
}

#[test]
fn vrfy_and_expn_answer_as_sendmail_does() {
    if !running_as_root() {
        eprintln!("vrfy_expn: making a user takes root; skipped");
        return;
    }
    user();
    let d = daemon("authwarnings");
    let root = root_name();
    let answers = ask(
        &d,
        &[
            ("VRFY", USER),
            ("VRFY", "nosuchuser"),
            ("VRFY", "remote@example.net"),
            ("VRFY", "staff"),
            ("EXPN", "staff"),
            // The sixth of the session: logged, and answered a second later.
            ("EXPN", "broken"),
        ],
    );
    let got: Vec<&str> = answers.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(
        got,
        [
            format!("250 2.1.5 {FULL_NAME} <{USER}@mx.test>"),
            "550 5.1.1 nosuchuser... User unknown".into(),
            "252 2.1.5 <remote@example.net>".into(),
            // VRFY of a list is the list itself, as sendmail's.
            "250 2.1.5 <staff@mx.test>".into(),
            format!(
                "250 2.1.5 {FULL_NAME} <{USER}@mx.test>|2.1.5 <remote@example.net>|2.1.5 {root}"
            ),
            "550 5.1.1 <nosuchuser@mx.test>... User unknown".into(),
        ]
    );
    assert!(answers[5].1 >= 1.0, "the sixth came at once: {answers:?}");
    for line in [
        format!("localhost [127.0.0.1]: VRFY {USER}"),
        "localhost [127.0.0.1]: VRFY nosuchuser".into(),
        "localhost [127.0.0.1]: EXPN staff".into(),
        "localhost [127.0.0.1]: possible SMTP attack: command=EXPN, count=6".into(),
    ] {
        d.wait_for_log(&line, WAIT);
    }
    assert!(
        !d.log_lines().iter().any(|l| l.contains("[rejected]")),
        "{:?}",
        d.log_lines()
    );
    // A new session starts counting afresh.
    let again = ask(&d, &[("VRFY", "root")]);
    assert_eq!(again[0].0, format!("250 2.1.5 {root}"));
    assert!(again[0].1 < 1.0, "{again:?}");
}

#[test]
fn privacyoptions_keep_the_refusals_and_restrictexpand_shows_the_first_level() {
    if !running_as_root() {
        eprintln!("vrfy_expn: making a user takes root; skipped");
        return;
    }
    user();
    let cannot_vrfy = "252 2.5.2 Cannot VRFY user; try RCPT to attempt delivery (or try finger)";
    let not_allowed = "502 5.7.0 Sorry, we do not allow this operation";
    let found = format!("250 2.1.5 {FULL_NAME} <{USER}@mx.test>");
    for (privacy, vrfy, expn) in [
        ("novrfy", cannot_vrfy.to_string(), found.clone()),
        ("noexpn", found.clone(), not_allowed.to_string()),
        ("goaway", cannot_vrfy.to_string(), not_allowed.to_string()),
    ] {
        let d = daemon(privacy);
        assert_eq!(
            replies(&d, &[("VRFY", USER), ("EXPN", USER)]),
            [vrfy.clone(), expn.clone()],
            "{privacy}"
        );
        if vrfy.starts_with("252 2.5.2") {
            d.wait_for_log(
                &format!("localhost [127.0.0.1]: VRFY {USER} [rejected]"),
                WAIT,
            );
        }
        if expn.starts_with("502") {
            d.wait_for_log(
                &format!("localhost [127.0.0.1]: EXPN {USER} [rejected]"),
                WAIT,
            );
        }
    }
    // restrictexpand: an SMTP client is never trusted, so EXPN shows the
    // list's own members, `ops` unexpanded.
    let d = daemon("authwarnings,restrictexpand");
    assert_eq!(
        replies(&d, &[("EXPN", "staff"), ("VRFY", "staff")]),
        [
            format!(
                "250 2.1.5 {FULL_NAME} <{USER}@mx.test>|2.1.5 <remote@example.net>|2.1.5 <ops@mx.test>"
            ),
            "250 2.1.5 <staff@mx.test>".into(),
        ]
    );
}

/// The tool under the name `sendmail`, in a directory everyone can enter.
fn sendmail_link() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let link = dir.path().join("sendmail");
    std::os::unix::fs::symlink(postern_testkit::binary("postern"), &link).unwrap();
    (dir, link)
}

fn bv(sendmail: &Path, config: &Path, who: Option<(u32, u32)>, args: &[&str]) -> Output {
    let mut cmd = Command::new(sendmail);
    cmd.arg("-bv").args(args).env("POSTERN_CONFIG", config);
    if let Some((uid, gid)) = who {
        cmd.uid(uid).gid(gid);
    }
    cmd.output().expect("sendmail -bv runs")
}

#[test]
fn sendmail_bv_shows_the_expansion_to_root_and_the_first_level_to_others() {
    if !running_as_root() {
        eprintln!("vrfy_expn: making a user takes root; skipped");
        return;
    }
    let ordinary = user();
    let d = daemon("authwarnings,restrictexpand");
    let (_dir, sendmail) = sendmail_link();
    let cf = d.config_path();

    let out = bv(&sendmail, &cf, None, &["staff", "root"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!(
            "{USER}@mx.test... deliverable: mailer local, user {USER}\n\
             remote@example.net... deliverable: mailer esmtp, host example.net., user remote@example.net\n\
             root@mx.test... deliverable: mailer local, user root\n\
             root... deliverable: mailer local, user root\n"
        ),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0));

    let out = bv(&sendmail, &cf, Some(ordinary), &["staff"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!(
            "{USER}@mx.test... deliverable: mailer local, user {USER}\n\
             remote@example.net... deliverable: mailer esmtp, host example.net., user remote@example.net\n\
             ops@mx.test... deliverable: mailer local, user ops\n"
        ),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0));

    // An unknown name: sendmail's line, and EX_NOUSER (67).
    let out = bv(&sendmail, &cf, Some(ordinary), &["nosuchuser", USER]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("nosuchuser... User unknown\n{USER}... deliverable: mailer local, user {USER}\n")
    );
    assert_eq!(out.status.code(), Some(67));
}
