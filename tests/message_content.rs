//! What Postern adds to a message and what it changes on the way out, as
//! the next hop sees it: a message received without `Date:` or
//! `Message-Id:` gets them right after the Received: header (sendmail's
//! place), one of each; a header section that has them is left alone; a
//! line longer than 998 octets is broken with CRLF and a space (Postfix's
//! `smtp_line_length_limit`), a line within the limit never. Messages are
//! sent with Python's smtplib and the sink's copy is read back with
//! Python's `email` package.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{daemon_with_sink, strip_received, WAIT};
use postern_testkit::{Daemon, ReceivedMessage, Sink};

/// Sends `message` from stdin with smtplib, as a mail client would.
const SEND: &str = r#"
import smtplib, sys
host, port = sys.argv[1], int(sys.argv[2])
with smtplib.SMTP(host, port, local_hostname="client.example") as s:
    s.sendmail("sender@example.net", ["rcpt@sink.test"], sys.stdin.buffer.read())
"#;

/// Prints each header of the message on stdin as `name<TAB>value`, in
/// order, as Python's `email` package reads them, then the body.
const HEADERS: &str = r#"
import email, email.policy, sys
m = email.message_from_binary_file(sys.stdin.buffer, policy=email.policy.compat32)
for name, value in m.items():
    print(name + "\t" + " ".join(value.split()))
sys.stdout.write("BODY\t" + repr(m.get_payload()) + "\n")
"#;

fn send(daemon: &Daemon, message: &[u8]) {
    let addr = daemon.smtp_addr();
    let mut child = Command::new("python3")
        .args(["-c", SEND, &addr.ip().to_string(), &addr.port().to_string()])
        .stdin(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child.stdin.take().unwrap().write_all(message).unwrap();
    assert!(child.wait().unwrap().success(), "smtplib failed");
}

/// The headers (name, unfolded value) and the body, as `email` sees them.
fn parse(message: &[u8]) -> (Vec<(String, String)>, String) {
    let mut child = Command::new("python3")
        .args(["-c", HEADERS])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child.stdin.take().unwrap().write_all(message).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let mut headers = Vec::new();
    let mut body = String::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let (name, value) = line.split_once('\t').unwrap();
        if name == "BODY" {
            body = value.to_string();
        } else {
            headers.push((name.to_string(), value.to_string()));
        }
    }
    (headers, body)
}

fn names(headers: &[(String, String)]) -> Vec<&str> {
    headers.iter().map(|(n, _)| n.as_str()).collect()
}

fn value<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    &headers.iter().find(|(n, _)| n == name).unwrap().1
}

/// Relays one message through a fresh daemon; the sink's copy and the
/// daemon (for its log).
fn relay(message: &[u8]) -> (ReceivedMessage, Daemon, Sink) {
    let sink = Sink::start();
    let daemon = daemon_with_sink(&sink, &[]);
    send(&daemon, message);
    let m = sink.wait_for_messages(1, WAIT)[0].clone();
    (m, daemon, sink)
}

#[test]
fn a_message_without_date_and_message_id_gets_one_of_each_after_received() {
    let (m, daemon, _sink) =
        relay(b"From: sender@example.net\r\nTo: rcpt@sink.test\r\nSubject: bare\r\n\r\nhello\r\n");
    let (headers, body) = parse(&m.data);
    assert_eq!(
        names(&headers),
        ["Received", "Date", "Message-Id", "From", "To", "Subject"]
    );
    assert_eq!(body, "'hello\\n'");
    // The Message-Id is sendmail's: the minute, the queue ID, $j.
    let received = value(&headers, "Received");
    let queue_id = received
        .split(" id ")
        .nth(1)
        .unwrap()
        .split([';', ' '])
        .next()
        .unwrap();
    let host = received
        .split(" by ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap();
    let message_id = value(&headers, "Message-Id");
    let stamp = message_id
        .strip_prefix('<')
        .unwrap()
        .strip_suffix(&format!(".{queue_id}@{host}>"))
        .unwrap_or_else(|| panic!("{message_id} does not name {queue_id}@{host}"));
    assert!(stamp.len() == 12 && stamp.bytes().all(|b| b.is_ascii_digit()));
    // The Date: is the Received: header's.
    assert!(received.ends_with(value(&headers, "Date")));
    // And the log's msgid= is the one added.
    daemon.wait_for_log(
        &format!("{queue_id}: from=<sender@example.net>, size="),
        WAIT,
    );
    assert!(daemon
        .log_lines()
        .iter()
        .any(|l| l.contains(&format!("{queue_id}: from="))
            && l.contains(&format!(", msgid={message_id}, "))));
}

#[test]
fn headers_already_present_in_any_case_are_not_added_again() {
    let original: &[u8] =
        b"date: Thu, 3 Dec 2026 10:00:00 +0000\r\nSubject: dated\r\n\r\nhello\r\n";
    let (m, _daemon, _sink) = relay(original);
    let (headers, _) = parse(&m.data);
    assert_eq!(
        names(&headers),
        ["Received", "Message-Id", "date", "Subject"]
    );

    let complete: &[u8] = b"Subject: whole\r\nMESSAGE-ID: <a.b@example.net>\r\nDate: Thu, 3 Dec 2026 10:00:00 +0000\r\n\r\nhello\r\n";
    let (m, _daemon, _sink) = relay(complete);
    assert_eq!(strip_received(&m.data), complete);
}

#[test]
fn a_message_without_a_header_section_keeps_its_text_as_the_body() {
    let (m, _daemon, _sink) = relay(b"just a line of text\r\nand another\r\n");
    let (headers, body) = parse(&m.data);
    assert_eq!(names(&headers), ["Received", "Date", "Message-Id"]);
    assert_eq!(body, "'just a line of text\\nand another\\n'");
}

#[test]
fn lines_over_998_octets_are_broken_with_crlf_space_and_no_other_line_changes() {
    let at_limit = "a".repeat(998);
    let long = "b".repeat(2500);
    let long_header = format!("X-Long: {}", "c".repeat(1200));
    let message = format!(
        "Subject: long lines\r\nDate: Thu, 3 Dec 2026 10:00:00 +0000\r\nMessage-Id: <long@example.net>\r\n{long_header}\r\n\r\n{at_limit}\r\n{long}\r\n.{at_limit}\r\nend\r\n"
    );
    let (m, _daemon, _sink) = relay(message.as_bytes());
    let text = String::from_utf8(strip_received(&m.data).to_vec()).unwrap();
    let lines: Vec<&str> = text.split("\r\n").collect();
    assert!(
        lines.iter().all(|l| l.len() <= 998),
        "a line over 998 octets reached the next hop"
    );
    // The header is folded; `email` unfolds it to its text with one space
    // at the break.
    let (headers, _) = parse(&m.data);
    let folded = value(&headers, "X-Long");
    assert_eq!(folded.replace(' ', ""), "c".repeat(1200));
    // The body: the 998-octet line as it was, the long one broken after
    // 998, 997 and 997 octets (each continuation starts with a space), the
    // dotted one after its 998th octet.
    let body_at = lines.iter().position(|l| l.is_empty()).unwrap() + 1;
    assert_eq!(
        &lines[body_at..],
        [
            at_limit.as_str(),
            &long[..998],
            &format!(" {}", &long[998..1995]),
            &format!(" {}", &long[1995..2500]),
            &format!(".{}", &at_limit[..997]),
            " a",
            "end",
            "",
        ]
    );
}
