//! The benchmark still runs: `scripts/bench/run.sh --quick` (a smoke run of
//! seconds with tiny counts) against a private Postfix and Postern, with
//! the binaries already built, exits 0 and prints the whole table with a
//! number for both MTAs in every row. Timings are not compared: the
//! figures of a smoke run mean nothing, only that each stage worked.
//!
//! The script needs root (Postfix's master, Postern's privilege
//! separation); as an ordinary user the test says so and stops.

use std::process::Command;

use postern_testkit::running_as_root;

/// The table's rows, each a figure both MTAs must have.
const ROWS: &[&str] = &[
    "PSS per idle connection (MB)",
    "disk: serialized 4 KiB write+fsync+rename+dir fsync/s in the queue's file system",
    "accepted msg/s: 4 KiB, 10 sessions, 1 msg/conn",
    "end-to-end msg/s: 4 KiB, 10 sessions, 1 msg/conn",
    "peak PSS of the instance (MB): 4 KiB, 10 sessions, 1 msg/conn",
    "MTA CPU ms per message: 4 KiB, 10 sessions, 1 msg/conn",
    "accepted msg/s: 4 KiB, 10 sessions, 20 msg/conn",
    "end-to-end msg/s: 4 KiB, 10 sessions, 20 msg/conn",
    "accepted msg/s: 4 KiB, 50 sessions, 1 msg/conn",
    "end-to-end msg/s: 4 KiB, 50 sessions, 1 msg/conn",
    "accepted msg/s: 4 KiB, 50 sessions, 20 msg/conn",
    "end-to-end msg/s: 4 KiB, 50 sessions, 20 msg/conn",
    "accepted msg/s: 100 KiB, 10 sessions, 1 msg/conn",
    "end-to-end msg/s: 100 KiB, 10 sessions, 1 msg/conn",
    "accepted msg/s: 100 KiB, 10 sessions, 20 msg/conn",
    "end-to-end msg/s: 100 KiB, 10 sessions, 20 msg/conn",
    "accepted msg/s: 100 KiB, 50 sessions, 1 msg/conn",
    "end-to-end msg/s: 100 KiB, 50 sessions, 1 msg/conn",
    "accepted msg/s: 100 KiB, 50 sessions, 20 msg/conn",
    "end-to-end msg/s: 100 KiB, 50 sessions, 20 msg/conn",
    "connections/s (greeting, QUIT)",
    "STARTTLS handshakes/s (EHLO, STARTTLS, handshake, QUIT)",
    "burst of 20 connections at once: ms until the last greeting",
    "burst of 20 connections at once: connections that waited for a SYN retry",
];

#[test]
fn the_quick_benchmark_runs_both_mtas_and_prints_every_figure() {
    if !running_as_root() {
        eprintln!("skipped: scripts/bench/run.sh needs root (Postfix's master, Postern's users)");
        return;
    }
    let out = Command::new("bash")
        .arg(postern_testkit::repo_root().join("scripts/bench/run.sh"))
        .arg("--quick")
        .env("POSTERN_BIN", postern_testkit::binary("posternd"))
        .env("POSTERN_CLI", postern_testkit::binary("postern"))
        .env(
            "BENCH_CLIENT",
            postern_testkit::binary("postern-bench-client"),
        )
        .env_remove("BENCH_KEEP")
        .env_remove("POSTERN_CONFIG")
        .output()
        .expect("bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let shown = format!("{}\n--- stdout\n{stdout}--- stderr\n{stderr}", out.status);
    assert!(out.status.success(), "{shown}");

    for row in ROWS {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("| {row} |")))
            .unwrap_or_else(|| panic!("no row {row:?}\n{shown}"));
        // | figure | Postfix | Postern | Postern/Postfix |
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        assert_eq!(cells.len(), 4, "{line}");
        // CPU time is sampled at the clock tick, per process: over the
        // smoke run's 40 messages Postfix (short bursts in many processes)
        // sometimes shows none, and then there is no ratio.
        // A burst the listen queue holds needs no SYN retry: zero, and no
        // ratio when both have none.
        let may_be_zero =
            row.starts_with("MTA CPU ms per message") || row.ends_with("waited for a SYN retry");
        for (mta, cell) in [("Postfix", cells[1]), ("Postern", cells[2])] {
            let value: f64 = cell
                .parse()
                .unwrap_or_else(|_| panic!("{mta}: {row}: {cell:?} is not a number\n{shown}"));
            assert!(
                value > 0.0 || (may_be_zero && value == 0.0),
                "{mta}: {row}: {value}\n{shown}"
            );
        }
        assert!(
            cells[3].parse::<f64>().is_ok() || (may_be_zero && cells[3] == "-"),
            "{line}"
        );
    }
}
