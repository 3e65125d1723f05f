//! The fault scripts in their short form (`scripts/faults/*.py --short`),
//! against the built binaries: each injects its faults under load, prints
//! sent / acknowledged / delivered / duplicated / lost and its own checks,
//! and exits 0 only when nothing acknowledged was lost and every check
//! held. One at a time: they measure timeouts and greeting delays, which
//! a neighbour's load would blur.

use std::process::Command;
use std::sync::Mutex;

use postern_testkit::running_as_root;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn run(script: &str) -> String {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let out = Command::new("python3")
        .arg(postern_testkit::repo_root().join(format!("scripts/faults/{script}.py")))
        .arg("--short")
        .env("POSTERN_BIN", postern_testkit::binary("posternd"))
        .env("POSTERN_CLI", postern_testkit::binary("postern"))
        .env_remove("FAULT_KEEP")
        .env_remove("POSTERN_CONFIG")
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{script}.py --short failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    // The counts line, with nothing lost, and the verdict.
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("sent=") && l.ends_with(" lost=0")),
        "{stdout}"
    );
    assert!(stdout.contains("result: ok"), "{stdout}");
    stdout
}

#[test]
fn kill_9_of_any_process_under_load_loses_nothing() {
    let out = run("kill9");
    assert!(out.contains("killed: {"), "{out}");
}

#[test]
fn a_misbehaving_next_hop_gets_every_message_again_until_it_takes_it() {
    let out = run("next_hop");
    assert!(out.contains("faults injected at the next hop"), "{out}");
}

#[test]
fn a_stopped_queue_runner_costs_clients_a_451_not_a_hang() {
    let out = run("stopped_queue");
    assert!(out.contains("'451'"), "{out}");
}

#[test]
fn a_full_spool_answers_452_and_acceptance_resumes_by_itself() {
    if !running_as_root() {
        eprintln!("skipped: disk_full.py mounts a tmpfs, which needs root");
        return;
    }
    let out = run("disk_full");
    assert!(
        out.contains("'452 4.3.1 Insufficient system storage'"),
        "{out}"
    );
}

#[test]
fn out_of_descriptors_processes_and_memory_master_answers_and_recovers() {
    let out = run("exhaustion");
    assert!(!out.contains("FAIL "), "{out}");
}

#[test]
fn slow_and_greedy_clients_are_ended_by_their_timeouts() {
    let out = run("slow_clients");
    assert!(!out.contains("FAIL "), "{out}");
}
