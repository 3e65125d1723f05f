//! Helpers shared by the daemon's end-to-end tests.

#![allow(dead_code)]

pub mod dsn;
pub mod filters;
pub mod memory;

use std::time::Duration;

use postern_testkit::{descendant_pids, ensure_test_users, Daemon, DaemonBuilder, Sink};

/// Generous bound for anything a test waits for.
pub const WAIT: Duration = Duration::from_secs(60);

/// A daemon that relays `@sink.test` to `sink` and delivers `@mx.test`
/// locally, with fast retries; `extra` lines are added to its configuration.
pub fn daemon_with_sink(sink: &Sink, extra: &[&str]) -> Daemon {
    daemon_with_sink_and_tables(sink, extra, &[])
}

/// [`daemon_with_sink`] with side tables (`auth-users`, `access`, …)
/// written before it starts.
pub fn daemon_with_sink_and_tables(sink: &Sink, extra: &[&str], tables: &[(&str, &str)]) -> Daemon {
    builder_with_sink(sink, extra, tables).start()
}

/// The builder of [`daemon_with_sink_and_tables`], for a test that sets
/// more before it starts.
pub fn builder_with_sink(sink: &Sink, extra: &[&str], tables: &[(&str, &str)]) -> DaemonBuilder {
    ensure_test_users();
    let mut builder = DaemonBuilder::new(postern_testkit::binary("posternd"))
        .table(
            "mailertable",
            format!("sink.test esmtp:[127.0.0.1]:{}\n", sink.addr().port()),
        )
        .table("local-host-names", "mx.test\n")
        .config_line("O LogLevel=9")
        .config_line("O MinQueueAge=1s");
    for (name, contents) in tables {
        builder = builder.table(name, contents);
    }
    for line in extra {
        builder = builder.config_line(line);
    }
    builder
}

/// The pid of the daemon's process with this role (`queue`, `deliv`,
/// `front`), found by the name master gives each child.
pub fn role_pids(daemon: &Daemon, role: &str) -> Vec<u32> {
    let name = format!("posternd-{role}");
    descendant_pids(daemon.pid())
        .into_iter()
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == name)
        })
        .collect()
}

/// Waits for exactly one process of `role` and returns it.
pub fn role_pid(daemon: &Daemon, role: &str) -> u32 {
    postern_testkit::poll_until(WAIT, || match role_pids(daemon, role).as_slice() {
        [one] => Some(*one),
        _ => None,
    })
    .unwrap_or_else(|| {
        panic!(
            "no single {role} process; log:\n{}",
            daemon.log_lines().join("\n")
        )
    })
}

/// The message as sent, with the Received: header the daemon added cut off.
pub fn strip_received(data: &[u8]) -> &[u8] {
    assert!(data.starts_with(b"Received: "), "no Received: header first");
    let mut i = 0;
    loop {
        let end = data[i..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("header line end")
            + i
            + 2;
        i = end;
        if !matches!(data.get(i), Some(b' ' | b'\t')) {
            return &data[i..];
        }
    }
}

/// The seed's six STARTTLS defines, verbatim but for the directory.
pub fn seed_tls_defines(certs: &std::path::Path) -> Vec<String> {
    let d = certs.display();
    vec![
        "dnl Point to the CA certificate directory".into(),
        format!("define(`confCACERT_PATH', `{d}')"),
        "dnl Point to the root CA's certificate".into(),
        format!("define(`confCACERT', `{d}/cacert.pem')"),
        "dnl Point to the certificate used for inbound connections".into(),
        format!("define(`confSERVER_CERT', `{d}/cert.pem')"),
        "dnl Point to the private key used for inbound connections".into(),
        format!("define(`confSERVER_KEY', `{d}/key.pem')"),
        "dnl Point to the certificate used for outbound connections".into(),
        format!("define(`confCLIENT_CERT', `{d}/cert.pem')"),
        "dnl Point to the private key used for outbound connections".into(),
        format!("define(`confCLIENT_KEY', `{d}/key.pem')"),
    ]
}

/// `mailq` against `daemon`: its standard output.
pub fn mailq(daemon: &Daemon) -> String {
    use std::os::unix::process::CommandExt;
    let out = std::process::Command::new(postern_testkit::binary("postern"))
        .arg0("mailq")
        .env("POSTERN_CONFIG", daemon.config_path())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `sendmail <args>` against `daemon`, with `input` on its standard
/// input: standard output and error, one after the other.
pub fn sendmail(daemon: &Daemon, args: &[&str], input: &[u8]) -> String {
    use std::io::Write;
    use std::os::unix::process::CommandExt;
    let mut child = std::process::Command::new(postern_testkit::binary("postern"))
        .arg0("sendmail")
        .args(args)
        .env("POSTERN_CONFIG", daemon.config_path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}
