//! Each of sendmail's client timeouts against a server that stops
//! answering at that point: the reply every recipient gets names the
//! phase as sendmail's `SmtpPhase` does (`timeout waiting for input from
//! [127.0.0.1] during client RCPT`), within that timeout, not another's.
//!
//! Timeout.rset has no case here: Postern's client never sends RSET (a
//! transaction that does not end in a final reply ends with QUIT, so a
//! kept connection is always in the server's initial state), which is
//! the one command sendmail waits on with it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::time::{Duration, Instant};

use postern_ipc::{QueueToDelivery, RecipientStatus};

use super::{job, settings_full, status_of, Harness};

/// Where the fake server stops answering.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stall {
    /// Before its 220.
    Greeting,
    /// At the command starting with this verb: no reply.
    At(&'static str),
    /// After its 354: it stops reading the body too.
    Body,
    /// After the body's final dot: no reply.
    EndOfData,
}

/// A one-connection SMTP server that stalls, and how long after it
/// stalled the client hung up.
struct Staller {
    addr: SocketAddr,
    hung_up: Receiver<Duration>,
    done: Sender<()>,
}

impl Staller {
    fn start(stall: Stall, extensions: &'static [&'static str]) -> Staller {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (hung_tx, hung_up) = channel();
        let (done, done_rx) = channel::<()>();
        std::thread::spawn(move || {
            let Ok((stream, _)) = listener.accept() else {
                return;
            };
            let since = serve_until_stall(&stream, stall, extensions);
            if stall == Stall::Body {
                // Read nothing more: the client's writes fill the socket.
                let _ = done_rx.recv_timeout(Duration::from_secs(30));
                return;
            }
            let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
            let mut sink = [0u8; 4096];
            while matches!((&stream).read(&mut sink), Ok(n) if n > 0) {}
            let _ = hung_tx.send(since.elapsed());
        });
        Staller {
            addr,
            hung_up,
            done,
        }
    }
}

impl Drop for Staller {
    fn drop(&mut self) {
        let _ = self.done.send(());
    }
}

/// Answers as a plain SMTP server until the stall point; returns when it
/// stalled.
fn serve_until_stall(stream: &TcpStream, stall: Stall, extensions: &[&str]) -> Instant {
    let mut out = stream;
    if stall == Stall::Greeting {
        return Instant::now();
    }
    let _ = out.write_all(b"220 stall.test ESMTP\r\n");
    let mut lines = BufReader::new(stream);
    let mut line = String::new();
    let mut in_data = false;
    loop {
        line.clear();
        if lines.read_line(&mut line).unwrap_or(0) == 0 {
            return Instant::now();
        }
        if in_data {
            if line == ".\r\n" {
                in_data = false;
                if stall == Stall::EndOfData {
                    return Instant::now();
                }
                let _ = out.write_all(b"250 2.0.0 queued\r\n");
            }
            continue;
        }
        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
        if matches!(stall, Stall::At(v) if verb == v) {
            return Instant::now();
        }
        let reply = match verb.as_str() {
            "EHLO" => {
                let mut r = String::from("250-stall.test\r\n");
                for e in extensions {
                    r.push_str(&format!("250-{e}\r\n"));
                }
                r + "250 HELP\r\n"
            }
            "DATA" => {
                if stall == Stall::Body {
                    let _ = out.write_all(b"354 go ahead\r\n");
                    return Instant::now();
                }
                in_data = true;
                "354 go ahead\r\n".to_string()
            }
            "QUIT" => "221 2.0.0 bye\r\n".to_string(),
            _ => "250 2.0.0 ok\r\n".to_string(),
        };
        let _ = out.write_all(reply.as_bytes());
    }
}

/// Delivers one message through a server that stalls at `stall`, with
/// `timeout` (a `Timeout.*` option) at one second and every other at an
/// hour: the one recipient's reply, and how long it took.
fn reply_after_stall(
    stall: Stall,
    extensions: &'static [&'static str],
    timeout: &str,
    body: &[u8],
) -> (RecipientStatus, String, Duration) {
    let server = Staller::start(stall, extensions);
    let table = format!("stall.test smtp:[127.0.0.1]:{}\n", server.addr.port());
    let mut lines = String::new();
    for t in [
        "initial",
        "helo",
        "misc",
        "mail",
        "rcpt",
        "datainit",
        "datablock",
        "datafinal",
        "quit",
    ] {
        let value = if t == timeout { "1s" } else { "1h" };
        lines.push_str(&format!("O Timeout.{t}={value}\n"));
    }
    let (_dir, settings) = settings_full(&table, "", &lines);
    let mut h = Harness::start(settings);
    let started = Instant::now();
    h.deliver(job(1, &["x@stall.test"]), body);
    let report = h.report();
    let took = started.elapsed();
    let (status, reply, _, _) = status_of(&report, "x@stall.test");
    h.send(&QueueToDelivery::Shutdown);
    assert_eq!(h.exit_code(), 0);
    (status, reply, took)
}

/// Asserts the reply names `phase` and came after about a second.
fn assert_timed_out(stall: Stall, extensions: &'static [&'static str], timeout: &str, phase: &str) {
    let (status, reply, took) = reply_after_stall(stall, extensions, timeout, super::BODY);
    assert_eq!(status, RecipientStatus::TempFail);
    assert_eq!(
        reply,
        format!("421 4.4.2 timeout waiting for input from [127.0.0.1] during {phase}")
    );
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(10),
        "Timeout.{timeout} took {took:?}"
    );
}

#[test]
fn initial_bounds_the_wait_for_the_greeting() {
    assert_timed_out(Stall::Greeting, &[], "initial", "client greeting");
}

#[test]
fn helo_bounds_the_wait_for_the_ehlo_reply() {
    assert_timed_out(Stall::At("EHLO"), &[], "helo", "client EHLO");
}

#[test]
fn misc_bounds_the_wait_for_the_starttls_reply() {
    assert_timed_out(Stall::At("STAR"), &["STARTTLS"], "misc", "client STARTTLS");
}

#[test]
fn mail_bounds_the_wait_for_the_mail_reply() {
    assert_timed_out(Stall::At("MAIL"), &[], "mail", "client MAIL");
}

#[test]
fn rcpt_bounds_the_wait_for_a_rcpt_reply() {
    assert_timed_out(Stall::At("RCPT"), &[], "rcpt", "client RCPT");
}

#[test]
fn datainit_bounds_the_wait_for_the_354() {
    assert_timed_out(Stall::At("DATA"), &[], "datainit", "client DATA 354");
}

#[test]
fn datafinal_bounds_the_wait_for_the_final_reply() {
    assert_timed_out(Stall::EndOfData, &[], "datafinal", "client DATA status");
}

#[test]
fn datablock_bounds_each_write_of_the_body() {
    // More than any loopback socket buffers, so the writes must block.
    let body = vec![b'x'; 16 << 20];
    let (status, reply, took) = reply_after_stall(Stall::Body, &[], "datablock", &body);
    assert_eq!(status, RecipientStatus::TempFail);
    assert_eq!(reply, "421 4.4.2 timeout writing message to [127.0.0.1]");
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

#[test]
fn quit_bounds_the_wait_for_the_221() {
    let server = Staller::start(Stall::At("QUIT"), &[]);
    let table = format!("stall.test smtp:[127.0.0.1]:{}\n", server.addr.port());
    let (_dir, settings) =
        settings_full(&table, "", "O Timeout.quit=1s\nO ConnectionCacheSize=0\n");
    let mut h = Harness::start(settings);
    h.deliver(job(1, &["x@stall.test"]), super::BODY);
    let report = h.report();
    // QUIT's reply decides nothing: the message was delivered.
    assert_eq!(status_of(&report, "x@stall.test").0, RecipientStatus::Sent);
    let hung_up = server
        .hung_up
        .recv_timeout(Duration::from_secs(20))
        .expect("the client hangs up after Timeout.quit");
    assert!(
        hung_up >= Duration::from_millis(900) && hung_up < Duration::from_secs(10),
        "hung up {hung_up:?} after QUIT"
    );
    h.send(&QueueToDelivery::Shutdown);
    assert_eq!(h.exit_code(), 0);
}
