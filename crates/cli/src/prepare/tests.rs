use super::*;

const DATE: &str = "Tue, 2 Jan 2024 10:00:00 +0100";

fn draft<'a>(recipients: &'a [String], extract: bool) -> Draft<'a> {
    Draft {
        recipients,
        extract_recipients: extract,
        from: "alice@mx.example",
        full_name: None,
        date: DATE,
    }
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn text(p: &Prepared) -> &str {
    std::str::from_utf8(&p.text).unwrap()
}

#[test]
fn missing_from_and_date_are_added_and_headers_kept_byte_for_byte() {
    let rcpts = strings(&["bob@example.net"]);
    let p = prepare(
        b"Subject: hi\r\n  there\r\nX-Odd:  spacing \r\n\r\nbody\r\n",
        &draft(&rcpts, false),
    )
    .unwrap();
    assert_eq!(
        text(&p),
        format!(
            "Date: {DATE}\r\nFrom: alice@mx.example\r\nSubject: hi\r\n  there\r\nX-Odd:  spacing \r\n\r\nbody\r\n"
        )
    );
    assert_eq!(p.recipients, rcpts);
    assert_eq!(p.message_id, None);
}

#[test]
fn present_from_date_and_message_id_are_left_alone() {
    let rcpts = strings(&["bob@example.net"]);
    let raw = b"From: x@y\nDate: Mon, 1 Jan 2024 00:00:00 +0000\nMessage-ID:\n <a.b@c>\n\nbody\n";
    let p = prepare(raw, &draft(&rcpts, false)).unwrap();
    assert_eq!(
        text(&p),
        "From: x@y\nDate: Mon, 1 Jan 2024 00:00:00 +0000\nMessage-ID:\n <a.b@c>\n\r\nbody\n"
    );
    assert_eq!(p.message_id.as_deref(), Some("<a.b@c>"));
}

#[test]
fn full_name_is_a_quoted_display_name() {
    let rcpts = strings(&["bob@example.net"]);
    let mut d = draft(&rcpts, false);
    d.full_name = Some("Craig \"the\" Hunt\r\nBcc: victim@x");
    let p = prepare(b"Subject: x\r\n\r\n", &d).unwrap();
    assert!(
        text(&p).contains("From: \"Craig \\\"the\\\" HuntBcc: victim@x\" <alice@mx.example>\r\n"),
        "{}",
        text(&p)
    );
    assert_eq!(quoted_name("\u{1}"), "");
    assert_eq!(quoted_name("a\\b"), "\"a\\\\b\"");
}

#[test]
fn dash_t_reads_to_cc_and_bcc_and_bcc_is_removed() {
    let suppressed = strings(&["carol@example.org"]);
    let raw = b"To: bob, \"Smith, J\" <j@example.net>, (c) carol@example.org\r\n\
Cc: friends: g@h.example, i@j.example;, Undisclosed recipients:;\r\n\
Bcc: secret@example.com,\r\n j@example.net\r\n\
Subject: t\r\n\r\nbody\r\n";
    let p = prepare(raw, &draft(&suppressed, true)).unwrap();
    assert_eq!(
        p.recipients,
        [
            "bob",
            "j@example.net",
            "g@h.example",
            "i@j.example",
            "secret@example.com"
        ]
    );
    let t = text(&p);
    assert!(!t.contains("Bcc") && !t.contains("secret"), "{t}");
    assert!(t.contains("\r\nTo: bob, "), "{t}");
}

#[test]
fn bcc_is_removed_without_dash_t_too() {
    let rcpts = strings(&["bob@example.net"]);
    let p = prepare(
        b"Bcc: hidden@example.com\r\nSubject: s\r\n\r\nb\r\n",
        &draft(&rcpts, false),
    )
    .unwrap();
    assert!(!text(&p).contains("hidden"), "{}", text(&p));
    assert_eq!(p.recipients, rcpts);
}

#[test]
fn nobody_to_send_to_is_an_error() {
    assert_eq!(
        prepare(b"Subject: s\r\n\r\n", &draft(&[], true)),
        Err(NO_RECIPIENTS)
    );
    let only_suppressed = strings(&["a@b.example"]);
    assert_eq!(
        prepare(b"To: a@b.example\r\n\r\n", &draft(&only_suppressed, true)),
        Err(NO_RECIPIENTS)
    );
    assert_eq!(prepare(b"x", &draft(&[], false)), Err(NO_RECIPIENTS));
}

#[test]
fn a_line_that_is_not_a_header_starts_the_body() {
    let rcpts = strings(&["bob@example.net"]);
    let p = prepare(
        b"Subject: s\r\nnot a header\r\nCc: later@example.com\r\n\r\nbody\r\n",
        &draft(&rcpts, false),
    )
    .unwrap();
    assert_eq!(
        text(&p),
        format!("Date: {DATE}\r\nFrom: alice@mx.example\r\nSubject: s\r\n\r\nnot a header\r\nCc: later@example.com\r\n\r\nbody\r\n")
    );
    let p = prepare(b"just text\n", &draft(&rcpts, false)).unwrap();
    assert_eq!(
        text(&p),
        format!("Date: {DATE}\r\nFrom: alice@mx.example\r\n\r\njust text\n")
    );
    let p = prepare(b"", &draft(&rcpts, false)).unwrap();
    assert_eq!(
        text(&p),
        format!("Date: {DATE}\r\nFrom: alice@mx.example\r\n\r\n")
    );
}

/// Found by fuzzing (fuzz/fuzz_targets/mail_headers.rs): `mail-parser`
/// took a last line without a colon for a header, so the line stayed in
/// the header section (and moved below the blank line when the prepared
/// message was prepared again).
#[test]
fn a_last_line_without_a_colon_is_the_body() {
    let rcpts = strings(&["bob@example.net"]);
    for (raw, body) in [
        (&b"\xc1"[..], &b"\xc1"[..]),
        (b"Subject: s\r\nword", b"word"),
        (b"no colon here", b"no colon here"),
    ] {
        let p = prepare(raw, &draft(&rcpts, false)).unwrap();
        assert!(p.text.ends_with(&[b"\r\n\r\n", body].concat()));
        let again = prepare(&p.text, &draft(&rcpts, false)).unwrap();
        assert_eq!(again.text, p.text, "{}", String::from_utf8_lossy(raw));
    }
}

/// Found by fuzzing (fuzz/fuzz_targets/mail_headers.rs): mail-parser let
/// a malformed Date: (NULs in it) run over the blank line that ends the
/// header section, so a second blank line went in before the body.
#[test]
fn a_malformed_value_does_not_take_the_blank_line() {
    let rcpts = strings(&["bob@example.net"]);
    let raw = b"From: x@y.example\nDate:1a  2nJ024 00:00:00\xb0+08\0\0y\n\r\nbody\n";
    let p = prepare(raw, &draft(&rcpts, false)).unwrap();
    // Nothing to add: the message goes on as it came.
    assert_eq!(p.text, raw);
    let again = prepare(&p.text, &draft(&rcpts, false)).unwrap();
    assert_eq!(again.text, p.text);
}

#[test]
fn duplicates_are_dropped() {
    let rcpts = strings(&["a@b.example", "a@b.example", "c@d.example"]);
    let p = prepare(b"\r\n", &draft(&rcpts, false)).unwrap();
    assert_eq!(p.recipients, ["a@b.example", "c@d.example"]);
}

proptest::proptest! {
    /// Whatever the caller feeds `sendmail`, preparing it does not panic,
    /// and the result has a header section ended by a blank line.
    #[test]
    fn any_input_is_prepared_without_panicking(
        raw in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600),
        header_like in "([A-Za-z-]{1,8}: [ -~]{0,20}\r?\n( [ -~]{0,10}\r?\n)?){0,4}(\r?\n)?",
        extract in proptest::prelude::any::<bool>(),
    ) {
        let rcpts = strings(&["a@b.example"]);
        let mut input = header_like.into_bytes();
        input.extend_from_slice(&raw);
        if let Ok(p) = prepare(&input, &draft(&rcpts, extract)) {
            // Header lines keep their own line ends (LF or CRLF).
            let blank = p.text.windows(3).position(|w| w == b"\n\r\n");
            proptest::prop_assert!(blank.is_some() || p.text.starts_with(b"\r\n"));
            proptest::prop_assert!(!p.recipients.is_empty());
        }
    }
}
