//! The limits, against the running daemon, each with sendmail's replies
//! and log lines: 500 connections at once (50 of them talking a byte a
//! second) while a new client is still greeted within a second, and every
//! front gone once they leave; a thousand short sessions in a row never
//! counted against MaxDaemonChildren once ended; a burst of a thousand
//! connections opened at once, every one greeted without a SYN retry
//! (ListenQueueSize, which `ss` shows and a reload changes);
//! `FEATURE(greet_pause)` (a client that talks
//! first, a polite one, one exempted by `GreetPause:`); BadRcptThrottle;
//! the access map's `ClientRate:`; MaxMessageSize (declared with SIZE or
//! not) and MaxRecipientsPerMessage.
//!
//! Clients that must be told apart from the kit's readiness probe (which
//! comes from 127.0.0.1) connect from 127.0.0.2 or 127.0.0.3: loopback
//! addresses too, so no network namespace is needed.
//!
//! The tests take turns (`one_at_a_time`): the load test forks 500 fronts
//! on what may be a two-core machine, and its one-second promise must not
//! measure another test's daemon.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::{role_pids, WAIT};
use nix::sys::socket::{bind, connect, socket, AddressFamily, SockFlag, SockType, SockaddrIn};
use postern_testkit::{descendant_pids, ensure_test_users, poll_until, Daemon, DaemonBuilder};
use postern_testkit::{SmtpConversation, IO_TIMEOUT};

/// Serialises the tests of this file (see the module docs).
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

/// A daemon for `mx.test` at LogLevel 9 with `extra` configuration lines
/// and `access` as its access map.
fn daemon(extra: &[&str], access: &str) -> Daemon {
    ensure_test_users();
    let mut b = DaemonBuilder::new(postern_testkit::binary("posternd"))
        .table("local-host-names", "mx.test\n")
        .table("access", access)
        .config_line("O LogLevel=9");
    for line in extra {
        b = b.config_line(line);
    }
    b.start()
}

/// A connection to `to` from the loopback address `from`.
fn connect_from(from: Ipv4Addr, to: SocketAddr) -> TcpStream {
    let SocketAddr::V4(to) = to else {
        panic!("the daemon listens on IPv4 loopback, not {to}")
    };
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .expect("socket");
    bind(
        fd.as_raw_fd(),
        &SockaddrIn::from(SocketAddrV4::new(from, 0)),
    )
    .expect("bind");
    connect(fd.as_raw_fd(), &SockaddrIn::from(to)).expect("connect");
    let stream = TcpStream::from(fd);
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    stream
}

/// Reads until CRLF ends a reply whose last line has a space after the
/// code: the reply's lines, joined by `\n`.
fn read_reply(stream: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match stream.read(&mut byte) {
            Ok(1) => got.push(byte[0]),
            Ok(_) => panic!("closed after {:?}", String::from_utf8_lossy(&got)),
            Err(e) => panic!("reading after {:?}: {e}", String::from_utf8_lossy(&got)),
        }
        if got.ends_with(b"\r\n") {
            let text = String::from_utf8_lossy(&got).into_owned();
            let last = text.trim_end().rsplit("\r\n").next().unwrap_or("");
            if last.as_bytes().get(3) != Some(&b'-') {
                return text.trim_end().replace("\r\n", "\n");
            }
        }
    }
}

/// Sends `line` and reads the reply.
fn cmd(stream: &mut TcpStream, line: &str) -> String {
    stream.write_all(format!("{line}\r\n").as_bytes()).unwrap();
    read_reply(stream)
}

/// True when the server closed the connection (nothing more to read).
fn closed(stream: &mut TcpStream) -> bool {
    let mut rest = Vec::new();
    match stream.read_to_end(&mut rest) {
        Ok(_) => rest.is_empty(),
        Err(e) => e.kind() == ErrorKind::ConnectionReset,
    }
}

/// The count of the daemon's processes (master's descendants).
fn processes(daemon: &Daemon) -> usize {
    descendant_pids(daemon.pid()).len()
}

#[test]
fn five_hundred_connections_and_a_new_client_is_still_greeted_within_a_second() {
    let _turn = one_at_a_time();
    // Loopback may relay, so no per-client limit applies to it.
    let mut daemon = daemon(&["O MaxDaemonChildren=600"], "");
    let addr = daemon.smtp_addr();
    // The readiness probe's front may still be leaving: count without it.
    poll_until(WAIT, || {
        role_pids(&daemon, "front").is_empty().then_some(())
    })
    .expect("the probe's front left");
    let baseline = processes(&daemon);
    let mut idle = Vec::new();
    let mut talkers = Vec::new();
    for i in 0..500 {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(WAIT)).unwrap();
        if i % 10 == 0 {
            talkers.push(stream);
        } else {
            idle.push(stream);
        }
    }
    // Every one of them has its own front and was greeted.
    for stream in idle.iter_mut().chain(talkers.iter_mut()) {
        let greeting = read_reply(stream);
        assert!(greeting.starts_with("220 mx.test ESMTP "), "{greeting}");
    }
    assert_eq!(talkers.len(), 50);
    assert!(
        role_pids(&daemon, "front").len() >= 500,
        "fronts: {}",
        role_pids(&daemon, "front").len()
    );
    // The slow talkers send a byte a second (a NOOP every six seconds).
    let stop = Arc::new(AtomicBool::new(false));
    let talking = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let noop = b"NOOP\r\n";
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                for t in &mut talkers {
                    t.write_all(&noop[n % noop.len()..][..1]).unwrap();
                }
                n += 1;
                std::thread::sleep(Duration::from_secs(1));
            }
            talkers
        })
    };
    // A new client, a few times while they talk: greeted within a second.
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(700));
        let started = Instant::now();
        let mut c = SmtpConversation::connect(addr);
        let greeting = c.read_reply();
        let took = started.elapsed();
        assert!(greeting.starts_with("220 mx.test ESMTP "), "{greeting}");
        assert!(took < Duration::from_secs(1), "greeted after {took:?}");
        c.cmd("EHLO client.test", "250");
        c.cmd("QUIT", "221");
    }
    stop.store(true, Ordering::Relaxed);
    let talkers = talking.join().unwrap();
    // Everyone leaves: every front goes, and nothing else was left.
    drop(idle);
    drop(talkers);
    let left = poll_until(WAIT, || {
        let n = processes(&daemon);
        (n <= baseline).then_some(n)
    });
    assert_eq!(
        left,
        Some(baseline),
        "{} processes left, {baseline} before",
        processes(&daemon)
    );
    assert!(role_pids(&daemon, "front").is_empty());
    assert!(daemon.stop().success());
}

#[test]
fn ended_sessions_free_their_place_while_connections_keep_coming() {
    let _turn = one_at_a_time();
    // Ten clients at a time, a thousand connections one after the other:
    // never more than ten sessions, so a limit of 40 is never reached
    // unless fronts that ended are still counted (the factory reaping
    // them only between bursts).
    let daemon = daemon(&["O MaxDaemonChildren=40"], "");
    let addr = daemon.smtp_addr();
    let refused = Arc::new(Mutex::new(Vec::new()));
    let clients: Vec<_> = (0..10)
        .map(|_| {
            let refused = Arc::clone(&refused);
            std::thread::spawn(move || {
                for _ in 0..100 {
                    let mut c = SmtpConversation::connect(addr);
                    let greeting = c.read_reply();
                    if !greeting.starts_with("220 ") {
                        refused.lock().unwrap().push(greeting);
                        continue;
                    }
                    c.cmd("QUIT", "221");
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    let refused = refused.lock().unwrap();
    assert!(
        refused.is_empty(),
        "{} refused: {:?}",
        refused.len(),
        refused.first()
    );
}

/// `FEATURE(greet_pause)` with 127.0.0.1 (the readiness probe) exempted by
/// the access map, as sendmail's cf/README shows.
fn greet_pause_daemon() -> Daemon {
    daemon(
        &["FEATURE(`access_db')", "FEATURE(`greet_pause', `700')"],
        "GreetPause:127.0.0.1 0\n",
    )
}

#[test]
fn greet_pause_refuses_a_client_that_talks_first() {
    let _turn = one_at_a_time();
    let daemon = greet_pause_daemon();
    let mut early = connect_from(Ipv4Addr::new(127, 0, 0, 2), daemon.smtp_addr());
    early.write_all(b"EHLO spam.example\r\n").unwrap();
    assert_eq!(
        read_reply(&mut early),
        "554 mx.test ESMTP not accepting messages"
    );
    assert_eq!(
        read_reply(&mut early),
        "250-mx.test Hello localhost [127.0.0.2], pleased to meet you\n250 ENHANCEDSTATUSCODES"
    );
    assert_eq!(
        cmd(&mut early, "MAIL FROM:<spam@example.net>"),
        "550 5.0.0 Command rejected"
    );
    assert_eq!(
        cmd(&mut early, "RCPT TO:<postmaster@mx.test>"),
        "550 5.0.0 Command rejected"
    );
    assert_eq!(cmd(&mut early, "NOOP"), "250 2.0.0 OK");
    assert_eq!(
        cmd(&mut early, "QUIT"),
        "221 2.0.0 mx.test closing connection"
    );
    daemon.wait_for_log(
        "rejecting commands from localhost [127.0.0.2] due to pre-greeting traffic after 0 seconds",
        WAIT,
    );
}

#[test]
fn greet_pause_keeps_a_polite_client_waiting_then_serves_it() {
    let _turn = one_at_a_time();
    let daemon = greet_pause_daemon();
    let started = Instant::now();
    let mut polite = connect_from(Ipv4Addr::new(127, 0, 0, 2), daemon.smtp_addr());
    let greeting = read_reply(&mut polite);
    let waited = started.elapsed();
    assert!(greeting.starts_with("220 mx.test ESMTP "), "{greeting}");
    assert!(
        waited >= Duration::from_millis(650),
        "greeted after {waited:?}"
    );
    assert!(cmd(&mut polite, "EHLO client.test").starts_with("250-mx.test Hello"));
    assert!(cmd(&mut polite, "MAIL FROM:<a@example.net>").starts_with("250 2.1.0"));
    assert!(cmd(&mut polite, "RCPT TO:<postmaster@mx.test>").starts_with("250 2.1.5"));
    assert_eq!(
        cmd(&mut polite, "QUIT"),
        "221 2.0.0 mx.test closing connection"
    );
    // `GreetPause:127.0.0.1 0`: greeted at once.
    let started = Instant::now();
    let mut exempt = SmtpConversation::connect(daemon.smtp_addr());
    assert!(exempt.read_reply().starts_with("220 "));
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_millis(500),
        "greeted after {waited:?}"
    );
    exempt.cmd("QUIT", "221");
    assert!(!daemon
        .log_lines()
        .iter()
        .any(|l| l.contains("pre-greeting traffic")));
}

#[test]
fn bad_rcpt_throttle_slows_a_recipient_flood() {
    let _turn = one_at_a_time();
    let daemon = daemon(&["O BadRcptThrottle=3"], "");
    let mut c = SmtpConversation::connect(daemon.smtp_addr());
    c.read_reply();
    c.cmd("EHLO client.test", "250");
    c.cmd("MAIL FROM:<a@example.net>", "250");
    for n in 1..=3 {
        let started = Instant::now();
        c.cmd(&format!("RCPT TO:<nosuch{n}@mx.test>"), "550 5.1.1");
        assert!(started.elapsed() < Duration::from_millis(900));
    }
    // Past the throttle every RCPT waits a second, refused or not.
    for rcpt in ["<nosuch4@mx.test>", "<postmaster@mx.test>"] {
        let started = Instant::now();
        let reply = c.cmd(&format!("RCPT TO:{rcpt}"), "");
        let took = started.elapsed();
        assert!(took >= Duration::from_secs(1), "{reply} after {took:?}");
    }
    c.cmd("QUIT", "221");
    let flood = "localhost [127.0.0.1]: Possible SMTP RCPT flood, throttling.";
    daemon.wait_for_log(flood, WAIT);
    let times = daemon
        .log_lines()
        .iter()
        .filter(|l| l.contains("Possible SMTP RCPT flood"))
        .count();
    assert_eq!(times, 1, "logged once per session");
}

/// sendmail's MaxNOOPCommands with MaxDaemonChildren set (the default):
/// a client that pipelines NOOPs without reading gets 19 OKs, then,
/// after a second, 421 and the close; logged once as a possible attack.
#[test]
fn the_twentieth_noop_ends_the_session() {
    let _turn = one_at_a_time();
    let daemon = daemon(&[], "");
    let mut c = SmtpConversation::connect(daemon.smtp_addr());
    c.read_reply();
    c.cmd("EHLO client.test", "250");
    // Exactly twenty: unread input at the close would reset the
    // connection and could discard the 421 before it is read.
    c.send_raw(&b"NOOP\r\n".repeat(20));
    for _ in 0..19 {
        assert_eq!(c.read_reply(), "250 2.0.0 OK");
    }
    let started = Instant::now();
    assert_eq!(
        c.read_reply(),
        "421 4.7.0 mx.test Too many bad commands; closing connection"
    );
    assert!(started.elapsed() >= Duration::from_millis(900));
    c.expect_closed();
    daemon.wait_for_log(
        "localhost [127.0.0.1]: possible SMTP attack: command=NOOP, count=20",
        WAIT,
    );
}

#[test]
fn client_rate_refuses_the_connection_past_the_rate() {
    let _turn = one_at_a_time();
    let daemon = daemon(&[], "ClientRate:127.0.0.3 3\n");
    let from = Ipv4Addr::new(127, 0, 0, 3);
    // Three in the window, one after the other (not at once: this is
    // not ClientConn).
    for _ in 0..3 {
        let mut s = connect_from(from, daemon.smtp_addr());
        assert!(read_reply(&mut s).starts_with("220 "));
        assert!(cmd(&mut s, "QUIT").starts_with("221 "));
    }
    let mut fourth = connect_from(from, daemon.smtp_addr());
    assert_eq!(
        read_reply(&mut fourth),
        "421 4.3.2 Connection rate limit exceeded."
    );
    assert!(closed(&mut fourth));
    daemon.wait_for_log(
        "ruleset=check_relay, arg1=localhost, arg2=127.0.0.3, relay=localhost [127.0.0.3], reject=421 4.3.2 Connection rate limit exceeded.",
        WAIT,
    );
    // Another client is not affected.
    let mut other = SmtpConversation::connect(daemon.smtp_addr());
    assert!(other.read_reply().starts_with("220 "));
    other.cmd("QUIT", "221");
}

#[test]
fn max_message_size_with_and_without_size() {
    let _turn = one_at_a_time();
    let daemon = daemon(&["O MaxMessageSize=1000"], "");
    let mut c = SmtpConversation::connect(daemon.smtp_addr());
    c.read_reply();
    let ehlo = c.cmd("EHLO client.test", "250");
    assert!(ehlo.contains("\n250-SIZE 1000\n"), "{ehlo}");
    // Declared too big: refused at MAIL.
    c.cmd(
        "MAIL FROM:<a@example.net> SIZE=5000",
        "552 5.2.3 Message size exceeds fixed maximum message size (1000)",
    );
    let body = format!("Subject: big\r\n\r\n{}\r\n.\r\n", "x".repeat(2000));
    // Not declared, and declared too small: refused after the message.
    for mail in [
        "MAIL FROM:<a@example.net>",
        "MAIL FROM:<a@example.net> SIZE=500",
    ] {
        c.cmd(mail, "250");
        c.cmd("RCPT TO:<postmaster@mx.test>", "250");
        c.cmd("DATA", "354");
        c.send_raw(body.as_bytes());
        assert_eq!(
            c.read_reply(),
            "552 5.2.3 Message exceeds maximum fixed size (1000)"
        );
    }
    c.cmd("QUIT", "221");
    daemon.wait_for_log("exceeds maximum (1000)", WAIT);
    assert!(
        daemon
            .log_lines()
            .iter()
            .any(|l| l.contains(": message size (2018) exceeds maximum (1000)")),
        "{:#?}",
        daemon.log_lines()
    );
    assert!(!daemon.log_lines().iter().any(|l| l.contains(" from=<")));
}

#[test]
fn max_recipients_per_message_defers_the_extra_recipients() {
    let _turn = one_at_a_time();
    let daemon = daemon(&["O MaxRecipientsPerMessage=2"], "");
    let mut c = SmtpConversation::connect(daemon.smtp_addr());
    c.read_reply();
    c.cmd("EHLO client.test", "250");
    c.cmd("MAIL FROM:<a@example.net>", "250");
    c.cmd("RCPT TO:<postmaster@mx.test>", "250");
    c.cmd("RCPT TO:<root@mx.test>", "250");
    c.cmd("RCPT TO:<daemon@mx.test>", "452 4.5.3 Too many recipients");
    c.cmd("DATA", "354");
    c.send_raw(b"Subject: two\r\n\r\nhi\r\n.\r\n");
    assert!(c.read_reply().starts_with("250 2.0.0 "));
    c.cmd("QUIT", "221");
    let from = daemon.wait_for_log(" from=<a@example.net>", WAIT);
    assert!(from.contains("nrcpts=2"), "{from}");
}

/// What `ss` shows as a listening socket's queue size (its Send-Q) for
/// the listener on `addr`.
fn listen_queue_size(addr: SocketAddr) -> u32 {
    let out = std::process::Command::new("ss")
        .args(["-H", "-l", "-t", "-n", &format!("sport = :{}", addr.port())])
        .output()
        .expect("cannot run ss (iproute2)");
    assert!(out.status.success(), "ss: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    // State Recv-Q Send-Q Local-Address:Port Peer-Address:Port
    let line = text
        .lines()
        .find(|l| l.contains(&addr.to_string()))
        .unwrap_or_else(|| panic!("no listener on {addr} in ss's output: {text}"));
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(fields[0], "LISTEN", "{line}");
    fields[2].parse().unwrap_or_else(|_| panic!("{line}"))
}

/// The kernel's cap on a listen queue (`net.core.somaxconn`).
fn somaxconn() -> u32 {
    std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn listen_queue_size_sizes_the_listeners_queue_and_a_reload_changes_it() {
    let _turn = one_at_a_time();
    let mut daemon = daemon(&[], "");
    let addr = daemon.smtp_addr();
    // Not sendmail's 10, nor the standard library's 128: 4096, or the
    // kernel's cap if that is lower.
    assert_eq!(listen_queue_size(addr), 4096.min(somaxconn()));
    let cf = daemon.config_path();
    let text = std::fs::read_to_string(&cf).unwrap();
    std::fs::write(&cf, format!("{text}O ListenQueueSize=64\n")).unwrap();
    let mark = daemon.log_mark();
    daemon.kill(nix::sys::signal::Signal::SIGHUP);
    daemon.wait_for_log_since(mark, "configuration reloaded", WAIT);
    // The same socket (the address stayed), its queue changed.
    assert_eq!(listen_queue_size(addr), 64);
    let mut c = SmtpConversation::connect(addr);
    assert!(c.read_reply().starts_with("220 mx.test ESMTP "));
    c.cmd("QUIT", "221");
    assert!(daemon.stop().success());
}

#[test]
fn a_burst_of_a_thousand_clients_is_greeted_without_syn_retries_or_refusals() {
    let _turn = one_at_a_time();
    // Defaults: ListenQueueSize 4096, MaxDaemonChildren 256.
    let mut daemon = daemon(&[], "");
    let addr = daemon.smtp_addr();
    // The benchmark's burst: a thousand connections opened one right
    // after the other, each client reading its greeting and saying QUIT
    // as soon as it can. It prints what each client saw: greeted (220),
    // refused (anything else), SYN retries, lost (no answer at all).
    let out = std::process::Command::new("python3")
        .arg(postern_testkit::repo_root().join("scripts/bench/clients.py"))
        .args(["burst", &addr.port().to_string(), "1000"])
        .output()
        .expect("cannot run python3");
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    let field = |name: &str| -> u32 {
        printed
            .split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {printed:?}: {out:?}"))
    };
    // With a listen queue of 128 (the standard library's) it overflowed:
    // a SYN dropped, its client waiting a second for the retry. With
    // master accepting faster than the factory forks, most of the burst
    // counted against MaxDaemonChildren while it waited for the factory,
    // and was refused with 421 although never more than a few dozen
    // fronts ran at once.
    assert_eq!(
        (
            field("greeted"),
            field("refused"),
            field("syn_retries"),
            field("lost")
        ),
        (1000, 0, 0, 0),
        "{printed}"
    );
    assert!(out.status.success(), "{out:?}");
    let left = poll_until(WAIT, || {
        role_pids(&daemon, "front").is_empty().then_some(())
    });
    assert!(left.is_some(), "fronts still running after the burst");
    assert!(daemon.stop().success());
}
