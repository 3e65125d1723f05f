//! `sendmail -bs` against the fake master: the session, refusals, ETRN,
//! the timeouts.

use super::*;

#[test]
fn bs_session_submits_through_master() {
    let fake = Fake::new();
    let seen = fake.serve(vec![ControlReply::Submitted {
        queue_id: qid("0AP8Cx00006826"),
    }]);
    // MAIL FROM's and RCPT TO's DSN parameters travel on, as a front's do.
    let input = "EHLO localhost\nMAIL FROM:<me@example.net> RET=HDRS ENVID=e+2B1 BODY=8BITMIME\nRCPT TO:<bob@example.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b+2Bb@example.com\nRCPT TO:<carol@example.com>\nDATA\nSubject: t\n\nhello\n..dot\n.\nQUIT\n";
    let out = fake.run("sendmail", &["-bs"], input);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.split("\r\n").collect();
    assert!(
        lines[0].starts_with("220 test.example ESMTP Postern "),
        "{text}"
    );
    assert!(
        lines[1].starts_with("250-test.example Hello ")
            && lines[1].ends_with("@localhost, pleased to meet you"),
        "{text}"
    );
    assert!(
        text.contains("\r\n250 2.1.0 <me@example.net>... Sender ok\r\n"),
        "{text}"
    );
    assert!(
        text.contains("\r\n250 2.1.5 <bob@example.com>... Recipient ok\r\n"),
        "{text}"
    );
    assert!(
        text.contains("\r\n354 Enter mail, end with \".\" on a line by itself\r\n"),
        "{text}"
    );
    assert!(
        text.contains("\r\n250 2.0.0 0AP8Cx00006826 Message accepted for delivery\r\n"),
        "{text}"
    );
    assert!(
        text.ends_with("\r\n221 2.0.0 test.example closing connection\r\n"),
        "{text}"
    );
    assert!(
        !text.contains("STARTTLS") && !text.contains("AUTH"),
        "{text}"
    );
    let seen = one(seen);
    assert_eq!(
        seen.hello.request,
        ControlRequest::Submit(Submission {
            sender: Some("me@example.net".into()),
            recipients: vec![
                EnvelopeRecipient {
                    address: "bob@example.com".into(),
                    notify: Some(Notify {
                        success: true,
                        failure: true,
                        ..Default::default()
                    }),
                    orcpt: Some(postern_ipc::Orcpt {
                        addr_type: "rfc822".into(),
                        address: "b+b@example.com".into(),
                    }),
                    target: None,
                },
                rcpt("carol@example.com", None),
            ],
            envid: Some("e+1".into()),
            ret: Some(Ret::Hdrs),
            body: Some(BodyType::EightBitMime),
            from_headers: false,
            message_id: None,
            verbose: false,
            smtp: true,
            session: Some(postern_ipc::SmtpSession {
                helo: Some("localhost".into()),
                protocol: "ESMTP".into(),
            }),
        })
    );
    assert_eq!(
        without_date(&seen.message.unwrap()),
        "Date: *\r\nFrom: me@example.net\r\nSubject: t\r\n\r\nhello\r\n.dot\r\n"
    );
}

#[test]
fn bs_refusal_and_lost_input() {
    let fake = Fake::new();
    let seen = fake.serve(vec![ControlReply::Failed {
        message: "the mail queue is not available; try again later".into(),
        exit_code: Sysexit::TempFail,
    }]);
    let input = "HELO localhost\r\nMAIL FROM:<>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\nx\r\n.\r\n";
    let out = fake.run("sendmail", &["-bs"], input);
    let text = stdout(&out);
    assert!(
        text.contains("\r\n451 4.3.0 the mail queue is not available; try again later\r\n"),
        "{text}"
    );
    assert!(
        text.ends_with("\r\n421 4.4.1 test.example Lost input channel\r\n"),
        "{text}"
    );
    let ControlRequest::Submit(sub) = one(seen).hello.request else {
        panic!("not a submission")
    };
    assert_eq!(sub.sender.as_deref(), Some(""));
}

/// ETRN under -bs: root's starts a queue run for the node, or for the
/// whole queue with `#mqueue` (an unknown group gets sendmail's 459);
/// anyone else is neither offered ETRN nor allowed it.
#[test]
fn bs_etrn() {
    let fake = Fake::new();
    let input = "EHLO localhost\nETRN example.com\nETRN #mqueue\nETRN #nosuch\nQUIT\n";
    if is_root() {
        let done = ControlReply::Done {
            message: String::new(),
        };
        let seen = fake.serve(vec![done.clone(), done]);
        let text = stdout(&fake.run("sendmail", &["-bs"], input));
        assert!(text.contains("\r\n250-ETRN\r\n"), "{text}");
        for line in [
            "250 2.0.0 Queuing for node example.com started",
            "250 2.0.0 Queuing for queue group mqueue started",
            "459 4.5.4 Queue nosuch unknown",
        ] {
            assert!(text.contains(&format!("\r\n{line}\r\n")), "{text}");
        }
        let seen = seen.join().unwrap();
        assert_eq!(seen.len(), 2);
        assert!(matches!(
            &seen[0].hello.request,
            ControlRequest::RunQueue { selector: Some(s) } if s.substring == "@example.com" && s.field == SelectorField::Recipient
        ));
        assert_eq!(
            seen[1].hello.request,
            ControlRequest::RunQueue { selector: None }
        );
    }
    let out = if is_root() {
        fake.run_as_nobody("sendmail", &["-bs"], input)
    } else {
        fake.run("sendmail", &["-bs"], input)
    };
    let text = stdout(&out);
    assert!(
        text.contains("Hello nobody@localhost") || !is_root(),
        "{text}"
    );
    assert!(!text.contains("ETRN"), "{text}");
    assert!(
        text.contains("\r\n502 5.7.0 Sorry, we do not allow this operation\r\n"),
        "{text}"
    );
}

/// A silent peer does not hold `sendmail -bs` for ever: Timeout.command
/// applies, with the daemon's 421, while standard input stays open.
#[test]
fn bs_times_out_on_silent_input() {
    let fake = Fake::new();
    let config = fake.dir.path().join("timeouts.cf");
    std::fs::write(
        &config,
        format!(
            "O ControlSocket={}\nDj test.example\nO Timeout.command=1s\n",
            fake.socket.display()
        ),
    )
    .unwrap();
    let started = std::time::Instant::now();
    let mut child = Command::new(fake.tool("sendmail"))
        .arg("-bs")
        .env("POSTERN_CONFIG", &config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Kept open and silent until the tool is done.
    let mut input = child.stdin.take().unwrap();
    input.write_all(b"EHLO localhost\r\n").unwrap();
    let out = child.wait_with_output().unwrap();
    drop(input);
    let text = stdout(&out);
    assert!(
        text.contains("\r\n421 4.4.2 test.example timeout waiting for input from ")
            && text.ends_with("@localhost\r\n"),
        "{text}"
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}
