//! `sendmail -bs`: an SMTP session on standard input and output.
//!
//! The protocol is the daemon's own sans-IO session
//! (`postern_smtp::server::Session`), configured from the file exactly as a
//! front's is (`Config::smtp_server`: `$j`, PrivacyOptions, MaxMessageSize,
//! the greeting expanded from SmtpGreetingMessage), with the client named
//! `user@localhost` as sendmail names it, no PIPELINING synchronisation
//! (input is often a script), no STARTTLS and no AUTH. VRFY and EXPN are
//! answered by the queue runner as a front's are (through master's
//! control socket, one request each), except that root, the queue owner
//! and TrustedUser see the whole expansion under restrictexpand; slowed
//! down after six as the daemon's are.
//! ETRN is root's only, as sendmail allows it only to trusted callers under
//! `-bs`: for root it starts a queue run for the recipients at that node
//! (`runq -qR@node`); anyone else is not offered it (`noetrn` is added to
//! PrivacyOptions) and gets `502 5.7.0 Sorry, we do not allow this
//! operation`. Each accepted message is submitted to master exactly as
//! `sendmail -bm` submits one ([`hand_over`]), with the SMTP envelope; the `250 2.0.0 <qid> Message accepted for
//! delivery` goes out only once master answered `Submitted`, that is once
//! the queue runner has made it durable.
//!
//! **Line ends.** The session accepts only CRLF, as a network server must
//! (SMTP smuggling, REFERENCE §4.2). Typed or piped `-bs` input usually
//! ends its lines in a bare LF, which sendmail accepts, so each LF not
//! preceded by CR is turned into CRLF before the session sees it. That is
//! safe here and only here: the input is the local user's own, on their own
//! pipe; no other MTA sits in front that could read the same bytes as a
//! different message, which is what smuggling needs, and the same user can
//! submit any bytes at all with `sendmail -bm` anyway.
//!
//! **Timeouts.** Timeout.command and Timeout.datablock apply as in the
//! daemon: input that stays silent longer gets the session's `421` and
//! ends it, so a script whose peer hung does not hold a `sendmail -bs`
//! (and its message, never acknowledged) for ever.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use postern_ipc::{ControlReply, ControlRequest, QueueSelector, SelectorField};
use postern_smtp::address::ReversePath;
use postern_smtp::etrn::Target;
use postern_smtp::server::{
    etrn_started, etrn_unknown_group, Answer, Envelope, Output, Question, ServerConfig, Session,
};
use postern_smtp::{EnhancedCode, PrivacyFlags, Reply};

use crate::context::Context;
use crate::control;
use crate::submit::{self, hand_over, Refusal};
use postern_ipc::Sysexit;

/// The session's settings for this caller.
pub fn server_config(ctx: &Context) -> ServerConfig {
    let config = &ctx.config;
    let now = chrono::Local::now();
    let mut cfg = config.smtp_server(
        &config.hostname(),
        &format!("{}@localhost", ctx.user),
        now.timestamp(),
        now.offset().local_minus_utc(),
    );
    if ctx.uid != 0 {
        // sendmail lets only trusted callers start queue runs with ETRN
        // under -bs; for everyone else it is neither offered nor accepted
        // (their way to ask is runq, where restrictqrun applies).
        cfg.privacy |= PrivacyFlags::NO_ETRN;
    }
    cfg.pipelining_sync = false;
    cfg.starttls = false;
    cfg.auth_mechanisms = Vec::new();
    cfg
}

/// Turns each LF not preceded by CR into CRLF, remembering the last byte
/// of the previous chunk.
#[derive(Debug, Default)]
pub struct LineEnds {
    last: u8,
}

impl LineEnds {
    /// The chunk with bare LFs made CRLF.
    pub fn convert(&mut self, chunk: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(chunk.len() + chunk.len() / 16 + 2);
        for &b in chunk {
            if b == b'\n' && self.last != b'\r' {
                out.push(b'\r');
            }
            out.push(b);
            self.last = b;
        }
        out
    }
}

/// The message being received (the caller's own, in the caller's
/// memory: at most the submission limit, which the session's SIZE checks
/// keep it within).
type Message = Vec<u8>;

/// Runs the session until QUIT, end of input or a timeout; the exit
/// status.
pub fn run(ctx: &Context, mut input: impl Read + AsFd, mut output: impl Write) -> Sysexit {
    let cfg = server_config(ctx);
    let hostname = cfg.hostname.clone();
    let mut session = Session::new(cfg);
    let mut message: Option<Message> = None;
    let mut line_ends = LineEnds::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        while let Some(out) = session.poll_output() {
            match out {
                Output::Send(bytes) => {
                    if output
                        .write_all(&bytes)
                        .and_then(|()| output.flush())
                        .is_err()
                    {
                        return Sysexit::IoErr;
                    }
                }
                Output::Ask(question) => {
                    let answer = answer(ctx, question, &mut message);
                    // Only fails on a shell bug; the session stays usable.
                    let _ = session.answer(answer);
                }
                Output::MessageData(bytes) => {
                    if let Some(m) = message.as_mut() {
                        m.extend_from_slice(&bytes);
                    }
                }
                Output::AbortMessage => message = None,
                // Never offered.
                Output::StartTls => {
                    let _ = session.tls_failed();
                }
                Output::Event(_) => {}
                // sendmail -bs slows VRFY/EXPN down as the daemon does.
                Output::Pause(delay) => std::thread::sleep(delay),
                // Never asked for: greet_pause is for network clients.
                Output::GreetPause(_) => session.greet(None),
                Output::Close => {
                    let _ = output.flush();
                    return Sysexit::Ok;
                }
            }
        }
        if session.is_closed() {
            return Sysexit::Ok;
        }
        match input_within(input.as_fd(), session.current_timeout()) {
            Ok(true) => {}
            Ok(false) => {
                session.timed_out();
                continue;
            }
            Err(nix::errno::Errno::EINTR) => continue,
            // Not pollable: read and block, as without a timeout.
            Err(_) => {}
        }
        let n = match input.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => 0,
        };
        if n == 0 {
            // sendmail's answer to a client that vanished without QUIT; a
            // message in progress was never acknowledged and is dropped.
            let lost = Reply::new(
                421,
                EnhancedCode::new(4, 4, 1),
                format!("{hostname} Lost input channel"),
            );
            let _ = output.write_all(&lost.to_bytes());
            let _ = output.flush();
            return Sysexit::Ok;
        }
        session.receive(&line_ends.convert(&buf[..n]));
    }
}

/// Waits up to `timeout` for input (or its end); false when none came.
fn input_within(fd: BorrowedFd<'_>, timeout: Duration) -> nix::Result<bool> {
    let timeout = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    Ok(poll(&mut fds, timeout)? > 0)
}

fn reply(code: u16, (c, s, d): (u8, u16, u16), text: impl Into<String>) -> Answer {
    Answer::Reply(Reply::new(code, EnhancedCode::new(c, s, d), text))
}

fn answer(ctx: &Context, question: Question, message: &mut Option<Message>) -> Answer {
    match question {
        // Local submission: master and the queue runner decide what the
        // caller may send, as for `sendmail -bm`.
        Question::Sender { .. } | Question::Recipient { .. } => Answer::Accept,
        // Never asked: no mail filter sees a local session yet.
        Question::Hello { .. } | Question::Unknown(_) => Answer::Accept,
        Question::Vrfy(argument) => verify(ctx, argument, false),
        Question::Expn(argument) => verify(ctx, argument, true),
        Question::Etrn(node) => etrn(ctx, &node),
        Question::OpenMessage => {
            *message = Some(Message::new());
            Answer::Accept
        }
        Question::Commit(envelope) => match message.take() {
            Some(m) => commit(ctx, m, &envelope),
            None => reply(451, (4, 3, 0), "Queue write error"),
        },
        Question::Auth { .. } | Question::AuthResponse(_) => {
            reply(503, (5, 3, 3), "AUTH not available")
        }
        // Never asked: -bs offers no AUTH.
        Question::AuthMechanisms => Answer::AuthMechanisms {
            offered: Vec::new(),
            tls_only: Vec::new(),
        },
    }
}

/// ETRN from root (others never get this far: see [`server_config`]):
/// a queue run for the recipients at `node` (`@domain` takes its
/// subdomains too), as `runq -qR@node`, or for the whole queue
/// (`#mqueue`, the one queue group), as `runq`.
/// VRFY (`expand` false) or EXPN, asked of the queue runner.
fn verify(ctx: &Context, argument: String, expand: bool) -> Answer {
    use postern_ipc::QueueToFront;
    let request = ControlRequest::SmtpVerify { argument, expand };
    match control::ask(ctx.control_socket(), request, &[]) {
        Ok(ControlReply::SmtpVerified {
            answer:
                QueueToFront::Verified {
                    addresses,
                    definitive,
                },
        }) => Answer::Addresses {
            addresses: addresses
                .into_iter()
                .map(|a| postern_smtp::server::VerifiedAddress {
                    full_name: a.full_name,
                    address: a.address,
                })
                .collect(),
            definitive,
        },
        Ok(ControlReply::SmtpVerified {
            answer:
                QueueToFront::Refused {
                    code,
                    enhanced,
                    text,
                },
        }) if (400..600).contains(&code) => {
            let e = EnhancedCode::parse(&enhanced).unwrap_or(EnhancedCode::new(4, 3, 0));
            Answer::Reply(Reply::new(code, e, text))
        }
        _ => reply(451, (4, 3, 0), "Temporary lookup failure; try again later"),
    }
}

fn etrn(ctx: &Context, node: &str) -> Answer {
    if ctx.uid != 0 {
        return reply(502, (5, 7, 0), "Sorry, we do not allow this operation");
    }
    let target = Target::parse(node);
    let substring = match target {
        Target::QueueGroup(_) if target.is_known_group() => None,
        Target::QueueGroup(group) => return Answer::Reply(etrn_unknown_group(group)),
        Target::Domain(domain) => Some(domain.to_string()),
        Target::Node(host) => Some(format!("@{host}")),
    };
    let selector = substring.map(|substring| QueueSelector {
        field: SelectorField::Recipient,
        substring,
        negate: false,
    });
    let request = ControlRequest::RunQueue { selector };
    match control::ask(ctx.control_socket(), request, &[]) {
        Ok(ControlReply::Done { .. }) => Answer::Reply(etrn_started(node)),
        _ => reply(
            458,
            (4, 0, 0),
            format!("Unable to queue messages for node {node}"),
        ),
    }
}

fn commit(ctx: &Context, m: Message, envelope: &Envelope) -> Answer {
    let handed = hand_over(
        ctx,
        &m,
        submit::Envelope {
            sender: Some(match &envelope.reverse_path {
                ReversePath::Null => String::new(),
                ReversePath::Mailbox(mailbox) => mailbox.to_string(),
            }),
            // MAIL FROM's and RCPT TO's parameters, as a front passes
            // them on.
            recipients: envelope
                .recipients
                .iter()
                .map(|(r, params)| postern_ipc::EnvelopeRecipient {
                    address: r.to_string(),
                    notify: params.notify,
                    orcpt: params.orcpt.clone(),
                    target: None,
                })
                .collect(),
            extract_recipients: false,
            full_name: None,
            verbose: false,
            smtp: Some(postern_ipc::SmtpSession {
                helo: envelope.helo.clone(),
                protocol: envelope.protocol.to_string(),
            }),
            dsn: submit::Dsn {
                notify: None,
                ret: envelope.mail_params.ret,
                envid: envelope.mail_params.envid.clone(),
                body: envelope.body.or(envelope.mail_params.body),
            },
        },
    );
    match handed {
        Ok((ControlReply::Submitted { queue_id }, _)) => Answer::Queued { queue_id },
        Ok((
            ControlReply::Refused { message, exit_code }
            | ControlReply::Failed { message, exit_code },
            _,
        ))
        | Err(Refusal { message, exit_code }) => refusal(&message, exit_code),
        Ok(_) => reply(451, (4, 3, 0), "Mail queue unavailable; try again later"),
    }
}

/// master's refusal as an SMTP reply: temporary for TempFail, else
/// permanent; the text made one safe line.
fn refusal(message: &str, exit_code: Sysexit) -> Answer {
    let text: String = message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(400)
        .collect();
    match exit_code {
        Sysexit::TempFail => reply(451, (4, 3, 0), text),
        Sysexit::NoPerm => reply(550, (5, 7, 1), text),
        _ => reply(554, (5, 0, 0), text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_lf_becomes_crlf_across_chunks() {
        let mut le = LineEnds::default();
        assert_eq!(
            le.convert(b"EHLO x\nMAIL FROM:<a@b>\r\n"),
            b"EHLO x\r\nMAIL FROM:<a@b>\r\n"
        );
        assert_eq!(le.convert(b"DATA\r"), b"DATA\r");
        assert_eq!(le.convert(b"\nx\n"), b"\nx\r\n");
        assert_eq!(le.convert(b"\n"), b"\r\n");
    }

    #[test]
    fn refusals_are_single_line_and_never_positive() {
        let Answer::Reply(r) = refusal("no\r\nway", Sysexit::TempFail) else {
            panic!()
        };
        assert_eq!(r.code(), 451);
        assert_eq!(r.lines(), ["no  way"]);
        let Answer::Reply(r) = refusal("denied", Sysexit::Ok) else {
            panic!()
        };
        assert_eq!(r.code(), 554);
    }
}
