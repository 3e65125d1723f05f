//! DELIVERBY (RFC 2852) on the client side: `BY=` with the time left when
//! the server offers it, and sendmail's refusals in mode R when it cannot.

use super::*;
use postern_smtp::params::DeliverBy;

fn by(seconds: i64, return_on_expiry: bool, trace: bool) -> Option<DeliverBy> {
    Some(DeliverBy {
        seconds,
        return_on_expiry,
        trace,
    })
}

fn with_by(deliver_by: Option<DeliverBy>) -> Script {
    let mut e = envelope(&["bob@b.example"]);
    e.deliver_by = deliver_by;
    Script::with(config(StartTlsPolicy::Never), e)
}

#[test]
fn by_carries_the_time_left_when_offered() {
    let mut t = with_by(by(57, true, false));
    t.hello(&["DELIVERBY"]);
    t.sends("MAIL From:<alice@a.example> BY=57;R\r\n");

    let mut t = with_by(by(-3, false, true));
    t.hello(&["DSN", "DELIVERBY 60"]);
    t.sends("MAIL From:<alice@a.example> RET=HDRS ENVID=q1 BY=-3;NT\r\n");
}

#[test]
fn notify_mode_is_relayed_without_by_to_a_server_without_deliverby() {
    let mut t = with_by(by(30, false, false));
    t.hello(&["SIZE"]);
    t.sends("MAIL From:<alice@a.example> SIZE=1234\r\n");
}

#[test]
fn return_mode_fails_at_a_server_without_deliverby() {
    let mut t = with_by(by(30, true, false));
    t.hello(&["SIZE"]);
    t.sends("QUIT\r\n");
    let o = t.done();
    assert_eq!(statuses(&o), [(554, PermFail)]);
    assert_eq!(
        o.recipients[0].reply.text(),
        "Server does not support Deliver By"
    );
    assert_eq!(o.recipients[0].reply.enhanced.unwrap().to_string(), "5.4.7");
}

#[test]
fn return_mode_fails_when_the_time_left_is_below_the_servers_minimum() {
    let mut t = with_by(by(30, true, false));
    t.hello(&["DELIVERBY 60"]);
    t.sends("QUIT\r\n");
    let o = t.done();
    assert_eq!(statuses(&o), [(554, PermFail)]);
    assert_eq!(
        o.recipients[0].reply.text(),
        "Message can't be delivered in time; 30 < 60"
    );

    let mut t = with_by(by(0, true, false));
    t.hello(&["DELIVERBY"]);
    t.sends("QUIT\r\n");
    assert_eq!(statuses(&t.done()), [(554, PermFail)]);
}
