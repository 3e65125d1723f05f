//! Delivery by the DNS, against a real DNS server: Debian's NSD, started
//! on a loopback port with the test's own zones (`O NameServers=`), and
//! mail exchangers as sinks on 127.0.0.2, 127.0.0.3 … at one high port
//! (`ESMTP_MAILER_ARGS`). Nothing resolves through the machine's resolver
//! and nothing leaves the loopback interface.

mod common;

use std::net::SocketAddr;

use common::WAIT;
use postern_testkit::{
    ensure_test_users, free_port, smtp_send, Daemon, DaemonBuilder, Nsd, Sink, SinkBehavior,
};

/// The zone every test serves: two exchangers for `example.test`, a host
/// with addresses and no MX, a null MX, an exchanger that is the daemon
/// itself (by a name in its local-host-names), and an exchanger without
/// any address before a good one.
const EXAMPLE_ZONE: &str = "\
@ MX 10 mx1
@ MX 20 mx2
mx1 A 127.0.0.2
mx2 A 127.0.0.3
implicit A 127.0.0.4
nullmx MX 0 .
loop MX 10 me
loop MX 20 mx2
me A 127.0.0.5
dangling MX 5 nowhere
dangling MX 10 mx2
dual MX 10 dualmx
dualmx A 127.0.0.7
dualmx AAAA ::1
";

struct World {
    nsd: Nsd,
    port: u16,
    daemon: Daemon,
    /// Where bounces and other mail for `origin.test` go.
    origin: Sink,
}

impl World {
    fn start(zones: &[(&str, Option<&str>)]) -> World {
        ensure_test_users();
        let nsd = Nsd::start(zones);
        let port = free_port();
        let origin = Sink::start();
        let daemon = DaemonBuilder::new(postern_testkit::binary("posternd"))
            .table(
                "mailertable",
                format!("origin.test esmtp:[127.0.0.1]:{}\n", origin.addr().port()),
            )
            .table("local-host-names", "mx.test\nme.example.test\n")
            .config_line("O LogLevel=14")
            .config_line("O MinQueueAge=1s")
            .config_line(&format!("O NameServers={}", nsd.addr()))
            .config_line(&format!("define(`ESMTP_MAILER_ARGS', `TCP $h {port}')"))
            .start();
        World {
            nsd,
            port,
            daemon,
            origin,
        }
    }

    /// A sink answering as the exchanger at `ip`.
    fn exchanger(&self, ip: &str) -> Sink {
        SinkBehavior::new().start_at(SocketAddr::new(ip.parse().unwrap(), self.port))
    }

    fn send(&self, rcpt: &str) {
        let data = format!("Subject: to {rcpt}\r\n\r\nhello\r\n");
        smtp_send(
            self.daemon.smtp_addr(),
            "sender@origin.test",
            &[rcpt],
            data.as_bytes(),
        )
        .unwrap_or_else(|e| panic!("sending to {rcpt}: {e}"));
    }

    /// The `to=` line for `rcpt` logged after `mark`.
    fn to_line(&self, mark: usize, rcpt: &str) -> String {
        self.daemon
            .wait_for_log_since(mark, &format!("to=<{rcpt}>"), WAIT)
    }
}

impl Drop for World {
    fn drop(&mut self) {
        // A failed wait says what the sink saw; the daemon's side is here.
        if std::thread::panicking() {
            eprintln!("daemon log:\n{}", self.daemon.log_lines().join("\n"));
        }
    }
}

#[test]
fn exchangers_in_preference_order_then_the_next_when_one_refuses() {
    let world = World::start(&[("example.test", Some(EXAMPLE_ZONE))]);
    let mx1 = world.exchanger("127.0.0.2");
    let mx2 = world.exchanger("127.0.0.3");

    let mark = world.daemon.log_mark();
    world.send("first@example.test");
    let m = mx1.wait_for_messages(1, WAIT);
    assert_eq!(m[0].rcpt_to, ["first@example.test"]);
    let line = world.to_line(mark, "first@example.test");
    assert!(
        line.contains("relay=mx1.example.test. [127.0.0.2]") && line.contains("stat=Sent"),
        "{line}"
    );
    assert!(mx2.messages().is_empty(), "the less preferred MX got mail");

    // mx1 goes away: its address refuses, and the same attempt goes on
    // to mx2.
    drop(mx1);
    let mark = world.daemon.log_mark();
    world.send("second@example.test");
    let m = mx2.wait_for_messages(1, WAIT);
    assert_eq!(m[0].rcpt_to, ["second@example.test"]);
    let line = world.to_line(mark, "second@example.test");
    assert!(
        line.contains("relay=mx2.example.test. [127.0.0.3]") && line.contains("stat=Sent"),
        "{line}"
    );
    world.daemon.wait_for_log_since(
        mark,
        &format!(
            "makeconnection (mx1.example.test. [127.0.0.2].{} (2)) failed: Connection refused",
            world.port
        ),
        WAIT,
    );
}

#[test]
fn an_exchanger_that_answers_421_is_passed_over() {
    let world = World::start(&[("example.test", Some(EXAMPLE_ZONE))]);
    let busy = SinkBehavior::new()
        .greeting("421 4.3.2 mx1 too busy")
        .start_at(SocketAddr::new("127.0.0.2".parse().unwrap(), world.port));
    let mx2 = world.exchanger("127.0.0.3");
    let mark = world.daemon.log_mark();
    world.send("busy@example.test");
    mx2.wait_for_messages(1, WAIT);
    assert!(busy.messages().is_empty());
    assert!(busy.connections() >= 1, "mx1 was not tried first");
    let line = world.to_line(mark, "busy@example.test");
    assert!(
        line.contains("relay=mx2.example.test. [127.0.0.3]"),
        "{line}"
    );
}

#[test]
fn a_domain_without_mx_gets_mail_at_its_own_address() {
    let world = World::start(&[("example.test", Some(EXAMPLE_ZONE))]);
    let host = world.exchanger("127.0.0.4");
    world.send("someone@implicit.example.test");
    let m = host.wait_for_messages(1, WAIT);
    assert_eq!(m[0].rcpt_to, ["someone@implicit.example.test"]);
}

#[test]
fn an_exchanger_is_tried_at_its_ipv4_then_its_ipv6_address() {
    let world = World::start(&[("example.test", Some(EXAMPLE_ZONE))]);
    // Nothing listens on 127.0.0.7: the AAAA record's ::1 gets the mail.
    let v6 = SinkBehavior::new().start_at(SocketAddr::new("::1".parse().unwrap(), world.port));
    let mark = world.daemon.log_mark();
    world.send("x@dual.example.test");
    let m = v6.wait_for_messages(1, WAIT);
    assert_eq!(m[0].rcpt_to, ["x@dual.example.test"]);
    let line = world.to_line(mark, "x@dual.example.test");
    assert!(
        line.contains("relay=dualmx.example.test. [IPv6:::1]") && line.contains("stat=Sent"),
        "{line}"
    );
}

#[test]
fn an_exchanger_without_address_is_skipped() {
    let world = World::start(&[("example.test", Some(EXAMPLE_ZONE))]);
    let mx2 = world.exchanger("127.0.0.3");
    world.send("x@dangling.example.test");
    mx2.wait_for_messages(1, WAIT);
}

#[test]
fn null_mx_and_unknown_domains_fail_at_once() {
    let world = World::start(&[("example.test", Some(EXAMPLE_ZONE))]);
    let mark = world.daemon.log_mark();
    world.send("x@nullmx.example.test");
    let line = world.to_line(mark, "x@nullmx.example.test");
    assert!(
        line.contains("dsn=5.1.10")
            && line.contains("stat=Domain nullmx.example.test does not accept mail (nullMX)"),
        "{line}"
    );
    world.send("x@nosuch.example.test");
    let line = world.to_line(mark, "x@nosuch.example.test");
    assert!(
        line.contains("dsn=5.1.2")
            && line
                .contains("stat=Host unknown (Name server: nosuch.example.test: host not found)"),
        "{line}"
    );
    // Each sender is told, from the null sender.
    let bounces = world.origin.wait_for_messages(2, WAIT);
    for (status, rcpt) in [
        ("5.1.10", "x@nullmx.example.test"),
        ("5.1.2", "x@nosuch.example.test"),
    ] {
        let bounce = bounces
            .iter()
            .find(|b| {
                b.text()
                    .contains(&format!("Final-Recipient: RFC822; {rcpt}"))
            })
            .unwrap_or_else(|| panic!("no bounce for {rcpt}"));
        assert_eq!(bounce.mail_from, "");
        assert_eq!(bounce.rcpt_to, ["sender@origin.test"]);
        assert!(
            bounce.text().contains(&format!("Status: {status}")),
            "{}",
            bounce.text()
        );
    }
}

#[test]
fn mail_that_would_loop_back_is_a_configuration_error() {
    let world = World::start(&[("example.test", Some(EXAMPLE_ZONE))]);
    let mx2 = world.exchanger("127.0.0.3");
    // me.example.test is one of our names and the best MX of
    // loop.example.test: only those preferred to us could be tried, and
    // there are none.
    let mark = world.daemon.log_mark();
    world.send("x@loop.example.test");
    let line = world.to_line(mark, "x@loop.example.test");
    assert!(
        line.contains("dsn=5.3.5") && line.contains("stat=Local configuration error"),
        "{line}"
    );
    world.daemon.wait_for_log_since(
        mark,
        "553 5.3.5 loop.example.test. config error: mail loops back to me (MX problem?)",
        WAIT,
    );
    assert!(mx2.messages().is_empty(), "a less preferred MX got mail");
}

#[test]
fn a_dns_failure_defers_and_the_retry_delivers() {
    // NSD knows flaky.test but has no data for it yet: SERVFAIL.
    let mut world = World::start(&[("example.test", Some(EXAMPLE_ZONE)), ("flaky.test", None)]);
    let mark = world.daemon.log_mark();
    world.send("patient@flaky.test");
    let line = world.to_line(mark, "patient@flaky.test");
    assert!(
        line.contains("dsn=4.4.3") && line.contains("stat=Deferred"),
        "{line}\nnsd:\n{}",
        world.nsd.log()
    );
    // The zone comes back; the next queue run (MinQueueAge=1s) delivers.
    let mx = world.exchanger("127.0.0.6");
    world
        .nsd
        .set_zone("flaky.test", "@ MX 10 mx\nmx A 127.0.0.6\n");
    let m = mx.wait_for_messages(1, WAIT);
    assert_eq!(m[0].rcpt_to, ["patient@flaky.test"]);
}
