//! Living with the daemon: configuration errors, MaxDaemonChildren,
//! SIGHUP reload and SIGTERM drain.

mod common;

use std::process::Command;

use common::{daemon_with_sink, role_pid, WAIT};

use postern_testkit::{smtp_send, Signal, Sink, SmtpConversation};

#[test]
fn a_bad_configuration_names_file_and_line_and_nothing_starts() {
    let dir = tempfile::tempdir().unwrap();
    let cf = dir.path().join("postern.cf");
    std::fs::write(
        &cf,
        "O LogLevel=9\nO LogLevle=9\ndefine(`confPRIVACY_FLAGS', `noexpm')\n",
    )
    .unwrap();
    let out = Command::new(postern_testkit::binary("posternd"))
        .arg("-C")
        .arg(&cf)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78), "EX_CONFIG");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let file = cf.display();
    assert!(
        stderr.contains(&format!("{file}:2: unknown option \"LogLevle\"")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{file}:3: unknown PrivacyOptions flag \"noexpm\"")),
        "{stderr}"
    );
}

#[test]
fn the_control_socket_is_not_put_where_others_could_replace_it() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let open_dir = dir.path().join("tmp");
    std::fs::create_dir(&open_dir).unwrap();
    std::fs::set_permissions(&open_dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let cf = dir.path().join("postern.cf");
    let d = dir.path().display();
    let port = postern_testkit::free_port();
    std::fs::write(
        &cf,
        format!(
            "O QueueDirectory={d}/spool\nO MailboxDirectory={d}/mail\n\
             O ControlSocket={d}/tmp/control.sock\n\
             O DaemonPortOptions=Port={port}, Addr=127.0.0.1, Name=MTA\n"
        ),
    )
    .unwrap();
    let out = Command::new(postern_testkit::binary("posternd"))
        .arg("-C")
        .arg(&cf)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("must belong to uid") && stderr.contains("writable by nobody else"),
        "{stderr}"
    );
    assert!(!open_dir.join("control.sock").exists());
}

#[test]
fn the_control_socket_is_made_mode_0666_without_a_chmod() {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let sink = Sink::start();
    let daemon = daemon_with_sink(&sink, &[]);
    let socket = daemon.instance().control_socket();
    let meta = std::fs::symlink_metadata(&socket).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o666);
}

#[test]
fn a_reload_that_would_give_fronts_another_roles_uid_is_refused() {
    if !postern_testkit::running_as_root() {
        eprintln!("skipped: users are only changed as root (CI runs as root)");
        return;
    }
    let sink = Sink::start();
    let daemon = daemon_with_sink(&sink, &[]);
    let cf = daemon.config_path();
    let text = std::fs::read_to_string(&cf).unwrap();
    std::fs::write(&cf, format!("{text}O FrontUser=posternq\n")).unwrap();
    let mark = daemon.log_mark();
    daemon_signal(&daemon, Signal::SIGHUP);
    let line = daemon.wait_for_log_since(mark, "configuration not reloaded", WAIT);
    assert!(line.contains("must be different users"), "{line}");
    // Still serving, fronts still as posternf.
    let mut c = SmtpConversation::connect(daemon.smtp_addr());
    assert!(c.read_reply().starts_with("220 "));
    let front = role_pid(&daemon, "front");
    assert_eq!(
        postern_testkit::proc_status_field(front, "Uid")
            .unwrap()
            .split('\t')
            .next(),
        Some(
            postern_testkit::uid_of(postern_testkit::FRONT_USER)
                .to_string()
                .as_str()
        )
    );
    c.cmd("QUIT", "221");
}

#[test]
fn max_daemon_children_refuses_with_421() {
    let sink = Sink::start();
    let daemon = daemon_with_sink(&sink, &["O MaxDaemonChildren=1"]);
    // The start-up probe's front must be gone (reaped) first.
    postern_testkit::poll_until(WAIT, || {
        common::role_pids(&daemon, "front").is_empty().then_some(())
    })
    .unwrap();
    let mut first = SmtpConversation::connect(daemon.smtp_addr());
    assert!(first.read_reply().starts_with("220 "));
    role_pid(&daemon, "front");
    let mut second = SmtpConversation::connect(daemon.smtp_addr());
    let reply = second.read_reply();
    assert!(reply.starts_with("421 4.3.2 mx.test "), "{reply}");
    second.expect_closed();
    first.cmd("QUIT", "221");
}

#[test]
fn sighup_reloads_the_configuration_and_keeps_serving() {
    let sink = Sink::start();
    let daemon = daemon_with_sink(&sink, &[]);
    let old_queue = role_pid(&daemon, "queue");
    // An idle client holds its session across the reload; it must not
    // keep the old queue runner (and so all mail) waiting.
    let mut idle = SmtpConversation::connect(daemon.smtp_addr());
    idle.read_reply();
    idle.cmd("EHLO idle.example", "250");
    let cf = daemon.config_path();
    let mut text = std::fs::read_to_string(&cf).unwrap();
    text.push_str("O SmtpGreetingMessage=$j Reloaded $v\n");
    std::fs::write(&cf, &text).unwrap();
    let mark = daemon.log_mark();
    daemon_signal(&daemon, Signal::SIGHUP);
    daemon.wait_for_log_since(mark, "configuration reloaded", WAIT);
    let mut c = SmtpConversation::connect(daemon.smtp_addr());
    let greeting = c.read_reply();
    assert!(
        greeting.starts_with("220 mx.test ESMTP Reloaded "),
        "{greeting}"
    );
    c.cmd("QUIT", "221");
    // The queue runner was restarted with the new configuration and works.
    postern_testkit::poll_until(WAIT, || {
        (role_pid(&daemon, "queue") != old_queue).then_some(())
    })
    .unwrap();
    smtp_send(
        daemon.smtp_addr(),
        "a@example.net",
        &["b@sink.test"],
        b"Subject: after HUP\r\n\r\nx\r\n",
    )
    .unwrap();
    sink.wait_for_messages(1, WAIT);

    // A broken file on SIGHUP is reported and the old configuration stays.
    std::fs::write(&cf, format!("{text}O NoSuchOption=1\n")).unwrap();
    let mark = daemon.log_mark();
    daemon_signal(&daemon, Signal::SIGHUP);
    let line = daemon.wait_for_log_since(mark, "configuration not reloaded", WAIT);
    assert!(line.contains("unknown option \"NoSuchOption\""), "{line}");
    let mut c = SmtpConversation::connect(daemon.smtp_addr());
    assert!(c.read_reply().starts_with("220 mx.test ESMTP Reloaded "));
    idle.cmd("QUIT", "221");
}

#[test]
fn sigterm_lets_a_session_in_progress_finish_then_stops() {
    let sink = Sink::start();
    let mut daemon = daemon_with_sink(&sink, &[]);
    let addr = daemon.smtp_addr();
    let mut c = SmtpConversation::connect(addr);
    c.read_reply();
    c.cmd("EHLO client.example", "250");
    c.cmd("MAIL FROM:<a@example.net>", "250");
    c.cmd("RCPT TO:<late@sink.test>", "250");
    c.cmd("DATA", "354");
    let mark = daemon.log_mark();
    daemon_signal(&daemon, Signal::SIGTERM);
    daemon.wait_for_log_since(mark, "stopping daemon", WAIT);
    // No new connections…
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "still listening after SIGTERM"
    );
    // …but the message in progress is taken and made durable.
    c.send_raw(b"Subject: drained\r\n\r\nlast one\r\n.\r\n");
    let reply = c.read_reply();
    assert!(reply.starts_with("250 2.0.0 "), "{reply}");
    c.cmd("QUIT", "221");
    let status = daemon.wait_exit(WAIT);
    assert!(status.success(), "{status:?}");
    // It is delivered once the daemon runs again.
    daemon.restart();
    let m = sink.wait_for_messages(1, WAIT);
    assert_eq!(m[0].rcpt_to, ["late@sink.test"]);
}

fn daemon_signal(daemon: &postern_testkit::Daemon, signal: Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(daemon.pid() as i32), signal).unwrap();
}

/// SIGHUP with new DaemonPortOptions: the new port is listened on, the old
/// one closed, and a session in the middle of a transaction on the old
/// port finishes its message. A port that cannot be had leaves everything
/// as it was.
#[test]
fn sighup_moves_the_listeners_and_sessions_in_progress_go_on() {
    let sink = Sink::start();
    let daemon = daemon_with_sink(&sink, &[]);
    let old = daemon.smtp_addr();
    let mut c = SmtpConversation::connect(old);
    c.read_reply();
    c.cmd("EHLO client.example", "250");
    c.cmd("MAIL FROM:<a@example.net>", "250");
    c.cmd("RCPT TO:<moved@sink.test>", "250");

    let cf = daemon.config_path();
    let text = std::fs::read_to_string(&cf).unwrap();
    let new_port = postern_testkit::free_port();
    let moved = text.replace(
        &format!("Port={}, Addr=127.0.0.1", old.port()),
        &format!("Port={new_port}, Addr=127.0.0.1"),
    );
    assert_ne!(moved, text, "the test's listener line was not found");
    std::fs::write(&cf, &moved).unwrap();
    let mark = daemon.log_mark();
    daemon_signal(&daemon, Signal::SIGHUP);
    daemon.wait_for_log_since(
        mark,
        &format!("SIGHUP: now listening on 127.0.0.1:{new_port} (MTA)"),
        WAIT,
    );
    let new: std::net::SocketAddr = format!("127.0.0.1:{new_port}").parse().unwrap();
    let mut fresh = SmtpConversation::connect(new);
    assert!(fresh.read_reply().starts_with("220 "));
    fresh.cmd("QUIT", "221");
    assert!(
        std::net::TcpStream::connect(old).is_err(),
        "the old port still listens"
    );
    c.cmd("DATA", "354");
    c.send_raw(b"Subject: moved\r\n\r\nacross the reload\r\n.\r\n");
    let reply = c.read_reply();
    assert!(reply.starts_with("250 2.0.0 "), "{reply}");
    c.cmd("QUIT", "221");
    assert_eq!(
        sink.wait_for_messages(1, WAIT)[0].rcpt_to,
        ["moved@sink.test"]
    );

    // A port someone else holds: not reloaded, still on the new port.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_port = taken.local_addr().unwrap().port();
    std::fs::write(
        &cf,
        moved.replace(
            &format!("Port={new_port}, Addr=127.0.0.1"),
            &format!("Port={taken_port}, Addr=127.0.0.1"),
        ),
    )
    .unwrap();
    let mark = daemon.log_mark();
    daemon_signal(&daemon, Signal::SIGHUP);
    let line = daemon.wait_for_log_since(mark, "configuration not reloaded", WAIT);
    assert!(
        line.contains(&format!("cannot bind 127.0.0.1:{taken_port}")),
        "{line}"
    );
    let mut still = SmtpConversation::connect(new);
    assert!(still.read_reply().starts_with("220 "));
    still.cmd("QUIT", "221");
}
