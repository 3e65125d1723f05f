//! `ps ax` tells Postern's processes apart, as it does sendmail's and
//! Postfix's: each sets its title (what `ps` reads from
//! `/proc/<pid>/cmdline`), a front with its client's address.

mod common;

use common::{daemon_with_sink, role_pid};
use postern_testkit::{Sink, SmtpConversation};

/// What `ps ax` shows in its COMMAND column for `pid`.
fn command_line(pid: u32) -> String {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    String::from_utf8_lossy(&raw)
        .replace('\0', " ")
        .trim_end()
        .to_string()
}

#[test]
fn each_process_says_what_it_is() {
    let sink = Sink::start();
    let daemon = daemon_with_sink(&sink, &[]);
    let addr = daemon.smtp_addr();
    let mut c = SmtpConversation::connect(addr);
    assert!(c.read_reply().starts_with("220 "));
    c.cmd("EHLO client.example", "250");

    let master = command_line(daemon.pid());
    assert_eq!(
        master,
        format!("posternd: master, accepting connections on {addr} (MTA)")
    );
    for (role, title) in [
        ("queue", "posternd: queue runner"),
        ("deliv", "posternd: delivery client"),
        ("forker", "posternd: front factory"),
        ("front", "posternd: front for localhost [127.0.0.1]"),
    ] {
        let pid = role_pid(&daemon, role);
        assert_eq!(command_line(pid), title, "{role} (pid {pid})");
    }
    c.cmd("QUIT", "221");
    // (The environment moved out of the title's way still works: the
    // syslog test points the log at its socket with a variable that the
    // children read after the move.)
}
