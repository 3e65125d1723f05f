//! Fronts are forked from the front factory, a fresh exec'ed image, never
//! from master: they do not carry master's memory (what the control
//! socket last handled, the client key) nor its address-space layout, and
//! a front that crashes gets the factory replaced, so the next front's
//! layout is new. The jail a front lives in refuses what an attacker in
//! it would try (`posternd --check-front-jail`, run against the live
//! daemon's delivery client).

mod common;

use std::process::Command;

use common::memory::{contains, memory};
use common::{daemon_with_sink, role_pid, role_pids, WAIT};
use postern_testkit::{running_as_root, smtp_send, Signal, Sink, SinkBehavior, SmtpConversation};

/// Where `pid`'s executable is mapped (its first mapping).
fn image_base(pid: u32) -> String {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    maps.lines()
        .find(|l| l.ends_with(exe.to_str().unwrap()))
        .and_then(|l| l.split('-').next())
        .unwrap()
        .to_string()
}

fn aslr_on() -> bool {
    std::fs::read_to_string("/proc/sys/kernel/randomize_va_space").is_ok_and(|v| v.trim() != "0")
}

#[test]
fn a_new_front_holds_nothing_master_handled() {
    if !running_as_root() {
        eprintln!("skipped: reading another process's memory needs root (CI runs as root)");
        return;
    }
    let sink = SinkBehavior::new()
        .rcpt_reply("x@sink.test", "451 4.3.0 Try again later")
        .start();
    let daemon = daemon_with_sink(&sink, &["O MinQueueAge=1h"]);
    // A message held in the queue (the sink defers it), then shown by
    // root through master: master's heap now held its headers.
    let marker = format!("Subject: secret-{}-{}", std::process::id(), daemon.pid());
    let reply = smtp_send(
        daemon.smtp_addr(),
        "a@example.net",
        &["x@sink.test"],
        format!("{marker}\r\n\r\nconfidential\r\n").as_bytes(),
    )
    .unwrap();
    let qid = reply.split_whitespace().nth(2).unwrap().to_string();
    let tool = postern_testkit::binary("postern");
    let shown = Command::new(&tool)
        .args(["queue", "show", &qid])
        .env("POSTERN_CONFIG", daemon.config_path())
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.contains(&marker), "{shown}");
    let master_memory = memory(daemon.pid());
    assert!(
        contains(&master_memory, marker.as_bytes()),
        "the test is void: master's memory no longer holds the headers"
    );
    // A front forked now.
    let mut c = SmtpConversation::connect(daemon.smtp_addr());
    c.read_reply();
    c.cmd("EHLO client.example", "250");
    let front = role_pid(&daemon, "front");
    assert!(
        !contains(&memory(front), marker.as_bytes()),
        "a new front holds what master handled"
    );
    if aslr_on() {
        assert_ne!(
            image_base(front),
            image_base(daemon.pid()),
            "the front has master's layout"
        );
    }
    c.cmd("QUIT", "221");
}

#[test]
fn a_crashed_front_gets_the_factory_replaced() {
    if !running_as_root() {
        eprintln!("skipped: signalling FrontUser's processes needs root (CI runs as root)");
        return;
    }
    let sink = Sink::start();
    let daemon = daemon_with_sink(&sink, &[]);
    let factory = role_pid(&daemon, "forker");
    let mut c = SmtpConversation::connect(daemon.smtp_addr());
    c.read_reply();
    let front = role_pid(&daemon, "front");
    let crashed_layout = image_base(front);
    // What a failed exploit attempt looks like from outside: a smashed
    // stack canary ends in abort(). (A SIGSEGV sent with kill(2) would be
    // taken for a stack overflow check by Rust's handler and survived.)
    let mark = daemon.log_mark();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(front as i32), Signal::SIGABRT).unwrap();
    daemon.wait_for_log_since(
        mark,
        &format!("front (pid {front}) for 127.0.0.1 crashed (signal SIGABRT): replacing the front factory"),
        WAIT,
    );
    // A new factory serves; the old one exits.
    let new_factory =
        postern_testkit::poll_until(WAIT, || match role_pids(&daemon, "forker")[..] {
            [one] if one != factory => Some(one),
            _ => None,
        })
        .expect("a new front factory");
    let mut c2 = SmtpConversation::connect(daemon.smtp_addr());
    assert!(c2.read_reply().starts_with("220 "));
    let next = role_pid(&daemon, "front");
    assert_eq!(
        postern_testkit::proc_status_field(next, "PPid"),
        Some(new_factory.to_string())
    );
    if aslr_on() {
        assert_ne!(image_base(next), crashed_layout, "the same layout again");
    }
    c2.cmd("QUIT", "221");
    drop(c);
}

#[test]
fn the_front_jail_refuses_what_an_attacker_would_try() {
    let sink = Sink::start();
    let daemon = daemon_with_sink(&sink, &[]);
    let delivery = role_pid(&daemon, "deliv");
    let out = Command::new(postern_testkit::binary("posternd"))
        .arg("-C")
        .arg(daemon.config_path())
        .args(["--check-front-jail", "--signal-pid", &delivery.to_string()])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "signal itself: refused (EPERM",
        &format!("signal pid {delivery}: refused (EPERM"),
        "make a socket: refused (EPERM",
        "fork: refused (EPERM",
        "execute /bin/sh: refused (EPERM",
        "open /etc/passwd: refused (EPERM",
        "open /: refused (EPERM",
        "executable memory: killed (SIGSYS)",
        "set O_ASYNC on a socket: killed (SIGSYS)",
    ] {
        assert!(report.contains(line), "missing {line:?} in:\n{report}");
    }
    // The delivery client is alive and well.
    assert_eq!(role_pid(&daemon, "deliv"), delivery);
    let reply = smtp_send(
        daemon.smtp_addr(),
        "a@example.net",
        &["b@sink.test"],
        b"Subject: x\r\n\r\nx\r\n",
    );
    assert!(reply.unwrap().starts_with("250 2.0.0 "));
    sink.wait_for_messages(1, WAIT);
}
