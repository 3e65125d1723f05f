//! Connection reuse on the client side (`keep_open`): a transaction that
//! got its final reply leaves the session idle, the next envelope runs on
//! the same connection, and every other ending still says QUIT.

use super::*;

fn keeping(rcpts: &[&str]) -> Script {
    let config = ClientConfig {
        keep_open: true,
        ..config(StartTlsPolicy::Never)
    };
    Script::with(config, envelope(rcpts))
}

#[test]
fn two_messages_over_one_connection() {
    let mut t = keeping(&["bob@b.example"]);
    t.hello(&["PIPELINING"]);
    t.sends("MAIL From:<alice@a.example>\r\nRCPT To:<bob@b.example>\r\nDATA\r\n");
    t.server("250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go\r\n");
    t.send_body();
    t.s.body_sent();
    t.server("250 2.0.0 q1 accepted\r\n");
    // No QUIT: the outcome, and the session waits for another message.
    let first = t.done();
    assert_eq!(statuses(&first), [(250, Delivered)]);
    assert!(t.s.is_idle());
    assert_eq!(t.s.phase(), Phase::Done);

    let mut second = envelope(&["carol@c.example", "dave@c.example"]);
    second.reverse_path = "erin@a.example".into();
    t.s.next_transaction(second).unwrap();
    assert!(!t.s.is_idle());
    t.sends(
        "MAIL From:<erin@a.example>\r\nRCPT To:<carol@c.example>\r\n\
         RCPT To:<dave@c.example>\r\nDATA\r\n",
    );
    t.server("250 2.1.0 ok\r\n550 5.1.1 no carol\r\n250 2.1.5 ok\r\n354 go\r\n");
    t.send_body();
    t.s.body_sent();
    t.server("250 2.0.0 q2 accepted\r\n");
    let o = t.done();
    assert_eq!(statuses(&o), [(550, PermFail), (250, Delivered)]);
    assert!(t.s.is_idle());

    t.s.quit_idle();
    t.sends("QUIT\r\n");
    t.idle();
    assert_eq!(t.s.phase(), Phase::Quit);
    t.server("221 2.0.0 bye\r\n");
    assert_eq!(t.s.phase(), Phase::Done);
}

#[test]
fn a_transaction_that_ends_early_still_quits() {
    let mut t = keeping(&["bob@b.example"]);
    t.hello(&[]);
    t.sends("MAIL From:<alice@a.example>\r\n");
    t.server("451 4.3.0 try later\r\n");
    t.sends("QUIT\r\n");
    let o = t.done();
    assert_eq!(statuses(&o), [(451, TempFail)]);
    assert!(!t.s.is_idle());
}

#[test]
fn bytes_while_idle_end_the_session() {
    let mut t = keeping(&["bob@b.example"]);
    t.hello(&[]);
    t.sends("MAIL From:<alice@a.example>\r\n");
    t.server("250 ok\r\n");
    t.sends("RCPT To:<bob@b.example>\r\n");
    t.server("250 ok\r\n");
    t.sends("DATA\r\n");
    t.server("354 go\r\n");
    t.send_body();
    t.s.body_sent();
    t.server("250 2.0.0 accepted\r\n");
    t.done();
    t.server("421 4.4.2 idle timeout\r\n");
    assert!(!t.s.is_idle(), "a session that heard more is not reused");
    assert_eq!(t.s.phase(), Phase::Done);
    assert!(t.s.next_transaction(envelope(&["x@b.example"])).is_err());
}
