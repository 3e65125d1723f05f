//! The front's answers to the session's questions: the relay policy it
//! decides itself (the queue runner checks it again at commit), and the
//! queue runner round trips (local users, VRFY and EXPN, open, commit,
//! abort, ETRN) it forwards.

use std::net::IpAddr;
use std::os::fd::OwnedFd;

use postern_ipc::{FrontChannel, FrontToQueue, QueueToFront, PROTOCOL_VERSION};
use postern_smtp::address::{Mailbox, ReversePath};
use postern_smtp::server::{etrn_started, Answer, Question, Session, VerifiedAddress};
use postern_smtp::{EnhancedCode, Reply};

use super::filters::{Decision, Filters};
use super::message::MessageFile;
use super::pipe::TimedPipe;
use super::Connection;
use crate::policy::{self, RelayVerdict};
use crate::settings::Settings;

/// The front's side of the conversation with the queue runner.
pub struct Front<'a> {
    pub(super) settings: &'a Settings,
    pub(super) peer_ip: IpAddr,
    queue: FrontChannel,
    hello_checked: bool,
    /// A question went unanswered (Timeout.queuereply) or the channel
    /// broke: a late answer would be taken for the next question's, so
    /// nothing more is asked, and every question is answered 451 at once
    /// rather than after another wait.
    queue_lost: bool,
    pub(super) recipients: Vec<String>,
    message: Option<MessageFile>,
    utc_offset: i32,
    pub(super) client: String,
    issued_mail: bool,
    /// The queue runner was told a transaction is in progress, and no
    /// Commit or Abort has ended it since: told once, not at every MAIL,
    /// so that an honest front never has more than one request waiting
    /// unanswered.
    transaction_announced: bool,
    /// The mechanisms the queue runner's Hello offered.
    auth_mechanisms: Vec<postern_ipc::AuthMechanism>,
    /// The queue runner said AUTH succeeded (it keeps its own record:
    /// this only lets RCPT answer as the commit will).
    pub(super) authenticated: bool,
    /// The mechanism of the AUTH in progress, for `{auth_type}`.
    auth_mechanism: Option<String>,
    /// The mail filters (none when none is configured).
    pub filters: Filters,
    /// A filter discarded the message: it is accepted, then dropped.
    pub(super) discard: bool,
}

fn reply(code: u16, (c, s, d): (u8, u16, u16), text: impl Into<String>) -> Answer {
    Answer::Reply(Reply::new(code, EnhancedCode::new(c, s, d), text))
}

/// A mailbox's domain name (none for an address literal).
fn domain_of(m: &Mailbox) -> Option<&str> {
    match &m.domain {
        Some(postern_smtp::address::Domain::Name(d)) => Some(d),
        _ => None,
    }
}

/// The access map's `REJECT` or `ERROR:` for `address`, as sendmail's
/// check_mail and check_rcpt answer them: `550 5.7.1 <addr>... Access
/// denied`, `550 5.7.1 <addr>... text`. Other actions let it through.
fn access_refusal(action: Option<postern_config::AccessAction>, address: &str) -> Option<Answer> {
    policy::access_reply(action, &format!("<{address}>... ")).map(Answer::Reply)
}

/// The queue runner's refusal as the client's reply; only 4xx/5xx codes
/// pass, so a confused queue runner cannot make the front say 250.
fn refusal(refused: QueueToFront) -> Answer {
    let QueueToFront::Refused {
        code,
        enhanced,
        text,
    } = refused
    else {
        return queue_unavailable();
    };
    if !(400..600).contains(&code) {
        return queue_unavailable();
    }
    let e = EnhancedCode::parse(&enhanced).unwrap_or(EnhancedCode::new(4, 3, 0));
    Answer::Reply(Reply::new(code, e, text))
}

fn queue_unavailable() -> Answer {
    reply(451, (4, 3, 0), "Mail queue unavailable; try again later")
}

impl<'a> Front<'a> {
    /// Starts the conversation with a Hello (answered lazily).
    pub fn new(
        settings: &'a Settings,
        conn: &Connection,
        mut queue: FrontChannel,
        filters: Filters,
    ) -> Self {
        let _ = queue.send(
            &FrontToQueue::Hello {
                version: PROTOCOL_VERSION,
            },
            &[],
        );
        Self {
            settings,
            peer_ip: conn.peer.ip(),
            queue,
            hello_checked: false,
            queue_lost: false,
            recipients: Vec::new(),
            message: None,
            utc_offset: conn.utc_offset,
            client: conn.client.clone(),
            issued_mail: false,
            transaction_announced: false,
            auth_mechanisms: Vec::new(),
            authenticated: false,
            auth_mechanism: None,
            filters,
            discard: false,
        }
    }

    /// Answers one question.
    pub fn answer(&mut self, session: &Session, question: Question) -> Answer {
        match question {
            Question::Sender { path, params } => {
                if let ReversePath::Mailbox(m) = &path {
                    if let Some(refusal) = access_refusal(
                        self.settings
                            .access
                            .from_action(&m.to_string(), domain_of(m)),
                        &m.to_string(),
                    ) {
                        return refusal;
                    }
                }
                self.recipients.clear();
                self.issued_mail = true;
                self.discard = false;
                if let Some(refused) = self.filter_sender(&path, &params.wire_args()) {
                    return refused;
                }
                // So that a reload lets this transaction finish.
                if !std::mem::replace(&mut self.transaction_announced, true) {
                    let _ = self.queue.send(&FrontToQueue::Transaction, &[]);
                }
                Answer::Accept
            }
            Question::Recipient { path, params } => {
                let answer = self.recipient(&path);
                if answer == Answer::Accept {
                    return self.filter_recipient(&path, &params.wire_args());
                }
                answer
            }
            Question::Hello { name, .. } => self.filter_hello(session, &name),
            Question::Unknown(line) => self.filter_unknown(&line),
            Question::Vrfy(argument) => self.verify(argument, false),
            Question::Expn(argument) => self.verify(argument, true),
            Question::Etrn(argument) => {
                self.issued_mail = true;
                match self.round_trip(FrontToQueue::Etrn {
                    argument: argument.clone(),
                }) {
                    Some((QueueToFront::EtrnStarted { .. }, _)) => {
                        Answer::Reply(etrn_started(&argument))
                    }
                    // `#queue` naming no queue group: sendmail's 459.
                    Some((refused @ QueueToFront::Refused { .. }, _)) => refusal(refused),
                    _ => queue_unavailable(),
                }
            }
            Question::OpenMessage => self.open_message(session),
            Question::Commit(envelope) => self.commit(&envelope),
            Question::Auth {
                mechanism,
                initial_response,
            } => {
                self.issued_mail = true;
                self.auth_mechanism = Some(mechanism.clone());
                self.auth_round_trip(FrontToQueue::Auth {
                    mechanism,
                    initial_response,
                    tls: session.tls().is_some(),
                })
            }
            Question::AuthMechanisms => self.auth_mechanisms(),
            Question::AuthResponse(response) => {
                self.auth_round_trip(FrontToQueue::AuthResponse { response })
            }
        }
    }

    /// The mechanisms the queue runner's AUTH backend offers (read from
    /// its Hello; none when there is no AUTH or no queue runner), and
    /// those that wait for STARTTLS under AuthOptions `p`.
    fn auth_mechanisms(&mut self) -> Answer {
        let mechanisms = if self.read_hello() {
            self.auth_mechanisms.clone()
        } else {
            Vec::new()
        };
        let tls_only = if self.settings.config.auth.options.no_plaintext {
            mechanisms
                .iter()
                .filter(|m| m.plaintext)
                .map(|m| m.name.clone())
                .collect()
        } else {
            Vec::new()
        };
        Answer::AuthMechanisms {
            offered: mechanisms.into_iter().map(|m| m.name).collect(),
            tls_only,
        }
    }

    /// AUTH and its responses are checked by the queue runner (the front
    /// can reach no password database); it remembers the outcome itself.
    fn auth_round_trip(&mut self, request: FrontToQueue) -> Answer {
        match self.round_trip(request) {
            Some((QueueToFront::AuthChallenge { challenge }, _)) => {
                Answer::AuthChallenge(challenge)
            }
            Some((QueueToFront::AuthSuccess { user }, _)) => {
                self.authenticated = true;
                self.filters
                    .values()
                    .set_auth(self.auth_mechanism.as_deref(), &user);
                Answer::AuthSuccess { identity: user }
            }
            Some((QueueToFront::AuthFailed, _)) => Answer::AuthFailed(Reply::new(
                535,
                EnhancedCode::new(5, 7, 0),
                "authentication failed",
            )),
            Some((refused @ QueueToFront::Refused { .. }, _)) => refusal(refused),
            _ => reply(454, (4, 7, 0), "Temporary authentication failure"),
        }
    }

    /// RCPT: the relay policy (`policy.rs`), then, for a local domain,
    /// whether the user exists (asked of the queue runner: the front's
    /// jail holds no user database). Unknown users are refused here, as
    /// sendmail does, never given a mailbox.
    pub(super) fn recipient(&mut self, path: &Mailbox) -> Answer {
        let qualified = policy::qualify(path, &self.settings.hostname);
        if let Some(domain) = domain_of(&qualified) {
            let action = self
                .settings
                .access
                .to_action(&qualified.to_string(), domain);
            if let Some(refusal) = access_refusal(action.clone(), &path.to_string()) {
                return refusal;
            }
            // Accepted whoever the client is, and never delivered: the
            // queue runner discards the message at commit.
            if action == Some(postern_config::AccessAction::Discard) {
                return self.accept_recipient(&qualified);
            }
        }
        match policy::relay_verdict(self.settings, self.peer_ip, self.authenticated, &qualified) {
            RelayVerdict::Denied => reply(550, (5, 7, 1), format!("<{path}>... Relaying denied")),
            RelayVerdict::Relay => self.accept_recipient(&qualified),
            RelayVerdict::Local { name } => {
                match self.round_trip(FrontToQueue::LocalUser { name }) {
                    Some((QueueToFront::LocalUser { known: true }, _)) => {
                        self.accept_recipient(&qualified)
                    }
                    Some((QueueToFront::LocalUser { known: false }, _)) => {
                        reply(550, (5, 1, 1), format!("<{path}>... User unknown"))
                    }
                    _ => reply(
                        451,
                        (4, 3, 0),
                        format!("<{path}>... Temporary lookup failure"),
                    ),
                }
            }
        }
    }

    /// VRFY and EXPN: the queue runner knows the users and the aliases,
    /// and applies PrivacyOptions again (restrictexpand among them).
    fn verify(&mut self, argument: String, expand: bool) -> Answer {
        self.issued_mail = true;
        match self.round_trip(FrontToQueue::Verify { argument, expand }) {
            Some((
                QueueToFront::Verified {
                    addresses,
                    definitive,
                },
                _,
            )) => Answer::Addresses {
                addresses: addresses
                    .into_iter()
                    .map(|a| VerifiedAddress {
                        full_name: a.full_name,
                        address: a.address,
                    })
                    .collect(),
                definitive,
            },
            Some((refused @ QueueToFront::Refused { .. }, _)) => refusal(refused),
            _ => reply(451, (4, 3, 0), "Temporary lookup failure; try again later"),
        }
    }

    fn accept_recipient(&mut self, qualified: &Mailbox) -> Answer {
        self.recipients.push(qualified.to_string());
        Answer::Accept
    }

    fn open_message(&mut self, session: &Session) -> Answer {
        match self.filters.data() {
            Decision::Go => {}
            Decision::Discard => self.discard = true,
            Decision::Refuse(r) => return Answer::Reply(r),
        }
        let (queue_id, mut fds) = match self.round_trip(FrontToQueue::OpenMessage) {
            Some((QueueToFront::Opened { queue_id }, fds)) => (queue_id, fds),
            Some((refused @ QueueToFront::Refused { .. }, _)) => return refusal(refused),
            _ => return queue_unavailable(),
        };
        let Some(fd) = fds.pop() else {
            return queue_unavailable();
        };
        let for_recipient = match self.recipients.as_slice() {
            [one] => Some(one.as_str()),
            _ => None,
        };
        let head = super::message::head(
            self.settings,
            session,
            &self.client,
            &queue_id,
            for_recipient,
            self.utc_offset,
        );
        let pipe = TimedPipe::new(
            std::fs::File::from(fd),
            self.settings.config.timeouts.queuereply,
        );
        self.message = Some(if self.filters.any() {
            self.filters.set_queue_id(queue_id.as_str());
            MessageFile::start_held(queue_id, pipe, head)
        } else {
            MessageFile::start(queue_id, pipe, head)
        });
        Answer::Accept
    }

    fn commit(&mut self, envelope: &postern_smtp::server::Envelope) -> Answer {
        let Some(mut file) = self.message.take() else {
            return queue_unavailable();
        };
        let queue_id = file.queue_id().clone();
        let mut envelope = super::message::ipc_envelope(envelope, &self.settings.hostname, None);
        let finished = match file.take_held() {
            Some(held) => match self.filter_message(held, &mut envelope) {
                Ok(message) => file.finish_held(&message),
                Err(refusal) => {
                    let _ = self.queue.send(&FrontToQueue::Abort { queue_id }, &[]);
                    self.transaction_announced = false;
                    return refusal;
                }
            },
            None => file.finish(),
        };
        // A filter discarded it: the queue runner logs it and drops it.
        envelope.discard = self.discard;
        let message_id = match finished {
            Ok(message_id) => message_id,
            // The queue runner closed the pipe: it could not store the
            // message, and its answer to the commit says why (452 4.3.1
            // for a full disk).
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => None,
            Err(_) => {
                let _ = self.queue.send(&FrontToQueue::Abort { queue_id }, &[]);
                self.transaction_announced = false;
                return reply(451, (4, 3, 0), "Queue write error");
            }
        };
        envelope.message_id = message_id;
        // Whatever the answer, the queue runner's transaction is over.
        self.transaction_announced = false;
        match self.round_trip(FrontToQueue::Commit {
            queue_id: queue_id.clone(),
            envelope: Box::new(envelope),
        }) {
            Some((QueueToFront::Committed { queue_id: done }, _)) if done == queue_id => {
                Answer::Queued { queue_id }
            }
            Some((refused @ QueueToFront::Refused { .. }, _)) => refusal(refused),
            _ => queue_unavailable(),
        }
    }

    /// Appends message text to the open message file.
    pub fn message_data(&mut self, bytes: &[u8]) {
        if let Some(file) = self.message.as_mut() {
            file.write(bytes);
        }
    }

    /// The queue ID of the message being received, if one is.
    pub fn queue_id(&self) -> Option<&str> {
        self.message.as_ref().map(|m| m.queue_id().as_str())
    }

    /// Drops the message being received.
    pub fn abort_message(&mut self) {
        self.filters.abort();
        if let Some(file) = self.message.take() {
            let _ = self.queue.send(
                &FrontToQueue::Abort {
                    queue_id: file.queue_id().clone(),
                },
                &[],
            );
            self.transaction_announced = false;
        }
    }

    /// The client went away: a message in progress was never acknowledged.
    pub fn connection_lost(&mut self) {
        self.abort_message();
        self.filters.quit();
    }

    /// A command the session refused itself (VRFY under novrfy, …) still
    /// counts as issued, as sendmail counts it: such a client did not
    /// just connect and say nothing.
    pub fn command_refused(&mut self) {
        self.issued_mail = true;
    }

    /// The session ended normally.
    pub fn finish(&mut self, conn: &Connection) {
        self.abort_message();
        self.filters.quit();
        if !self.issued_mail {
            super::report::no_mail(conn);
        }
    }

    /// Reads the queue runner's Hello if not done yet; false when it
    /// did not come or speaks another protocol.
    fn read_hello(&mut self) -> bool {
        if self.queue_lost {
            return false;
        }
        if !self.hello_checked {
            match self.queue.recv() {
                Ok((
                    QueueToFront::Hello {
                        version,
                        auth_mechanisms,
                    },
                    _,
                )) if version == PROTOCOL_VERSION => {
                    self.hello_checked = true;
                    self.auth_mechanisms = auth_mechanisms;
                }
                _ => {
                    self.queue_lost = true;
                    return false;
                }
            }
        }
        true
    }

    /// Sends one request and waits for its answer (after the peer's Hello).
    pub(super) fn round_trip(
        &mut self,
        request: FrontToQueue,
    ) -> Option<(QueueToFront, Vec<OwnedFd>)> {
        if !self.read_hello() {
            return None;
        }
        let answer = match self.queue.send(&request, &[]) {
            Ok(()) => self.queue.recv().ok(),
            Err(_) => None,
        };
        self.queue_lost = answer.is_none();
        answer
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::os::unix::net::UnixStream;

    use postern_ipc::{queue_front_channel, FrontToQueue, QueueToFront, PROTOCOL_VERSION};
    use postern_smtp::address::parse_forward_path;

    use super::*;

    /// A front at `peer` whose queue runner knows the local user `alice`.
    fn front_at<'a>(settings: &'a Settings, peer: &str) -> Front<'a> {
        let peer: SocketAddr = peer.parse().unwrap();
        let conn = Connection {
            peer,
            client: crate::policy::client_name(&peer),
            daemon_name: "MTA".into(),
            utc_offset: 0,
        };
        let (ours, theirs) = UnixStream::pair().unwrap();
        std::thread::spawn(move || {
            let mut queue = queue_front_channel(theirs);
            let hello = QueueToFront::Hello {
                version: PROTOCOL_VERSION,
                auth_mechanisms: Vec::new(),
            };
            queue.send(&hello, &[]).unwrap();
            while let Ok((request, _)) = queue.recv() {
                match request {
                    FrontToQueue::LocalUser { name } => {
                        let known = name.eq_ignore_ascii_case("alice");
                        queue.send(&QueueToFront::LocalUser { known }, &[]).unwrap();
                    }
                    FrontToQueue::Verify { argument, expand } => {
                        let answer = match (argument.as_str(), expand) {
                            ("alice", _) => QueueToFront::Verified {
                                addresses: vec![postern_ipc::VerifiedAddress {
                                    full_name: Some("Alice Example".into()),
                                    address: "alice@mx.test".into(),
                                }],
                                definitive: true,
                            },
                            (other, _) => QueueToFront::Refused {
                                code: 550,
                                enhanced: "5.1.1".into(),
                                text: format!("{other}... User unknown"),
                            },
                        };
                        queue.send(&answer, &[]).unwrap();
                    }
                    _ => {}
                }
            }
        });
        Front::new(
            settings,
            &conn,
            postern_ipc::front_channel(ours),
            crate::front::filters::Filters::none(),
        )
    }

    fn verdict(front: &mut Front<'_>, rcpt: &str) -> String {
        match front.recipient(&parse_forward_path(rcpt).unwrap()) {
            Answer::Accept => "accept".into(),
            Answer::Reply(r) => r.to_string(),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn rcpt_replies_are_sendmails() {
        let dir = tempfile::tempdir().unwrap();
        let settings = crate::settings::for_tests(dir.path(), "");
        let mut outsider = front_at(&settings, "192.0.2.1:40000");
        assert_eq!(verdict(&mut outsider, "<alice@mx.test>"), "accept");
        assert_eq!(verdict(&mut outsider, "<ALICE@MX.TEST>"), "accept");
        assert_eq!(
            verdict(&mut outsider, "<bob@mx.test>"),
            "550 5.1.1 <bob@mx.test>... User unknown"
        );
        assert_eq!(
            verdict(&mut outsider, "<victim@example.com>"),
            "550 5.7.1 <victim@example.com>... Relaying denied"
        );
        assert_eq!(
            verdict(&mut outsider, "<\"victim@example.com\">"),
            "550 5.7.1 <\"victim@example.com\">... Relaying denied"
        );
        assert_eq!(
            verdict(&mut outsider, "<@mx.test:victim@example.com>"),
            "550 5.7.1 <victim@example.com>... Relaying denied"
        );
        // The envelope keeps the qualified address.
        assert_eq!(outsider.recipients, ["alice@mx.test", "ALICE@MX.TEST"]);
        let mut local = front_at(&settings, "127.0.0.1:40000");
        // VRFY and EXPN are the queue runner's answers, passed on.
        assert_eq!(
            local.verify("alice".into(), false),
            Answer::Addresses {
                addresses: vec![VerifiedAddress {
                    full_name: Some("Alice Example".into()),
                    address: "alice@mx.test".into(),
                }],
                definitive: true,
            }
        );
        match local.verify("bob".into(), true) {
            Answer::Reply(r) => assert_eq!(r.to_string(), "550 5.1.1 bob... User unknown"),
            other => panic!("{other:?}"),
        }
        assert_eq!(verdict(&mut local, "<victim@example.com>"), "accept");
        assert_eq!(
            verdict(&mut local, "<\"victim@example.com\">"),
            "550 5.1.1 <\"victim@example.com\">... User unknown"
        );
    }
}
