//! The connection loop of `scripts/bench/run.sh`: TOTAL SMTP sessions to
//! 127.0.0.1:PORT, PARALLEL at a time, each reading the greeting and
//! saying QUIT, or with `--starttls` first EHLO, STARTTLS and the TLS
//! handshake (the certificate is not verified: the bench measures the
//! server's handshake, not trust).
//!
//!   postern-bench-client PORT TOTAL PARALLEL [--starttls]
//!
//! Prints one line, `rate=… elapsed=… ok=… errors=… client_cpu=…`, where
//! client_cpu is the share of one core this client used: compiled and with
//! blocking threads it stays far below what the server uses, so that the
//! server, not the client, sets the rate (a Python asyncio client spent
//! most of a core against Postfix). Exits 1 if any session failed.

#![forbid(unsafe_code)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::resource::{getrusage, UsageWho};
use openssl::ssl::{Ssl, SslContext, SslMethod, SslVerifyMode};

/// A stuck server must not hang the benchmark.
const TIMEOUT: Duration = Duration::from_secs(30);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let usage = || {
        eprintln!("usage: postern-bench-client PORT TOTAL PARALLEL [--starttls]");
        ExitCode::from(2)
    };
    let (Some(port), Some(total), Some(parallel)) = (
        args.get(1).and_then(|a| a.parse::<u16>().ok()),
        args.get(2).and_then(|a| a.parse::<usize>().ok()),
        args.get(3).and_then(|a| a.parse::<usize>().ok()),
    ) else {
        return usage();
    };
    let starttls = match args.get(4).map(String::as_str) {
        None => false,
        Some("--starttls") => true,
        Some(_) => return usage(),
    };
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    // A bare context: no trust store at all. SslConnector's default one
    // (the system's certificate directory) was searched, directory read
    // and all, in every handshake although nothing is verified, which cost
    // this client more than the handshake's own cryptography.
    let tls = starttls.then(|| {
        let mut builder = SslContext::builder(SslMethod::tls_client()).expect("openssl");
        builder.set_verify(SslVerifyMode::NONE);
        builder.build()
    });

    let left = Arc::new(AtomicUsize::new(total));
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let cpu0 = cpu_seconds();
    let start = Instant::now();
    let workers: Vec<_> = (0..parallel.max(1))
        .map(|_| {
            let (left, errors, tls) = (left.clone(), errors.clone(), tls.clone());
            std::thread::spawn(move || {
                // Take one session at a time until none is left.
                while left
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok()
                {
                    if let Err(e) = session(addr, tls.as_ref()) {
                        errors.lock().unwrap().push(e.to_string());
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("a worker panicked");
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let mut errors = errors.lock().unwrap().clone();
    let failed = errors.len();
    errors.sort();
    errors.dedup();
    for e in errors.iter().take(5) {
        eprintln!("error: {e}");
    }
    let ok = total - failed;
    println!(
        "rate={:.1} elapsed={elapsed:.3} ok={ok} errors={failed} client_cpu={:.0}",
        ok as f64 / elapsed,
        100.0 * cpu / elapsed
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// User plus system time of this process so far.
fn cpu_seconds() -> f64 {
    let usage = getrusage(UsageWho::RUSAGE_SELF).expect("getrusage");
    let secs = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    secs(usage.user_time()) + secs(usage.system_time())
}

fn session(addr: SocketAddr, tls: Option<&SslContext>) -> io::Result<()> {
    let stream = TcpStream::connect_timeout(&addr, TIMEOUT)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    // Each command is one small write answered by the server: without
    // this, QUIT right after the TLS Finished would wait for an ACK.
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream);
    expect_reply(&mut reader, "220")?;
    match tls {
        None => quit(reader),
        Some(context) => {
            reader.get_mut().write_all(b"EHLO bench.client\r\n")?;
            expect_reply(&mut reader, "250")?;
            reader.get_mut().write_all(b"STARTTLS\r\n")?;
            expect_reply(&mut reader, "220")?;
            if !reader.buffer().is_empty() {
                return Err(io::Error::other("data after the STARTTLS reply"));
            }
            let mut ssl = Ssl::new(context).map_err(io::Error::other)?;
            ssl.set_hostname("localhost").map_err(io::Error::other)?;
            let tls_stream = ssl
                .connect(reader.into_inner())
                .map_err(|e| io::Error::other(format!("TLS handshake: {e}")))?;
            quit(BufReader::new(tls_stream))
        }
    }
}

fn quit<S: Read + Write>(mut reader: BufReader<S>) -> io::Result<()> {
    reader.get_mut().write_all(b"QUIT\r\n")?;
    expect_reply(&mut reader, "221")
}

/// Reads one reply, continuation lines included; an error unless its code
/// is `code`.
fn expect_reply<R: BufRead>(reader: &mut R, code: &str) -> io::Result<()> {
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(io::Error::other(format!(
                "connection closed, expected {code}"
            )));
        }
        if !line.starts_with(code) {
            return Err(io::Error::other(format!(
                "expected {code}, got {:?}",
                line.trim_end()
            )));
        }
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok(());
        }
    }
}
