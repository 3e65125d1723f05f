//! The whole server session fed an arbitrary client, STARTTLS and AUTH
//! included, answered by a shell whose answers the input also chooses.
//!
//! Input: 12 knob bytes (the configuration, then eight answers the shell
//! cycles through), then the client's bytes with events (`fuzz/src/script.rs`):
//! `t` the TLS handshake succeeded, `f` it failed, `T` the client timed out.
//!
//! Asserts, beyond "does not panic":
//! - everything written is whole, well-formed SMTP replies;
//! - a 354 only after the shell accepted DATA, a 334 only after the shell
//!   gave a challenge;
//! - message text reaches the shell only after the 354 was sent, and
//!   before the commit is asked;
//! - a committed message is exactly the text handed over, every line
//!   ending in CR LF, no NUL, within MaxMessageSize, with at least one
//!   and at most MaxRecipientsPerMessage recipients, whose addresses
//!   carry no control character;
//! - nothing is written while the TLS handshake runs, plaintext that
//!   arrived during it makes `tls_started` fail, and a good handshake
//!   forgets HELO and AUTH;
//! - the session is authenticated only after the shell said so;
//! - nothing happens after `Close`.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use postern_fuzz::replies::{show, split_replies};
use postern_fuzz::script::{pieces, Knobs, Piece};
use postern_smtp::server::{
    Answer, Envelope, Output, Question, ServerConfig, Session, SessionError, VerifiedAddress,
};
use postern_smtp::{EnhancedCode, PrivacyFlags, Reply, TlsInfo, Verify};

const KNOBS: usize = 12;
const ANSWERS_AT: usize = 4;

fuzz_target!(|data: &[u8]| {
    let (knobs, stream) = Knobs::split(data, KNOBS);
    let cfg = config(&knobs);
    let mut shell = Shell::new(&knobs, &cfg);
    let mut session = Session::new(cfg);
    let mut pieces = pieces(stream).into_iter().peekable();
    shell.drain(&mut session);
    if shell.greet_pause {
        // A client that talks first is heard before the greeting.
        let early = knobs.bit(0, 4).then_some(Duration::from_millis(1500));
        if early.is_some() {
            if let Some(Piece::Read(bytes)) = pieces.next_if(|p| matches!(p, Piece::Read(_))) {
                shell.read(&mut session, &bytes);
            }
        }
        session.greet(early);
        shell.drain(&mut session);
    }
    for piece in pieces {
        match piece {
            Piece::Read(bytes) => shell.read(&mut session, &bytes),
            Piece::Event(b't') if shell.handshaking => shell.tls_started(&mut session),
            Piece::Event(b'f') if shell.handshaking => {
                shell.handshaking = false;
                session.tls_failed().expect("a handshake was pending");
            }
            Piece::Event(b'T') => session.timed_out(),
            Piece::Event(_) => {}
        }
        shell.drain(&mut session);
    }
});

/// The session's configuration, from knob bytes 0 to 3.
fn config(knobs: &Knobs) -> ServerConfig {
    let mut cfg = ServerConfig::new("mx.example.org", "client.example [192.0.2.7]");
    cfg.starttls = knobs.bit(0, 0);
    if knobs.bit(0, 1) {
        cfg.auth_mechanisms = vec!["PLAIN".into(), "LOGIN".into(), "CRAM-MD5".into()];
        cfg.auth_tls_only = vec!["PLAIN".into(), "LOGIN".into()];
    }
    cfg.auth_from_shell = knobs.bit(0, 2);
    if knobs.bit(0, 3) {
        cfg.greet_pause = Duration::from_secs(5);
    }
    // sendmail -bs: input is a script, not a pipelining client.
    cfg.pipelining_sync = !knobs.bit(0, 5);
    if knobs.bit(0, 6) {
        cfg.max_message_size = 64;
    }
    if knobs.bit(0, 7) {
        cfg.connect_refusal = Some(Reply::new(550, EnhancedCode::new(5, 7, 1), "Access denied"));
    }
    cfg.auth_required = knobs.bit(1, 0);
    cfg.max_recipients = if knobs.bit(1, 1) { 2 } else { 0 };
    cfg.trace_commands = knobs.bit(1, 2);
    cfg.auth_max_failures = if knobs.bit(1, 3) { 2 } else { 0 };
    cfg.bad_rcpt_throttle = if knobs.bit(1, 4) { 2 } else { 0 };
    // Mail filters: HELO and EHLO are asked about.
    cfg.ask_hello = knobs.bit(1, 7);
    cfg.ask_unknown = knobs.bit(1, 7);
    if knobs.bit(1, 5) {
        cfg.help = None;
    }
    if knobs.bit(1, 6) {
        cfg.deliver_by_min = None;
    }
    let mut privacy = PrivacyFlags::PUBLIC;
    for (i, (_, flag)) in PrivacyFlags::NAMES.iter().enumerate().take(16) {
        if knobs.bit(2 + i / 8, (i % 8) as u8) {
            privacy |= *flag;
        }
    }
    cfg.privacy = privacy;
    cfg
}

/// The shell around the session, and what it has seen so far.
struct Shell {
    answers: [u8; 8],
    asked: usize,
    greet_pause: bool,
    max_message_size: u64,
    max_recipients: usize,
    closed: bool,
    /// StartTls was output and no handshake result given yet.
    handshaking: bool,
    /// Plaintext arrived while handshaking.
    stray: bool,
    /// The shell accepted DATA, and no 354 was sent since.
    data_accepted: bool,
    /// A 354 was sent and the message has not ended yet.
    in_message: bool,
    message: Vec<u8>,
    /// Challenges the shell gave that no 334 carried yet.
    challenges: usize,
    /// The shell said AuthSuccess (since the last handshake).
    authenticated: bool,
}

impl Shell {
    fn new(knobs: &Knobs, cfg: &ServerConfig) -> Self {
        let mut answers = [0; 8];
        for (i, a) in answers.iter_mut().enumerate() {
            *a = knobs.byte(ANSWERS_AT + i);
        }
        Self {
            answers,
            asked: 0,
            greet_pause: !cfg.greet_pause.is_zero(),
            max_message_size: cfg.max_message_size,
            max_recipients: cfg.max_recipients as usize,
            closed: false,
            handshaking: false,
            stray: false,
            data_accepted: false,
            in_message: false,
            message: Vec::new(),
            challenges: 0,
            authenticated: false,
        }
    }

    fn read(&mut self, session: &mut Session, bytes: &[u8]) {
        if self.handshaking {
            self.stray = true;
        }
        session.receive(bytes);
    }

    fn tls_started(&mut self, session: &mut Session) {
        self.handshaking = false;
        let result = session.tls_started(tls_info());
        if self.stray {
            assert_eq!(result, Err(SessionError::PlaintextDuringHandshake));
            assert!(session.is_closed());
        } else {
            result.expect("a clean handshake is accepted");
            assert!(session.helo_name().is_none(), "HELO survived STARTTLS");
            assert!(session.auth_identity().is_none(), "AUTH survived STARTTLS");
            self.authenticated = false;
        }
    }

    /// Acts on every output, answering questions at once.
    fn drain(&mut self, session: &mut Session) {
        while let Some(output) = session.poll_output() {
            assert!(!self.closed, "{output:?} after Close");
            match output {
                Output::Send(bytes) => self.sent(&bytes),
                Output::Ask(question) => {
                    let answer = self.answer(&question);
                    session.answer(answer).expect("answer of the asked kind");
                }
                Output::MessageData(text) => {
                    assert!(
                        self.in_message,
                        "message text before 354: {:?}",
                        show(&text)
                    );
                    self.message.extend_from_slice(&text);
                }
                Output::AbortMessage => self.end_message(),
                Output::StartTls => {
                    assert!(!self.handshaking);
                    self.handshaking = true;
                    self.stray = false;
                }
                Output::Close => {
                    self.closed = true;
                    self.handshaking = false;
                    self.end_message();
                }
                Output::Event(_) | Output::Pause(_) | Output::GreetPause(_) => {}
            }
            let identity = session.auth_identity();
            assert!(
                identity.is_none() || self.authenticated,
                "authenticated by itself"
            );
        }
    }

    fn sent(&mut self, bytes: &[u8]) {
        assert!(
            !self.handshaking,
            "wrote {:?} during the handshake",
            show(bytes)
        );
        for reply in split_replies(bytes) {
            match reply.code {
                354 => {
                    assert!(self.data_accepted, "354 the shell did not allow");
                    self.data_accepted = false;
                    self.in_message = true;
                    self.message.clear();
                }
                334 => {
                    assert!(self.challenges > 0, "334 without a challenge");
                    self.challenges -= 1;
                }
                _ => {}
            }
        }
    }

    fn end_message(&mut self) {
        self.in_message = false;
        self.data_accepted = false;
        self.message.clear();
    }

    fn answer(&mut self, question: &Question) -> Answer {
        let pick = self.answers[self.asked % self.answers.len()];
        self.asked += 1;
        let refusal =
            |code, class, text: &str| Reply::new(code, EnhancedCode::new(class, 7, 1), text);
        match question {
            Question::Sender { .. }
            | Question::Recipient { .. }
            | Question::Hello { .. }
            | Question::Unknown(_) => match pick % 4 {
                0 => Answer::Reply(refusal(550, 5, "Access denied")),
                1 => Answer::Reply(refusal(451, 4, "Try again later")),
                _ => Answer::Accept,
            },
            Question::Vrfy(_) | Question::Expn(_) => match pick % 4 {
                0 => Answer::Reply(refusal(550, 5, "User unknown")),
                n => Answer::Addresses {
                    addresses: addresses(n as usize - 1),
                    definitive: pick & 4 != 0,
                },
            },
            Question::Etrn(_) => Answer::Reply(Reply::new(
                250,
                EnhancedCode::new(2, 0, 0),
                "Queuing for node started",
            )),
            Question::OpenMessage if pick.is_multiple_of(4) => {
                Answer::Reply(refusal(451, 4, "No room"))
            }
            Question::OpenMessage => {
                self.data_accepted = true;
                Answer::Accept
            }
            Question::Commit(envelope) => {
                self.check_commit(envelope);
                match pick % 4 {
                    0 => Answer::Reply(refusal(554, 5, "Refused")),
                    _ => Answer::Queued {
                        queue_id: "6AP8Cx00006826".parse().unwrap(),
                    },
                }
            }
            Question::Auth { .. } | Question::AuthResponse(_) => match pick % 4 {
                0 => {
                    self.challenges += 1;
                    Answer::AuthChallenge("VXNlcm5hbWU6".into())
                }
                1 => {
                    self.authenticated = true;
                    Answer::AuthSuccess {
                        identity: "user".into(),
                    }
                }
                2 => Answer::AuthFailed(Reply::new(
                    535,
                    EnhancedCode::new(5, 7, 8),
                    "Authentication failed",
                )),
                _ => Answer::Reply(refusal(454, 4, "Temporary authentication failure")),
            },
            Question::AuthMechanisms => Answer::AuthMechanisms {
                offered: if pick.is_multiple_of(4) {
                    Vec::new()
                } else {
                    vec!["PLAIN".into(), "CRAM-MD5".into()]
                },
                tls_only: vec!["PLAIN".into()],
            },
        }
    }

    /// What a commit hands over is what the queue may store.
    fn check_commit(&mut self, envelope: &Envelope) {
        assert!(self.in_message, "commit without a message");
        self.in_message = false;
        let text = std::mem::take(&mut self.message);
        assert_eq!(envelope.size, text.len() as u64, "size is not the text's");
        assert!(!text.contains(&0), "NUL in a committed message");
        for (i, &b) in text.iter().enumerate() {
            let next = text.get(i + 1).copied();
            let prev = i.checked_sub(1).map(|p| text[p]);
            assert!(b != b'\r' || next == Some(b'\n'), "bare CR committed");
            assert!(b != b'\n' || prev == Some(b'\r'), "bare LF committed");
        }
        assert!(text.is_empty() || text.ends_with(b"\r\n"));
        if self.max_message_size > 0 {
            assert!(
                envelope.size <= self.max_message_size,
                "over MaxMessageSize"
            );
        }
        assert!(!envelope.recipients.is_empty(), "commit without recipients");
        if self.max_recipients > 0 {
            assert!(envelope.recipients.len() <= self.max_recipients);
        }
        let paths = std::iter::once(envelope.reverse_path.to_string())
            .chain(envelope.recipients.iter().map(|(m, _)| m.to_string()));
        for path in paths {
            assert!(
                path.bytes().all(|b| (0x20..0x7f).contains(&b)),
                "control or 8-bit byte in address {path:?}"
            );
        }
    }
}

fn addresses(n: usize) -> Vec<VerifiedAddress> {
    [
        ("Alana Henson", "alana@mx.example.org"),
        ("", "root@mx.example.org"),
    ]
    .into_iter()
    .take(n)
    .map(|(name, address)| VerifiedAddress {
        full_name: Some(name.to_string()).filter(|n| !n.is_empty()),
        address: address.to_string(),
    })
    .collect()
}

fn tls_info() -> TlsInfo {
    TlsInfo {
        version: "TLSv1.3".into(),
        cipher: "TLS_AES_256_GCM_SHA384".into(),
        cipher_bits: 256,
        alg_bits: 256,
        verify: Verify::No,
        cert_subject: None,
        cert_issuer: None,
    }
}
