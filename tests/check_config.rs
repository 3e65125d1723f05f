//! `postern check-config` and `posternd` agree: a configuration the check
//! passes starts, and each kind of mistake that stops the daemon with 78
//! (a bad table line, a missing key file, a mistyped option, an unknown
//! user, a spool owned by someone else) fails the check with the same
//! message, before anyone tries to start the daemon.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use postern_testkit::{ensure_test_users, running_as_root, DaemonBuilder, Instance};

fn builder() -> DaemonBuilder {
    ensure_test_users();
    DaemonBuilder::new(postern_testkit::binary("posternd")).table("local-host-names", "mx.test\n")
}

fn check(config: &Path) -> Output {
    Command::new(postern_testkit::binary("postern"))
        .args(["check-config", "-C"])
        .arg(config)
        .env_remove("POSTERN_CONFIG")
        .output()
        .unwrap()
}

/// The daemon itself on the same file: it must refuse before it binds
/// anything, so it exits at once.
fn start(config: &Path) -> Output {
    Command::new(postern_testkit::binary("posternd"))
        .arg("-C")
        .arg(config)
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Both refuse `instance`'s configuration with 78, both saying `needle`.
fn both_refuse(instance: &Instance, needle: &str) {
    let config = instance.config_path();
    let checked = check(&config);
    assert_eq!(checked.status.code(), Some(78), "{}", stderr(&checked));
    assert!(stderr(&checked).contains(needle), "{}", stderr(&checked));
    let started = start(&config);
    assert_eq!(started.status.code(), Some(78), "{}", stderr(&started));
    assert!(stderr(&started).contains(needle), "{}", stderr(&started));
}

#[test]
fn a_configuration_that_passes_starts() {
    let mut daemon = builder().start();
    let out = check(&daemon.config_path());
    assert!(out.status.success(), "{}", stderr(&out));
    let effective = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        effective
            .lines()
            .any(|l| l.starts_with("O QueueDirectory=")),
        "{effective}"
    );
    assert!(daemon.is_running());
}

#[test]
fn an_unknown_mailer_in_the_mailertable() {
    let instance = builder()
        .table("mailertable", "example.com bogus:[127.0.0.1]\n")
        .prepare();
    both_refuse(
        &instance,
        "mailertable:1: unknown mailer \"bogus\" in \"bogus:[127.0.0.1]\"",
    );
}

#[test]
fn a_missing_server_key() {
    let instance = builder()
        .config_line("O ServerCertFile=/nonexistent/cert.pem")
        .config_line("O ServerKeyFile=/nonexistent/key.pem")
        .prepare();
    both_refuse(&instance, "STARTTLS=server: file /nonexistent/");
}

#[test]
fn a_mistyped_define_gets_a_suggestion() {
    let instance = builder()
        .config_line("define(`confMAX_MESAGE_SIZE', `1000')")
        .prepare();
    both_refuse(
        &instance,
        "postern.cf:7: unknown option \"confMAX_MESAGE_SIZE\"; did you mean \"confMAX_MESSAGE_SIZE\"?",
    );
}

#[test]
fn every_table_error_is_reported_at_once() {
    let instance = builder()
        .table("mailertable", "example.com bogus:[127.0.0.1]\n")
        .table("access", "ClientConn:192.0.2.1 many\n")
        .prepare();
    let out = check(&instance.config_path());
    assert_eq!(out.status.code(), Some(78));
    let err = stderr(&out);
    assert!(
        err.contains("mailertable:1:") && err.contains("access:1:"),
        "{err}"
    );
}

/// Users and directory owners matter only where the daemon changes uid.
#[test]
fn unknown_users_and_foreign_directories() {
    if !running_as_root() {
        eprintln!("skipped: users and owners are only checked as root (CI runs as root)");
        return;
    }
    let instance = builder()
        .config_line("O RunAsUser=no-such-user-here")
        .prepare();
    both_refuse(&instance, "RunAsUser: unknown user \"no-such-user-here\"");

    // The spool exists and belongs to root, not to QueueOwner.
    let instance = builder().prepare();
    std::fs::create_dir_all(instance.spool_dir()).unwrap();
    both_refuse(&instance, "is owned by uid 0, not by posternq");
}
