//! LMTP (RFC 2033): LHLO instead of EHLO with no HELO to fall back to,
//! and after the final dot one reply per accepted recipient, in RCPT
//! order, each deciding its own recipient.

use super::*;

fn lmtp(keep_open: bool) -> ClientConfig {
    ClientConfig {
        protocol: Protocol::Lmtp,
        keep_open,
        ..config(StartTlsPolicy::Never)
    }
}

fn lmtp_script(rcpts: &[&str]) -> Script {
    Script::with(lmtp(false), envelope(rcpts))
}

/// Dovecot's greeting and LHLO reply.
fn lhlo(t: &mut Script) {
    t.server("220 mail.example Dovecot ready.\r\n");
    t.sends("LHLO client.example\r\n");
    t.server(
        "250-mail.example\r\n250-8BITMIME\r\n250-CHUNKING\r\n\
         250-ENHANCEDSTATUSCODES\r\n250 PIPELINING\r\n",
    );
}

#[test]
fn one_reply_per_accepted_recipient_in_rcpt_order() {
    let mut t = lmtp_script(&["alice@x", "nobody@x", "bob@x", "carol@x"]);
    lhlo(&mut t);
    t.sends(
        "MAIL From:<alice@a.example> BODY=8BITMIME\r\nRCPT To:<alice@x>\r\n\
         RCPT To:<nobody@x>\r\nRCPT To:<bob@x>\r\nRCPT To:<carol@x>\r\nDATA\r\n",
    );
    t.server(
        "250 2.1.0 OK\r\n250 2.1.5 OK\r\n\
         550 5.1.1 <nobody@x> User doesn't exist: nobody@x\r\n\
         250 2.1.5 OK\r\n250 2.1.5 OK\r\n354 OK\r\n",
    );
    t.send_body();
    t.s.body_sent();
    assert_eq!(t.s.phase(), Phase::DataFinal);
    // Three accepted recipients, three replies; the first two arrive
    // together, the session waits for the third.
    t.server(
        "250 2.0.0 <alice@x> s5LeGZn/E2vDPQAAg+zDdQ Saved\r\n\
         452 4.2.2 <bob@x> Quota exceeded (mailbox for user is full)\r\n",
    );
    t.idle();
    assert_eq!(t.s.phase(), Phase::DataFinal);
    t.server("552 5.2.2 <carol@x> Quota exceeded (mailbox for user is full)\r\n");
    t.sends("QUIT\r\n");
    let o = t.done();
    assert_eq!(
        statuses(&o),
        [
            (250, Delivered),
            (550, PermFail),
            (452, TempFail),
            (552, PermFail)
        ]
    );
    assert_eq!(
        o.recipients[2].reply.text(),
        "<bob@x> Quota exceeded (mailbox for user is full)"
    );
    let commands: Vec<Option<&str>> = o.recipients.iter().map(|r| r.command.as_deref()).collect();
    assert_eq!(
        commands,
        [
            Some("DATA"),
            Some("RCPT To:<nobody@x>"),
            Some("DATA"),
            Some("DATA")
        ]
    );
    assert_eq!(
        t.transcript[1..3],
        [">>> LHLO client.example", "250-mail.example"]
    );
}

#[test]
fn without_pipelining_one_command_at_a_time() {
    let mut t = lmtp_script(&["a@x", "b@x"]);
    t.server("220 lmtp\r\n");
    t.sends("LHLO client.example\r\n");
    t.server("250 lmtp\r\n");
    t.sends("MAIL From:<alice@a.example>\r\n");
    t.server("250 ok\r\n");
    t.sends("RCPT To:<a@x>\r\n");
    t.server("250 ok\r\n");
    t.sends("RCPT To:<b@x>\r\n");
    t.server("250 ok\r\n");
    t.sends("DATA\r\n");
    t.server("354 go\r\n");
    t.send_body();
    t.s.body_sent();
    t.server("451 4.3.0 <a@x> Temporary failure\r\n");
    t.idle();
    t.server("250 2.0.0 <b@x> Saved\r\n");
    t.sends("QUIT\r\n");
    assert_eq!(statuses(&t.done()), [(451, TempFail), (250, Delivered)]);
}

#[test]
fn a_refused_lhlo_does_not_fall_back_to_helo() {
    let mut t = lmtp_script(&["a@x"]);
    t.server("220 lmtp\r\n");
    t.sends("LHLO client.example\r\n");
    t.server("500 5.5.1 Unknown command\r\n");
    t.sends("QUIT\r\n");
    let o = t.done();
    assert_eq!(statuses(&o), [(500, PermFail)]);
    assert_eq!(o.extensions, None);

    let mut t = lmtp_script(&["a@x"]);
    t.server("220 lmtp\r\n");
    t.sends("LHLO client.example\r\n");
    t.server("421 4.3.2 Too busy\r\n");
    assert_eq!(statuses(&t.done()), [(421, TempFail)]);
}

#[test]
fn connection_lost_between_replies_defers_only_the_unanswered() {
    let mut t = lmtp_script(&["a@x", "b@x"]);
    lhlo(&mut t);
    t.sends(
        "MAIL From:<alice@a.example> BODY=8BITMIME\r\nRCPT To:<a@x>\r\nRCPT To:<b@x>\r\nDATA\r\n",
    );
    t.server("250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n");
    t.send_body();
    t.s.body_sent();
    t.server("250 2.0.0 <a@x> Saved\r\n");
    t.idle();
    t.s.connection_lost();
    let o = t.done();
    assert_eq!(statuses(&o), [(250, Delivered), (421, TempFail)]);
}

#[test]
fn connection_kept_for_the_next_message_after_the_last_reply() {
    let mut t = Script::with(lmtp(true), envelope(&["a@x", "b@x"]));
    lhlo(&mut t);
    t.sends(
        "MAIL From:<alice@a.example> BODY=8BITMIME\r\nRCPT To:<a@x>\r\nRCPT To:<b@x>\r\nDATA\r\n",
    );
    t.server("250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n");
    t.send_body();
    t.s.body_sent();
    t.server("250 2.0.0 <a@x> Saved\r\n250 2.0.0 <b@x> Saved\r\n");
    assert_eq!(statuses(&t.done()), [(250, Delivered), (250, Delivered)]);
    assert!(t.s.is_idle());
    t.s.next_transaction(envelope(&["c@x"])).unwrap();
    t.sends("MAIL From:<alice@a.example> BODY=8BITMIME\r\nRCPT To:<c@x>\r\nDATA\r\n");
    t.server("250 ok\r\n250 ok\r\n354 go\r\n");
    t.send_body();
    t.s.body_sent();
    t.server("250 2.0.0 <c@x> Saved\r\n");
    assert_eq!(statuses(&t.done()), [(250, Delivered)]);
    t.s.quit_idle();
    t.sends("QUIT\r\n");
}

#[test]
fn an_extra_reply_after_the_last_recipient_ends_the_connection() {
    // A server that answers more often than it accepted recipients is
    // out of step: the connection is not reused.
    let mut t = Script::with(lmtp(true), envelope(&["a@x"]));
    lhlo(&mut t);
    t.sends("MAIL From:<alice@a.example> BODY=8BITMIME\r\nRCPT To:<a@x>\r\nDATA\r\n");
    t.server("250 ok\r\n250 ok\r\n354 go\r\n");
    t.send_body();
    t.s.body_sent();
    t.server("250 2.0.0 <a@x> Saved\r\n250 2.0.0 <b@x> Saved\r\n");
    t.sends("QUIT\r\n");
    assert_eq!(statuses(&t.done()), [(250, Delivered)]);
    assert!(!t.s.is_idle());
}
