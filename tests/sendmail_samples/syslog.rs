//! syslog-loglevel9.txt: the log lines at LogLevel 9.

use super::*;

/// syslog-loglevel9.txt's lines by step (`#### A …`), each without the
/// syslog prefix (`<22>Dec  2 00:38:00 sendmail[16239]: `).
fn syslog_steps(file: &str) -> Vec<(String, Vec<String>)> {
    let prefix = Regex::new(r"^<\d+>\w{3} [ \d]\d \d\d:\d\d:\d\d sendmail\[\d+\]: ").unwrap();
    let mut out: Vec<(String, Vec<String>)> = vec![("start".into(), Vec::new())];
    for line in sample(file).lines() {
        if let Some(title) = line.strip_prefix("#### ") {
            out.push((
                title.split(' ').next().unwrap_or("").to_string(),
                Vec::new(),
            ));
        } else if prefix.is_match(line) {
            let text = prefix.replace(line, "").into_owned();
            out.last_mut().unwrap().1.push(text);
        }
    }
    out
}

/// Log lines made alike: queue IDs, sizes, priorities, Message-IDs,
/// delays.
fn mask_log(line: &str) -> String {
    let rules: &[(&str, &str)] = &[
        (r"\b[0-9A-Za-z]{14}: ", "<QID>: "),
        (r"size=\d+", "size=<N>"),
        (r"pri=\d+", "pri=<N>"),
        (r"msgid=<[^>]*>", "msgid=<ID>"),
        (r"delay=\d\d:\d\d:\d\d", "delay=<T>"),
        // The closed port, which is the test's.
        (r"\]\.\d+ \(2\)\) failed", "].<PORT> (2)) failed"),
    ];
    apply_masks(line, rules)
}

pub(super) const SYSLOG_DIFFERENCES: &[Difference] = &[
    Difference {
        sendmail: "<QID>: localhost [127.0.0.1]: VRFY rcpt@example.net [rejected]",
        postern: &["localhost [127.0.0.1]: VRFY rcpt@example.net [rejected]"],
        why: "lines about a session without a message carry no queue ID: sendmail makes one for every session, Postern only for a message",
    },
    Difference {
        sendmail: "<QID>: localhost [127.0.0.1]: EXPN rcpt@example.net [rejected]",
        postern: &["localhost [127.0.0.1]: EXPN rcpt@example.net [rejected]"],
        why: "lines about a session without a message carry no queue ID: sendmail makes one for every session, Postern only for a message",
    },
];

/// syslog-loglevel9.txt: the lines a relayed message, a deferred one, two
/// STARTTLS sessions, refused VRFY/EXPN and two bounces (one of them
/// undeliverable for now) leave at LogLevel 9. (Step C needs the access
/// map's recipient keys, issue 12; H a queue run a minute later.)
#[test]
fn log_lines_at_loglevel_9_match_sendmails() {
    let certs = make_certs();
    // Answers as smtp-sink did.
    let sink = SinkBehavior::new().data_reply("250 2.0.0 Ok").start();
    let refusing = SinkBehavior::new()
        .rcpt_reply(
            "user@bounce.test",
            "550 5.1.1 <user@bounce.test>: Recipient address rejected: User unknown",
        )
        .start();
    let daemon = mx_example_routing(
        "authwarnings,noexpn,novrfy",
        9,
        Some(&sink),
        Some(certs.path()),
        &format!("bounce.test esmtp:[127.0.0.1]:{}\n", refusing.addr().port()),
    );
    let addr = daemon.smtp_addr();
    let steps = syslog_steps("syslog-loglevel9.txt");
    let differences: Vec<&Difference> = SYSLOG_DIFFERENCES.iter().collect();
    let swaks = |to: &str, extra: &[&str]| {
        let mut args = vec!["--helo", "client.example"];
        args.extend_from_slice(extra);
        swaks(addr, to, &args)
    };
    let cert = certs.path().join("cert.pem").display().to_string();
    let key = certs.path().join("key.pem").display().to_string();
    let run_step = |step: &str, act: &dyn Fn(), last: &str| {
        let mark = daemon.log_mark();
        act();
        daemon.wait_for_log_since(mark, last, WAIT);
        let got: Vec<String> = daemon.log_lines()[mark..]
            .iter()
            .map(|l| mask_log(l.split_once("]: ").map_or(l.as_str(), |(_, t)| t)))
            .collect();
        let (_, want) = steps.iter().find(|(s, _)| s == step).unwrap();
        let want: Vec<String> = want.iter().map(|l| mask_log(l)).collect();
        assert_same(
            &format!("log lines of step {step}"),
            &expected(&want, &differences),
            &got,
        );
    };
    run_step(
        "A",
        &|| swaks("rcpt@example.net", &[]),
        "to=<rcpt@example.net>",
    );
    run_step("B", &|| swaks("u@down.test", &[]), "to=<u@down.test>");
    run_step(
        "D1",
        &|| swaks("rcpt@example.net", &["--tls"]),
        "to=<rcpt@example.net>",
    );
    run_step(
        "D2",
        &|| {
            swaks(
                "rcpt@example.net",
                &["--tls", "--tls-cert", &cert, "--tls-key", &key],
            )
        },
        "to=<rcpt@example.net>",
    );
    run_step(
        "E",
        &|| {
            let mut c = SmtpConversation::connect(addr);
            c.read_reply();
            c.cmd("EHLO client.example", "250");
            c.cmd("VRFY rcpt@example.net", "252");
            c.cmd("EXPN rcpt@example.net", "502");
            c.cmd("QUIT", "221");
        },
        "EXPN rcpt@example.net [rejected]",
    );
    run_step(
        "F",
        &|| swaks("user@bounce.test", &[]),
        "to=<sender@example.com>",
    );
    run_step(
        "G",
        &|| {
            let out = Command::new("swaks")
                .args(["--server", &addr.ip().to_string()])
                .args(["--port", &addr.port().to_string()])
                .args(["--helo", "client.example"])
                .args(["--from", "sender@down.test", "--to", "user@bounce.test"])
                .output()
                .unwrap();
            assert!(out.status.success());
        },
        "to=<sender@down.test>",
    );
}

pub(super) const SYSLOG_14_DIFFERENCES: &[Difference] = &[
    Difference {
        sendmail: "<QID>: Milter: no active filter",
        postern: &["Milter: no active filter"],
        why: "lines about a session without a message carry no queue ID: sendmail makes one for every session, Postern only for a message",
    },
    Difference {
        sendmail: "NOQUEUE: connect from localhost [127.0.0.1]",
        postern: &["connect from localhost [127.0.0.1] (connection <N>)"],
        why: "connect from carries Postern's connection number, which the front-channel lines name too, and no NOQUEUE",
    },
    Difference {
        sendmail: "AUTH: available mech=*",
        postern: &[],
        why: "no AUTH lines until AUTH is configured (issue 12)",
    },
    Difference {
        sendmail: "AUTH=client, relay=*",
        postern: &[],
        why: "no AUTH lines until AUTH is configured (issue 12)",
    },
    Difference {
        sendmail: "<QID>: SMTP outgoing connect on localhost",
        postern: &[],
        why: "the outgoing connection is named in the to= line (relay=) and, when it fails, by makeconnection; there is no line for a connection that works",
    },
];

/// syslog-loglevel14.txt, steps A and B: what LogLevel 14 adds.
#[test]
fn log_lines_at_loglevel_14_match_sendmails() {
    let sink = SinkBehavior::new().data_reply("250 2.0.0 Ok").start();
    let daemon = mx_example("authwarnings,noexpn,novrfy", 14, Some(&sink), None);
    let addr = daemon.smtp_addr();
    let steps = syslog_steps("syslog-loglevel14.txt");
    let differences: Vec<&Difference> = SYSLOG_14_DIFFERENCES.iter().collect();
    let connection = Regex::new(r"\(connection \d+\)").unwrap();
    for (step, to) in [("A", "rcpt@example.net"), ("B", "u@down.test")] {
        let mark = daemon.log_mark();
        let reply = postern_testkit::smtp_send(
            addr,
            "sender@example.com",
            &[to],
            b"Subject: fourteen\r\nMessage-ID: <14@client.example>\r\n\r\nx\r\n",
        )
        .unwrap();
        assert!(reply.starts_with("250 "), "{reply}");
        let last = if step == "A" {
            ": done; delay="
        } else {
            "to=<u@down.test>"
        };
        daemon.wait_for_log_since(mark, last, WAIT);
        let got: Vec<String> = daemon.log_lines()[mark..]
            .iter()
            .map(|l| l.split_once("]: ").map_or(l.as_str(), |(_, t)| t))
            .map(|l| {
                connection
                    .replace(&mask_log(l), "(connection <N>)")
                    .into_owned()
            })
            .collect();
        let (_, want) = steps.iter().find(|(s, _)| s == step).unwrap();
        let want: Vec<String> = want.iter().map(|l| mask_log(l)).collect();
        assert_same(
            &format!("log lines of step {step} at LogLevel 14"),
            &expected(&want, &differences),
            &got,
        );
    }
}
