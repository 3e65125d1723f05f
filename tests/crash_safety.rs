//! Crash safety under load: `kill -9` of the queue runner, the delivery
//! client, a front in mid-DATA and master itself. Afterwards every message
//! that got a 250 is delivered, every delivered message is whole, and the
//! spool holds no debris.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use common::{daemon_with_sink, role_pid, role_pids, strip_received, WAIT};
use postern_testkit::{poll_until, smtp_send, Signal, Sink, SmtpConversation};

fn message(n: usize) -> Vec<u8> {
    format!(
        "Subject: crash test {n}\r\nDate: Thu, 3 Dec 2026 10:00:00 +0000\r\nMessage-ID: <crash{n}@example.net>\r\n\r\n{}\r\nend of {n}\r\n",
        "body line\r\n".repeat(n % 50)
    )
    .into_bytes()
}

fn kill9(pid: u32) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
}

fn spool_files(daemon: &postern_testkit::Daemon) -> Vec<String> {
    ["incoming", "queue"]
        .iter()
        .flat_map(|d| {
            std::fs::read_dir(daemon.spool_dir().join(d))
                .into_iter()
                .flatten()
        })
        .filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned()))
        .collect()
}

#[test]
fn nothing_acknowledged_is_lost_and_nothing_unfinished_is_delivered() {
    let daemon = crash_under_load(&[]);
    // The clients' commits shared their flushes.
    let batched = daemon.log_lines().iter().any(|l| {
        l.split("queue: ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse::<usize>().ok())
            .is_some_and(|n| n > 1)
    });
    assert!(batched, "no commit batch of more than one message");
}

#[test]
fn nothing_acknowledged_is_lost_with_a_flush_per_file() {
    crash_under_load(&["O QueueSync=fsync"]);
}

/// Clients sending while the queue runner, the delivery client, a front
/// and master are killed with SIGKILL, with `extra` configuration; every
/// check is made here. Returns the daemon, running.
fn crash_under_load(extra: &[&str]) -> postern_testkit::Daemon {
    let sink = Sink::start();
    let mut config = vec!["O LogLevel=15"];
    config.extend_from_slice(extra);
    let mut daemon = daemon_with_sink(&sink, &config);

    // A front killed in mid-DATA: its half message must never be delivered.
    let mut c = SmtpConversation::connect(daemon.smtp_addr());
    c.read_reply();
    c.cmd("EHLO client.example", "250");
    c.cmd("MAIL FROM:<half@example.net>", "250");
    c.cmd("RCPT TO:<half@sink.test>", "250");
    c.cmd("DATA", "354");
    c.send_raw(b"Subject: half\r\n\r\nthis message is never fin");
    kill9(role_pid(&daemon, "front"));
    c.expect_closed();

    // Load: eight clients sending until told to stop, noting every 250.
    let acked: Arc<Mutex<Vec<usize>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(Mutex::new(0usize));
    let addr = Arc::new(Mutex::new(daemon.smtp_addr()));
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let (acked, stop, next, addr) =
                (acked.clone(), stop.clone(), next.clone(), addr.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let n = {
                        let mut next = next.lock().unwrap();
                        *next += 1;
                        *next
                    };
                    let to = *addr.lock().unwrap();
                    let from = format!("s{n}@example.net");
                    if let Ok(reply) = smtp_send(to, &from, &["rcpt@sink.test"], &message(n)) {
                        if reply.starts_with("250 2.0.0 ") {
                            acked.lock().unwrap().push(n);
                        }
                    }
                }
            })
        })
        .collect();
    let wait_acked = |n: usize| {
        poll_until(WAIT, || (acked.lock().unwrap().len() >= n).then_some(()))
            .unwrap_or_else(|| panic!("fewer than {n} messages acknowledged"))
    };

    wait_acked(20);
    let old = role_pid(&daemon, "queue");
    kill9(old);
    poll_until(WAIT, || {
        role_pids(&daemon, "queue")
            .iter()
            .any(|p| *p != old)
            .then_some(())
    })
    .expect("the queue runner is restarted");
    daemon.wait_for_log("queue runner (pid", WAIT);

    let before = acked.lock().unwrap().len();
    wait_acked(before + 20);
    let old = role_pid(&daemon, "deliv");
    kill9(old);
    poll_until(WAIT, || {
        role_pids(&daemon, "deliv")
            .iter()
            .any(|p| *p != old)
            .then_some(())
    })
    .expect("the delivery client is restarted");

    let before = acked.lock().unwrap().len();
    wait_acked(before + 20);
    daemon.kill(Signal::SIGKILL);
    daemon.wait_exit(WAIT);
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    daemon.restart();

    let acked: HashSet<usize> = acked.lock().unwrap().iter().copied().collect();
    let delivered = poll_until(WAIT * 2, || {
        let got: HashSet<usize> = sink
            .messages()
            .iter()
            .filter_map(|m| {
                m.mail_from
                    .strip_prefix('s')?
                    .strip_suffix("@example.net")?
                    .parse()
                    .ok()
            })
            .collect();
        acked.is_subset(&got).then_some(got)
    })
    .unwrap_or_else(|| {
        panic!(
            "acknowledged messages lost; log:\n{}",
            daemon.log_lines().join("\n")
        )
    });
    assert!(delivered.len() >= acked.len());

    for m in sink.messages() {
        assert_ne!(
            m.mail_from, "half@example.net",
            "a half-received message was delivered"
        );
        let n: usize = m.mail_from[1..m.mail_from.len() - "@example.net".len()]
            .parse()
            .unwrap();
        assert_eq!(
            strip_received(&m.data),
            message(n).as_slice(),
            "message {n} is not whole"
        );
    }
    poll_until(WAIT, || spool_files(&daemon).is_empty().then_some(()))
        .unwrap_or_else(|| panic!("debris left in the spool: {:?}", spool_files(&daemon)));
    daemon
}
