//! An in-process SMTP sink: the server a delivery client under test relays
//! to, recording every message it accepts.
//!
//! One thread accepts, one thread serves each connection, all with std::net
//! on 127.0.0.1. The sink binds port 0 itself and keeps the listener, so its
//! port cannot be taken by anyone else. Tests wait for messages on a
//! `Condvar`; dropping the sink stops every thread and closes the port.

mod behavior;
mod session;

pub use behavior::SinkBehavior;

use std::collections::HashMap;
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// One message the sink accepted (its final dot got a 2xx reply).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// The reverse path without angle brackets; empty for `MAIL FROM:<>`.
    pub mail_from: String,
    /// The ESMTP parameters of MAIL as the client wrote them, after the
    /// reverse path (`SIZE=120 BY=57;R`); empty when there were none.
    pub mail_params: String,
    /// The accepted recipients, in order, without angle brackets.
    pub rcpt_to: Vec<String>,
    /// The ESMTP parameters of each accepted RCPT as the client wrote
    /// them (`NOTIFY=SUCCESS ORCPT=rfc822;a@b`), in `rcpt_to`'s order;
    /// empty strings for RCPTs without any.
    pub rcpt_params: Vec<String>,
    /// The body as received after dot-unstuffing, up to and including the
    /// line end before the terminating `.` CRLF (which is excluded).
    pub data: Vec<u8>,
    /// The argument of the last HELO or EHLO on the connection.
    pub helo: String,
}

impl ReceivedMessage {
    /// The body as text, invalid UTF-8 replaced, for assertions.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }
}

/// A running sink; stops when dropped.
#[derive(Debug)]
pub struct Sink {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<Vec<JoinHandle<()>>>>,
}

/// What the sink's threads share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) behavior: SinkBehavior,
    stop: AtomicBool,
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) messages: Vec<ReceivedMessage>,
    pub(crate) dropped: Vec<ReceivedMessage>,
    connections: usize,
    /// RCPT attempts per lower-cased address, over all connections.
    pub(crate) rcpt_attempts: HashMap<String, usize>,
    /// DATA bodies read to the final dot, over all connections.
    pub(crate) data_count: usize,
    /// A clone of every open connection, so that Drop can shut them down
    /// and wake sessions blocked in read.
    live: HashMap<u64, TcpStream>,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking session must not take every later assertion with it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn notify(&self) {
        self.changed.notify_all();
    }
}

impl Sink {
    /// A sink with the default behaviour ([`SinkBehavior::new`]).
    pub fn start() -> Sink {
        Self::start_with(SinkBehavior::new())
    }

    /// A sink with the given behaviour.
    pub fn start_with(behavior: SinkBehavior) -> Sink {
        Self::start_at(behavior, SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
    }

    /// A sink on `addr`: another loopback address (`127.0.0.2:0`) or a
    /// given port, as the mail exchangers of a test's DNS zone.
    pub fn start_at(behavior: SinkBehavior, addr: SocketAddr) -> Sink {
        let listener =
            TcpListener::bind(addr).unwrap_or_else(|e| panic!("sink: cannot bind {addr}: {e}"));
        let addr = listener
            .local_addr()
            .expect("bound listener has an address");
        let shared = Arc::new(Shared {
            behavior,
            stop: AtomicBool::new(false),
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        });
        let accept = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name(format!("sink-accept-{}", addr.port()))
                .spawn(move || accept_loop(&listener, &shared))
                .expect("spawn sink accept thread")
        };
        Sink {
            addr,
            shared,
            accept: Some(accept),
        }
    }

    /// Where the sink listens (127.0.0.1 and its own port).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The messages accepted so far, in order of their final dot.
    pub fn messages(&self) -> Vec<ReceivedMessage> {
        self.shared.lock().messages.clone()
    }

    /// Messages whose connection was dropped after DATA
    /// ([`SinkBehavior::drop_connection_after_data`]).
    pub fn dropped_messages(&self) -> Vec<ReceivedMessage> {
        self.shared.lock().dropped.clone()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.lock().connections
    }

    /// RCPT commands seen for `addr` (case-insensitive), over all
    /// connections, whatever the reply.
    pub fn rcpt_attempts(&self, addr: &str) -> usize {
        let key = addr.to_ascii_lowercase();
        self.shared
            .lock()
            .rcpt_attempts
            .get(&key)
            .copied()
            .unwrap_or(0)
    }

    /// Waits until at least `n` messages have been accepted and returns all
    /// of them; panics after `timeout` saying how many arrived.
    pub fn wait_for_messages(&self, n: usize, timeout: Duration) -> Vec<ReceivedMessage> {
        self.wait(
            timeout,
            |st| (st.messages.len() >= n).then(|| st.messages.clone()),
            |st| {
                format!(
                    "sink {}: waited {timeout:?} for {n} message(s), {} arrived \
                     ({} connection(s), {} dropped after DATA): {:?}",
                    self.addr,
                    st.messages.len(),
                    st.connections,
                    st.dropped.len(),
                    st.messages
                )
            },
        )
    }

    /// Waits until at least `n` connections have been accepted; panics after
    /// `timeout` saying how many arrived.
    pub fn wait_for_connections(&self, n: usize, timeout: Duration) -> usize {
        self.wait(
            timeout,
            |st| (st.connections >= n).then_some(st.connections),
            |st| {
                format!(
                    "sink {}: waited {timeout:?} for {n} connection(s), {} arrived",
                    self.addr, st.connections
                )
            },
        )
    }

    /// Waits until at most `n` connections are open (accepted, and not
    /// yet ended by QUIT or by the client); panics after `timeout` saying
    /// how many still are.
    pub fn wait_for_open_connections_at_most(&self, n: usize, timeout: Duration) -> usize {
        self.wait(
            timeout,
            |st| (st.live.len() <= n).then_some(st.live.len()),
            |st| {
                format!(
                    "sink {}: waited {timeout:?} for at most {n} open connection(s), {} are",
                    self.addr,
                    st.live.len()
                )
            },
        )
    }

    fn wait<T>(
        &self,
        timeout: Duration,
        ready: impl Fn(&State) -> Option<T>,
        failure: impl Fn(&State) -> String,
    ) -> T {
        let deadline = Instant::now() + timeout;
        let mut st = self.shared.lock();
        loop {
            if let Some(value) = ready(&st) {
                return value;
            }
            let now = Instant::now();
            if now >= deadline {
                panic!("{}", failure(&st));
            }
            st = self
                .shared
                .changed
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // accept() has no timeout; a connection to ourselves is the event
        // that wakes it to see the flag.
        let wake = TcpStream::connect(self.addr);
        let Some(accept) = self.accept.take() else {
            return;
        };
        let sessions = match wake {
            Ok(_) => accept.join().unwrap_or_default(),
            Err(e) => {
                // Cannot happen short of fd exhaustion; leak the thread
                // rather than hang the test.
                eprintln!("sink {}: cannot wake the accept thread: {e}", self.addr);
                Vec::new()
            }
        };
        // The accept thread has ended, so every session is in `live`.
        for (_, stream) in self.shared.lock().live.drain() {
            let _ = stream.shutdown(Shutdown::Both);
        }
        for session in sessions {
            if session.join().is_err() {
                eprintln!("sink {}: a session thread panicked", self.addr);
            }
        }
    }
}

/// Accepts until told to stop; returns the session threads to join.
fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) -> Vec<JoinHandle<()>> {
    let mut sessions = Vec::new();
    let mut next_id = 0u64;
    loop {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) => {
                if !shared.stop.load(Ordering::SeqCst) {
                    eprintln!("sink: accept failed, no more connections: {e}");
                }
                return sessions;
            }
        };
        if shared.stop.load(Ordering::SeqCst) {
            return sessions;
        }
        let id = next_id;
        next_id += 1;
        match stream.try_clone() {
            Ok(clone) => {
                let mut st = shared.lock();
                st.live.insert(id, clone);
                st.connections += 1;
            }
            Err(e) => {
                eprintln!("sink: cannot clone a connection, dropping it: {e}");
                continue;
            }
        }
        shared.notify();
        let session_shared = Arc::clone(shared);
        let spawned = thread::Builder::new()
            .name(format!("sink-session-{id}"))
            .spawn(move || {
                if let Err(e) = session::serve(&session_shared, stream) {
                    // The client vanishing is normal in tests; say so only
                    // for the record.
                    eprintln!("sink: session {id} ended: {e}");
                }
                session_shared.lock().live.remove(&id);
                session_shared.notify();
            });
        match spawned {
            Ok(handle) => sessions.push(handle),
            Err(e) => eprintln!("sink: cannot spawn a session thread: {e}"),
        }
    }
}
