//! The key holder's loop: registrations from master and the factory,
//! signature requests from everyone they registered.
//!
//! A requester is not trusted. What it can do: ask for a handshake's
//! signatures (the point), within its budget; anything else (a malformed
//! or oversized frame, a request of the wrong shape, too many requests,
//! not reading its replies) is refused and logged, and a requester that
//! keeps at it is cut off. Nothing it sends can stop the loop.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use postern_ipc::{
    ChannelError, KeyHolderChannel, KeyHolderControl, KeyOp, KeyReply, KeyRequest,
    KeyServingChannel, Requester,
};
use postern_tls::{KeyFingerprint, KeyStore, SignOp};

use crate::log;

const MASTER: Token = Token(0);

/// Signatures a front may ask for over its whole session: one STARTTLS,
/// one handshake (renegotiation is off), one signature; the rest is
/// margin. The factory's warm-up needs one.
const SESSION_SIGNATURES: u32 = 4;
/// The delivery client's budget: a signature per outbound handshake in
/// which the server asks for our client certificate, refilled at this
/// rate up to the burst.
const DELIVERY_BURST: f64 = 200.0;
const DELIVERY_PER_SECOND: f64 = 100.0;
/// Refusals after which a requester is cut off.
const MAX_REFUSALS: u32 = 8;
/// Replies a requester may leave unread.
const MAX_UNREAD_REPLIES: usize = 4;
/// Requests handled per requester per wake-up (fairness).
const REQUESTS_PER_WAKEUP: usize = 4;

/// One requester.
struct Served {
    channel: KeyServingChannel,
    role: Requester,
    /// Signatures left (fronts, factory) or the token bucket's level
    /// (delivery client).
    budget: f64,
    refilled: Instant,
    refusals: u32,
}

impl Served {
    fn new(channel: KeyServingChannel, role: Requester) -> Served {
        let budget = match role {
            Requester::Front | Requester::Factory => f64::from(SESSION_SIGNATURES),
            Requester::DeliveryClient => DELIVERY_BURST,
        };
        Served {
            channel,
            role,
            budget,
            refilled: Instant::now(),
            refusals: 0,
        }
    }

    /// Takes one signature from the budget, if there is one left.
    fn spend(&mut self) -> bool {
        if self.role == Requester::DeliveryClient {
            let now = Instant::now();
            let elapsed = now.duration_since(self.refilled).as_secs_f64();
            self.budget = (self.budget + elapsed * DELIVERY_PER_SECOND).min(DELIVERY_BURST);
            self.refilled = now;
        }
        if self.budget >= 1.0 {
            self.budget -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The holder's state.
pub struct Holder {
    store: Arc<KeyStore>,
    poll: Poll,
    /// master's channel (`MASTER`) and the factories' (registrars).
    registrars: HashMap<Token, KeyHolderChannel>,
    requesters: HashMap<Token, Served>,
    next: usize,
}

impl Holder {
    /// Ready to serve, with master's channel.
    pub fn new(store: Arc<KeyStore>, master: KeyHolderChannel) -> std::io::Result<Holder> {
        let poll = Poll::new()?;
        let mut holder = Holder {
            store,
            poll,
            registrars: HashMap::new(),
            requesters: HashMap::new(),
            next: 1,
        };
        holder.add_registrar(MASTER, master)?;
        Ok(holder)
    }

    /// Serves until master has gone and every registrar and requester has
    /// closed (after a reload, the old holder finishes the handshakes of
    /// the old fronts); returns the exit code.
    pub fn run(&mut self) -> i32 {
        let mut events = Events::with_capacity(64);
        loop {
            if !self.registrars.contains_key(&MASTER)
                && self.registrars.is_empty()
                && self.requesters.is_empty()
            {
                return 0;
            }
            if let Err(e) = self.poll.poll(&mut events, Some(Duration::from_secs(60))) {
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                log::crit(&format!("key holder: poll: {e}"));
                return 1;
            }
            for event in events.iter() {
                let token = event.token();
                if self.registrars.contains_key(&token) {
                    self.registrar_ready(token);
                } else {
                    self.requester_ready(token);
                }
            }
        }
    }

    fn token(&mut self) -> Token {
        self.next += 1;
        Token(self.next)
    }

    fn add_registrar(&mut self, token: Token, channel: KeyHolderChannel) -> std::io::Result<()> {
        channel.stream().set_nonblocking(true)?;
        self.poll.registry().register(
            &mut SourceFd(&channel.as_raw_fd()),
            token,
            Interest::READABLE,
        )?;
        self.registrars.insert(token, channel);
        Ok(())
    }

    fn registrar_ready(&mut self, token: Token) {
        loop {
            let Some(channel) = self.registrars.get_mut(&token) else {
                return;
            };
            match channel.try_recv() {
                Ok(None) => return,
                Ok(Some((KeyHolderControl::Hello { version }, _))) => {
                    if version != super::VERSION {
                        log::crit(&format!("key holder: registrar speaks protocol {version}"));
                        self.drop_registrar(token);
                        return;
                    }
                }
                Ok(Some((KeyHolderControl::Requester(role), fds))) => {
                    self.add_requester(role, fds);
                }
                Ok(Some((KeyHolderControl::Registrar, fds))) if token == MASTER => {
                    for fd in fds {
                        let channel = postern_ipc::key_holder_channel(UnixStream::from(fd));
                        let new = self.token();
                        if let Err(e) = self.add_registrar(new, channel) {
                            log::err(&format!("key holder: registrar: {e}"));
                        }
                    }
                }
                Ok(Some((KeyHolderControl::Registrar, _))) => {
                    log::err("key holder: a registrar that is not master named another");
                }
                Err(ChannelError::Closed) => {
                    self.drop_registrar(token);
                    return;
                }
                Err(e) => {
                    log::err(&format!("key holder: registrar channel: {e}"));
                    self.drop_registrar(token);
                    return;
                }
            }
        }
    }

    fn drop_registrar(&mut self, token: Token) {
        if let Some(channel) = self.registrars.remove(&token) {
            let _ = self
                .poll
                .registry()
                .deregister(&mut SourceFd(&channel.as_raw_fd()));
        }
    }

    fn add_requester(&mut self, role: Requester, fds: Vec<OwnedFd>) {
        for fd in fds {
            let channel = postern_ipc::key_serving_channel(UnixStream::from(fd));
            let token = self.token();
            let registered = channel.stream().set_nonblocking(true).and_then(|()| {
                self.poll.registry().register(
                    &mut SourceFd(&channel.as_raw_fd()),
                    token,
                    Interest::READABLE,
                )
            });
            match registered {
                Ok(()) => {
                    self.requesters.insert(token, Served::new(channel, role));
                }
                Err(e) => log::err(&format!("key holder: requester: {e}")),
            }
        }
    }

    fn requester_ready(&mut self, token: Token) {
        for _ in 0..REQUESTS_PER_WAKEUP {
            let Some(served) = self.requesters.get_mut(&token) else {
                return;
            };
            let _ = served.channel.flush();
            match served.channel.try_recv() {
                Ok(None) => return,
                Ok(Some((request, _))) => {
                    let reply = answer(&self.store, served, request);
                    let cut_off = served.refusals >= MAX_REFUSALS
                        || served.channel.unsent_frames() > MAX_UNREAD_REPLIES;
                    let sent = served.channel.send(&reply, &[]);
                    if cut_off || sent.is_err() {
                        if cut_off {
                            log::warning(
                                log::Level::Serious,
                                &format!(
                                    "key holder: {} cut off after {} refusals",
                                    role_name(served.role),
                                    served.refusals
                                ),
                            );
                        }
                        self.drop_requester(token);
                        return;
                    }
                }
                Err(ChannelError::Closed) => {
                    self.drop_requester(token);
                    return;
                }
                Err(e) => {
                    log::warning(
                        log::Level::Serious,
                        &format!(
                            "key holder: refused {}: {e}; disconnected",
                            role_name(served.role)
                        ),
                    );
                    self.drop_requester(token);
                    return;
                }
            }
        }
    }

    fn drop_requester(&mut self, token: Token) {
        if let Some(served) = self.requesters.remove(&token) {
            let _ = self
                .poll
                .registry()
                .deregister(&mut SourceFd(&served.channel.as_raw_fd()));
        }
    }
}

/// The reply to one request, the refusal logged.
fn answer(store: &KeyStore, served: &mut Served, request: KeyRequest) -> KeyReply {
    let KeyRequest::Sign { key, op, input } = request;
    let op = match op {
        KeyOp::RsaPkcs1 => SignOp::RsaPkcs1,
        KeyOp::RsaRaw => SignOp::RsaRaw,
        KeyOp::Ecdsa => SignOp::Ecdsa,
    };
    let result = if served.spend() {
        store.sign(&KeyFingerprint(key), op, &input)
    } else {
        Err("over its signature budget".to_string())
    };
    match result {
        Ok(signature) => KeyReply::Signature(signature),
        Err(reason) => {
            served.refusals += 1;
            log::warning(
                log::Level::Serious,
                &format!(
                    "key holder: refused {op:?} of {} bytes with key {} for {}: {reason}",
                    input.len(),
                    short(&key),
                    role_name(served.role)
                ),
            );
            KeyReply::Refused(reason)
        }
    }
}

fn short(key: &[u8; 32]) -> String {
    key[..6].iter().map(|b| format!("{b:02x}")).collect()
}

fn role_name(role: Requester) -> &'static str {
    match role {
        Requester::Front => "a front",
        Requester::DeliveryClient => "the delivery client",
        Requester::Factory => "the front factory",
    }
}
