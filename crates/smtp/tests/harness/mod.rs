//! An in-memory shell for `server::Session`: it plays the client from a
//! readable transcript and answers the session's questions from a small
//! scripted policy, recording what a real daemon would have done.

#![allow(dead_code)]

use std::collections::HashMap;

use postern_smtp::server::{
    Answer, Envelope, Event, Output, Question, ServerConfig, Session, VerifiedAddress,
};
use postern_smtp::Reply;

/// What the scripted policy answers.
#[derive(Default)]
pub struct Policy {
    /// VRFY/EXPN argument → answer.
    pub lookups: HashMap<String, Answer>,
    /// Recipients to refuse, with the reply.
    pub refuse_rcpt: HashMap<String, Reply>,
    /// Refuse DATA with this reply.
    pub refuse_open: Option<Reply>,
    /// HELO/EHLO names refused (when the session asks: `ask_hello`).
    pub refuse_hello: HashMap<String, Reply>,
    /// The answer to every unrecognised command (when the session asks:
    /// `ask_unknown`).
    pub refuse_unknown: Option<Reply>,
    /// Refuse the commit with this reply.
    pub refuse_commit: Option<Reply>,
    /// AUTH: the expected response line and the identity it proves.
    pub auth: Option<(String, String)>,
    /// The answer to `AuthMechanisms`.
    pub mechanisms: Vec<String>,
}

/// The session, its policy and everything it made the shell do.
pub struct Harness {
    pub session: Session,
    pub policy: Policy,
    /// Messages committed: envelope and the bytes written to the file.
    pub committed: Vec<(Envelope, Vec<u8>)>,
    /// Messages thrown away.
    pub aborted: usize,
    pub events: Vec<Event>,
    /// The waits the session asked for, in order.
    pub pauses: Vec<std::time::Duration>,
    pub questions: Vec<Question>,
    pub closed: bool,
    pub starttls: bool,
    message: Vec<u8>,
    queue_ids: u32,
}

/// The configuration of the seed's host, with its greeting text.
/// The error tests' server: `mx.example.org`, client `client.example
/// [192.0.2.1]`.
pub fn example_org_config() -> ServerConfig {
    let mut cfg = ServerConfig::new("mx.example.org", "client.example [192.0.2.1]");
    cfg.greeting = "mx.example.org Postern test".into();
    cfg
}

/// A session of `cfg` with the seed's policy, past its greeting.
pub fn started(cfg: ServerConfig) -> Harness {
    let mut h = Harness::new(cfg, seed_policy());
    assert_eq!(h.drain(), b"220 mx.example.org ESMTP Postern test\r\n");
    h
}

/// [`started`], then `HELO client.example`.
pub fn greeted(cfg: ServerConfig) -> Harness {
    let mut h = started(cfg);
    assert!(h
        .send(b"HELO client.example\r\n")
        .starts_with("250 mx.example.org Hello"));
    h
}

/// A TLS 1.3 handshake's outcome, as the shell reports it to the session.
pub fn tls_info() -> postern_smtp::TlsInfo {
    postern_smtp::TlsInfo {
        version: "TLSv1.3".into(),
        cipher: "TLS_AES_256_GCM_SHA384".into(),
        cipher_bits: 256,
        alg_bits: 256,
        verify: postern_smtp::Verify::No,
        cert_subject: None,
        cert_issuer: None,
    }
}

pub fn seed_config() -> ServerConfig {
    let mut cfg = ServerConfig::new("chef.wrotethebook.com", "root@localhost");
    cfg.greeting =
        "chef.wrotethebook.com Sendmail 8.12.9/8.12.9; Mon, 10 Mar 2003 14:39:47 -0500".into();
    cfg.auth_mechanisms = vec!["DIGEST-MD5".into(), "CRAM-MD5".into()];
    cfg
}

/// The seed's EXPN and VRFY answers.
pub fn seed_policy() -> Policy {
    let addr = |name: Option<&str>, a: &str| VerifiedAddress {
        full_name: name.map(String::from),
        address: a.into(),
    };
    let mut policy = Policy::default();
    policy.lookups.insert(
        "<admin>".into(),
        Answer::Addresses {
            addresses: vec![
                addr(None, "anna@crab.wrotethebook.com"),
                addr(None, "andy@rodent.wrotethebook.com"),
                addr(None, "jane@rodent.wrotethebook.com"),
            ],
            definitive: true,
        },
    );
    policy.lookups.insert(
        "<alana>".into(),
        Answer::Addresses {
            addresses: vec![addr(Some("Alana Henson"), "alana@chef.wrotethebook.com")],
            definitive: true,
        },
    );
    policy
}

impl Harness {
    pub fn new(cfg: ServerConfig, policy: Policy) -> Self {
        Self {
            session: Session::new(cfg),
            policy,
            committed: Vec::new(),
            aborted: 0,
            events: Vec::new(),
            pauses: Vec::new(),
            questions: Vec::new(),
            closed: false,
            starttls: false,
            message: Vec::new(),
            queue_ids: 0,
        }
    }

    /// Everything the session wants sent right now (the greeting at first).
    pub fn drain(&mut self) -> Vec<u8> {
        let mut sent = Vec::new();
        while let Some(out) = self.session.poll_output() {
            match out {
                Output::Send(bytes) => sent.extend(bytes),
                Output::Ask(q) => {
                    self.questions.push(q.clone());
                    let answer = self.answer(q);
                    self.session
                        .answer(answer)
                        .expect("answer fits the question");
                }
                Output::MessageData(bytes) => self.message.extend(bytes),
                Output::AbortMessage => {
                    self.aborted += 1;
                    self.message.clear();
                }
                Output::StartTls => self.starttls = true,
                Output::Event(e) => self.events.push(e),
                Output::Pause(d) => self.pauses.push(d),
                // Tests of the greet pause call `greet` themselves.
                Output::GreetPause(_) => {}
                Output::Close => self.closed = true,
            }
        }
        sent
    }

    /// Sends `bytes` in one write and returns the replies, as text.
    pub fn send(&mut self, bytes: &[u8]) -> String {
        self.session.receive(bytes);
        String::from_utf8(self.drain()).expect("replies are UTF-8")
    }

    /// Plays a transcript: `C: ` lines are the client's (consecutive ones go
    /// out in one write, as a pipelining client sends them), every other
    /// line is what the server must answer, byte for byte.
    pub fn run(&mut self, transcript: &str) {
        let mut expected = String::new();
        let mut pending_client = String::new();
        let mut first = true;
        for line in transcript
            .lines()
            .map(str::trim_start)
            .filter(|l| !l.is_empty())
        {
            let client_line = if line == "C:" {
                Some("")
            } else {
                line.strip_prefix("C: ")
            };
            if let Some(c) = client_line {
                if first || !expected.is_empty() {
                    self.check(&pending_client, &expected, first);
                    pending_client.clear();
                    expected.clear();
                    first = false;
                }
                pending_client.push_str(c);
                pending_client.push_str("\r\n");
            } else {
                expected.push_str(line.strip_prefix("S: ").unwrap_or(line));
                expected.push_str("\r\n");
            }
        }
        self.check(&pending_client, &expected, first);
    }

    fn check(&mut self, client: &str, expected: &str, greeting: bool) {
        let got = if greeting && client.is_empty() {
            String::from_utf8(self.drain()).unwrap()
        } else {
            self.send(client.as_bytes())
        };
        assert_eq!(got, expected, "after the client sent {client:?}");
    }

    fn answer(&mut self, q: Question) -> Answer {
        match q {
            Question::Sender { .. } => Answer::Accept,
            Question::Recipient { path, .. } => {
                match self.policy.refuse_rcpt.get(&path.to_string()) {
                    Some(reply) => Answer::Reply(reply.clone()),
                    None => Answer::Accept,
                }
            }
            Question::Vrfy(arg) | Question::Expn(arg) => {
                self.policy.lookups.get(&arg).cloned().unwrap_or_else(|| {
                    Answer::Reply(Reply::new(
                        550,
                        postern_smtp::EnhancedCode::new(5, 1, 1),
                        format!("{arg}... User unknown"),
                    ))
                })
            }
            Question::Etrn(node) => Answer::Reply(postern_smtp::server::etrn_started(&node)),
            Question::Unknown(_) => match &self.policy.refuse_unknown {
                Some(reply) => Answer::Reply(reply.clone()),
                None => Answer::Accept,
            },
            Question::Hello { name, .. } => match self.policy.refuse_hello.get(&name) {
                Some(reply) => Answer::Reply(reply.clone()),
                None => Answer::Accept,
            },
            Question::OpenMessage => match &self.policy.refuse_open {
                Some(reply) => Answer::Reply(reply.clone()),
                None => {
                    self.message.clear();
                    Answer::Accept
                }
            },
            Question::Commit(envelope) => match &self.policy.refuse_commit {
                Some(reply) => Answer::Reply(reply.clone()),
                None => {
                    self.queue_ids += 1;
                    let message = std::mem::take(&mut self.message);
                    self.committed.push((*envelope, message));
                    Answer::Queued {
                        queue_id: format!("h0UGn9P700123{}", self.queue_ids - 1)
                            .parse()
                            .expect("a valid queue id"),
                    }
                }
            },
            Question::AuthMechanisms => Answer::AuthMechanisms {
                offered: self.policy.mechanisms.clone(),
                tls_only: Vec::new(),
            },
            Question::Auth { .. } => Answer::AuthChallenge("PDEyMzQ1Ni43ODlAaG9zdD4=".into()),
            Question::AuthResponse(line) => match &self.policy.auth {
                Some((expected, identity)) if *expected == line => Answer::AuthSuccess {
                    identity: identity.clone(),
                },
                _ => Answer::AuthFailed(Reply::new(
                    535,
                    postern_smtp::EnhancedCode::new(5, 7, 0),
                    "authentication failed",
                )),
            },
        }
    }
}
