//! Local submissions with sendmail's DSN flags, end to end: `sendmail
//! -N` (NOTIFY), `-R` (RET), `-V` (ENVID) and `-B` (BODY) reach the
//! queue as MAIL FROM's and RCPT TO's parameters do, and a user sees
//! their effect: a return receipt, no bounce, a bounce with only the
//! headers, the envelope ID in the report (parsed with Python's `email`
//! package, `bounces/dsn.py`), the parameters on the wire to a next hop
//! that speaks DSN. Values sendmail refuses end the tool with exit 64
//! before anything is queued.

mod common;

use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};

use common::dsn::Dsn;
use common::WAIT;
use postern_testkit::{
    ensure_test_users, poll_until, wait_for_maildir, Daemon, DaemonBuilder, ReceivedMessage, Sink,
    SinkBehavior,
};

/// `mx.example` (Postern, delivering `root@mx.example` to a Maildir);
/// `example.com`, where the sender lives, routed to `senders`;
/// `bounce.test` to a sink refusing `user@bounce.test` with 550 5.1.1;
/// `dsn.test` to a sink that offers DSN and 8BITMIME.
struct World {
    daemon: Daemon,
    senders: Sink,
    with_dsn: Sink,
    _refusing: Sink,
}

const REFUSAL: &str = "550 5.1.1 <user@bounce.test>: Recipient address rejected: User unknown";

fn world() -> World {
    ensure_test_users();
    let senders = SinkBehavior::new().start();
    let refusing = SinkBehavior::new()
        .rcpt_reply("user@bounce.test", REFUSAL)
        .start();
    let with_dsn = SinkBehavior::new()
        .extensions(&["PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "DSN"])
        .start();
    let mailertable = format!(
        "example.com esmtp:[127.0.0.1]:{}\n\
         bounce.test esmtp:[127.0.0.1]:{}\n\
         dsn.test esmtp:[127.0.0.1]:{}\n",
        senders.addr().port(),
        refusing.addr().port(),
        with_dsn.addr().port(),
    );
    let daemon = DaemonBuilder::new(postern_testkit::binary("posternd"))
        .table("mailertable", mailertable)
        .table("local-host-names", "mx.example\n")
        .config_line("Dj mx.example")
        .config_line("O LogLevel=14")
        .config_line("O MinQueueAge=1s")
        .start();
    World {
        daemon,
        senders,
        with_dsn,
        _refusing: refusing,
    }
}

/// Runs `sendmail args` (the `postern` binary under that name) against
/// `daemon`, with `message` on standard input.
fn sendmail(daemon: &Daemon, args: &[&str], message: &str) -> Output {
    let mut child = Command::new(postern_testkit::binary("postern"))
        .arg0("sendmail")
        .args(args)
        .env("POSTERN_CONFIG", daemon.config_path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sendmail runs");
    // A tool that refuses its command line exits without reading: a
    // broken pipe here is its answer, read from its exit status.
    let _ = std::io::Write::write_all(&mut child.stdin.take().unwrap(), message.as_bytes());
    child.wait_with_output().unwrap()
}

/// Submits a message with subject `subject` from `sender@example.com`
/// with `flags` and `recipients`; returns its queue ID, read from the
/// `from=` line that names its Message-Id.
fn submit(daemon: &Daemon, flags: &[&str], recipients: &[&str], subject: &str) -> String {
    let mut args = vec!["-f", "sender@example.com"];
    args.extend_from_slice(flags);
    args.extend_from_slice(recipients);
    let message = format!(
        "Subject: {subject}\nMessage-Id: <{subject}@submit.test>\n\nThe body of {subject}.\n"
    );
    let out = sendmail(daemon, &args, &message);
    assert!(
        out.status.success(),
        "sendmail {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = daemon.wait_for_log(&format!("msgid=<{subject}@submit.test>"), WAIT);
    let before = line.split(": from=<").next().unwrap();
    before.rsplit(' ').next().unwrap().to_string()
}

/// The report Postern logged for message `id` (`DSN: …`), waited for.
fn report_logged(daemon: &Daemon, id: &str) -> String {
    poll_until(WAIT, || {
        daemon
            .log_lines()
            .into_iter()
            .find(|l| l.contains(&format!("{id}: ")) && l.contains(": DSN: "))
    })
    .unwrap_or_else(|| panic!("no DSN line for {id}:\n{}", daemon.log_lines().join("\n")))
}

fn reports_logged_for(daemon: &Daemon, id: &str) -> usize {
    daemon
        .log_lines()
        .iter()
        .filter(|l| l.contains(&format!("{id}: ")) && l.contains(": DSN: "))
        .count()
}

/// The `n`th (from 0) message that reached the senders' sink: a report.
fn nth_report(sink: &Sink, n: usize) -> ReceivedMessage {
    let m = sink.wait_for_messages(n + 1, WAIT)[n].clone();
    assert_eq!(m.mail_from, "", "a report comes from <>");
    assert_eq!(m.rcpt_to, ["sender@example.com"]);
    m
}

#[test]
fn notify_success_to_a_mailbox_gets_a_receipt_with_the_envelope_id() {
    let w = world();
    let id = submit(
        &w.daemon,
        &["-N", "success", "-V", "receipt+2D1"],
        &["root@mx.example"],
        "receipt",
    );
    wait_for_maildir(&w.daemon.mail_dir().join("root/Maildir"), 1, WAIT);
    assert!(report_logged(&w.daemon, &id).ends_with("DSN: Return receipt"));
    let d = Dsn::parse(&nth_report(&w.senders, 0).data);
    assert_eq!(d.get("top.Subject"), "Return receipt");
    assert_eq!(d.get("msg.Original-Envelope-Id"), "receipt-1");
    assert_eq!(d.get("rcpt.0.Final-Recipient"), "RFC822; root@mx.example");
    assert_eq!(d.get("rcpt.0.Action"), "delivered (to mailbox)");
    assert_eq!(d.get("rcpt.0.Status"), "2.0.0");

    // Without -N, the same delivery reports nothing.
    let plain = submit(&w.daemon, &[], &["root@mx.example"], "plain");
    w.daemon.wait_for_log(&format!("{plain}: done;"), WAIT);
    assert_eq!(reports_logged_for(&w.daemon, &plain), 0);
    assert_eq!(w.senders.messages().len(), 1);
}

#[test]
fn notify_never_gets_no_bounce_and_ret_hdrs_only_the_headers() {
    let w = world();
    let never = submit(&w.daemon, &["-N", "never"], &["user@bounce.test"], "never");
    w.daemon.wait_for_log(&format!("{never}: done;"), WAIT);
    assert_eq!(reports_logged_for(&w.daemon, &never), 0);

    // -R hdrs: the bounce carries the headers only; -V names the envelope.
    let hdrs = submit(
        &w.daemon,
        &["-R", "hdrs", "-V", "hdrs-envelope"],
        &["user@bounce.test"],
        "hdrs",
    );
    assert!(report_logged(&w.daemon, &hdrs).ends_with("DSN: User unknown"));
    // The first report to arrive is this one: -N never made none.
    let d = Dsn::parse(&nth_report(&w.senders, 0).data);
    assert_eq!(d.get("msg.Original-Envelope-Id"), "hdrs-envelope");
    assert_eq!(d.get("rcpt.0.Final-Recipient"), "RFC822; user@bounce.test");
    assert_eq!(d.get("rcpt.0.Action"), "failed");
    assert_eq!(d.get("rcpt.0.Status"), "5.1.1");
    assert_eq!(d.get("returned.type"), "text/rfc822-headers");
    assert_eq!(d.get("returned.Subject"), "hdrs");
    assert!(!d.get("returned.body").contains("The body of"));

    // -R full: the whole message.
    let full = submit(&w.daemon, &["-Rfull"], &["user@bounce.test"], "full");
    report_logged(&w.daemon, &full);
    let d = Dsn::parse(&nth_report(&w.senders, 1).data);
    assert_eq!(d.get("returned.type"), "message/rfc822");
    assert_eq!(d.get("returned.Subject"), "full");
    assert!(d.get("returned.body").contains("The body of full."));
    assert!(!d.has("msg.Original-Envelope-Id"));
    assert_eq!(w.senders.messages().len(), 2);
}

#[test]
fn a_next_hop_that_speaks_dsn_gets_the_parameters() {
    let w = world();
    let id = submit(
        &w.daemon,
        &[
            "-N",
            "success,delay",
            "-R",
            "hdrs",
            "-V",
            "relay+2B1",
            "-B",
            "8bitmime",
        ],
        &["x@dsn.test", "y@dsn.test"],
        "relayed",
    );
    // sendmail's bodytype= in the from= line.
    let from = w.daemon.wait_for_log(&format!("{id}: from=<"), WAIT);
    assert!(from.contains(", bodytype=8BITMIME,"), "{from}");
    let m = w.with_dsn.wait_for_messages(1, WAIT)[0].clone();
    assert_eq!(m.mail_from, "sender@example.com");
    let mail: Vec<&str> = m.mail_params.split_whitespace().collect();
    for param in ["RET=HDRS", "ENVID=relay+2B1", "BODY=8BITMIME"] {
        assert!(mail.contains(&param), "{param} not in MAIL {mail:?}");
    }
    assert_eq!(m.rcpt_to, ["x@dsn.test", "y@dsn.test"]);
    for params in &m.rcpt_params {
        let words: Vec<&str> = params.split_whitespace().collect();
        assert!(words.contains(&"NOTIFY=SUCCESS,DELAY"), "RCPT {words:?}");
    }
    // The next hop took the duty to report: no receipt from here.
    w.daemon.wait_for_log(&format!("{id}: done;"), WAIT);
    assert_eq!(reports_logged_for(&w.daemon, &id), 0);

    // -t: the recipients found in the headers get -N's NOTIFY too.
    let out = sendmail(
        &w.daemon,
        &["-t", "-f", "sender@example.com", "-N", "failure"],
        "To: z@dsn.test\nSubject: headers\n\nbody\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m = w.with_dsn.wait_for_messages(2, WAIT)[1].clone();
    assert_eq!(m.rcpt_to, ["z@dsn.test"]);
    assert!(
        m.rcpt_params[0]
            .split_whitespace()
            .any(|p| p == "NOTIFY=FAILURE"),
        "{:?}",
        m.rcpt_params
    );
    assert!(!m.mail_params.contains("RET="), "{}", m.mail_params);
}

#[test]
fn values_sendmail_refuses_end_the_tool_with_64_and_queue_nothing() {
    let w = world();
    for (flags, text) in [
        (
            &["-N", "bogus"][..],
            "sendmail: Invalid -N argument \"bogus\"",
        ),
        (&["-N", "never,success"], "sendmail: Invalid -N argument"),
        (&["-R", "xyz"], "sendmail: Invalid -R value \"xyz\""),
        (&["-R", "hdrs", "-R", "full"], "sendmail: Duplicate -R flag"),
        (&["-V", "a+zz"], "sendmail: Invalid syntax in -V flag"),
        (
            &["-B", "binarymime"],
            "sendmail: Illegal body type binarymime",
        ),
    ] {
        let mut args = flags.to_vec();
        args.push("root@mx.example");
        let out = sendmail(&w.daemon, &args, "Subject: refused\n\nnot sent\n");
        assert_eq!(out.status.code(), Some(64), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.starts_with(text), "{args:?}: {stderr}");
    }
    // A good submission after them is the only message the queue runner
    // ever saw.
    let id = submit(&w.daemon, &["-N", "failure"], &["root@mx.example"], "good");
    w.daemon.wait_for_log(&format!("{id}: done;"), WAIT);
    let received: Vec<String> = w
        .daemon
        .log_lines()
        .into_iter()
        .filter(|l| l.contains(": from=<"))
        .collect();
    assert_eq!(received.len(), 1, "{received:#?}");
    wait_for_maildir(&w.daemon.mail_dir().join("root/Maildir"), 1, WAIT);
}
