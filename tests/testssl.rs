//! testssl.sh (Debian's package) against the STARTTLS port rates nothing
//! HIGH or CRITICAL. The run is `scripts/testssl.sh`; its summary is in the
//! README.

mod common;

use postern_testkit::make_certs;

use std::process::Command;

use common::{daemon_with_sink, seed_tls_defines};
use postern_testkit::Sink;

#[test]
fn testssl_rates_nothing_high_or_critical() {
    let certs = make_certs();
    let sink = Sink::start();
    let defines = seed_tls_defines(certs.path());
    let lines: Vec<&str> = defines.iter().map(String::as_str).collect();
    let daemon = daemon_with_sink(&sink, &lines);
    let script = postern_testkit::script("testssl.sh");
    let out = Command::new("bash")
        .arg(script)
        .arg(daemon.smtp_addr().port().to_string())
        .arg(certs.path().join("cacert.pem"))
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    println!("{report}");
    assert!(
        out.status.success(),
        "testssl.sh found problems:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(report.starts_with("testssl.sh severities: "), "{report}");
}
