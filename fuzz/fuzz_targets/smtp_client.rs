//! The delivery client's session fed arbitrary server replies.
//!
//! Input: 2 knob bytes (protocol, STARTTLS, reuse, the envelope), then the
//! server's bytes with the shell's events (`fuzz/src/script.rs`): `t`/`f`
//! the handshake succeeded/failed, `k`/`K` the TLS check passed/refused,
//! `b` the body was written, `l` the connection was lost, `n` the next
//! message on an idle connection, `q` quit an idle one. An event the
//! session is not waiting for is skipped, as a shell would never send it.
//!
//! Asserts, beyond "does not panic":
//! - everything written is whole command lines of the commands the client
//!   knows, with no CR, LF or control byte inside;
//! - nothing is written during the TLS handshake or while the body goes
//!   out, STARTTLS is started only right after sending STARTTLS, and the
//!   body only after DATA;
//! - each transaction ends in exactly one `Done`, with one result per
//!   recipient, in order, whose status follows its reply's code;
//! - no recipient counts as delivered unless its body was written;
//! - nothing but an idle connection's QUIT is written after `Done`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postern_fuzz::replies::show;
use postern_fuzz::script::{pieces, Knobs, Piece};
use postern_smtp::client::{
    ClientConfig, ClientOutput, ClientSession, Envelope, Outcome, Phase, Protocol, Recipient,
    RecipientStatus, StartTlsPolicy,
};
use postern_smtp::params::DeliverBy;
use postern_smtp::EnhancedCode;

const KNOBS: usize = 2;

fuzz_target!(|data: &[u8]| {
    let (knobs, stream) = Knobs::split(data, KNOBS);
    let config = ClientConfig {
        protocol: if knobs.bit(0, 0) {
            Protocol::Lmtp
        } else {
            Protocol::Smtp
        },
        helo_name: "client.example.net".into(),
        starttls: if knobs.bit(0, 1) {
            StartTlsPolicy::Opportunistic
        } else {
            StartTlsPolicy::Never
        },
        already_tls: knobs.bit(0, 2),
        check_tls: knobs.bit(0, 3),
        keep_open: knobs.bit(0, 4),
    };
    let envelope = envelope(&knobs);
    let mut shell = Shell::new(&config, &envelope);
    let mut session = ClientSession::new(config, envelope.clone()).expect("a valid envelope");
    shell.drain(&mut session);
    for piece in pieces(stream) {
        match piece {
            Piece::Read(bytes) => session.receive(&bytes),
            Piece::Event(b't') if shell.handshaking => {
                shell.handshaking = false;
                session.tls_started();
            }
            Piece::Event(b'f') if shell.handshaking => {
                shell.handshaking = false;
                session.tls_failed();
            }
            Piece::Event(b'k') if shell.checking => {
                shell.checking = false;
                session.tls_checked(None);
            }
            Piece::Event(b'K') if shell.checking => {
                shell.checking = false;
                let refusal = (530, EnhancedCode::new(5, 7, 0), "TLS required");
                session.tls_checked(Some(refusal));
            }
            Piece::Event(b'b') if shell.body_going => {
                shell.body_going = false;
                shell.body_written = true;
                session.body_sent();
            }
            Piece::Event(b'l') => session.connection_lost(),
            Piece::Event(b'n') if session.is_idle() => {
                shell.next_transaction(&envelope);
                session.next_transaction(envelope.clone()).expect("idle");
            }
            Piece::Event(b'q') if session.is_idle() => {
                shell.may_quit = true;
                session.quit_idle();
            }
            Piece::Event(_) => {}
        }
        shell.drain(&mut session);
        shell.follow(&session);
    }
    session.connection_lost();
    shell.drain(&mut session);
    assert_eq!(shell.dones, shell.transactions, "transactions without Done");
});

fn envelope(knobs: &Knobs) -> Envelope {
    let dsn = knobs.bit(1, 4);
    let recipients = (0..=(knobs.byte(1) & 3))
        .map(|i| Recipient {
            address: format!("rcpt{i}@example.org"),
            dsn_params: if dsn {
                vec![
                    "NOTIFY=SUCCESS,FAILURE".into(),
                    format!("ORCPT=rfc822;rcpt{i}@example.org"),
                ]
            } else {
                Vec::new()
            },
        })
        .collect();
    Envelope {
        reverse_path: if knobs.bit(1, 2) {
            String::new()
        } else {
            "sender@example.net".into()
        },
        mail_params: if knobs.bit(1, 3) {
            vec!["RET=HDRS".into(), "ENVID=QQ314159".into()]
        } else {
            Vec::new()
        },
        body_8bit: knobs.bit(0, 5),
        size_hint: knobs.bit(0, 6).then_some(1000),
        deliver_by: knobs.bit(0, 7).then_some(DeliverBy {
            seconds: 3600,
            return_on_expiry: knobs.bit(1, 5),
            trace: knobs.bit(1, 6),
        }),
        recipients,
    }
}

/// Commands the client may write, by their first word.
const VERBS: &[&str] = &[
    "EHLO", "LHLO", "HELO", "STARTTLS", "MAIL", "RCPT", "DATA", "QUIT", "RSET",
];

struct Shell {
    starttls_allowed: bool,
    check_tls: bool,
    recipients: Vec<String>,
    /// StartTls was output; the handshake has no result yet.
    handshaking: bool,
    /// CheckTls was output; no verdict yet.
    checking: bool,
    /// SendBody was output; `body_sent` not called yet.
    body_going: bool,
    /// The body of the current transaction was written.
    body_written: bool,
    /// DATA was written in the current transaction.
    data_sent: bool,
    last_line: Vec<u8>,
    transactions: usize,
    dones: usize,
    /// The current transaction's Done was output.
    finished: bool,
    /// quit_idle was called: one QUIT may follow the Done.
    may_quit: bool,
}

impl Shell {
    fn new(config: &ClientConfig, envelope: &Envelope) -> Self {
        Self {
            starttls_allowed: config.starttls == StartTlsPolicy::Opportunistic
                && !config.already_tls,
            check_tls: config.check_tls,
            recipients: envelope
                .recipients
                .iter()
                .map(|r| r.address.clone())
                .collect(),
            handshaking: false,
            checking: false,
            body_going: false,
            body_written: false,
            data_sent: false,
            last_line: Vec::new(),
            transactions: 1,
            dones: 0,
            finished: false,
            may_quit: false,
        }
    }

    /// Forgets what the session no longer waits for: bytes fed during the
    /// handshake, or a lost connection, end it (a real shell hands no
    /// bytes to the session then, but the session must cope).
    fn follow(&mut self, session: &ClientSession) {
        if session.phase() != Phase::TlsHandshake {
            self.handshaking = false;
            self.checking = false;
        }
        if session.phase() != Phase::DataBlock {
            self.body_going = false;
        }
    }

    fn next_transaction(&mut self, envelope: &Envelope) {
        assert!(self.finished);
        self.recipients = envelope
            .recipients
            .iter()
            .map(|r| r.address.clone())
            .collect();
        self.transactions += 1;
        self.finished = false;
        self.body_written = false;
        self.data_sent = false;
    }

    fn drain(&mut self, session: &mut ClientSession) {
        while let Some(output) = session.poll_output() {
            match output {
                ClientOutput::Send(bytes) => self.sent(&bytes),
                ClientOutput::StartTls => {
                    assert!(self.starttls_allowed, "STARTTLS against the policy");
                    assert_eq!(self.last_line, b"STARTTLS", "handshake without STARTTLS");
                    self.handshaking = true;
                }
                ClientOutput::SendBody => {
                    assert!(self.data_sent, "body before DATA");
                    assert!(!self.finished);
                    self.body_going = true;
                }
                ClientOutput::CheckTls { .. } => {
                    assert!(self.check_tls, "CheckTls not asked for");
                    self.checking = true;
                }
                ClientOutput::Transcript(_) => {}
                ClientOutput::Done(outcome) => self.done(&outcome),
            }
        }
    }

    fn sent(&mut self, bytes: &[u8]) {
        assert!(
            !self.handshaking,
            "wrote {:?} during the handshake",
            show(bytes)
        );
        assert!(!self.body_going, "wrote {:?} inside the body", show(bytes));
        for line in bytes.split_inclusive(|&b| b == b'\n') {
            let line = line
                .strip_suffix(b"\r\n")
                .unwrap_or_else(|| panic!("not a whole line: {:?}", show(line)));
            assert!(
                line.iter().all(|&b| b >= 0x20 && b != 0x7f),
                "control byte in {:?}",
                show(line)
            );
            let verb = line.split(|&b| b == b' ').next().unwrap_or_default();
            assert!(
                VERBS.iter().any(|v| v.as_bytes() == verb),
                "unknown command {:?}",
                show(line)
            );
            if self.finished {
                assert!(
                    self.may_quit && line == b"QUIT",
                    "{:?} after Done",
                    show(line)
                );
                self.may_quit = false;
            }
            if line == b"DATA" {
                self.data_sent = true;
            }
            self.last_line = line.to_vec();
        }
    }

    fn done(&mut self, outcome: &Outcome) {
        assert!(!self.finished, "two Dones for one transaction");
        self.finished = true;
        self.dones += 1;
        let addresses: Vec<&str> = outcome
            .recipients
            .iter()
            .map(|r| r.address.as_str())
            .collect();
        assert_eq!(addresses, self.recipients, "results are not the envelope's");
        for r in &outcome.recipients {
            assert!((200..600).contains(&r.reply.code), "code {}", r.reply.code);
            assert_eq!(r.status, RecipientStatus::from_code(r.reply.code));
            for line in &r.reply.lines {
                assert!(!line.contains(['\r', '\n', '\0']), "{line:?}");
            }
            if r.status == RecipientStatus::Delivered {
                assert!(self.body_written, "delivered without a body: {r:?}");
            }
        }
    }
}
