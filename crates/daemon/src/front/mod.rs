//! The front: one process per SMTP connection, running the sans-IO server
//! session over the accepted socket with blocking I/O and timeouts.
//!
//! Security posture: forked by the front factory for one connection,
//! already inside the factory's empty chroot, it drops to FrontUser (a uid
//! of its own) before it reads a byte from the network: no capabilities,
//! no new privileges, not dumpable, no processes (RLIMIT_NPROC 0), few
//! descriptors, bounded memory, and a seccomp allow-list that refuses
//! opening files, making or connecting sockets, signalling, tracing,
//! forking and executing (`privsep/syscalls.rs`). It holds the client
//! socket, its channel to the queue runner, the syslog socket and its
//! connections to the mail filters (made just before the seccomp filter,
//! `filters/open.rs`), nothing else: it cannot open the spool or the keys. The message goes into a
//! pipe whose other end the queue runner holds, and it answers 250 only
//! after the queue runner says the message is durable.

mod conn;
mod filter_stages;
pub mod filters;
mod header_section;
mod line_clock;
mod message;
mod pipe;
mod questions;
mod report;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};

use postern_ipc::FrontChannel;
use postern_smtp::server::{Event, Output, ServerConfig, Session};

use crate::privsep::Dropped;
use crate::settings::Settings;

/// What the front knows about its connection.
pub struct Connection {
    /// The client's address.
    pub peer: SocketAddr,
    /// sendmail's `$_` for this client.
    pub client: String,
    /// The listener's Name= (`MTA`, `MSA`).
    pub daemon_name: String,
    /// Offset of local time from UTC, read before the jail hid /etc/localtime.
    pub utc_offset: i32,
}

/// The client read buffer: its size at first, and once bulk data comes.
const READ_BUFFER_FIRST: usize = 4 << 10;
const READ_BUFFER_MOST: usize = 64 << 10;

/// Runs the session until the client leaves; returns the exit code.
pub fn run(
    _dropped: Dropped,
    settings: &Settings,
    stream: TcpStream,
    conn: Connection,
    queue: FrontChannel,
    filters: Vec<filters::Opened>,
) -> i32 {
    // A queue runner that does not answer (stopped, or stuck on its disk)
    // costs the client a bounded wait and a 451, not a hung session.
    let queue_timeout = settings.config.timeouts.queuereply;
    let _ = queue.stream().set_read_timeout(Some(queue_timeout));
    let _ = queue.stream().set_write_timeout(Some(queue_timeout));
    let (filters, outcome) = start_filters(settings, &conn, &stream, filters);
    if let Some(close) = outcome.close {
        // A filter shut the connection at its start: sendmail's 421
        // instead of the greeting.
        let _ = (&stream).write_all(format!("{close}\r\n").as_bytes());
        return 0;
    }
    let mut cfg = server_config(settings, &conn);
    cfg.ask_hello = filters.any();
    cfg.ask_unknown = filters.any();
    if let Some(refusal) = outcome.refusal {
        cfg.connect_refusal = Some(refusal);
    }
    if let Some(code) = outcome.greeting_code {
        cfg.greeting_code = code;
    }
    let mut session = Session::new(cfg);
    let mut front = questions::Front::new(settings, &conn, queue, filters);
    // Small while the client sends commands, so an idle session costs
    // little memory (a zeroed 64 KiB buffer is 16 pages of its own in
    // every front); grown once a read fills it, as a message body does.
    let mut buf = vec![0u8; READ_BUFFER_FIRST];
    let mut stream = conn::Conn::Plain(stream);
    let mut clock = line_clock::LineClock::new();
    let mut timeouts = conn::Timeouts::default();
    loop {
        while let Some(output) = session.poll_output() {
            match output {
                Output::Send(bytes) => {
                    timeouts.apply(&stream, session.current_timeout());
                    if stream
                        .write_all(&bytes)
                        .and_then(|()| stream.flush())
                        .is_err()
                    {
                        front.connection_lost();
                        return 0;
                    }
                    clock.replied();
                }
                Output::Ask(question) => {
                    let answer = front.answer(&session, question);
                    if session.answer(answer).is_err() {
                        crate::log::err("front: session refused its own answer");
                        return 1;
                    }
                }
                Output::MessageData(bytes) => front.message_data(&bytes),
                Output::AbortMessage => front.abort_message(),
                Output::StartTls => {
                    start_tls(settings, &conn, &mut stream, &mut session);
                    timeouts.forget();
                }
                Output::Event(event) => {
                    // sendmail's "did not issue MAIL" line is not for a
                    // client that asked something else, nor for one its
                    // null server refused (a client that talked first).
                    if matches!(
                        event,
                        Event::Refused { .. }
                            | Event::Verify { .. }
                            | Event::PossibleAttack { .. }
                            | Event::PreGreetingTraffic { .. }
                    ) {
                        front.command_refused();
                    }
                    report::event(&conn, front.queue_id(), &event)
                }
                // The slowdown against address harvesting: this process
                // serves this client only, so it may simply wait.
                Output::Pause(delay) => std::thread::sleep(delay),
                // The greet pause holds this process only, like the
                // slowdowns above.
                Output::GreetPause(wait) => {
                    let early = conn::traffic_within(&stream, wait);
                    timeouts.forget();
                    session.greet(early);
                }
                Output::Close => {
                    front.finish(&conn);
                    return 0;
                }
            }
        }
        // The whole line must come within the timeout, not each read.
        let Some(left) = clock.left(session.current_timeout()) else {
            session.timed_out();
            continue;
        };
        timeouts.apply(&stream, left);
        match stream.read(&mut buf) {
            Ok(0) => {
                front.connection_lost();
                report::lost(&conn, &session);
                return 0;
            }
            Ok(n) => {
                clock.received(&buf[..n]);
                session.receive(&buf[..n]);
                if n == buf.len() && buf.len() < READ_BUFFER_MOST {
                    buf.resize(READ_BUFFER_MOST, 0);
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                session.timed_out()
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => {
                front.connection_lost();
                return 0;
            }
        }
    }
}

/// The mail filters' connect stage, before the greeting (sendmail's
/// milter_init and milter_connect): what it decided changes the session.
fn start_filters(
    settings: &Settings,
    conn: &Connection,
    stream: &TcpStream,
    opened: Vec<filters::Opened>,
) -> (filters::Filters, filters::ConnectOutcome) {
    if opened.is_empty() {
        // sendmail's milter_init, at MilterLogLevel 11 and up.
        crate::log::info(crate::log::Level::EndOfJob, "Milter: no active filter");
        return (filters::Filters::none(), filters::ConnectOutcome::default());
    }
    let mut values = filters::Values::default();
    values.set("j", settings.hostname.clone());
    values.set("_", conn.client.clone());
    values.set("daemon_name", conn.daemon_name.clone());
    values.set("client_addr", conn.peer.ip().to_string());
    values.set("client_port", conn.peer.port().to_string());
    if let Ok(local) = stream.local_addr() {
        values.set("if_addr", local.ip().to_string());
        values.set("daemon_addr", local.ip().to_string());
        values.set("daemon_port", local.port().to_string());
    }
    let host = conn.client.split(' ').next().unwrap_or("localhost");
    let host = if host.starts_with('[') {
        host
    } else {
        "localhost"
    };
    values.set("client_name", host.to_string());
    let client = postern_milter::filter::ClientAddress::Ip {
        addr: conn.peer.ip(),
        port: conn.peer.port(),
    };
    filters::Filters::start(
        opened,
        &settings.config.milter_macros,
        values,
        &settings.hostname,
        host,
        &client,
    )
}

/// The handshake after `220 2.0.0 Ready to start TLS`: success resets the
/// session (it then wants a new EHLO); failure ends the connection, as
/// sendmail drops it.
fn start_tls(
    settings: &Settings,
    conn: &Connection,
    stream: &mut conn::Conn,
    session: &mut Session,
) {
    let Some(tls) = settings.tls.server.as_ref() else {
        let _ = session.tls_failed();
        return;
    };
    match conn::start_tls(stream, tls, settings.config.timeouts.starttls) {
        Ok(established) => {
            report::tls_established(conn, &established);
            if session.tls_started(established.info).is_err() {
                // Plaintext arrived during the handshake: an injection
                // attempt or a broken client; either way, goodbye.
                crate::log::notice(
                    crate::log::Level::Refusal,
                    &format!("{}: plaintext during the TLS handshake", conn.client),
                );
            }
        }
        Err(e) => {
            report::tls_failed(conn, &e);
            let _ = session.tls_failed();
        }
    }
}

/// The session's settings: the configuration's, then what this listener's
/// `M=` letters change (sendmail's DaemonPortOptions modifiers): `a` MAIL
/// only after AUTH, `A` no AUTH, `E` no ETRN, `S` no STARTTLS.
fn server_config(settings: &Settings, conn: &Connection) -> ServerConfig {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let config = &settings.config;
    let mut cfg = config.smtp_server(&settings.hostname, &conn.client, now, conn.utc_offset);
    let modifiers = settings.listener_modifiers(&conn.daemon_name);
    cfg.trace_commands = crate::log::enabled(crate::log::Level::Commands);
    // The client's name for GreetPause: lookups: Postern names only
    // loopback clients (`localhost`), as its `$_` does.
    let host = conn.peer.ip().is_loopback().then_some("localhost");
    cfg.greet_pause = config.greet_pause(&settings.access, host, conn.peer.ip());
    // sendmail's check_relay: `Connect:` REJECT or ERROR.
    cfg.connect_refusal =
        crate::policy::access_reply(settings.access.connect_action(host, conn.peer.ip()), "");
    if let Some(refusal) = &cfg.connect_refusal {
        crate::log::notice(
            crate::log::Level::Refusal,
            &crate::policy::check_relay_log(&conn.peer, &refusal.to_string()),
        );
    }
    cfg.starttls = settings.tls.server.is_some() && !modifiers.contains('S');
    // The queue runner says which mechanisms there are, at the first EHLO
    // (the greeting must not wait for it: it may be restarting).
    cfg.auth_from_shell = !modifiers.contains('A');
    cfg.auth_max_failures = config.auth.max_failures;
    cfg.auth_required = modifiers.contains('a');
    if modifiers.contains('E') {
        cfg.privacy |= postern_smtp::PrivacyFlags::NO_ETRN;
    }
    cfg
}
