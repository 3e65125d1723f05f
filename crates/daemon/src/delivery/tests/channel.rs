//! The conversation with the queue runner: Hello, Shutdown, end of
//! stream, and what a protocol violation does.

use std::io::Write;

use postern_ipc::{QueueToDelivery, RecipientStatus, PROTOCOL_VERSION};

use super::{job, join_bounded, settings_full, settings_with, Harness, BODY};

#[test]
fn shutdown_waits_for_jobs_in_flight_and_refuses_new_ones() {
    // A server that takes the connection and never greets: job 1 stays in
    // flight until its greeting times out, however busy the machine is,
    // so job 2 always comes after Shutdown and before the end.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let table = format!(
        "sink.test esmtp:[127.0.0.1]:{}\n",
        silent.local_addr().unwrap().port()
    );
    let (_dir, settings) = settings_full(&table, "", "O Timeout.initial=2s\n");
    let mut h = Harness::start(settings);
    h.deliver(job(1, &["a@sink.test"]), BODY);
    h.send(&QueueToDelivery::Shutdown);
    h.deliver(job(2, &["b@sink.test"]), BODY);
    let mut reports = [h.report(), h.report()];
    reports.sort_by_key(|r| r.job);
    // Job 1 was waited for: its own result, not the shutdown's.
    assert_eq!(reports[0].recipients[0].status, RecipientStatus::TempFail);
    assert_ne!(
        reports[0].recipients[0].reply,
        "451 4.3.2 Delivery client shutting down"
    );
    assert_eq!(reports[1].recipients[0].status, RecipientStatus::TempFail);
    assert_eq!(
        reports[1].recipients[0].reply,
        "451 4.3.2 Delivery client shutting down"
    );
    assert_eq!(h.exit_code(), 0);
}

#[test]
fn queue_runner_gone_exits_zero() {
    let (_dir, settings) = settings_with("", "");
    let mut h = Harness::start(settings);
    let thread = h.thread.take().unwrap();
    drop(h);
    assert_eq!(join_bounded(thread), 0);
}

#[test]
fn protocol_violations_exit_one() {
    // Another protocol version.
    let (_dir, settings) = settings_with("", "");
    let mut h = Harness::start_raw(settings);
    h.send(&QueueToDelivery::Hello {
        version: PROTOCOL_VERSION + 1,
    });
    assert_eq!(h.exit_code(), 1);
    // A job before Hello.
    let (_dir, settings) = settings_with("", "");
    let mut h = Harness::start_raw(settings);
    h.deliver(job(1, &["a@local.test"]), BODY);
    assert_eq!(h.exit_code(), 1);
    // A job without its descriptor.
    let (_dir, settings) = settings_with("", "");
    let mut h = Harness::start(settings);
    h.send(&QueueToDelivery::Deliver(job(1, &["a@local.test"])));
    assert_eq!(h.exit_code(), 1);
    // Garbage instead of a frame.
    let (_dir, settings) = settings_with("", "");
    let h = Harness::start(settings);
    let mut raw = h.queue.stream().try_clone().unwrap();
    raw.write_all(&[0, 0, 0, 5, 0, 0xff, 0xff, 0xff, 0xff, 0xff])
        .unwrap();
    let mut h = h;
    assert_eq!(h.exit_code(), 1);
}
