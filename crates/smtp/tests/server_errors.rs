//! Every error path of the server session, as transcripts (STARTTLS and
//! AUTH: `server_tls_auth.rs`).

mod harness;

use harness::{example_org_config as config, greeted, started as session, Harness, Policy};
use postern_smtp::server::{Answer, Event, Output, Question, ServerConfig, Session};
use postern_smtp::{EnhancedCode, PrivacyFlags, Reply};

fn flags(words: &str) -> PrivacyFlags {
    words
        .split(',')
        .map(|w| PrivacyFlags::from_word(w).unwrap())
        .fold(PrivacyFlags::PUBLIC, |a, b| a | b)
}

#[test]
fn bad_sequences_get_503() {
    let mut h = greeted(config());
    h.run(
        "C: RCPT TO:<a@example.org>
         S: 503 5.0.0 Need MAIL before RCPT
         C: DATA
         S: 503 5.0.0 Need MAIL command
         C: MAIL FROM:<s@example.net>
         S: 250 2.1.0 <s@example.net>... Sender ok
         C: DATA
         S: 503 5.0.0 Need RCPT (recipient)
         C: MAIL FROM:<t@example.net>
         S: 503 5.5.0 Sender already specified
         C: RSET
         S: 250 2.0.0 Reset state
         C: RCPT TO:<a@example.org>
         S: 503 5.0.0 Need MAIL before RCPT
         C: NOOP
         S: 250 2.0.0 OK",
    );
}

#[test]
fn need_helo_flags_and_their_texts() {
    let mut h = session(ServerConfig {
        privacy: flags("needmailhelo,needexpnhelo,needvrfyhelo"),
        ..config()
    });
    h.run(
        "C: MAIL FROM:<s@example.net>
         S: 503 5.0.0 Polite people say HELO first
         C: EXPN <admin>
         S: 503 5.0.0 I demand that you introduce yourself first
         C: VRFY <alana>
         S: 503 5.0.0 I demand that you introduce yourself first
         C: HELO client.example
         S: 250 mx.example.org Hello client.example [192.0.2.1], pleased to meet you
         C: VRFY <alana>
         S: 250 2.1.5 Alana Henson <alana@chef.wrotethebook.com>",
    );
}

#[test]
fn goaway_refuses_before_demanding_helo() {
    let mut h = session(ServerConfig {
        privacy: flags("goaway"),
        ..config()
    });
    h.run(
        "C: EXPN <admin>
         S: 502 5.7.0 Sorry, we do not allow this operation
         C: VRFY <alana>
         S: 252 2.5.2 Cannot VRFY user; try RCPT to attempt delivery (or try finger)
         C: VERB
         S: 502 5.7.0 Verbose unavailable
         C: XYZZY secret
         S: 500 5.5.1 Command unrecognized: \"XYZZY secret\"
         C: EHLO client.example
         S: 250-mx.example.org Hello client.example [192.0.2.1], pleased to meet you
         S: 250-ENHANCEDSTATUSCODES
         S: 250-PIPELINING
         S: 250-8BITMIME
         S: 250-SIZE
         S: 250-DSN
         S: 250-ETRN
         S: 250-DELIVERBY
         S: 250 HELP",
    );
    let refused: Vec<_> = h
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Refused { verb, arg } => Some(format!("{verb} {arg}")),
            _ => None,
        })
        .collect();
    assert_eq!(refused, ["EXPN <admin>", "VRFY <alana>"]);
}

#[test]
fn noetrn_noreceipts_and_size_change_the_ehlo_and_the_replies() {
    let mut h = session(ServerConfig {
        privacy: flags("noetrn,noreceipts"),
        max_message_size: 10_000_000,
        deliver_by_min: None,
        ..config()
    });
    h.run(
        "C: EHLO client.example
         S: 250-mx.example.org Hello client.example [192.0.2.1], pleased to meet you
         S: 250-ENHANCEDSTATUSCODES
         S: 250-PIPELINING
         S: 250-EXPN
         S: 250-VERB
         S: 250-8BITMIME
         S: 250-SIZE 10000000
         S: 250 HELP
         C: ETRN example.org
         S: 502 5.7.0 Sorry, we do not allow this operation
         C: MAIL FROM:<s@example.net> RET=HDRS
         S: 504 5.7.0 Sorry, RET not supported, we do not allow DSN
         C: MAIL FROM:<s@example.net> SIZE=10000001
         S: 552 5.2.3 Message size exceeds fixed maximum message size (10000000)
         C: MAIL FROM:<s@example.net> BY=60;R
         S: 555 5.5.4 BY parameter unrecognized
         C: MAIL FROM:<s@example.net> SIZE=100
         S: 250 2.1.0 <s@example.net>... Sender ok
         C: RCPT TO:<a@example.org> NOTIFY=SUCCESS
         S: 504 5.7.0 Sorry, NOTIFY not supported, we do not allow DSN",
    );
}

#[test]
fn helo_and_path_syntax_errors() {
    let mut h = session(config());
    h.run(
        "C: HELO
         S: 501 5.0.0 HELO requires domain address
         C: EHLO bad<name>
         S: 501 5.0.0 Invalid domain name
         C: EHLO [192.0.2.1]
         S: 250-mx.example.org Hello client.example [192.0.2.1], pleased to meet you
         S: 250-ENHANCEDSTATUSCODES
         S: 250-PIPELINING
         S: 250-EXPN
         S: 250-VERB
         S: 250-8BITMIME
         S: 250-SIZE
         S: 250-DSN
         S: 250-ETRN
         S: 250-DELIVERBY
         S: 250 HELP
         C: MAIL
         S: 501 5.5.2 Syntax error in parameters scanning \"\"
         C: MAIL FROM:<a..b@example.net>
         S: 553 5.1.7 <a..b@example.net>... Invalid address syntax
         C: MAIL FROM:<user>
         S: 553 5.5.4 <user>... Domain name required for sender address user
         C: MAIL FROM:<s@exa_mple.net>
         S: 553 5.1.8 <s@exa_mple.net>... Invalid domain
         C: MAIL FROM:<s@example.net> BODY=BINARYMIME
         S: 501 5.5.4 Unknown BODY type BINARYMIME
         C: MAIL FROM:<s@example.net> FOO=BAR
         S: 555 5.5.4 FOO parameter unrecognized
         C: MAIL FROM:<>
         S: 250 2.1.0 <>... Sender ok
         C: RCPT
         S: 501 5.5.2 Syntax error in parameters scanning \"\"
         C: RCPT TO:
         S: 501 5.5.2 Syntax error in parameters scanning \"TO\"
         C: rcpt to:<unclosed@example.net
         S: 553 5.0.0 <unclosed@example.net... Unbalanced '<'
         C: RCPT TO:<>
         S: 553 5.0.0 <>... User address required
         C: RCPT TO:<\"quoted user\"@[192.0.2.7]>
         S: 250 2.1.5 <\"quoted user\"@[192.0.2.7]>... Recipient ok
         C: RCPT TO:<postmaster>
         S: 250 2.1.5 <postmaster>... Recipient ok",
    );
    let too_long = format!("MAIL FROM:<{}@example.net>\r\n", "x".repeat(65));
    assert_eq!(
        h.send(too_long.as_bytes()),
        "503 5.5.0 Sender already specified\r\n"
    );
    h.send(b"RSET\r\n");
    assert_eq!(h.send(too_long.as_bytes()), "501 5.1.7 Path too long\r\n");
    let long_rcpt = format!(
        "MAIL FROM:<s@example.net>\r\nRCPT TO:<a@{}.example>\r\n",
        "d".repeat(64)
    );
    assert_eq!(
        h.send(long_rcpt.as_bytes()),
        format!(
            "250 2.1.0 <s@example.net>... Sender ok\r\n553 5.1.2 <a@{}.example>... Invalid domain\r\n",
            "d".repeat(64)
        )
    );
}

#[test]
fn too_many_recipients() {
    let mut h = greeted(ServerConfig {
        max_recipients: 2,
        ..config()
    });
    h.run(
        "C: MAIL FROM:<s@example.net>
         C: RCPT TO:<a@example.org>
         C: RCPT TO:<b@example.org>
         C: RCPT TO:<c@example.org>
         S: 250 2.1.0 <s@example.net>... Sender ok
         S: 250 2.1.5 <a@example.org>... Recipient ok
         S: 250 2.1.5 <b@example.org>... Recipient ok
         S: 452 4.5.3 Too many recipients",
    );
}

#[test]
fn refused_recipient_is_not_in_the_envelope() {
    let mut policy = Policy::default();
    policy.refuse_rcpt.insert(
        "nobody@example.org".into(),
        Reply::new(
            550,
            EnhancedCode::new(5, 1, 1),
            "<nobody@example.org>... User unknown",
        ),
    );
    let mut h = Harness::new(config(), policy);
    h.drain();
    h.run(
        "C: HELO client.example
         S: 250 mx.example.org Hello client.example [192.0.2.1], pleased to meet you
         C: MAIL FROM:<s@example.net>
         C: RCPT TO:<nobody@example.org>
         C: RCPT TO:<a@example.org>
         S: 250 2.1.0 <s@example.net>... Sender ok
         S: 550 5.1.1 <nobody@example.org>... User unknown
         S: 250 2.1.5 <a@example.org>... Recipient ok
         C: DATA
         S: 354 Enter mail, end with \".\" on a line by itself
         C: hi
         C: .
         S: 250 2.0.0 h0UGn9P7001230 Message accepted for delivery",
    );
    let (env, body) = &h.committed[0];
    assert_eq!(env.recipients.len(), 1);
    assert_eq!(env.protocol, "SMTP");
    assert_eq!(body, b"hi\r\n");
}

#[test]
fn unknown_and_overlong_commands() {
    let mut h = greeted(config());
    h.run(
        "C: FOO bar
         S: 500 5.5.1 Command unrecognized: \"FOO bar\"",
    );
    let long_noop = format!("NOOP {}\r\n", "x".repeat(600));
    assert_eq!(h.send(long_noop.as_bytes()), "500 5.5.2 Line too long\r\n");
    // MAIL gets the allowances of the extensions it may carry.
    let long_mail = format!("MAIL FROM:<s@example.net> ENVID={}\r\n", "e".repeat(100));
    assert!(h.send(long_mail.as_bytes()).starts_with("250 2.1.0"));
    let flood = vec![b'A'; 3000];
    assert_eq!(
        h.send(&flood),
        "421 4.7.0 mx.example.org Command too long, possible attack client.example [192.0.2.1]\r\n"
    );
    assert!(h.closed);
    assert!(h.events.contains(&Event::CommandTooLong));
}

#[test]
fn bare_line_ends_in_commands_are_errors_not_line_ends() {
    let mut h = greeted(config());
    assert_eq!(h.send(b"NOOP\nQUIT\n"), "");
    assert_eq!(
        h.send(b"\r\n"),
        "500 5.5.2 Bare linefeed (LF) not allowed\r\n"
    );
    assert_eq!(
        h.send(b"NOOP\rQUIT\r\n"),
        "500 5.5.2 Bare carriage return (CR) not allowed\r\n"
    );
    assert!(!h.closed);
}

/// Found by fuzzing (fuzz/fuzz_targets/smtp_server.rs): the quoted
/// command carried its NUL and escape bytes into the reply, which
/// Postern's own client refuses as malformed.
#[test]
fn an_unrecognized_command_is_quoted_without_its_control_characters() {
    let mut h = greeted(config());
    assert_eq!(
        h.send(b"W\0\x1b[2J\r\n"),
        "500 5.5.1 Command unrecognized: \"W  [2J\"\r\n"
    );
}

#[test]
fn twenty_five_bad_commands_close_the_session() {
    let mut h = greeted(config());
    let mut replies = String::new();
    for _ in 0..25 {
        replies = h.send(b"BOGUS\r\n");
    }
    assert_eq!(
        replies,
        "500 5.5.1 Command unrecognized: \"BOGUS\"\r\n421 4.7.0 mx.example.org Too many bad commands; closing connection\r\n"
    );
    assert!(h.closed);
}

#[test]
fn smuggled_commands_after_a_bare_lf_dot_are_message_text_and_the_message_is_refused() {
    let mut h = greeted(config());
    h.send(b"MAIL FROM:<s@example.net>\r\nRCPT TO:<a@example.org>\r\nDATA\r\n");
    let replies = h.send(
        b"Subject: hi\r\n\r\nreal body\n.\nMAIL FROM:<ceo@bank.example>\r\nRCPT TO:<victim@example.org>\r\nDATA\r\nspoofed\r\n.\r\n",
    );
    assert_eq!(replies, "550 5.6.0 Bare linefeed (LF) not allowed\r\n");
    assert!(h.committed.is_empty());
    assert_eq!(h.aborted, 1);
    // Only the one sender was ever checked: the smuggled MAIL never ran.
    let senders = h
        .questions
        .iter()
        .filter(|q| matches!(q, postern_smtp::server::Question::Sender { .. }))
        .count();
    assert_eq!(senders, 1);
    // The session is back in command mode and usable.
    assert_eq!(h.send(b"NOOP\r\n"), "250 2.0.0 OK\r\n");
}

#[test]
fn data_with_bare_cr_nul_or_too_many_octets_is_refused() {
    for (body, reply) in [
        (
            &b"a\rb\r\n.\r\n"[..],
            "550 5.6.0 Bare carriage return (CR) not allowed\r\n",
        ),
        (
            b"a\0b\r\n.\r\n",
            "554 5.6.0 Message contains NUL characters\r\n",
        ),
        (
            b"0123456789abcdef\r\n.\r\n",
            "552 5.2.3 Message exceeds maximum fixed size (10)\r\n",
        ),
    ] {
        let mut h = greeted(ServerConfig {
            max_message_size: 10,
            ..config()
        });
        h.send(b"MAIL FROM:<s@example.net>\r\nRCPT TO:<a@example.org>\r\nDATA\r\n");
        assert_eq!(h.send(body), reply);
        assert!(h.committed.is_empty());
    }
}

#[test]
fn dot_stuffed_lines_are_unstuffed_across_writes() {
    let mut h = greeted(config());
    h.send(b"MAIL FROM:<s@example.net>\r\nRCPT TO:<a@example.org>\r\nDATA\r\n");
    for chunk in [&b"..one\r"[..], b"\n", b".", b".two\r\n.", b"\r", b"\n"] {
        h.send(chunk);
    }
    assert_eq!(h.committed[0].1, b".one\r\n.two\r\n");
}

#[test]
fn pipelined_transaction_gets_its_replies_in_one_write() {
    let mut h = greeted(config());
    let replies = h.send(
        b"MAIL FROM:<s@example.net>\r\nRCPT TO:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n",
    );
    assert_eq!(
        replies,
        "250 2.1.0 <s@example.net>... Sender ok\r\n\
         250 2.1.5 <a@example.org>... Recipient ok\r\n\
         250 2.1.5 <b@example.org>... Recipient ok\r\n\
         354 Enter mail, end with \".\" on a line by itself\r\n"
    );
    // The end of data may be followed by more commands in the same write.
    assert_eq!(
        h.send(b"x\r\n.\r\nQUIT\r\n"),
        "250 2.0.0 h0UGn9P7001230 Message accepted for delivery\r\n221 2.0.0 mx.example.org closing connection\r\n"
    );
}

#[test]
fn traffic_before_the_ehlo_or_354_reply_is_refused() {
    let mut h = session(config());
    assert_eq!(
        h.send(b"EHLO client.example\r\nMAIL FROM:<s@example.net>\r\n"),
        "554 5.5.0 SMTP protocol error\r\n"
    );
    assert!(h.closed);
    assert!(h
        .events
        .contains(&Event::PipeliningViolation { phase: "EHLO" }));

    let mut h = greeted(config());
    let replies =
        h.send(b"MAIL FROM:<s@example.net>\r\nRCPT TO:<a@example.org>\r\nDATA\r\nbody\r\n.\r\n");
    assert!(
        replies.ends_with("554 5.5.0 SMTP protocol error\r\n"),
        "{replies}"
    );
    assert!(h.closed && h.committed.is_empty());

    // sendmail -bs reads scripts from a pipe: there the check is off.
    let mut h = session(ServerConfig {
        pipelining_sync: false,
        ..config()
    });
    let replies = h.send(b"HELO client.example\r\nMAIL FROM:<s@example.net>\r\n");
    assert!(replies.ends_with("250 2.1.0 <s@example.net>... Sender ok\r\n"));
}

#[test]
fn verb_etrn_help_and_vrfy_errors() {
    let mut h = greeted(config());
    h.run(
        "C: VERB
         S: 250 2.0.0 Verbose mode
         C: ETRN
         S: 500 5.5.2 Parameter required
         C: ETRN example.org
         S: 250 2.0.0 Queuing for node example.org started
         C: ETRN @example.org
         S: 250 2.0.0 Queuing for node @example.org started
         C: ETRN #mqueue
         S: 250 2.0.0 Queuing for queue group mqueue started
         C: VRFY
         S: 501 5.5.2 Argument required
         C: VRFY <>
         S: 554 5.5.2 Nothing to VRFY
         C: VRFY <nobody>
         S: 550 5.1.1 <nobody>... User unknown
         C: HELP nosuch
         S: 504 5.3.0 HELP topic \"nosuch\" unknown
         C: HELP quit
         S: 214-2.0.0 QUIT
         S: 214-2.0.0 \tExit.
         S: 214 2.0.0 End of HELP info",
    );
    assert!(h.session.is_verbose());
    // Each ETRN that goes to the queue is logged (sendmail's `ETRN <arg>`);
    // the one without an argument is not.
    let etrns: Vec<&str> = h
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Etrn { arg } => Some(arg.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(etrns, ["example.org", "@example.org", "#mqueue"]);
    let mut h = greeted(ServerConfig {
        help: None,
        version: "1.0".into(),
        ..config()
    });
    assert_eq!(
        h.send(b"HELP\r\n"),
        "502 5.3.0 Postern 1.0 -- HELP not implemented\r\n"
    );
}

#[test]
fn refused_open_and_commit_keep_nothing() {
    let policy = Policy {
        refuse_open: Some(Reply::new(
            452,
            EnhancedCode::new(4, 4, 5),
            "Insufficient disk space; try again later",
        )),
        ..Policy::default()
    };
    let mut h = Harness::new(config(), policy);
    h.drain();
    h.send(b"HELO c.example\r\n");
    h.send(b"MAIL FROM:<s@example.net>\r\nRCPT TO:<a@example.org>\r\n");
    assert_eq!(
        h.send(b"DATA\r\n"),
        "452 4.4.5 Insufficient disk space; try again later\r\n"
    );

    let policy = Policy {
        refuse_commit: Some(Reply::new(
            451,
            EnhancedCode::new(4, 3, 0),
            "Queue write error",
        )),
        ..Policy::default()
    };
    let mut h = Harness::new(config(), policy);
    h.drain();
    h.send(b"HELO c.example\r\n");
    h.send(b"MAIL FROM:<s@example.net>\r\nRCPT TO:<a@example.org>\r\nDATA\r\n");
    assert_eq!(h.send(b"x\r\n.\r\n"), "451 4.3.0 Queue write error\r\n");
    // The transaction is over either way.
    assert_eq!(
        h.send(b"RCPT TO:<a@example.org>\r\n"),
        "503 5.0.0 Need MAIL before RCPT\r\n"
    );
}

#[test]
fn authwarnings_notes_a_missing_helo() {
    let mut h = session(config());
    h.send(b"MAIL FROM:<s@example.net>\r\nRCPT TO:<a@example.org>\r\nDATA\r\n");
    h.send(b".\r\n");
    assert_eq!(
        h.committed[0].0.auth_warnings,
        ["client.example [192.0.2.1] didn't use HELO protocol"]
    );
}

#[test]
fn authwarnings_notes_an_address_literal_that_is_not_the_clients() {
    let warnings = |helo: &str| {
        let mut h = session(config());
        h.send(format!("EHLO {helo}\r\n").as_bytes());
        h.send(b"MAIL FROM:<s@example.net>\r\nRCPT TO:<a@example.org>\r\nDATA\r\n");
        h.send(b".\r\n");
        h.committed[0].0.auth_warnings.clone()
    };
    assert_eq!(
        warnings("[198.51.100.7]"),
        ["Host client.example [192.0.2.1] claimed to be [198.51.100.7]"]
    );
    assert!(warnings("[192.0.2.1]").is_empty());
    assert!(warnings("anything.example").is_empty());
}

#[test]
fn timeout_closes_with_421_and_drops_a_partial_message() {
    let mut h = greeted(config());
    h.send(b"MAIL FROM:<s@example.net>\r\nRCPT TO:<a@example.org>\r\nDATA\r\n");
    h.send(b"partial");
    assert_eq!(
        h.session.current_timeout(),
        std::time::Duration::from_secs(3600)
    );
    h.session.timed_out();
    assert_eq!(
        String::from_utf8(h.drain()).unwrap(),
        "421 4.4.2 mx.example.org timeout waiting for input from client.example [192.0.2.1]\r\n"
    );
    assert!(h.closed && h.aborted == 1 && h.committed.is_empty());
}

#[test]
fn noreflection_hides_the_command_text() {
    let mut h = session(ServerConfig {
        privacy: flags("noreflection"),
        ..config()
    });
    h.run(
        "C: XYZZY secret
         S: 500 5.5.1 Command unrecognized: \"(suppressed)\"",
    );
}

/// Found by fuzzing (fuzz/fuzz_targets/smtp_server.rs): without the
/// pipelining sync points (sendmail -bs), message text that came in the
/// same read as DATA was passed on, and its commit asked, before the 354.
#[test]
fn the_354_goes_out_before_any_message_text() {
    let mut cfg = config();
    cfg.pipelining_sync = false;
    let mut session = Session::new(cfg);
    session.receive(
        b"HELO x\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\ntext\r\n.\r\n",
    );
    let mut sent = String::new();
    let mut order = Vec::new();
    while let Some(output) = session.poll_output() {
        match output {
            Output::Send(bytes) => sent.push_str(&String::from_utf8_lossy(&bytes)),
            Output::MessageData(_) => order.push(sent.contains("354 ")),
            Output::Ask(Question::Commit(_)) => {
                order.push(sent.contains("354 "));
                let queue_id = "6AP8Cx00006826".parse().unwrap();
                session.answer(Answer::Queued { queue_id }).unwrap();
            }
            Output::Ask(_) => session.answer(Answer::Accept).unwrap(),
            _ => {}
        }
    }
    assert_eq!(order, [true, true], "text or commit before the 354");
    assert!(sent.ends_with("250 2.0.0 6AP8Cx00006826 Message accepted for delivery\r\n"));
}

/// Found by fuzzing (fuzz/fuzz_targets/smtp_server.rs): text pipelined
/// behind DATA closed the session, and the message file the shell had
/// opened was dropped only after the Close, which a shell need not read
/// past.
#[test]
fn a_message_refused_for_traffic_before_354_is_dropped_before_the_close() {
    let mut session = Session::new(config());
    session.receive(b"EHLO x\r\n");
    session.receive(b"MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\ntext\r\n");
    let mut outputs = Vec::new();
    while let Some(output) = session.poll_output() {
        if let Output::Ask(_) = output {
            session.answer(Answer::Accept).unwrap();
        } else if matches!(output, Output::AbortMessage | Output::Close) {
            outputs.push(output);
        }
    }
    assert_eq!(outputs, [Output::AbortMessage, Output::Close]);
}
