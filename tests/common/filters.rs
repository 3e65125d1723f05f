//! What the mail filter tests share: a daemon relaying everything to a
//! sink through the filters given, and a message sent through it.

use postern_testkit::{ensure_test_users, Daemon, DaemonBuilder, Sink, SmtpConversation};

/// A daemon at LogLevel 14 whose SMART_HOST is `sink`, with `lines`
/// (the filters) added to its configuration.
pub fn relaying_daemon(sink: &Sink, lines: &[String]) -> Daemon {
    ensure_test_users();
    let mut builder = DaemonBuilder::new(postern_testkit::binary("posternd"))
        .config_line("O LogLevel=14")
        .config_line(&format!(
            "define(`SMART_HOST', `esmtp:[127.0.0.1]:{}')",
            sink.addr().port()
        ));
    for line in lines {
        builder = builder.config_line(line);
    }
    builder.start()
}

/// A conversation greeted (220) and EHLO'd as `helo`.
pub fn session(daemon: &Daemon, helo: &str) -> SmtpConversation {
    let mut c = SmtpConversation::connect(daemon.smtp_addr());
    let greeting = c.read_reply();
    assert!(greeting.starts_with("220 "), "{greeting}");
    c.cmd(&format!("EHLO {helo}"), "250");
    c
}

/// Sends one message (`text` without its final dot); the reply to the
/// final dot.
pub fn send(c: &mut SmtpConversation, from: &str, to: &[&str], text: &str) -> String {
    c.cmd(&format!("MAIL FROM:<{from}>"), "250");
    for rcpt in to {
        c.cmd(&format!("RCPT TO:<{rcpt}>"), "250");
    }
    c.cmd("DATA", "354");
    c.send_raw(format!("{text}.\r\n").as_bytes());
    c.read_reply()
}
