//! Mail filters end to end: the daemon's fronts talking to real filters
//! (a libmilter filter written with Debian's pymilter; OpenDKIM), and to
//! filters that are down, stall or babble, with sendmail's replies and
//! log lines, and nothing acknowledged lost.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::filters::{relaying_daemon as daemon, send};
use common::WAIT;
use postern_testkit::{poll_until, Sink, SmtpConversation};

/// A filter process, stopped by its PID when the test ends.
struct FilterProcess {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for FilterProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `every_action.py` (crates/milter/tests/filters) on a unix socket in a
/// directory FrontUser may enter; the socket's path.
fn every_action_filter() -> (FilterProcess, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let socket = dir.path().join("every.sock");
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../crates/milter/tests/filters/every_action.py");
    let child = Command::new("/usr/bin/python3")
        .arg(&script)
        .arg(format!("unix:{}", socket.display()))
        .spawn()
        .expect("/usr/bin/python3 with python3-milter (scripts/test.sh installs it)");
    let mut process = FilterProcess { child, _dir: dir };
    let ready = poll_until(WAIT, || {
        if let Ok(Some(status)) = process.child.try_wait() {
            panic!("the filter exited: {status}");
        }
        std::os::unix::net::UnixStream::connect(&socket).ok()
    });
    assert!(ready.is_some(), "the filter never listened");
    (process, socket)
}

fn header_block(data: &[u8]) -> String {
    let text = String::from_utf8_lossy(data);
    text.split("\r\n\r\n").next().unwrap_or("").to_string()
}

#[test]
fn every_action_of_a_libmilter_filter_is_in_the_delivered_message() {
    let sink = Sink::start();
    let (_filter, socket) = every_action_filter();
    let d = daemon(
        &sink,
        &[format!(
            "INPUT_MAIL_FILTER(`every', `S=unix:{}, F=T, T=S:10s;R:10s;E:1m')",
            socket.display()
        )],
    );
    let mut c = common::filters::session(&d, "client.example");
    let reply = send(
        &mut c,
        "s@example.com",
        &["r@example.net", "gone@example.org"],
        "From: s@example.com\r\nSubject: hello\r\nX-Drop: one\r\nX-Drop: two\r\n\r\nplease replace me\r\n",
    );
    assert!(reply.starts_with("250 2.0.0 "), "{reply}");
    c.cmd("QUIT", "221");
    let m = sink.wait_for_messages(1, WAIT).remove(0);
    assert_eq!(m.mail_from, "filter@example.org");
    let mut rcpts = m.rcpt_to.clone();
    rcpts.sort();
    assert_eq!(rcpts, ["added@example.org", "r@example.net"]);
    let text = String::from_utf8_lossy(&m.data).into_owned();
    let head = header_block(&m.data);
    // Inserted at position 0: above Postern's own Received:.
    assert!(
        head.starts_with("X-First: yes\r\nReceived: from client.example"),
        "{text}"
    );
    assert!(head.contains("\r\nSubject: [filtered] hello\r\n"), "{text}");
    assert_eq!(head.matches("X-Drop:").count(), 1, "{head}");
    assert!(head.contains("\r\nX-Drop: one"), "{head}");
    let seen = head
        .lines()
        .find(|l| l.starts_with("X-Seen: "))
        .unwrap_or_else(|| panic!("no X-Seen in {head}"));
    for part in [
        "connect=localhost 127.0.0.1",
        "helo=client.example",
        "from=<s@example.com>",
        "rcpts=2",
        "headers=4",
        "daemon=MTA",
    ] {
        assert!(seen.contains(part), "{part} not in {seen}");
    }
    // The Message-Id Postern supplied, as the filter saw it in {msg_id}.
    let msg_id = head
        .lines()
        .find_map(|l| l.strip_prefix("Message-Id: "))
        .unwrap_or_else(|| panic!("no Message-Id in {head}"));
    assert!(seen.ends_with(&format!("msg={msg_id}")), "{seen}");
    assert!(text.ends_with("\r\n\r\nreplaced body\r\n"), "{text}");
    for line in [
        "Milter add: header: X-Seen: connect=localhost",
        "Milter insert (0): header: X-First: yes",
        "Milter change: header Subject: from hello to [filtered] hello",
        "Milter delete: header X-Drop: two",
        "Milter add: rcpt: <added@example.org>",
        "Milter delete: rcpt <gone@example.org>",
        "Milter chgfrom: <filter@example.org>",
        "Milter message: body replaced",
        "Milter accept: message",
    ] {
        d.wait_for_log(line, WAIT);
    }
}

#[test]
fn refusals_at_each_stage_are_sendmails() {
    let sink = Sink::start();
    let (_filter, socket) = every_action_filter();
    let d = daemon(
        &sink,
        &[format!(
            "INPUT_MAIL_FILTER(`every', `S=unix:{}, F=T')",
            socket.display()
        )],
    );
    let mut c = common::filters::session(&d, "client.example");
    // An unknown command goes to the filters too (sendmail's
    // milter_unknown), whose reply replaces the 500.
    c.cmd("XYZZY", "502 5.5.1 Nothing happens");
    c.cmd("FROBNICATE", "500 5.5.1 Command unrecognized");
    c.cmd(
        "MAIL FROM:<reject-mail@example.com>",
        "550 5.7.1 Command rejected",
    );
    c.cmd("MAIL FROM:<s@example.com>", "250");
    c.cmd(
        "RCPT TO:<tempfail@example.net>",
        "451 4.3.2 Please try again later",
    );
    let custom = c.cmd("RCPT TO:<custom@example.net>", "550");
    assert_eq!(custom, "550-5.7.1 first line\n550 5.7.1 second line");
    c.cmd("RCPT TO:<r@example.net>", "250");
    c.cmd("DATA", "354");
    // The EICAR test file, refused at end of message as clamav-milter
    // refuses it.
    c.send_raw(
        b"Subject: attachment\r\n\r\nX5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*\r\n.\r\n",
    );
    assert_eq!(
        c.read_reply(),
        "554 5.7.1 virus found: Eicar-Test-Signature"
    );
    c.cmd("MAIL FROM:<s@example.com>", "250");
    c.cmd("RCPT TO:<r@example.net>", "250");
    c.cmd("DATA", "354");
    c.send_raw(b"Subject: discard\r\n\r\nthrown away\r\n.\r\n");
    let discarded = c.read_reply();
    assert!(discarded.starts_with("250 2.0.0 "), "{discarded}");
    let id = &discarded[10..24];
    c.cmd("QUIT", "221");
    for line in [
        "Milter: from=<reject-mail@example.com>, reject=550 5.7.1 Command rejected".to_string(),
        "Milter: to=<tempfail@example.net>, reject=451 4.3.2 Please try again later".to_string(),
        "Milter: data, discard".to_string(),
        format!("{id}: discarded"),
    ] {
        d.wait_for_log(&line, WAIT);
    }
    // Nothing reached the sink, and nothing waits in the queue.
    assert!(sink.messages().is_empty());
}

#[test]
fn a_quarantined_message_is_held_with_the_filters_reason() {
    let sink = Sink::start();
    let (_filter, socket) = every_action_filter();
    let d = daemon(
        &sink,
        &[format!(
            "INPUT_MAIL_FILTER(`every', `S=unix:{}')",
            socket.display()
        )],
    );
    let mut c = common::filters::session(&d, "client.example");
    let reply = send(
        &mut c,
        "s@example.com",
        &["r@example.net"],
        "Subject: quarantine me\r\n\r\nheld\r\n",
    );
    assert!(reply.starts_with("250 2.0.0 "), "{reply}");
    c.cmd("QUIT", "221");
    d.wait_for_log("milter=every, quarantine=held by the test", WAIT);
    // mailq is the tool under that name.
    let links = tempfile::tempdir().unwrap();
    let mailq = links.path().join("mailq");
    std::os::unix::fs::symlink(postern_testkit::binary("postern"), &mailq).unwrap();
    let listing = poll_until(WAIT, || {
        let out = Command::new(&mailq)
            .env("POSTERN_CONFIG", d.config_path())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.contains("QUARANTINE: held by the test")
            .then_some(text)
    });
    assert!(listing.is_some(), "mailq never showed the quarantine");
    assert!(sink.messages().is_empty());
}

/// A local submission (`sendmail -t`) is relayed to the MTA listener
/// first, as sendmail's MSP relays to `[127.0.0.1]`, and the filters see
/// it there: it arrives with their changes.
#[test]
fn local_submissions_go_through_the_filters() {
    let sink = Sink::start();
    let (_filter, socket) = every_action_filter();
    let d = daemon(
        &sink,
        &[format!(
            "INPUT_MAIL_FILTER(`every', `S=unix:{}')",
            socket.display()
        )],
    );
    let links = tempfile::tempdir().unwrap();
    let sendmail = links.path().join("sendmail");
    std::os::unix::fs::symlink(postern_testkit::binary("postern"), &sendmail).unwrap();
    let mut child = Command::new(&sendmail)
        .arg("-t")
        .env("POSTERN_CONFIG", d.config_path())
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"To: r@example.net\nSubject: local\n\nplease replace me\n")
        .unwrap();
    assert!(child.wait().unwrap().success());
    let m = sink.wait_for_messages(1, WAIT).remove(0);
    let text = String::from_utf8_lossy(&m.data).into_owned();
    let head = header_block(&m.data);
    assert!(head.contains("\r\nSubject: [filtered] local\r\n"), "{text}");
    assert!(
        head.contains("X-Seen: connect=localhost 127.0.0.1"),
        "{text}"
    );
    assert!(text.ends_with("\r\n\r\nreplaced body\r\n"), "{text}");
    // The first hop: to the MTA listener, with sendmail's MSP mailer.
    d.wait_for_log("mailer=relay, pri=", WAIT);
    assert!(
        d.log_lines().iter().any(
            |l| l.contains("to=<r@example.net>") && l.contains("relay=[127.0.0.1] [127.0.0.1]")
        ),
        "{}",
        d.log_lines().join("\n")
    );
}

/// A fake filter on a loopback port: negotiates as a version 6 filter
/// wanting every step, then plays `script` with the rest of the session.
fn fake_filter(script: fn(&mut TcpStream)) -> (SocketAddr, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let t = std::thread::spawn(move || {
        listener.set_nonblocking(false).unwrap();
        // One connection per session the test makes, at most a few.
        for stream in listener.incoming().take(4) {
            let Ok(mut s) = stream else { return };
            let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
            if read_packet(&mut s).is_none() {
                continue;
            }
            let mut data = Vec::new();
            for w in [6u32, 0x1ff, 0] {
                data.extend_from_slice(&w.to_be_bytes());
            }
            write_packet(&mut s, b'O', &data);
            script(&mut s);
        }
    });
    (addr, t)
}

fn read_packet(s: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).ok()?;
    let mut buf = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).ok()?;
    Some((buf[0], buf[1..].to_vec()))
}

fn write_packet(s: &mut TcpStream, code: u8, data: &[u8]) {
    let mut out = ((data.len() + 1) as u32).to_be_bytes().to_vec();
    out.push(code);
    out.extend_from_slice(data);
    let _ = s.write_all(&out);
}

/// Answers `continue` to everything until `stage` (a command byte), then
/// does `then`.
fn until(s: &mut TcpStream, stage: u8, then: fn(&mut TcpStream)) {
    while let Some((code, _)) = read_packet(s) {
        match code {
            b'D' | b'A' => {} // macros and abort get no answer
            b'Q' => return,
            c if c == stage => return then(s),
            _ => write_packet(s, b'c', &[]),
        }
    }
}

fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

#[test]
fn a_filter_that_is_down_applies_its_failure_mode() {
    let sink = Sink::start();
    let down = closed_port();
    let filter = |flags: &str| {
        vec![format!(
            "INPUT_MAIL_FILTER(`down', `S=inet:{}@127.0.0.1{flags}, T=C:2s')",
            down.port()
        )]
    };
    // F=T: sendmail temp-fails every command of the session.
    let d = daemon(&sink, &filter(", F=T"));
    let mut c = common::filters::session(&d, "client.example");
    c.cmd(
        "MAIL FROM:<s@example.com>",
        "452 4.4.5 Insufficient disk space; try again later",
    );
    c.cmd("QUIT", "221");
    d.wait_for_log("Milter (down): error connecting to filter", WAIT);
    d.wait_for_log(
        "Milter: connect: host=localhost, addr=127.0.0.1, temp failing commands",
        WAIT,
    );
    drop(d);
    // F=R: refused from the greeting on.
    let d = daemon(&sink, &filter(", F=R"));
    let mut c = SmtpConversation::connect(d.smtp_addr());
    let greeting = c.read_reply();
    assert!(greeting.starts_with("554 "), "{greeting}");
    c.cmd("EHLO client.example", "250");
    c.cmd("MAIL FROM:<s@example.com>", "550 5.0.0 Command rejected");
    c.cmd("QUIT", "221");
    drop(d);
    // F=4: the connection is closed with 421 instead of the greeting.
    let d = daemon(&sink, &filter(", F=4"));
    let mut c = SmtpConversation::connect(d.smtp_addr());
    assert_eq!(c.read_reply(), "421 4.7.0 mx.test closing connection");
    c.expect_closed();
    drop(d);
    // No F=: mail goes on unfiltered.
    let d = daemon(&sink, &filter(""));
    let mut c = common::filters::session(&d, "client.example");
    let reply = send(
        &mut c,
        "s@example.com",
        &["r@example.net"],
        "Subject: plain\r\n\r\nx\r\n",
    );
    assert!(reply.starts_with("250 2.0.0 "), "{reply}");
    c.cmd("QUIT", "221");
    assert_eq!(sink.wait_for_messages(1, WAIT).len(), 1);
}

/// Down in the middle of a session: the command it fails at gets its
/// F=T's 451, as every one after.
#[test]
fn a_filter_that_goes_down_mid_session_temp_fails_what_follows() {
    let sink = Sink::start();
    // Closes the connection when MAIL comes.
    let (addr, _t) = fake_filter(|s| until(s, b'M', |_| {}));
    let d = daemon(
        &sink,
        &[format!(
            "INPUT_MAIL_FILTER(`dies', `S=inet:{}@127.0.0.1, F=T')",
            addr.port()
        )],
    );
    let mut c = common::filters::session(&d, "client.example");
    c.cmd(
        "MAIL FROM:<s@example.com>",
        "451 4.3.2 Please try again later",
    );
    c.cmd(
        "MAIL FROM:<s@example.com>",
        "451 4.3.2 Please try again later",
    );
    c.cmd("QUIT", "221");
    d.wait_for_log("Milter (dies): to error state", WAIT);
    d.wait_for_log(
        "Milter: from=<s@example.com>, reject=451 4.3.2 Please try again later",
        WAIT,
    );
}

#[test]
fn a_filter_that_stalls_past_its_timeout_is_given_up() {
    let sink = Sink::start();
    // Stalls at MAIL: reads it and says nothing.
    let (addr, _t) = fake_filter(|s| {
        until(s, b'M', |s| {
            let mut rest = Vec::new();
            let _ = s.read_to_end(&mut rest);
        })
    });
    let d = daemon(
        &sink,
        &[format!(
            "INPUT_MAIL_FILTER(`stall', `S=inet:{}@127.0.0.1, F=T, T=R:1s')",
            addr.port()
        )],
    );
    let mut c = common::filters::session(&d, "client.example");
    let started = Instant::now();
    c.cmd(
        "MAIL FROM:<s@example.com>",
        "451 4.3.2 Please try again later",
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "{took:?}"
    );
    // Dropped for the session, its F=T still applies.
    c.cmd(
        "MAIL FROM:<s@example.com>",
        "451 4.3.2 Please try again later",
    );
    c.cmd("QUIT", "221");
    d.wait_for_log("Milter (stall): mail: timeout", WAIT);
    d.wait_for_log("Milter (stall): to error state", WAIT);
}

#[test]
fn a_filter_that_babbles_is_dropped_and_mail_goes_on() {
    let sink = Sink::start();
    // Answers RCPT with bytes that are no milter response.
    let (addr, _t) = fake_filter(|s| {
        until(s, b'R', |s| {
            let _ = s.write_all(b"\0\0\0\x05Zjunk garbage");
            let mut rest = Vec::new();
            let _ = s.read_to_end(&mut rest);
        })
    });
    let mut d = daemon(
        &sink,
        &[format!(
            "INPUT_MAIL_FILTER(`babble', `S=inet:{}@127.0.0.1')",
            addr.port()
        )],
    );
    let mut c = common::filters::session(&d, "client.example");
    let reply = send(
        &mut c,
        "s@example.com",
        &["r@example.net"],
        "Subject: x\r\n\r\nkept\r\n",
    );
    assert!(reply.starts_with("250 2.0.0 "), "{reply}");
    c.cmd("QUIT", "221");
    let m = sink.wait_for_messages(1, WAIT).remove(0);
    assert!(String::from_utf8_lossy(&m.data).ends_with("kept\r\n"));
    d.wait_for_log("Milter (babble): rcpt: unknown response code 0x5a", WAIT);
    // No front crashed: master would have replaced the factory.
    assert!(
        !d.log_lines().iter().any(|l| l.contains("crashed")),
        "{}",
        d.log_lines().join("\n")
    );
    assert!(d.is_running());
}
