//! A front taken over, simulated for real: the test (root) takes a live
//! front's channel to the queue runner with `pidfd_getfd(2)` and speaks on
//! it as the attacker would. The queue runner must cut it off and keep
//! serving everyone else; the front must hold nothing that could change a
//! message after its 250.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{daemon_with_sink, role_pids, WAIT};
use postern_testkit::{running_as_root, smtp_send, Sink, SmtpConversation};

/// The descriptor numbers of `pid`'s Unix stream sockets (its channel to
/// the queue runner; the client connection is TCP, syslog a datagram).
fn unix_stream_fds(pid: u32) -> Vec<u32> {
    let streams: Vec<String> = std::fs::read_to_string("/proc/net/unix")
        .unwrap()
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // Num RefCount Protocol Flags Type St Inode [Path]
            (f.get(4) == Some(&"0001")).then(|| f[6].to_string())
        })
        .collect();
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| {
            let e = e.ok()?;
            let target = std::fs::read_link(e.path()).ok()?;
            let inode = target
                .to_str()?
                .strip_prefix("socket:[")?
                .strip_suffix(']')?
                .to_string();
            streams
                .contains(&inode)
                .then(|| e.file_name().to_str()?.parse().ok())?
        })
        .collect()
}

/// Takes descriptor `fd` of `pid` and floods it with valid Hello frames
/// for up to `secs` seconds, or until the queue runner hangs up; prints
/// how many bytes went out.
const FLOOD: &str = r#"
import ctypes, os, struct, sys, time
pid, fd, secs, version = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
libc = ctypes.CDLL(None, use_errno=True)
pidfd = os.pidfd_open(pid)
sock = libc.syscall(438, pidfd, fd, 0)  # pidfd_getfd
if sock < 0:
    raise OSError(ctypes.get_errno(), "pidfd_getfd")
# Frame: 4-byte length, descriptor count, then bincode (fixint, big
# endian): variant 0 (Hello), the protocol version.
hello = struct.pack(">IBII", 8, 0, 0, version)
burst = hello * 4096
sent, end = 0, time.time() + secs
print("flooding", flush=True)
try:
    while time.time() < end:
        sent += os.write(sock, burst)
except OSError as e:
    print("cut off:", e.strerror, flush=True)
print("sent", sent, flush=True)
"#;

#[test]
fn a_flooding_front_is_cut_off_while_honest_sessions_go_on() {
    if !running_as_root() {
        eprintln!("skipped: taking another process's descriptor needs root (CI runs as root)");
        return;
    }
    let sink = Sink::start();
    let daemon = daemon_with_sink(&sink, &[]);
    // A live front, past its greeting: its channel to the queue runner is
    // open.
    let mut victim = SmtpConversation::connect(daemon.smtp_addr());
    victim.read_reply();
    victim.cmd("EHLO attacker.example", "250");
    let front = postern_testkit::poll_until(WAIT, || match role_pids(&daemon, "front")[..] {
        [one] => Some(one),
        _ => None,
    })
    .unwrap();
    let fds = unix_stream_fds(front);
    assert_eq!(fds.len(), 1, "front {front}'s stream sockets: {fds:?}");
    let flood = Command::new("python3")
        .args(["-c", FLOOD, &front.to_string(), &fds[0].to_string(), "20"])
        .arg(postern_ipc::PROTOCOL_VERSION.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Ten honest clients while the flood runs: each one's message is
    // accepted promptly.
    let addr = daemon.smtp_addr();
    let honest: Vec<_> = (0..10)
        .map(|i| {
            std::thread::spawn(move || {
                let started = Instant::now();
                let reply = smtp_send(
                    addr,
                    "a@example.net",
                    &["b@sink.test"],
                    format!("Subject: honest {i}\r\n\r\nx\r\n").as_bytes(),
                )
                .unwrap();
                (reply, started.elapsed())
            })
        })
        .collect();
    for h in honest {
        let (reply, took) = h.join().unwrap();
        assert!(reply.starts_with("250 2.0.0 "), "{reply}");
        assert!(
            took < Duration::from_secs(10),
            "an honest session took {took:?} during the flood"
        );
    }
    sink.wait_for_messages(10, WAIT);
    let out = flood.wait_with_output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(report.contains("cut off:"), "never disconnected: {report}");
    // Cut off for sending without waiting for answers, or, if its first
    // frame was read alone, for greeting twice.
    let cut = daemon.wait_for_log("; disconnecting", WAIT);
    assert!(
        cut.contains("requests without waiting for the answers") || cut.contains("a second Hello"),
        "{cut}"
    );
    // The queue runner is still the same process, and still serves.
    let reply = smtp_send(
        addr,
        "a@example.net",
        &["c@sink.test"],
        b"Subject: after\r\n\r\nx\r\n",
    );
    assert!(reply.unwrap().starts_with("250 2.0.0 "));
}

#[test]
fn after_250_the_front_holds_no_descriptor_of_the_message() {
    if !running_as_root() {
        eprintln!("skipped: reading another user's /proc/<pid>/fd needs root (CI runs as root)");
        return;
    }
    let sink = Sink::start();
    let daemon = daemon_with_sink(&sink, &["O MinQueueAge=1h"]);
    let mut c = SmtpConversation::connect(daemon.smtp_addr());
    c.read_reply();
    c.cmd("EHLO client.example", "250");
    c.cmd("MAIL FROM:<a@example.net>", "250");
    c.cmd("RCPT TO:<root@mx.test>", "250");
    c.cmd("DATA", "354");
    c.send_line("Subject: kept as sent\r\n\r\nbody\r\n.");
    assert!(c.read_reply().starts_with("250 2.0.0 "));
    // The session is still open: what does its front hold now?
    let front = role_pids(&daemon, "front")[0];
    let spool = daemon.spool_dir();
    for entry in std::fs::read_dir(format!("/proc/{front}/fd")).unwrap() {
        let target = std::fs::read_link(entry.unwrap().path()).unwrap();
        let text = target.to_string_lossy();
        assert!(
            text.starts_with("socket:")
                || text.starts_with("/dev/null")
                || text.starts_with("pipe:"),
            "the front holds {text}"
        );
        assert!(
            !target.starts_with(&spool),
            "the front holds a spool file: {text}"
        );
    }
    c.cmd("QUIT", "221");
}
