//! sendmail-v.txt: `sendmail -v` as root.

use super::*;

/// The output of sendmail-v.txt's run whose command line ends with
/// `args`, and its exit code.
fn verbose_run(args: &str) -> (Vec<String>, i32) {
    let heading =
        format!("### $PREFIX/usr/libexec/sendmail/sendmail -C $INSTDIR/sendmail.cf {args}");
    command_output("sendmail-v.txt", &heading, 0)
}

/// The sink's port in `Connecting to … port N`, which is the test's.
fn mask_port(line: &str) -> String {
    Regex::new(r" port \d+ via ")
        .unwrap()
        .replace(line, " port <PORT> via ")
        .into_owned()
}

pub(super) const VERBOSE_DIFFERENCES: &[Difference] = &[
    Difference {
        sendmail: "Recipient <rcpt@example.net>... Connecting to [127.0.0.1] port <PORT> via relay...",
        postern: &["rcpt@example.net... Connecting to [127.0.0.1] port <PORT> via relay..."],
        why: "with -t, sendmail -v names a recipient as the To: header writes it (`Recipient <rcpt@example.net>`); Postern by its address",
    },
    Difference {
        sendmail: "Recipient <rcpt@example.net>... Sent (Ok)",
        postern: &["rcpt@example.net... Sent (Ok)"],
        why: "with -t, sendmail -v names a recipient as the To: header writes it (`Recipient <rcpt@example.net>`); Postern by its address",
    },
    Difference {
        sendmail: ">>> MAIL From:<root@mx.example> AUTH=root@mx.example",
        postern: &[">>> MAIL From:<root@mx.example>"],
        why: "MAIL carries no AUTH= parameter: sendmail adds it for a trusted submission when the next hop offers AUTH; Postern's client does not authenticate yet (issue 12)",
    },
    Difference {
        sendmail: ">>> MAIL From:<sender@example.com> AUTH=sender@example.com",
        postern: &[">>> MAIL From:<sender@example.com>"],
        why: "MAIL carries no AUTH= parameter: sendmail adds it for a trusted submission when the next hop offers AUTH; Postern's client does not authenticate yet (issue 12)",
    },
    // The two lines below are one difference: MAIL's reply comes after
    // RCPT and DATA are sent, not before.
    Difference {
        sendmail: "250 2.1.0 Ok",
        postern: &[],
        why: "to a server that offers PIPELINING, Postern sends MAIL, RCPT and DATA together (RFC 2920), one round trip fewer; sendmail waits for MAIL's reply",
    },
    Difference {
        sendmail: ">>> DATA",
        postern: &[">>> DATA", "250 2.1.0 Ok"],
        why: "to a server that offers PIPELINING, Postern sends MAIL, RCPT and DATA together (RFC 2920), one round trip fewer; sendmail waits for MAIL's reply",
    },
];

/// sendmail-v.txt: `sendmail -v` as root, a delivery to a sink that talks
/// like Postfix's smtp-sink, one to a closed port, and one the next hop
/// refuses (run 2, up to the refusal).
#[test]
fn sendmail_v_matches_sendmails() {
    if !postern_testkit::running_as_root() {
        eprintln!("skipped: the sample's submissions are root's (CI runs as root)");
        return;
    }
    let sink = SinkBehavior::new()
        .extensions(&[
            "PIPELINING",
            "8BITMIME",
            "AUTH PLAIN LOGIN",
            "XCLIENT NAME HELO",
            "XFORWARD NAME ADDR PROTO HELO",
            "ENHANCEDSTATUSCODES",
            "DSN",
            "",
        ])
        .data_reply("250 2.0.0 Ok")
        .quit_reply("221 Bye")
        .start();
    // bounce.test's server refuses every RCPT, as the sample's smtp-sink
    // `-f RCPT` did, offering what it offered (no PIPELINING).
    let refusing = SinkBehavior::new()
        .hostname("reject.test")
        .extensions(&[
            "8BITMIME",
            "AUTH PLAIN LOGIN",
            "XCLIENT NAME HELO",
            "XFORWARD NAME ADDR PROTO HELO",
            "ENHANCEDSTATUSCODES",
            "DSN",
            "",
        ])
        .rcpt_reply(
            "user@bounce.test",
            "550 5.1.1 <user@bounce.test>: Recipient address rejected: User unknown",
        )
        .quit_reply("221 Bye")
        .start();
    let daemon = mx_example_routing(
        "authwarnings",
        9,
        Some(&sink),
        None,
        &format!("bounce.test esmtp:[127.0.0.1]:{}\n", refusing.addr().port()),
    );
    let message = "From: Sender <sender@example.com>\nTo: Recipient <rcpt@example.net>\nSubject: sendmail -v test\nMessage-ID: <sendmail-v-test-1@client.example>\n\nHello from sendmail -v.\n";
    let run = |args: &[&str]| {
        let out = sendmail(&daemon.config_path(), args, message);
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        let lines: Vec<String> = text.lines().map(mask_port).collect();
        (lines, out.status.code().unwrap_or(-1))
    };
    let differences: Vec<&Difference> = VERBOSE_DIFFERENCES.iter().collect();
    for (sample_args, args) in [
        (
            "-v -f sender@example.com rcpt@example.net",
            &["-v", "-f", "sender@example.com", "rcpt@example.net"][..],
        ),
        (
            "-v -f sender@example.com u@down.test",
            &["-v", "-f", "sender@example.com", "u@down.test"][..],
        ),
        ("-v -t", &["-v", "-t"][..]),
    ] {
        let (want, want_code) = verbose_run(sample_args);
        let want: Vec<String> = want.iter().map(|l| mask_port(l)).collect();
        let (got, code) = run(args);
        assert_same(
            &format!("sendmail {sample_args}"),
            &expected(&want, &differences),
            &got,
        );
        assert_eq!(code, want_code, "sendmail {sample_args}: exit code");
    }

    // Run 2: the next hop refuses the only recipient. Up to the refusal
    // the dialogue is sendmail's (to a server without PIPELINING, MAIL's
    // reply comes before RCPT); after it sendmail sends RSET and the
    // report, from the same process, and shows that delivery too. Postern
    // names the refusal, closes, and queues the report, which the
    // delivery client sends (bounce-dsn.txt item 4 compares it).
    let sample_args = "-v -f sender@example.com user@bounce.test";
    let (want, want_code) = verbose_run(sample_args);
    let want: Vec<String> = want.iter().map(|l| mask_port(l)).collect();
    let refusal = "550 5.1.1 <user@bounce.test>: Recipient address rejected: User unknown";
    let upto = |lines: &[String]| -> Vec<String> {
        let at = lines
            .iter()
            .position(|l| l == refusal)
            .expect("the refusal");
        lines[..=at].to_vec()
    };
    let auth_only: Vec<&Difference> = VERBOSE_DIFFERENCES
        .iter()
        .filter(|d| d.sendmail.contains("AUTH="))
        .collect();
    let (got, code) = run(&["-v", "-f", "sender@example.com", "user@bounce.test"]);
    assert_same(
        &format!("sendmail {sample_args}, up to the refusal"),
        &expected(&upto(&want), &auth_only),
        &upto(&got),
    );
    assert_eq!(
        &got[upto(&got).len()..],
        [
            format!("user@bounce.test... {refusal}"),
            "Closing connection to [127.0.0.1]".to_string(),
            ">>> QUIT".to_string(),
            "221 Bye".to_string(),
        ]
    );
    assert_eq!(code, want_code, "sendmail {sample_args}: exit code");
    refusing.wait_for_connections(1, WAIT);
    sink.wait_for_messages(2, WAIT);
}
