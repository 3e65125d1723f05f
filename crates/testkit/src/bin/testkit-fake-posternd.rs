//! A stand-in for posternd, used only by postern-testkit's own tests of
//! `Daemon`: it takes the same `-C <cf> --log-stderr` command line, binds
//! the first `DaemonPortOptions` listener, greets `220` and answers QUIT.
//!
//! Knobs, by environment: `FAKE_POSTERND_EXIT=<code>` exits with that code
//! before binding (a daemon that rejects its configuration);
//! `FAKE_POSTERND_CHILD=1` starts a child process first that exits when its
//! stdin pipe from the master closes, as the real daemon's children do when
//! the master dies; `FAKE_POSTERND_CHILD=stubborn` starts one that never
//! exits by itself. SIGTERM keeps its default action: the process ends.

#![forbid(unsafe_code)]

use std::env;
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{self, Command, Stdio};

fn main() {
    let args: Vec<String> = env::args().collect();
    if args.get(1).map(String::as_str) == Some("--child") {
        // Blocks until the master's end of the pipe closes.
        let _ = io::stdin().read_to_end(&mut Vec::new());
        if args.get(2).map(String::as_str) == Some("stubborn") {
            // Outlives the master until someone kills it.
            loop {
                std::thread::park();
            }
        }
        return;
    }
    let config = match args.iter().position(|a| a == "-C") {
        Some(i) if i + 1 < args.len() => args[i + 1].clone(),
        _ => fail("usage: -C <config> --log-stderr"),
    };
    if !args.iter().any(|a| a == "--log-stderr") {
        fail("--log-stderr missing");
    }
    let text = fs::read_to_string(&config).unwrap_or_else(|e| fail(&format!("{config}: {e}")));
    eprintln!(
        "fake-posternd: read {} lines from {config}",
        text.lines().count()
    );
    println!("fake-posternd: stdout is collected too");
    if let Ok(code) = env::var("FAKE_POSTERND_EXIT") {
        eprintln!("fake-posternd: fatal: told to exit with {code}");
        process::exit(code.parse().unwrap_or(1));
    }
    let value = text
        .lines()
        .find_map(|l| l.strip_prefix("O DaemonPortOptions="))
        .unwrap_or_else(|| fail("no O DaemonPortOptions= line"));
    let field = |key: &str| {
        value.split(',').find_map(|item| {
            let (k, v) = item.split_once('=')?;
            (k.trim() == key).then(|| v.trim().to_string())
        })
    };
    let addr = format!(
        "{}:{}",
        field("Addr").unwrap_or_else(|| "127.0.0.1".into()),
        field("Port").unwrap_or_else(|| fail("no Port"))
    );
    let listener = TcpListener::bind(&addr).unwrap_or_else(|e| fail(&format!("bind {addr}: {e}")));
    // Held, never dropped: the pipe closes when this process dies.
    let _child = env::var("FAKE_POSTERND_CHILD").ok().map(|kind| {
        let exe = env::current_exe().unwrap_or_else(|e| fail(&format!("current_exe: {e}")));
        let child = Command::new(exe)
            .arg("--child")
            .arg(kind)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| fail(&format!("spawn child: {e}")));
        eprintln!("fake-posternd: child {}", child.id());
        child
    });
    eprintln!("fake-posternd: ready on {addr}");
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                if let Err(e) = serve(stream) {
                    eprintln!("fake-posternd: session: {e}");
                }
            }
            Err(e) => fail(&format!("accept: {e}")),
        }
    }
}

fn serve(stream: TcpStream) -> io::Result<()> {
    let mut writer = stream.try_clone()?;
    writer.write_all(b"220 mx.test ESMTP fake\r\n")?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    while reader.read_line(&mut line)? > 0 {
        let command = line.trim_end();
        eprintln!("fake-posternd: command {command}");
        if command.eq_ignore_ascii_case("QUIT") {
            return writer.write_all(b"221 2.0.0 bye\r\n");
        }
        writer.write_all(b"250 2.0.0 ok\r\n")?;
        line.clear();
    }
    Ok(())
}

fn fail(message: &str) -> ! {
    eprintln!("fake-posternd: fatal: {message}");
    process::exit(2)
}
