//! The log is real syslog (facility mail) in sendmail's formats, and a real
//! reader of those formats counts it right: the datagrams the daemon sends
//! to its syslog socket are fed to Debian logwatch's sendmail service.

mod common;

use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use common::WAIT;
use postern_testkit::{ensure_test_users, poll_until, smtp_send, DaemonBuilder, SinkBehavior};

/// Where logwatch lives: installed, or unpacked by scripts/test.sh.
fn logwatch_dir() -> std::path::PathBuf {
    [
        "/usr/share/logwatch",
        "/usr/local/share/postern-test/logwatch/usr/share/logwatch",
    ]
    .iter()
    .map(std::path::PathBuf::from)
    .find(|d| d.join("scripts/services/sendmail").is_file())
    .expect("logwatch's sendmail service: run scripts/test.sh, which unpacks it")
}

#[test]
fn syslog_lines_are_sendmails_and_logwatch_counts_them() {
    ensure_test_users();
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let socket_path = dir.path().join("log.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    std::fs::set_permissions(
        &socket_path,
        std::os::unix::fs::PermissionsExt::from_mode(0o666),
    )
    .unwrap();
    let lines: Arc<Mutex<Vec<String>>> = Arc::default();
    let collected = lines.clone();
    let reader = socket.try_clone().unwrap();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        while let Ok(n) = reader.recv(&mut buf) {
            collected
                .lock()
                .unwrap()
                .push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    });

    let sink = SinkBehavior::new()
        .rcpt_reply(
            "nobody@sink.test",
            "550 5.1.1 <nobody@sink.test>... User unknown",
        )
        .start();
    let daemon = DaemonBuilder::new(postern_testkit::binary("posternd"))
        .table(
            "mailertable",
            // example.net too: the third message's bounce goes there.
            format!(
                "sink.test esmtp:[127.0.0.1]:{0}\nexample.net esmtp:[127.0.0.1]:{0}\n",
                sink.addr().port()
            ),
        )
        .config_line("O LogLevel=9")
        .env("POSTERN_SYSLOG_SOCKET", &socket_path)
        .start();
    let addr = daemon.smtp_addr();
    smtp_send(
        addr,
        "a@example.net",
        &["one@sink.test"],
        b"Subject: 1\r\n\r\nfirst\r\n",
    )
    .unwrap();
    smtp_send(
        addr,
        "b@example.net",
        &["two@sink.test", "three@sink.test"],
        b"Subject: 2\r\n\r\nsecond\r\n",
    )
    .unwrap();
    smtp_send(
        addr,
        "c@example.net",
        &["nobody@sink.test"],
        b"Subject: 3\r\n\r\nthird\r\n",
    )
    .unwrap();
    let count = |needle: &str| {
        lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    };
    // Four recipients and the bounce to c@example.net.
    poll_until(WAIT, || (count(": to=<") == 5).then_some(()))
        .unwrap_or_else(|| panic!("to= lines missing: {:#?}", lines.lock().unwrap()));
    assert_eq!(count(": DSN: User unknown"), 1);

    let all = lines.lock().unwrap().clone();
    // RFC 3164 datagrams, facility mail (2): <2*8+6> for info.
    for line in all
        .iter()
        .filter(|l| l.contains(": from=<") || l.contains(": to=<"))
    {
        assert!(line.starts_with("<22>"), "not mail.info: {line}");
        assert!(line.contains(" posternd["), "{line}");
    }
    let from = all
        .iter()
        .find(|l| l.contains("from=<b@example.net>"))
        .unwrap();
    assert!(
        from.contains(", class=0, nrcpts=2, ")
            && from.contains(", proto=ESMTP, daemon=MTA, relay=localhost [127.0.0.1]"),
        "{from}"
    );
    let unknown = all
        .iter()
        .find(|l| l.contains("to=<nobody@sink.test>"))
        .unwrap();
    assert!(
        unknown.contains(", dsn=5.1.1, ") && unknown.contains(", stat=User unknown"),
        "{unknown}"
    );

    // What logwatch's *RemoveHeaders leaves: the text after "posternd[pid]: ".
    let messages: String = all
        .iter()
        .filter_map(|l| l.split_once("]: ").map(|(_, m)| format!("{m}\n")))
        .collect();
    let logwatch = logwatch_dir();
    let mut script = Command::new("perl")
        .arg(logwatch.join("scripts/services/sendmail"))
        .env("LOGWATCH_DETAIL_LEVEL", "10")
        .env("PERL5LIB", logwatch.join("lib"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("logwatch's sendmail service (Debian package logwatch)");
    script
        .stdin
        .take()
        .unwrap()
        .write_all(messages.as_bytes())
        .unwrap();
    let out = script.wait_with_output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}");
    let number = |label: &str| -> u64 {
        report
            .lines()
            .find(|l| l.starts_with(label))
            .and_then(|l| l[label.len()..].trim().parse().ok())
            .unwrap_or_else(|| panic!("no {label:?} in logwatch's report:\n{report}"))
    };
    assert_eq!(number("Messages To Recipients:"), 3, "{report}");
    assert_eq!(number("Addressed Recipients:"), 4, "{report}");
    // The bounce (no from= line, its DSN: line, its to= line) is read as
    // sendmail's: its recipient is listed, no message is added.
    assert!(report.contains("    c@example.net "), "{report}");
    assert!(number("Bytes Transferred:") > 0, "{report}");
    drop(daemon);
    let _ = std::fs::remove_file(&socket_path);
}
