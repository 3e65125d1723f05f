//! mailq.txt: queue listings, and restrictmailq/restrictqrun.

use super::*;

/// The output of the `nth` (from 0) command of mailq.txt whose `### as
/// <who>: ` line ends with `command`, and its exit code.
fn mailq_run(who: &str, command: &str, nth: usize) -> (Vec<String>, i32) {
    let heading = format!("### as {who}: $PREFIX/usr/libexec/sendmail/{command}");
    command_output("mailq.txt", &heading, nth)
}

/// Queue listings made alike: the queue directory, IDs, sizes,
/// priorities and times.
fn mask_listing(line: &str, qdir: &str) -> String {
    let line = line
        .replace("$INSTDIR/mqueue", "<QDIR>")
        .replace(qdir, "<QDIR>");
    let plain = Regex::new(r"^[0-9A-Za-z]{14}([ *])\s+\d+ \w{3} \w{3} [ \d]\d \d\d:\d\d ").unwrap();
    let verbose =
        Regex::new(r"^[0-9A-Za-z]{14}([ *])\s+\d+\s+\d+ \w{3} [ \d]\d \d\d:\d\d ").unwrap();
    let line = plain.replace(&line, "<QID>$1 <SIZE> <TIME> ");
    verbose
        .replace(&line, "<QID>$1 <SIZE> <PRI> <TIME> ")
        .into_owned()
}

/// What `mailq` shows that sendmail's does not, or otherwise.
pub(super) const MAILQ_DIFFERENCES: &[Difference] = &[];

/// mailq.txt's scenario: three messages deferred (the next hop refuses
/// connections), one from `<>`, one to two recipients; then mailq,
/// `mailq -v`, `-bp -qR`, and as nobody under restrictmailq and
/// restrictqrun.
#[test]
fn the_queue_listing_matches_sendmails() {
    if !postern_testkit::running_as_root() {
        eprintln!("skipped: the scenario runs mailq as root and as nobody (CI runs as root)");
        return;
    }
    let mut daemon = mx_example("authwarnings", 9, None, None);
    let qdir = daemon.spool_dir().display().to_string();
    // The tool under sendmail's names, where nobody can run it too.
    let links = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        links.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    for name in ["sendmail", "mailq"] {
        std::os::unix::fs::symlink(postern_testkit::binary("postern"), links.path().join(name))
            .unwrap();
    }
    let config = daemon.config_path();
    let tool = |who: Option<&str>, name: &str, args: &[&str]| {
        let mut cmd = match who {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(links.path().join(name));
                c
            }
            None => Command::new(links.path().join(name)),
        };
        let out = cmd
            .args(args)
            .env("POSTERN_CONFIG", &config)
            .env("TZ", "UTC")
            .output()
            .unwrap();
        let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| mask_listing(l, &qdir))
            .collect();
        (lines, out.status.code().unwrap_or(-1))
    };
    let none: &[&Difference] = &MAILQ_DIFFERENCES.iter().collect::<Vec<_>>();
    let compare = |what: &str, sample: (Vec<String>, i32), got: (Vec<String>, i32)| {
        let want: Vec<String> = sample.0.iter().map(|l| mask_listing(l, &qdir)).collect();
        assert_same(what, &expected(&want, none), &got.0);
        assert_eq!(sample.1, got.1, "{what}: exit code");
    };

    compare(
        "mailq, empty queue",
        mailq_run("root", "mailq -C $INSTDIR/sendmail.cf", 0),
        tool(None, "mailq", &[]),
    );
    // Sizes chosen so that the priorities (size + 30000 per recipient)
    // order them as in the sample.
    for (sender, rcpts, body) in [
        ("<>", &["postmaster@down.test"][..], "x"),
        ("sender@example.com", &["u@down.test"][..], &"x".repeat(100)),
        (
            "sender@example.com",
            &["a@down.test", "b@down.test"][..],
            &"y".repeat(1400),
        ),
    ] {
        let mut c = SmtpConversation::connect(daemon.smtp_addr());
        c.read_reply();
        c.cmd("EHLO client.example", "250");
        c.cmd(
            &format!("MAIL FROM:<{}>", sender.trim_matches(['<', '>'])),
            "250",
        );
        for r in rcpts {
            c.cmd(&format!("RCPT TO:<{r}>"), "250");
        }
        c.cmd("DATA", "354");
        c.send_raw(format!("Subject: down\r\n\r\n{body}\r\n.\r\n").as_bytes());
        assert!(c.read_reply().starts_with("250 "));
        c.cmd("QUIT", "221");
        daemon.wait_for_log(&format!("to=<{}>", rcpts[rcpts.len() - 1]), WAIT);
    }
    compare(
        "mailq with three deferred messages",
        mailq_run("root", "mailq -C $INSTDIR/sendmail.cf", 1),
        tool(None, "mailq", &[]),
    );
    compare(
        "mailq -v",
        mailq_run("root", "mailq -C $INSTDIR/sendmail.cf -v", 1),
        tool(None, "mailq", &["-v"]),
    );
    compare(
        "sendmail -bp -qRa@down",
        mailq_run("root", "sendmail -C $INSTDIR/sendmail.cf -bp -qRa@down", 0),
        tool(None, "sendmail", &["-bp", "-qRa@down"]),
    );

    // PART 3b: restrictmailq and restrictqrun, as nobody.
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        format!("{text}define(`confPRIVACY_FLAGS', `authwarnings,restrictmailq,restrictqrun')\n"),
    )
    .unwrap();
    daemon.restart();
    compare(
        "mailq as nobody under restrictmailq",
        mailq_run("nobody", "mailq", 1),
        tool(Some("nobody"), "mailq", &[]),
    );
    compare(
        "mailq -v as nobody under restrictmailq",
        mailq_run("nobody", "mailq -v", 1),
        tool(Some("nobody"), "mailq", &["-v"]),
    );
    compare(
        "sendmail -q as nobody under restrictqrun",
        mailq_run("nobody", "sendmail -q", 1),
        tool(Some("nobody"), "sendmail", &["-q"]),
    );
    daemon.stop();
}
