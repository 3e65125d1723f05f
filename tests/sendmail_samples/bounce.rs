//! bounce-dsn.txt: the DSNs sendmail returned, and their log lines.
//! Items 1 and 2 (a remote 550 to RCPT, without and with RET=HDRS,
//! ENVID, NOTIFY and ORCPT), 3 and 4 (command-line submissions by root,
//! refused by a mailertable `error:` entry and by the next hop under
//! `-v`), 5 (the delay warning) and 6 (the return after
//! Timeout.queuereturn) are played against Postern; 5 and 6 with a
//! warning after 2 seconds and a return after 5 instead of 1 and 4
//! minutes, so the intervals are masked.

use super::*;

/// bounce-dsn.txt by item (`== 1. …`): the message as the sink received
/// it, and the syslog lines (without their syslog prefix).
fn bounce_items() -> Vec<(String, Vec<String>, Vec<String>)> {
    let prefix = Regex::new(r"^<\d+>\w{3} [ \d]\d \d\d:\d\d:\d\d sendmail\[\d+\]: ").unwrap();
    let mut out: Vec<(String, Vec<String>, Vec<String>)> = Vec::new();
    let mut in_message = false;
    for line in sample("bounce-dsn.txt").lines() {
        if let Some(title) = line.strip_prefix("== ") {
            let n = title.split('.').next().unwrap_or("").to_string();
            out.push((n, Vec::new(), Vec::new()));
            in_message = false;
        } else if line.starts_with("------------------------------ message as sent") {
            in_message = true;
        } else if line.starts_with("------------------------------ syslog lines") {
            in_message = false;
        } else if let Some((_, message, log)) = out.last_mut() {
            if in_message {
                message.push(line.to_string());
            } else if prefix.is_match(line) {
                log.push(prefix.replace(line, "").into_owned());
            }
        }
    }
    out
}

/// What differs between two runs of the same report: queue IDs, dates,
/// the product, the boundary's time, Message-Ids, swaks' version, and
/// (items 5 and 6) the intervals.
fn mask_bounce(line: &str) -> String {
    let rules: &[(&str, &str)] = &[
        (
            r"\((8\.17\.1\.9/8\.17\.1\.9/samples|Postern [0-9.]+)\)",
            "(<MTA>)",
        ),
        (
            r"<\d{12}\.[0-9A-Za-z]{14}@mx\.example>",
            "<<STAMP>.<QID>@mx.example>",
        ),
        (r"<\d{14}\.\d+@[\w.-]+>", "<MSGID>"),
        (
            r"\b[0-9A-Za-z]{14}\.\d+/mx\.example",
            "<QID>.<T>/mx.example",
        ),
        (r"\b[0-9A-Za-z]{14}\b", "<QID>"),
        (
            r"\w{3}, \d{1,2} \w{3} \d{4} \d\d:\d\d:\d\d (GMT|[+-]\d{4})",
            "<DATE>",
        ),
        (r"^X-Mailer: swaks .*", "X-Mailer: swaks"),
        (r"\d+ (second|minute|hour|day)s?\b", "<INTERVAL>"),
        (r"pri=\d+", "pri=<N>"),
    ];
    apply_masks(line, rules)
}

/// Nothing differs in the failure reports themselves.
pub(super) const BOUNCE_DIFFERENCES: &[Difference] = &[];

/// Items 5 and 6 were returned by sendmail's queue runner, which knows no
/// longer where the message came from.
pub(super) const QUEUE_RUN_DIFFERENCES: &[Difference] = &[Difference {
    sendmail: "Reporting-MTA: dns; mx.example",
    postern: &[
        "Reporting-MTA: dns; mx.example",
        "Received-From-MTA: DNS; localhost",
    ],
    why: "Received-From-MTA is given whenever the message came over SMTP; sendmail gives it only when the process that received the message also returns it",
}];

/// Items 3 and 4 were submitted on the command line.
pub(super) const COMMAND_LINE_DIFFERENCES: &[Difference] = &[Difference {
    sendmail: "X-Actual-Recipient: rfc822; 550 User unknown@mx.example",
    postern: &["X-Actual-Recipient: rfc822; u@nouser.test"],
    why: "X-Actual-Recipient names the recipient refused by a mailertable `error:` entry; sendmail writes the entry's text there as if it were a user (`rfc822; 550 User unknown@mx.example`)",
}, Difference {
    sendmail: "<QID>: to=sender@example.com, delay=00:00:00, xdelay=00:00:00, mailer=relay, pri=<N>, relay=[127.0.0.1] [127.0.0.1], dsn=2.0.0, stat=Sent (Ok)",
    postern: &["<QID>: to=<sender@example.com>, delay=00:00:00, xdelay=00:00:00, mailer=relay, pri=<N>, relay=[127.0.0.1] [127.0.0.1], dsn=2.0.0, stat=Sent (Ok)"],
    why: "`to=` lines write a mailbox in angle brackets; sendmail writes an address given on the command line (and the report to its sender) as it was given, without them, and adds `ctladdr=`",
}];

/// `mx.example` as the sample's instance was: the smart host `sink`,
/// `bounce.test` to a server refusing every RCPT as the sample's
/// smtp-sink did, `down.test` to a closed port; `extra` lines added.
fn bounce_instance(sink: &Sink, refusing: &Sink, extra: &[&str]) -> postern_testkit::Daemon {
    ensure_test_users();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut builder = DaemonBuilder::new(postern_testkit::binary("posternd"))
        .table("local-host-names", "mx.example\n")
        .table(
            "mailertable",
            format!(
                "bounce.test esmtp:[127.0.0.1]:{}\ndown.test smtp:[127.0.0.1]:{closed_port}\n\
                 nouser.test error:5.1.1:550 User unknown\n",
                refusing.addr().port()
            ),
        )
        .config_line("Dj mx.example")
        .config_line("O LogLevel=9")
        .config_line("O MinQueueAge=1s")
        .config_line(&format!(
            "define(`SMART_HOST', `relay:[127.0.0.1]:{}')",
            sink.addr().port()
        ));
    for line in extra {
        builder = builder.config_line(line);
    }
    builder.start()
}

/// Items 3 and 4: command-line submissions by root, one refused by the
/// mailertable's `error:` mailer, one by the next hop (with `-v`).
#[test]
fn command_line_bounces_match_sendmails() {
    if !postern_testkit::running_as_root() {
        eprintln!("skipped: the sample's submissions are root's (CI runs as root)");
        return;
    }
    let sink = SinkBehavior::new().data_reply("250 2.0.0 Ok").start();
    let refusing = SinkBehavior::new()
        .extensions(&["PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "DSN"])
        .rcpt_reply(
            "user@bounce.test",
            "550 5.1.1 <user@bounce.test>: Recipient address rejected: User unknown",
        )
        .start();
    let daemon = bounce_instance(&sink, &refusing, &[]);
    // sendmail-v.txt's input, its To: changed to the recipient as there.
    let message = |to: &str| {
        format!(
            "From: Sender <sender@example.com>\nTo: {to}\nSubject: sendmail -v test\n\
             Message-ID: <sendmail-v-test-1@client.example>\n\nHello from sendmail -v.\n"
        )
    };
    let differences: Vec<&Difference> = BOUNCE_DIFFERENCES
        .iter()
        .chain(COMMAND_LINE_DIFFERENCES)
        .collect();

    let mark = daemon.log_mark();
    let out = sendmail(
        &daemon.config_path(),
        &["-f", "sender@example.com", "u@nouser.test"],
        &message("u@nouser.test"),
    );
    assert!(out.status.success() || out.status.code() == Some(67));
    daemon.wait_for_log_since(mark, "to=<sender@example.com>", WAIT);
    compare_report(&daemon, &sink, 0, "3", &differences, &differences);

    let mark = daemon.log_mark();
    sendmail(
        &daemon.config_path(),
        &["-v", "-f", "sender@example.com", "user@bounce.test"],
        &message("user@bounce.test"),
    );
    daemon.wait_for_log_since(mark, "to=<sender@example.com>", WAIT);
    compare_report(&daemon, &sink, 1, "4", &differences, &differences);
}

/// Compares the `n`th report `sink` received with item `item`, the part
/// before the returned message with `differences`, the returned message
/// with `returned_differences`; and the report's log lines.
fn compare_report(
    daemon: &postern_testkit::Daemon,
    sink: &Sink,
    n: usize,
    item: &str,
    differences: &[&Difference],
    returned_differences: &[&Difference],
) {
    let items = bounce_items();
    let (_, want_message, want_log) = items.iter().find(|(i, _, _)| i == item).unwrap();
    let m = sink.wait_for_messages(n + 1, WAIT)[n].clone();
    assert_eq!(
        (m.mail_from.as_str(), m.rcpt_to.as_slice()),
        ("", ["sender@example.com".to_string()].as_slice())
    );
    let text = String::from_utf8(m.data).unwrap();
    let got: Vec<String> = text
        .strip_suffix("\r\n")
        .unwrap()
        .split("\r\n")
        .map(mask_bounce)
        .collect();
    let want: Vec<String> = want_message.iter().map(|l| mask_bounce(l)).collect();
    // The returned message starts after the last part's Content-Type.
    let split = |lines: &[String]| {
        let at = lines
            .iter()
            .rposition(|l| l.starts_with("Content-Type: "))
            .unwrap();
        (lines[..=at].to_vec(), lines[at + 1..].to_vec())
    };
    let (want_report, want_returned) = split(&want);
    let (got_report, got_returned) = split(&got);
    assert_same(
        &format!("bounce-dsn.txt item {item}, the report"),
        &expected(&want_report, differences),
        &got_report,
    );
    assert_same(
        &format!("bounce-dsn.txt item {item}, the returned message"),
        &expected(&want_returned, returned_differences),
        &got_returned,
    );
    // The log: the report's line and the report's delivery.
    // The sample's last report line; Postern's `n`th, since the log of
    // items 5 and 6 goes on after the warning.
    let report_line = |lines: &[String], nth: Option<usize>| -> Vec<String> {
        let reports: Vec<usize> = lines
            .iter()
            .enumerate()
            .filter(|(_, l)| l.contains(": DSN: ") || l.contains(": sender notify: "))
            .map(|(i, _)| i)
            .collect();
        let Some(&i) = nth.map_or(reports.last(), |k| reports.get(k)) else {
            return Vec::new();
        };
        let report_id = lines[i].split(": ").nth(1).unwrap().to_string();
        let delivery = lines[i + 1..]
            .iter()
            .find(|l| l.starts_with(&format!("{report_id}: to=")))
            .cloned()
            .unwrap_or_default();
        vec![mask_bounce(&lines[i]), mask_bounce(&delivery)]
    };
    let got_log: Vec<String> = daemon
        .log_lines()
        .iter()
        .map(|l| {
            l.split_once("]: ")
                .map_or(l.clone(), |(_, t)| t.to_string())
        })
        .collect();
    assert_same(
        &format!("bounce-dsn.txt item {item}, the log lines"),
        &expected(&report_line(want_log, None), differences),
        &report_line(&got_log, Some(n)),
    );
}

#[test]
fn bounces_match_sendmails() {
    // Answers as smtp-sink did.
    let sink = SinkBehavior::new().data_reply("250 2.0.0 Ok").start();
    // Refuses as the sample's smtp-sink did, which offered DSN (item 2's
    // transcript shows NOTIFY and ORCPT passed on).
    let refusing = SinkBehavior::new()
        .extensions(&[
            "PIPELINING",
            "8BITMIME",
            "SIZE",
            "ENHANCEDSTATUSCODES",
            "DSN",
        ])
        .rcpt_reply(
            "user@bounce.test",
            "550 5.1.1 <user@bounce.test>: Recipient address rejected: User unknown",
        )
        .start();
    let daemon = bounce_instance(&sink, &refusing, &[]);
    let addr = daemon.smtp_addr();
    let differences: Vec<&Difference> = BOUNCE_DIFFERENCES.iter().collect();

    // 1: swaks, as the sample's cause line says.
    let mark = daemon.log_mark();
    swaks(
        addr,
        "user@bounce.test",
        &[
            "--helo",
            "client.example",
            "--header",
            "Subject: F will bounce",
        ],
    );
    daemon.wait_for_log_since(mark, "to=<sender@example.com>", WAIT);
    compare_report(&daemon, &sink, 0, "1", &differences, &differences);

    // 2: the sample's own session, with RET=HDRS, ENVID, NOTIFY, ORCPT.
    let mark = daemon.log_mark();
    let mut c = SmtpConversation::connect(addr);
    c.read_reply();
    c.cmd("EHLO client.example", "250");
    c.cmd(
        "MAIL FROM:<sender@example.com> RET=HDRS ENVID=envid-0001",
        "250",
    );
    c.cmd(
        "RCPT TO:<user@bounce.test> NOTIFY=FAILURE ORCPT=rfc822;user@bounce.test",
        "250",
    );
    c.cmd("DATA", "354");
    c.send_raw(
        b"From: sender@example.com\r\nTo: rcpt@example.net\r\nSubject: test\r\n\r\ntest body\r\n.\r\n",
    );
    assert!(c.read_reply().starts_with("250 "));
    c.cmd("QUIT", "221");
    daemon.wait_for_log_since(mark, "to=<sender@example.com>", WAIT);
    // The message came without Date: and Message-Id:; both are added on
    // receipt, after Received:, as sendmail adds them.
    compare_report(&daemon, &sink, 1, "2", &differences, &differences);
}

#[test]
fn delay_warnings_and_returns_match_sendmails() {
    let sink = SinkBehavior::new().data_reply("250 2.0.0 Ok").start();
    let refusing = SinkBehavior::new().start();
    let daemon = bounce_instance(
        &sink,
        &refusing,
        &["O Timeout.queuewarn=2s", "O Timeout.queuereturn=5s"],
    );
    swaks(
        daemon.smtp_addr(),
        "u@down.test",
        &[
            "--helo",
            "client.example",
            "--header",
            "Subject: will be delayed then returned",
        ],
    );
    let differences: Vec<&Difference> = BOUNCE_DIFFERENCES
        .iter()
        .chain(QUEUE_RUN_DIFFERENCES)
        .collect();
    daemon.wait_for_log(": sender notify: Warning", WAIT);
    // The warning's own delivery, before the comparison reads the log.
    sink.wait_for_messages(1, WAIT);
    daemon.wait_for_log("to=<sender@example.com>", WAIT);
    compare_report(&daemon, &sink, 0, "5", &differences, &differences);
    daemon.wait_for_log(": sender notify: Cannot send message", WAIT);
    sink.wait_for_messages(2, WAIT);
    poll_until(WAIT, || {
        (daemon
            .log_lines()
            .iter()
            .filter(|l| l.contains("to=<sender@example.com>"))
            .count()
            == 2)
            .then_some(())
    })
    .expect("the return's delivery is logged");
    compare_report(&daemon, &sink, 1, "6", &differences, &differences);
}
