//! Scripted transcripts for the delivery-side SMTP client, byte for byte.
//!
//! Each test plays the server: `t.server(..)` feeds reply bytes, and
//! `t.sends(..)`, `t.start_tls()`, `t.send_body()`, `t.done()` assert the
//! next thing the client asks its shell to do. Transcript outputs are
//! collected on the side (`t.transcript`) so scripts stay readable.

#[path = "client_transcripts/deliver_by.rs"]
mod deliver_by;
#[path = "client_transcripts/lmtp.rs"]
mod lmtp;
#[path = "client_transcripts/reuse.rs"]
mod reuse;
#[path = "client_transcripts/starttls.rs"]
mod starttls;

use postern_smtp::client::{
    ClientConfig, ClientOutput, ClientSession, DotStuffer, Envelope, Outcome, Phase, Protocol,
    Recipient, RecipientStatus, StartTlsPolicy,
};

const EHLO: &str = "EHLO client.example\r\n";

fn config(starttls: StartTlsPolicy) -> ClientConfig {
    ClientConfig {
        protocol: Protocol::Smtp,
        helo_name: "client.example".into(),
        starttls,
        already_tls: false,
        check_tls: false,
        keep_open: false,
    }
}

fn checking(starttls: StartTlsPolicy) -> ClientConfig {
    ClientConfig {
        check_tls: true,
        ..config(starttls)
    }
}

fn envelope(rcpts: &[&str]) -> Envelope {
    Envelope {
        reverse_path: "alice@a.example".into(),
        mail_params: vec!["RET=HDRS".into(), "ENVID=q1".into()],
        body_8bit: true,
        size_hint: Some(1234),
        deliver_by: None,
        recipients: rcpts
            .iter()
            .map(|a| Recipient {
                address: a.to_string(),
                dsn_params: vec!["NOTIFY=FAILURE".into()],
            })
            .collect(),
    }
}

struct Script {
    s: ClientSession,
    transcript: Vec<String>,
}

impl Script {
    fn new(rcpts: &[&str]) -> Self {
        Self::with(config(StartTlsPolicy::Opportunistic), envelope(rcpts))
    }

    fn with(config: ClientConfig, envelope: Envelope) -> Self {
        Self {
            s: ClientSession::new(config, envelope).expect("valid envelope"),
            transcript: Vec::new(),
        }
    }

    fn server(&mut self, text: &str) {
        self.s.receive(text.as_bytes());
    }

    fn next(&mut self) -> Option<ClientOutput> {
        loop {
            match self.s.poll_output() {
                Some(ClientOutput::Transcript(line)) => self.transcript.push(line.to_string()),
                other => return other,
            }
        }
    }

    #[track_caller]
    fn sends(&mut self, exact: &str) {
        match self.next() {
            Some(ClientOutput::Send(bytes)) => {
                assert_eq!(String::from_utf8(bytes).unwrap(), exact)
            }
            other => panic!("expected Send({exact:?}), got {other:?}"),
        }
    }

    #[track_caller]
    fn start_tls(&mut self) {
        assert_eq!(self.next(), Some(ClientOutput::StartTls));
    }

    #[track_caller]
    fn send_body(&mut self) {
        assert_eq!(self.next(), Some(ClientOutput::SendBody));
    }

    #[track_caller]
    fn done(&mut self) -> Outcome {
        match self.next() {
            Some(ClientOutput::Done(outcome)) => {
                assert_eq!(self.next(), None, "nothing after Done");
                outcome
            }
            other => panic!("expected Done, got {other:?}"),
        }
    }

    #[track_caller]
    fn idle(&mut self) {
        assert_eq!(self.next(), None);
    }

    /// Greeting and a plain EHLO reply with the given keyword lines.
    fn hello(&mut self, keywords: &[&str]) {
        self.server("220 mx.example ESMTP\r\n");
        self.sends(EHLO);
        let mut reply = String::from("250");
        reply.push(if keywords.is_empty() { ' ' } else { '-' });
        reply.push_str("mx.example Hello\r\n");
        for (i, k) in keywords.iter().enumerate() {
            let sep = if i + 1 == keywords.len() { ' ' } else { '-' };
            reply.push_str(&format!("250{sep}{k}\r\n"));
        }
        self.server(&reply);
    }
}

fn statuses(o: &Outcome) -> Vec<(u16, RecipientStatus)> {
    o.recipients
        .iter()
        .map(|r| (r.reply.code, r.status))
        .collect()
}

use RecipientStatus::{Delivered, PermFail, TempFail};

#[test]
fn plain_ehlo_without_pipelining() {
    let mut t = Script::new(&["bob@b.example", "carol@b.example"]);
    assert_eq!(t.s.phase(), Phase::Greeting);
    t.hello(&[]);
    assert_eq!(t.s.phase(), Phase::Mail);
    t.sends("MAIL From:<alice@a.example>\r\n");
    t.idle();
    t.server("250 2.1.0 Sender ok\r\n");
    t.sends("RCPT To:<bob@b.example>\r\n");
    assert_eq!(t.s.phase(), Phase::Rcpt);
    t.server("250 2.1.5 Recipient ok\r\n");
    t.sends("RCPT To:<carol@b.example>\r\n");
    t.server("250 2.1.5 Recipient ok\r\n");
    t.sends("DATA\r\n");
    assert_eq!(t.s.phase(), Phase::DataInit);
    t.server("354 Enter mail, end with \".\" on a line by itself\r\n");
    t.send_body();
    assert_eq!(t.s.phase(), Phase::DataBlock);
    t.s.body_sent();
    assert_eq!(t.s.phase(), Phase::DataFinal);
    t.idle();
    t.server("250 2.0.0 q1 Message accepted for delivery\r\n");
    t.sends("QUIT\r\n");
    let o = t.done();
    assert_eq!(t.s.phase(), Phase::Quit);
    t.server("221 2.0.0 mx.example closing connection\r\n");
    t.idle();
    assert_eq!(t.s.phase(), Phase::Done);
    assert_eq!(statuses(&o), [(250, Delivered), (250, Delivered)]);
    assert_eq!(
        o.recipients[0].reply.text(),
        "q1 Message accepted for delivery"
    );
    assert_eq!(o.extensions, Some(Default::default()));
    assert!(!o.tls && o.protocol_error.is_none());
    assert_eq!(
        t.transcript[..4],
        [
            "220 mx.example ESMTP",
            ">>> EHLO client.example",
            "250 mx.example Hello",
            ">>> MAIL From:<alice@a.example>"
        ]
    );
    assert_eq!(
        t.transcript[t.transcript.len() - 4..][..2],
        [">>> .", "250 2.0.0 q1 Message accepted for delivery"]
    );
    assert_eq!(
        t.transcript.last().unwrap(),
        "221 2.0.0 mx.example closing connection"
    );
}

#[test]
fn pipelining_sends_mail_rcpts_and_data_in_one_write() {
    let mut t = Script::new(&["bob@b.example", "carol@b.example"]);
    t.hello(&["PIPELINING"]);
    t.sends(
        "MAIL From:<alice@a.example>\r\n\
         RCPT To:<bob@b.example>\r\n\
         RCPT To:<carol@b.example>\r\n\
         DATA\r\n",
    );
    t.server("250 2.1.0 ok\r\n250 2.1.5 ok\r\n");
    assert_eq!(t.s.phase(), Phase::Rcpt);
    t.server("550 5.1.1 unknown\r\n354 go ahead\r\n");
    t.send_body();
    t.s.body_sent();
    t.server("250 2.0.0 queued\r\n");
    t.sends("QUIT\r\n");
    let o = t.done();
    assert_eq!(statuses(&o), [(250, Delivered), (550, PermFail)]);
}

#[test]
fn esmtp_parameters_only_when_offered() {
    let mut t = Script::new(&["bob@b.example"]);
    t.hello(&["SIZE 10000", "8BITMIME", "DSN"]);
    t.sends("MAIL From:<alice@a.example> SIZE=1234 BODY=8BITMIME RET=HDRS ENVID=q1\r\n");
    t.server("250 ok\r\n");
    t.sends("RCPT To:<bob@b.example> NOTIFY=FAILURE\r\n");

    let mut t = Script::new(&["bob@b.example"]);
    t.hello(&["SIZE", "ENHANCEDSTATUSCODES"]);
    t.sends("MAIL From:<alice@a.example> SIZE=1234\r\n");
    t.server("250 ok\r\n");
    t.sends("RCPT To:<bob@b.example>\r\n");

    let mut t = Script::new(&["bob@b.example"]);
    t.hello(&["8BITMIME"]);
    t.sends("MAIL From:<alice@a.example> BODY=8BITMIME\r\n");
}

#[test]
fn null_sender() {
    let mut env = envelope(&["bob@b.example"]);
    env.reverse_path.clear();
    let mut t = Script::with(config(StartTlsPolicy::Never), env);
    t.hello(&[]);
    t.sends("MAIL From:<>\r\n");
}

#[test]
fn message_larger_than_fixed_size_is_refused_before_mail() {
    let mut t = Script::new(&["bob@b.example"]);
    t.hello(&["SIZE 1000"]);
    t.sends("QUIT\r\n");
    let o = t.done();
    assert_eq!(statuses(&o), [(552, PermFail)]);
    assert_eq!(o.recipients[0].reply.enhanced.unwrap().to_string(), "5.3.4");
}

#[test]
fn ehlo_502_falls_back_to_helo() {
    let mut t = Script::new(&["bob@b.example"]);
    t.server("220 old.example SMTP\r\n");
    t.sends(EHLO);
    t.server("502 5.5.1 Command not implemented\r\n");
    t.sends("HELO client.example\r\n");
    assert_eq!(t.s.phase(), Phase::Helo);
    t.server("250 old.example\r\n");
    t.sends("MAIL From:<alice@a.example>\r\n");
    t.server("250 ok\r\n");
    t.sends("RCPT To:<bob@b.example>\r\n");
    t.server("250 ok\r\n");
    t.sends("DATA\r\n");
    t.server("354 go\r\n");
    t.send_body();
    t.s.body_sent();
    t.server("250 ok\r\n");
    t.sends("QUIT\r\n");
    let o = t.done();
    assert_eq!(o.extensions, None);
    assert_eq!(statuses(&o), [(250, Delivered)]);
}

#[test]
fn ehlo_4xx_defers_without_helo() {
    let mut t = Script::new(&["bob@b.example"]);
    t.server("220 mx\r\n");
    t.sends(EHLO);
    t.server("451 4.3.0 try later\r\n");
    t.sends("QUIT\r\n");
    assert_eq!(statuses(&t.done()), [(451, TempFail)]);
}

#[test]
fn a_refused_connection_defers_every_recipient_with_the_shells_reply() {
    // A server that does not offer STARTTLS where the policy needs it: no
    // MAIL is sent, every recipient gets the shell's reply, then QUIT.
    let mut t = Script::with(
        checking(StartTlsPolicy::Opportunistic),
        envelope(&["bob@b.example", "carol@b.example"]),
    );
    t.hello(&["PIPELINING"]);
    assert_eq!(
        t.next(),
        Some(ClientOutput::CheckTls {
            starttls_offered: false
        })
    );
    t.s.tls_checked(Some((
        403,
        postern_smtp::EnhancedCode::new(4, 7, 0),
        "other side does not support STARTTLS",
    )));
    t.sends("QUIT\r\n");
    let o = t.done();
    assert_eq!(statuses(&o), [(403, RecipientStatus::TempFail); 2]);
    let reply = &o.recipients[0].reply;
    assert_eq!(
        (reply.code, reply.enhanced, reply.text().as_str()),
        (
            403,
            Some(postern_smtp::EnhancedCode::new(4, 7, 0)),
            "other side does not support STARTTLS"
        )
    );
}

#[test]
fn mixed_recipient_results() {
    let mut t = Script::new(&["a@x", "b@x", "c@x"]);
    t.hello(&[]);
    t.sends("MAIL From:<alice@a.example>\r\n");
    t.server("250 ok\r\n");
    t.sends("RCPT To:<a@x>\r\n");
    t.server("250 2.1.5 ok\r\n");
    t.sends("RCPT To:<b@x>\r\n");
    t.server("550 5.1.1 <b@x>... User unknown\r\n");
    t.sends("RCPT To:<c@x>\r\n");
    t.server("451 4.3.0 Mailbox busy\r\n");
    t.sends("DATA\r\n");
    t.server("354 go\r\n");
    t.send_body();
    t.s.body_sent();
    t.server("250 2.0.0 queued\r\n");
    t.sends("QUIT\r\n");
    let o = t.done();
    assert_eq!(
        statuses(&o),
        [(250, Delivered), (550, PermFail), (451, TempFail)]
    );
    assert_eq!(o.recipients[1].reply.text(), "<b@x>... User unknown");
    assert_eq!(o.recipients[2].address, "c@x");
    // Each reply names the command it answered (a bounce's transcript).
    let commands: Vec<Option<&str>> = o.recipients.iter().map(|r| r.command.as_deref()).collect();
    assert_eq!(
        commands,
        [Some("DATA"), Some("RCPT To:<b@x>"), Some("RCPT To:<c@x>")]
    );
}

#[test]
fn all_recipients_refused_without_pipelining_sends_no_data() {
    let mut t = Script::new(&["a@x", "b@x"]);
    t.hello(&[]);
    t.sends("MAIL From:<alice@a.example>\r\n");
    t.server("250 ok\r\n");
    t.sends("RCPT To:<a@x>\r\n");
    t.server("550 5.1.1 no\r\n");
    t.sends("RCPT To:<b@x>\r\n");
    t.server("450 4.2.0 later\r\n");
    t.sends("QUIT\r\n");
    assert_eq!(statuses(&t.done()), [(550, PermFail), (450, TempFail)]);
}

#[test]
fn all_recipients_refused_with_pipelining_consumes_data_reply() {
    let mut t = Script::new(&["a@x"]);
    t.hello(&["PIPELINING"]);
    t.sends("MAIL From:<alice@a.example>\r\nRCPT To:<a@x>\r\nDATA\r\n");
    t.server("250 ok\r\n550 5.1.1 no\r\n554 5.5.1 No valid recipients\r\n");
    t.sends("QUIT\r\n");
    let o = t.done();
    assert_eq!(statuses(&o), [(550, PermFail)]);
    assert!(o.protocol_error.is_none());
}

#[test]
fn data_354_with_no_accepted_recipient_closes_without_quit() {
    let mut t = Script::new(&["a@x"]);
    t.hello(&["PIPELINING"]);
    t.sends("MAIL From:<alice@a.example>\r\nRCPT To:<a@x>\r\nDATA\r\n");
    t.server("250 ok\r\n550 5.1.1 no\r\n354 go ahead anyway\r\n");
    let o = t.done(); // no SendBody, no QUIT (it would be body text)
    assert_eq!(statuses(&o), [(550, PermFail)]);
    assert!(o.protocol_error.is_some());
}

#[test]
fn mail_refused_applies_to_everyone() {
    let mut t = Script::new(&["a@x", "b@x"]);
    t.hello(&[]);
    t.sends("MAIL From:<alice@a.example>\r\n");
    t.server("553 5.1.8 Domain of sender address does not exist\r\n");
    t.sends("QUIT\r\n");
    let o = t.done();
    assert_eq!(statuses(&o), [(553, PermFail), (553, PermFail)]);
    assert_eq!(
        o.recipients[1].command.as_deref(),
        Some("MAIL From:<alice@a.example>")
    );

    let mut t = Script::new(&["a@x", "b@x"]);
    t.hello(&["PIPELINING"]);
    t.sends("MAIL From:<alice@a.example>\r\nRCPT To:<a@x>\r\nRCPT To:<b@x>\r\nDATA\r\n");
    t.server("452 4.3.1 Insufficient system storage\r\n503 5.5.1 need MAIL\r\n");
    t.server("250 broken server\r\n503 5.5.1 need RCPT\r\n");
    t.sends("QUIT\r\n");
    assert_eq!(statuses(&t.done()), [(452, TempFail), (452, TempFail)]);
}

#[test]
fn greeting_554_refuses_everyone_and_quits() {
    let mut t = Script::new(&["a@x"]);
    t.server("554 5.7.1 go away\r\n");
    t.sends("QUIT\r\n");
    let o = t.done();
    assert_eq!(statuses(&o), [(554, PermFail)]);
    assert_eq!(o.extensions, None);
    assert_eq!(o.recipients[0].command, None);
}

#[test]
fn reply_421_ends_the_session_without_quit() {
    let mut t = Script::new(&["a@x"]);
    t.server("421 4.3.2 Too many connections\r\n");
    assert_eq!(statuses(&t.done()), [(421, TempFail)]);

    let mut t = Script::new(&["a@x", "b@x"]);
    t.hello(&[]);
    t.sends("MAIL From:<alice@a.example>\r\n");
    t.server("250 ok\r\n");
    t.sends("RCPT To:<a@x>\r\n");
    t.server("250 ok\r\n");
    t.sends("RCPT To:<b@x>\r\n");
    t.server("421 4.4.5 shutting down\r\n");
    assert_eq!(statuses(&t.done()), [(421, TempFail), (421, TempFail)]);
}

#[test]
fn final_452_defers_accepted_recipients() {
    let mut t = Script::new(&["a@x", "b@x"]);
    t.hello(&["PIPELINING"]);
    t.sends("MAIL From:<alice@a.example>\r\nRCPT To:<a@x>\r\nRCPT To:<b@x>\r\nDATA\r\n");
    t.server("250 ok\r\n250 ok\r\n550 5.1.1 no\r\n354 go\r\n");
    t.send_body();
    t.s.body_sent();
    t.server("452 4.3.1 Insufficient system storage\r\n");
    t.sends("QUIT\r\n");
    assert_eq!(statuses(&t.done()), [(452, TempFail), (550, PermFail)]);
}

#[test]
fn connection_lost_mid_data() {
    let mut t = Script::new(&["a@x", "b@x"]);
    t.hello(&[]);
    t.sends("MAIL From:<alice@a.example>\r\n");
    t.server("250 ok\r\n");
    t.sends("RCPT To:<a@x>\r\n");
    t.server("250 ok\r\n");
    t.sends("RCPT To:<b@x>\r\n");
    t.server("550 no\r\n");
    t.sends("DATA\r\n");
    t.server("354 go\r\n");
    t.send_body();
    t.s.connection_lost();
    let o = t.done();
    assert_eq!(statuses(&o), [(421, TempFail), (550, PermFail)]);
    assert_eq!(o.recipients[0].reply.lines, ["4.4.2 Connection lost"]);
    t.s.connection_lost();
    t.idle();
}

#[test]
fn final_reply_read_before_body_sent_is_held() {
    let mut t = Script::new(&["a@x"]);
    t.hello(&["PIPELINING"]);
    t.sends("MAIL From:<alice@a.example>\r\nRCPT To:<a@x>\r\nDATA\r\n");
    t.server("250 ok\r\n250 ok\r\n354 go\r\n");
    t.send_body();
    t.server("250 2.0.0 queued\r\n");
    t.idle();
    t.s.body_sent();
    t.sends("QUIT\r\n");
    assert_eq!(statuses(&t.done()), [(250, Delivered)]);
}

#[test]
fn reply_before_its_command_is_a_protocol_error() {
    let mut t = Script::new(&["a@x"]);
    t.server("220 mx\r\n250 mx.example\r\n");
    let o = t.done(); // no EHLO either: the buffered 250 cannot answer it
    assert!(o.protocol_error.as_deref().unwrap().contains("before"));
}

#[test]
fn garbage_reply_is_a_protocol_error() {
    let mut t = Script::new(&["a@x"]);
    t.server("HTTP/1.1 400 Bad Request\r\n");
    let o = t.done();
    assert!(o.protocol_error.as_deref().unwrap().contains("malformed"));
    assert_eq!(statuses(&o), [(451, TempFail)]);

    let mut t = Script::new(&["a@x"]);
    t.server("220 mx\r\n");
    t.sends(EHLO);
    t.server("354 what\r\n");
    assert!(t.done().protocol_error.unwrap().contains("354"));
}

#[test]
fn reply_line_and_count_limits_are_protocol_errors() {
    let mut t = Script::new(&["a@x"]);
    t.server("220 mx\r\n");
    t.sends(EHLO);
    t.server(&"250-X\r\n".repeat(100));
    t.idle();
    t.server("250 X\r\n"); // line 101
    assert!(t
        .done()
        .protocol_error
        .unwrap()
        .contains("more than 100 lines"));

    let mut t = Script::new(&["a@x"]);
    t.server(&format!("220 {}\r\n", "x".repeat(2045))); // 2049 bytes before CRLF
    assert!(t
        .done()
        .protocol_error
        .unwrap()
        .contains("longer than 2048"));
    // Without a line end, the session gives up as soon as the limit is passed.
    let mut t = Script::new(&["a@x"]);
    t.server(&"2".repeat(3000));
    assert!(t.done().protocol_error.is_some());
}

#[test]
fn envelope_with_line_breaks_is_refused() {
    let cfg = || config(StartTlsPolicy::Never);
    let mut e = envelope(&["a@x"]);
    e.reverse_path = "a@x>\r\nRSET".into();
    assert!(ClientSession::new(cfg(), e).is_err());
    let mut e = envelope(&["a@x"]);
    e.recipients[0].address = "a@x\n".into();
    assert!(ClientSession::new(cfg(), e).is_err());
    let mut e = envelope(&["a@x"]);
    e.recipients[0].dsn_params = vec!["NOTIFY=NEVER\0".into()];
    assert!(ClientSession::new(cfg(), e).is_err());
    let mut e = envelope(&["a@x"]);
    e.mail_params = vec!["RET=HDRS\rX".into()];
    assert!(ClientSession::new(cfg(), e).is_err());
    assert!(ClientSession::new(cfg(), envelope(&[])).is_err());
}

/// Runs a whole session, feeding each server reply in the chunks `split`
/// makes; returns everything the client sent and the outcome.
fn drive(
    cfg: ClientConfig,
    replies: &[&str],
    split: &dyn Fn(&[u8]) -> Vec<Vec<u8>>,
) -> (Vec<u8>, Outcome) {
    let mut s = ClientSession::new(cfg, envelope(&["a@x", "b@x", "c@x"])).unwrap();
    let mut sent = Vec::new();
    for reply in replies {
        for chunk in split(reply.as_bytes()) {
            s.receive(&chunk);
        }
        while let Some(out) = s.poll_output() {
            match out {
                ClientOutput::Send(b) => sent.extend(b),
                ClientOutput::StartTls => {
                    sent.extend(b"<TLS>");
                    s.tls_started();
                }
                ClientOutput::SendBody => {
                    sent.extend(DotStuffer::encode_all(b"body"));
                    s.body_sent();
                }
                ClientOutput::CheckTls { .. } => s.tls_checked(None),
                ClientOutput::Transcript(_) => {}
                ClientOutput::Done(o) => return (sent, o),
            }
        }
    }
    panic!("session did not finish");
}

#[test]
fn replies_split_at_every_byte_give_the_same_result() {
    let plain: &[&str] = &[
        "220-mx.example ESMTP\r\n220 second line\r\n",
        "250-mx.example\r\n250-SIZE 100000\r\n250-DSN\r\n250 STARTTLS\r\n",
        "220 2.0.0 Ready to start TLS\r\n",
        "250-mx.example\r\n250-8BITMIME\r\n250 DSN\r\n",
        "250 2.1.0 ok\r\n",
        "250 2.1.5 ok\r\n",
        "550-5.1.1 no such user\r\n550 5.1.1 really\r\n",
        "451 4.3.0 busy\n",
        "354 go\r\n",
        "250 2.0.0 queued\r\n",
    ];
    let pipelined: &[&str] = &[
        "220 mx\r\n",
        "250-mx\r\n250 PIPELINING\r\n",
        "250 ok\r\n250 ok\r\n550 5.1.1 no\r\n451 4.3.0 busy\r\n354 go\r\n",
        "250 2.0.0 queued\r\n",
    ];
    for replies in [plain, pipelined] {
        let cfg = || config(StartTlsPolicy::Opportunistic);
        let whole = drive(cfg(), replies, &|b| vec![b.to_vec()]);
        assert_eq!(
            statuses(&whole.1),
            [(250, Delivered), (550, PermFail), (451, TempFail)]
        );
        assert!(whole.0.ends_with(b"QUIT\r\n"));
        let longest = replies.iter().map(|r| r.len()).max().unwrap();
        for at in 0..=longest {
            let split = move |b: &[u8]| {
                let at = at.min(b.len());
                vec![b[..at].to_vec(), b[at..].to_vec()]
            };
            assert_eq!(drive(cfg(), replies, &split), whole, "split at {at}");
        }
        let bytewise = |b: &[u8]| b.iter().map(|&x| vec![x]).collect();
        assert_eq!(drive(cfg(), replies, &bytewise), whole);
    }
}
