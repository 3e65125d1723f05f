//! Day-to-day operation through the tools, against the real daemon: mailq
//! and runq for root and refused for `nobody` under restrictmailq and
//! restrictqrun (checked at the control socket, while the spool itself is
//! closed to them), queue hold/release/delete, and `sendmail -t` from an
//! ordinary user, all visible in the log.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::WAIT;
use postern_testkit::{
    ensure_test_users, poll_until, running_as_root, DaemonBuilder, SinkBehavior,
};

/// The `postern` tool, built by the workspace build.
fn tool() -> PathBuf {
    postern_testkit::binary("postern")
}

/// A daemon relaying `@sink.test` to `sink`, with extra lines.
fn daemon_for(sink: std::net::SocketAddr, lines: &[&str]) -> postern_testkit::Daemon {
    ensure_test_users();
    let mut builder = DaemonBuilder::new(postern_testkit::binary("posternd")).table(
        "mailertable",
        format!("sink.test esmtp:[127.0.0.1]:{}\n", sink.port()),
    );
    for line in lines {
        builder = builder.config_line(line);
    }
    builder.start()
}

/// The tool under the names sendmail, mailq, runq, in a directory
/// everyone can enter.
fn links() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    for name in ["sendmail", "mailq", "runq", "postern"] {
        std::os::unix::fs::symlink(tool(), dir.path().join(name)).unwrap();
    }
    dir
}

/// Runs `name args` as `user` (None: as ourselves) with the daemon's config.
fn run(
    links: &Path,
    config: &Path,
    user: Option<&str>,
    name: &str,
    args: &[&str],
    stdin: &[u8],
) -> Output {
    let mut cmd = match user {
        Some(user) => {
            let mut c = Command::new("runuser");
            c.args(["-u", user, "--"]).arg(links.join(name));
            c
        }
        None => Command::new(links.join(name)),
    };
    cmd.args(args).env("POSTERN_CONFIG", config);
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn mailq_runq_and_sendmail_as_root_and_as_nobody() {
    ensure_test_users();
    // The first attempt for later@ fails temporarily; with MinQueueAge at
    // an hour only a queue run retries it.
    let sink = SinkBehavior::new()
        .rcpt_tempfail("later@sink.test", 1)
        .start();
    let daemon = daemon_for(
        sink.addr(),
        &[
            "define(`confPRIVACY_FLAGS', `authwarnings,restrictmailq,restrictqrun')",
            "O MinQueueAge=1h",
            "O LogLevel=9",
        ],
    );
    let cf = daemon.config_path();
    let bin = links();
    let b = bin.path();

    // An ordinary user submits with -t; Bcc: goes, and -f gets a warning.
    let as_user = if running_as_root() {
        Some("nobody")
    } else {
        None
    };
    let message =
        b"To: later@sink.test\nBcc: hidden@sink.test\nSubject: from the command line\n\nhello\n";
    let out = run(
        b,
        &cf,
        as_user,
        "sendmail",
        &["-t", "-f", "boss@example.com"],
        message,
    );
    assert!(out.status.success(), "sendmail -t: {}", text(&out));
    daemon.wait_for_log("to=<later@sink.test>", WAIT);
    let hidden = sink.wait_for_messages(1, WAIT);
    assert_eq!(hidden[0].rcpt_to, ["hidden@sink.test"]);
    let data = String::from_utf8_lossy(&hidden[0].data).into_owned();
    assert!(!data.contains("Bcc:"), "{data}");
    assert!(
        data.contains("\r\nSubject: from the command line\r\n")
            && data.ends_with("\r\n\r\nhello\r\n"),
        "{data}"
    );
    if running_as_root() {
        assert!(data.contains("X-Authentication-Warning: mx.test: nobody set sender to boss@example.com using -f\r\n"), "{data}");
        daemon.wait_for_log("from=<boss@example.com>, size=", WAIT);
        assert!(daemon
            .log_lines()
            .iter()
            .any(|l| l.contains("relay=nobody@localhost")));
    }

    // root sees the deferred message; mailq's format is sendmail's.
    let out = run(b, &cf, None, "mailq", &[], b"");
    let listing = text(&out);
    assert!(out.status.success(), "{listing}");
    assert!(
        listing.contains(" (1 request)")
            && listing.contains(
                "-----Q-ID----- --Size-- -----Q-Time----- ------------Sender/Recipient-----------"
            ),
        "{listing}"
    );
    assert!(
        listing.contains("<boss@example.com>") && listing.contains("<later@sink.test>"),
        "{listing}"
    );
    assert!(listing.contains("Total requests: 1"), "{listing}");

    if running_as_root() {
        // nobody: refused at the socket, and no way round it through the spool.
        let out = run(b, &cf, Some("nobody"), "mailq", &[], b"");
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "You are not permitted to see the queue\n\t\tTotal requests: 0\n"
        );
        let out = run(b, &cf, Some("nobody"), "runq", &[], b"");
        assert_eq!(out.status.code(), Some(77), "{}", text(&out));
        assert!(
            text(&out).contains("You do not have permission to process the queue"),
            "{}",
            text(&out)
        );
        let out = run(
            b,
            &cf,
            Some("nobody"),
            "postern",
            &["queue", "delete", "h0UGn9P7001230"],
            b"",
        );
        assert_eq!(out.status.code(), Some(77), "{}", text(&out));
        let ls = Command::new("runuser")
            .args(["-u", "nobody", "--", "ls"])
            .arg(daemon.spool_dir())
            .output()
            .unwrap();
        assert!(!ls.status.success(), "nobody can read the spool");
        daemon.wait_for_log(
            "control socket: nobody (uid 65534) may not list the queue",
            WAIT,
        );
    }

    // root's runq retries at once.
    let out = run(b, &cf, None, "runq", &[], b"");
    assert!(out.status.success(), "{}", text(&out));
    let both = sink.wait_for_messages(2, WAIT);
    assert!(both.iter().any(|m| m.rcpt_to == ["later@sink.test"]));
    // The sink has the message before the queue runner has removed the
    // queue files, so the listing may still show it, locked, for a moment.
    poll_until(WAIT, || {
        text(&run(b, &cf, None, "mailq", &[], b""))
            .contains("is empty")
            .then_some(())
    })
    .expect("the delivered message leaves the queue");
}

#[test]
fn hold_release_and_delete() {
    ensure_test_users();
    let sink = SinkBehavior::new()
        .rcpt_tempfail("slow@sink.test", 100)
        .start();
    let daemon = daemon_for(sink.addr(), &["O MinQueueAge=1h"]);
    let cf = daemon.config_path();
    let bin = links();
    let b = bin.path();
    let out = run(
        b,
        &cf,
        None,
        "sendmail",
        &["slow@sink.test"],
        b"Subject: held\n\nx\n",
    );
    assert!(out.status.success(), "{}", text(&out));
    daemon.wait_for_log("to=<slow@sink.test>", WAIT);
    let listing = text(&run(b, &cf, None, "mailq", &[], b""));
    let qid = listing
        .lines()
        .find(|l| l.len() > 14 && l.chars().take(14).all(|c| c.is_ascii_alphanumeric()))
        .map(|l| l[..14].to_string())
        .unwrap_or_else(|| panic!("no queue id in:\n{listing}"));
    let out = run(b, &cf, None, "postern", &["queue", "hold", &qid], b"");
    assert!(
        out.status.success() && text(&out).contains("held"),
        "{}\n{listing}\n{}",
        text(&out),
        daemon.log_lines().join("\n")
    );
    let shown = text(&run(b, &cf, None, "postern", &["queue", "show", &qid], b""));
    assert!(
        shown.contains("\nQ held\n") && shown.contains("Subject: held"),
        "{shown}"
    );
    let mark = daemon.log_mark();
    let out = run(b, &cf, None, "postern", &["queue", "release", &qid], b"");
    assert!(out.status.success(), "{}", text(&out));
    // Released means tried at once (and deferred again by the sink).
    daemon.wait_for_log_since(mark, "to=<slow@sink.test>", WAIT);
    // A message in delivery cannot be deleted under the delivery client's
    // feet; once the attempt is over it can.
    let deleted = poll_until(WAIT, || {
        let out = run(b, &cf, None, "postern", &["queue", "delete", &qid], b"");
        out.status.success().then_some(())
    });
    assert!(deleted.is_some(), "delete never succeeded");
    poll_until(WAIT, || {
        text(&run(b, &cf, None, "mailq", &[], b""))
            .contains("is empty")
            .then_some(())
    })
    .expect("the deleted message is gone");
    daemon.wait_for_log(&format!("{qid}: deleted by root"), WAIT);
}

/// `sendmail -bs`, as the seed uses it: SMTP on standard input and output,
/// the message queued through the daemon.
#[test]
fn sendmail_bs_speaks_smtp_on_stdin() {
    ensure_test_users();
    let sink = postern_testkit::Sink::start();
    let daemon = daemon_for(
        sink.addr(),
        &["define(`confPRIVACY_FLAGS', `noexpn,novrfy,noverb,noetrn')"],
    );
    let bin = links();
    let script = b"EHLO localhost\nEXPN <admin>\nVRFY <alana>\nMAIL FROM:<root@mx.test>\nRCPT TO:<r@sink.test>\nDATA\nSubject: via -bs\n\nhello\n.\nQUIT\n";
    let out = run(
        bin.path(),
        &daemon.config_path(),
        None,
        "sendmail",
        &["-bs"],
        script,
    );
    let transcript = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{transcript}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = transcript.split("\r\n").collect();
    assert!(
        lines[0].starts_with("220 mx.test ESMTP Postern "),
        "{transcript}"
    );
    let me = nix::unistd::User::from_uid(nix::unistd::Uid::current())
        .unwrap()
        .unwrap()
        .name;
    assert_eq!(
        lines[1],
        format!("250-mx.test Hello {me}@localhost, pleased to meet you")
    );
    assert_eq!(
        &lines[2..10],
        [
            "250-ENHANCEDSTATUSCODES",
            "250-PIPELINING",
            "250-8BITMIME",
            // Postern's default MaxMessageSize (sendmail's is unlimited).
            "250-SIZE 36700160",
            "250-DSN",
            "250-DELIVERBY",
            "250 HELP",
            "502 5.7.0 Sorry, we do not allow this operation"
        ],
        "{transcript}"
    );
    assert_eq!(
        lines[10],
        "252 2.5.2 Cannot VRFY user; try RCPT to attempt delivery (or try finger)"
    );
    assert!(
        transcript.contains("250 2.0.0 ")
            && transcript
                .contains(" Message accepted for delivery\r\n221 2.0.0 mx.test closing connection"),
        "{transcript}"
    );
    let m = sink.wait_for_messages(1, WAIT);
    assert!(String::from_utf8_lossy(&m[0].data).contains("Subject: via -bs"));
}

/// `sendmail -v`: the message is tried at once and the tool shows the SMTP
/// dialogue and the outcome, as the seed's client-side example does; under
/// restrictexpand an untrusted user gets no transcript.
#[test]
fn sendmail_v_shows_the_delivery() {
    ensure_test_users();
    let sink = postern_testkit::Sink::start();
    let daemon = daemon_for(
        sink.addr(),
        &["define(`confPRIVACY_FLAGS', `authwarnings,restrictexpand')"],
    );
    let bin = links();
    let message = b"To: craig@sink.test\nSubject: First STARTTLS test\n\nhello\n";
    let out = run(
        bin.path(),
        &daemon.config_path(),
        None,
        "sendmail",
        &["-Am", "-v", "-t"],
        message,
    );
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(
        shown.contains(&format!(
            "Connecting to [127.0.0.1] port {} via esmtp...",
            sink.addr().port()
        )),
        "{shown}"
    );
    assert!(
        shown.contains(">>> EHLO mx.test") && shown.contains(">>> DATA"),
        "{shown}"
    );
    assert!(shown.contains("craig@sink.test... Sent ("), "{shown}");
    sink.wait_for_messages(1, WAIT);

    if running_as_root() {
        let out = run(
            bin.path(),
            &daemon.config_path(),
            Some("nobody"),
            "sendmail",
            &["-v", "-t"],
            message,
        );
        let shown = text(&out);
        assert!(out.status.success(), "{shown}");
        assert!(
            !shown.contains(">>> EHLO"),
            "restrictexpand must hide the transcript: {shown}"
        );
        assert!(shown.contains("Queued as "), "{shown}");
    }
}

/// Bcc: never leaves the host, with or without -t; -F becomes a quoted
/// display name that cannot add a mailbox to From:.
#[test]
fn bcc_is_removed_and_full_names_stay_names() {
    let sink = postern_testkit::Sink::start();
    let daemon = daemon_for(sink.addr(), &[]);
    let bin = links();
    let message = b"To: a@sink.test\nBcc: b@sink.test\nSubject: blind\n\nx\n";
    let out = run(
        bin.path(),
        &daemon.config_path(),
        None,
        "sendmail",
        &["-F", "ceo@bank.example, Boss", "a@sink.test"],
        message,
    );
    assert!(out.status.success(), "{}", text(&out));
    let m = sink.wait_for_messages(1, WAIT);
    let data = String::from_utf8_lossy(&m[0].data).into_owned();
    assert!(
        !data.contains("Bcc:") && !data.contains("b@sink.test"),
        "{data}"
    );
    assert!(
        data.contains("\r\nFrom: \"ceo@bank.example, Boss\" <"),
        "{data}"
    );
    // The message had no Message-Id: the queue runner made sendmail's,
    // naming the queue ID, and logged it.
    let qid = data
        .split_once(") id ")
        .and_then(|(_, rest)| rest.get(..14))
        .expect("a queue ID in Received:");
    let line = daemon.wait_for_log(&format!("{qid}: from="), WAIT);
    let msgid = line
        .split_once("msgid=")
        .and_then(|(_, rest)| rest.split(',').next())
        .expect("msgid= in the from= line");
    assert!(
        msgid.starts_with('<') && msgid.ends_with(&format!(".{qid}@mx.test>")),
        "{line}"
    );
    assert!(
        data.contains(&format!("\r\nMessage-Id: {msgid}\r\n")),
        "{data}"
    );
}

/// An untrusted user speaking `-bs` as someone else gets sendmail's
/// `owned process doing -bs` warning in the message.
#[test]
fn bs_as_someone_else_is_flagged() {
    let sink = postern_testkit::Sink::start();
    let daemon = daemon_for(sink.addr(), &[]);
    let bin = links();
    let user = if running_as_root() {
        Some("nobody")
    } else {
        None
    };
    let script = b"HELO localhost\nMAIL FROM:<boss@example.com>\nRCPT TO:<r@sink.test>\nDATA\nSubject: -bs\n\nx\n.\nQUIT\n";
    let out = run(
        bin.path(),
        &daemon.config_path(),
        user,
        "sendmail",
        &["-bs"],
        script,
    );
    assert!(out.status.success(), "{}", text(&out));
    let m = sink.wait_for_messages(1, WAIT);
    let data = String::from_utf8_lossy(&m[0].data).into_owned();
    let me = match user {
        Some(u) => u.to_string(),
        None => {
            nix::unistd::User::from_uid(nix::unistd::Uid::current())
                .unwrap()
                .unwrap()
                .name
        }
    };
    if running_as_root() {
        assert!(
            data.contains(&format!(
                "X-Authentication-Warning: mx.test: {me} owned process doing -bs\r\n"
            )),
            "{data}"
        );
    } else {
        // The invoking user is the queue owner here, so trusted: no warning.
        assert!(!data.contains("X-Authentication-Warning"), "{data}");
    }
}
