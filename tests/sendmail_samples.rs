//! Postern next to the real sendmail 8.17, line by line. Each test plays
//! the scenario of one group of `samples/sendmail-8.17/` (captured from
//! sendmail 8.17.1.9 on Debian 12; see that directory's README) against
//! Postern, masks what must differ (queue IDs, dates, pids, the version,
//! the queue directory), and compares with the sample. Every difference
//! that remains is listed here, each with its reason, in the
//! `DIFFERENCES` tables; the README's section "Compared with sendmail
//! 8.17, line by line" gives every reason. A difference not in a table
//! fails the test, with both texts shown: either fix Postern, or add it
//! to a table and the README with the reason.

#[path = "sendmail_samples/bounce.rs"]
mod bounce;
mod common;
#[path = "sendmail_samples/mailq.rs"]
mod mailq;
#[path = "sendmail_samples/received.rs"]
mod received;
#[path = "sendmail_samples/smtp.rs"]
mod smtp;
#[path = "sendmail_samples/syslog.rs"]
mod syslog;
#[path = "sendmail_samples/verbose.rs"]
mod verbose;

use std::path::PathBuf;
use std::process::{Command, Stdio};

use common::WAIT;
use postern_testkit::{
    ensure_test_users, make_certs, poll_until, DaemonBuilder, Sink, SinkBehavior, SmtpConversation,
};
use regex::Regex;

/// A difference from sendmail that Postern keeps, and why.
struct Difference {
    /// The sample's line, masked; a trailing `*` matches any rest.
    sendmail: &'static str,
    /// Postern's lines in its place (none: Postern has no such line).
    postern: &'static [&'static str],
    /// Why (the same words as in the README).
    why: &'static str,
}

fn sample(name: &str) -> String {
    let path: PathBuf = postern_testkit::repo_root()
        .join("tests/samples/sendmail-8.17")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// What may differ between two runs of the same scenario, made alike.
fn mask(line: &str) -> String {
    let rules: &[(&str, &str)] = &[
        // The greeting's product, version and date.
        (
            r"ESMTP (Sendmail 8\.17\.1\.9/8\.17\.1\.9/samples|Postern [0-9.]+); .*$",
            "ESMTP <MTA>; <DATE>",
        ),
        (
            r"This is (sendmail version 8\.17\.1\.9|Postern version [0-9.]+)",
            "This is <MTA>",
        ),
        // Queue IDs.
        (r"\b[0-9A-Za-z]{14}\b( Message accepted)", "<QID>$1"),
    ];
    apply_masks(line, rules)
}

/// `line` with each `(pattern, replacement)` applied in turn.
fn apply_masks(line: &str, rules: &[(&str, &str)]) -> String {
    let mut line = line.to_string();
    for (pattern, with) in rules {
        line = Regex::new(pattern)
            .unwrap()
            .replace_all(&line, *with)
            .into_owned();
    }
    line
}

/// The sample's host, `mx.example`, at `log_level`, with PrivacyOptions
/// `privacy`: `down.test` routed to a port where nothing listens, and,
/// when given, `sink` as the smart host and `certs` for STARTTLS.
fn mx_example(
    privacy: &str,
    log_level: u32,
    sink: Option<&Sink>,
    certs: Option<&std::path::Path>,
) -> postern_testkit::Daemon {
    mx_example_routing(privacy, log_level, sink, certs, "")
}

/// [`mx_example`] with more mailertable lines.
fn mx_example_routing(
    privacy: &str,
    log_level: u32,
    sink: Option<&Sink>,
    certs: Option<&std::path::Path>,
    mailertable: &str,
) -> postern_testkit::Daemon {
    ensure_test_users();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut builder = DaemonBuilder::new(postern_testkit::binary("posternd"))
        .table("local-host-names", "mx.example\n")
        .table(
            "mailertable",
            format!("down.test smtp:[127.0.0.1]:{closed_port}\n{mailertable}"),
        )
        .config_line("Dj mx.example")
        .config_line(&format!("O LogLevel={log_level}"))
        // The samples' sendmail ran with its default, no limit: a session
        // that repeats HELO or NOOP is then slowed down, not ended (as
        // Postern's default of 256 would).
        .config_line("O MaxDaemonChildren=0")
        .config_line(&format!("define(`confPRIVACY_FLAGS', `{privacy}')"));
    if let Some(sink) = sink {
        builder = builder.config_line(&format!(
            "define(`SMART_HOST', `relay:[127.0.0.1]:{}')",
            sink.addr().port()
        ));
    }
    if let Some(certs) = certs {
        builder = builder
            .config_line(&format!("O ServerCertFile={}/cert.pem", certs.display()))
            .config_line(&format!("O ServerKeyFile={}/key.pem", certs.display()))
            .config_line(&format!("O CACertFile={}/cacert.pem", certs.display()));
    }
    builder.start()
}

/// swaks from `sender@example.com` to `to` at `addr`, with `extra`
/// arguments; it must succeed.
fn swaks(addr: std::net::SocketAddr, to: &str, extra: &[&str]) {
    let out = Command::new("swaks")
        .args(["--server", &addr.ip().to_string()])
        .args(["--port", &addr.port().to_string()])
        .args(["--from", "sender@example.com", "--to", to])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "swaks: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// `sendmail <args>` as the test's user, against `config`, fed `input`.
fn sendmail(config: &std::path::Path, args: &[&str], input: &str) -> std::process::Output {
    let mut child = Command::new(postern_testkit::binary("postern"))
        .arg0_as("sendmail")
        .args(args)
        .env("POSTERN_CONFIG", config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// The output of the `nth` (from 0) command of a sample file whose
/// heading line is `heading`, up to its `### exit code: N`, and N.
fn command_output(file: &str, heading: &str, nth: usize) -> (Vec<String>, i32) {
    let text = sample(file);
    let mut lines = text.lines();
    let mut seen = 0;
    while let Some(line) = lines.next() {
        if line != heading {
            continue;
        }
        if seen < nth {
            seen += 1;
            continue;
        }
        let mut out = Vec::new();
        for line in lines.by_ref() {
            if let Some(code) = line.strip_prefix("### exit code: ") {
                return (out, code.parse().unwrap());
            }
            out.push(line.to_string());
        }
    }
    panic!("no {heading:?} (#{nth}) in {file}");
}

/// The sample's lines with the listed differences made.
fn expected(sample: &[String], differences: &[&Difference]) -> Vec<String> {
    let mut out = Vec::new();
    for line in sample {
        let rule = differences
            .iter()
            .find(|d| match d.sendmail.strip_suffix('*') {
                Some(prefix) => line.starts_with(prefix),
                None => line == d.sendmail,
            });
        match rule {
            Some(d) => out.extend(d.postern.iter().map(|l| l.to_string())),
            None => out.push(line.clone()),
        }
    }
    out
}

/// Compares, showing both texts and a line-by-line account on failure.
fn assert_same(what: &str, want: &[String], got: &[String]) {
    if want == got {
        return;
    }
    let mut account = String::new();
    for i in 0..want.len().max(got.len()) {
        let (w, g) = (want.get(i), got.get(i));
        let mark = if w == g { "  " } else { "≠ " };
        account.push_str(&format!(
            "{mark}{:<70} | {}\n",
            w.map_or("", String::as_str),
            g.map_or("", String::as_str)
        ));
    }
    panic!(
        "{what}: Postern differs from sendmail 8.17 where no difference is listed \
         (left: sendmail with the listed differences, right: Postern)\n{account}"
    );
}

trait Arg0 {
    fn arg0_as(&mut self, name: &str) -> &mut Self;
}

impl Arg0 for Command {
    fn arg0_as(&mut self, name: &str) -> &mut Self {
        std::os::unix::process::CommandExt::arg0(self, name)
    }
}

/// Every difference kept is explained to administrators: its reason is in
/// the README's section on differences from sendmail, word for word.
#[test]
fn every_difference_is_in_the_readme() {
    let readme = std::fs::read_to_string(postern_testkit::repo_root().join("README.md")).unwrap();
    let tables: &[&[Difference]] = &[
        smtp::SMTP_DIFFERENCES,
        smtp::BS_DIFFERENCES,
        mailq::MAILQ_DIFFERENCES,
        received::RECEIVED_DIFFERENCES,
        verbose::VERBOSE_DIFFERENCES,
        syslog::SYSLOG_DIFFERENCES,
        syslog::SYSLOG_14_DIFFERENCES,
        bounce::BOUNCE_DIFFERENCES,
        bounce::QUEUE_RUN_DIFFERENCES,
        bounce::COMMAND_LINE_DIFFERENCES,
    ];
    for d in tables.iter().flat_map(|t| t.iter()) {
        assert!(
            readme.contains(d.why),
            "README.md does not give the reason for {:?}: {:?}",
            d.sendmail,
            d.why
        );
    }
}
