//! What the front logs, in sendmail's words and at sendmail's LogLevels.

use postern_smtp::server::{Event, Session};

use super::Connection;
use crate::log;

/// Logs a session event; `queue_id` names the message being received,
/// if one is.
pub fn event(conn: &Connection, queue_id: Option<&str>, event: &Event) {
    let client = &conn.client;
    match event {
        Event::Command(line) => log::info(log::Level::Commands, &format!("<-- {line}")),
        Event::Refused { verb, arg } => log::info(
            log::Level::Query,
            &format!("{client}: {verb} {arg} [rejected]"),
        ),
        Event::Verify { verb, arg } => log::info(
            log::Level::Query,
            &format!("{client}: {}", format!("{verb} {arg}").trim_end()),
        ),
        Event::PossibleAttack { command, count } => log::info(
            log::Level::Query,
            &format!("{client}: possible SMTP attack: command={command}, count={count}"),
        ),
        Event::Etrn { arg } => log::info(log::Level::Query, &format!("{client}: ETRN {arg}")),
        Event::PipeliningViolation { phase } => log::notice(
            log::Level::Refusal,
            &format!("rejecting {phase} from {client} due to traffic before response"),
        ),
        Event::DiscardedAfterStartTls { bytes } => log::notice(
            log::Level::Refusal,
            &format!("{client}: discarded {bytes} bytes of plaintext pipelined after STARTTLS"),
        ),
        Event::BadLineEnds { reply } => log::notice(
            log::Level::Refusal,
            &format!("{client}: message refused: {reply}"),
        ),
        Event::TooManyBadCommands => log::notice(
            log::Level::Refusal,
            &format!("{client}: too many bad commands; closing connection"),
        ),
        Event::TooManyAuthFailures { failures } => log::notice(
            log::Level::Refusal,
            &format!("{client}: {failures} failed AUTH attempts; closing connection"),
        ),
        Event::CommandTooLong => log::notice(
            log::Level::Refusal,
            &format!("{client}: command too long, possible attack"),
        ),
        Event::Timeout => log::info(
            log::Level::LostConnection,
            &format!("timeout waiting for input from {client}"),
        ),
        // sendmail logs this one at any LogLevel.
        Event::PreGreetingTraffic { after } => log::info(
            log::Level::Serious,
            &format!(
                "rejecting commands from {} due to pre-greeting traffic after {} seconds",
                host_and_address(conn),
                rounded_seconds(*after)
            ),
        ),
        Event::RcptFlood => log::info(
            log::Level::Query,
            &format!("{client}: Possible SMTP RCPT flood, throttling."),
        ),
        Event::MessageTooBig { size, max } => log::notice(
            log::Level::DeliveryFailure,
            &format!(
                "{}message size ({size}) exceeds maximum ({max})",
                queue_id.map(|q| format!("{q}: ")).unwrap_or_default()
            ),
        ),
    }
}

/// sendmail's `<host> [<address>]` for a client: its name (`[address]`,
/// `[IPv6:address]` when it has none: Postern names loopback clients
/// only), then the address as `anynet_ntoa` writes it.
fn host_and_address(conn: &Connection) -> String {
    let ip = conn.peer.ip();
    let host = if ip.is_loopback() {
        "localhost".to_string()
    } else {
        crate::policy::client_name(&conn.peer)
    };
    format!("{host} [{ip}]")
}

/// Whole seconds, half a second and more rounded up, as sendmail counts
/// the pre-greeting wait.
fn rounded_seconds(d: std::time::Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_millis() >= 500)
}

/// sendmail's note for a client that connected and did nothing useful.
pub fn no_mail(conn: &Connection) {
    log::info(
        log::Level::Query,
        &format!(
            "{} did not issue MAIL/EXPN/VRFY/ETRN during connection to {}",
            conn.client, conn.daemon_name
        ),
    );
}

/// The client went away without QUIT.
pub fn lost(conn: &Connection, session: &Session) {
    let during = if session.is_waiting() {
        "a command"
    } else {
        "input"
    };
    log::info(
        log::Level::LostConnection,
        &format!(
            "lost input channel from {} waiting for {during}",
            conn.client
        ),
    );
}

/// `STARTTLS=server, relay=…, version=…, verify=…, cipher=…, bits=…/…`
/// (LogLevel 9), and the certificate verification trace (LogLevel 14).
pub fn tls_established(conn: &Connection, tls: &super::conn::Established) {
    if log::enabled(log::Level::Diagnostic) {
        for line in &tls.trace {
            log::info(log::Level::Diagnostic, line);
        }
    }
    let info = &tls.info;
    log::info(
        log::Level::Deferred,
        &format!(
            "STARTTLS=server, relay={}, version={}, verify={}, cipher={}, bits={}/{}",
            conn.client,
            info.version,
            info.verify.as_str(),
            info.cipher,
            info.cipher_bits,
            info.alg_bits
        ),
    );
    if let (Some(subject), Some(issuer)) = (&info.cert_subject, &info.cert_issuer) {
        log::info(
            log::Level::Connection,
            &format!(
                "STARTTLS=server, cert-subject={subject}, cert-issuer={issuer}, verifymsg={}",
                info.verify.as_str()
            ),
        );
    }
}

/// sendmail's `STARTTLS=server, error: accept failed=…` (LogLevel 6).
pub fn tls_failed(conn: &Connection, error: &postern_tls::TlsError) {
    log::notice(
        log::Level::Query,
        &format!(
            "STARTTLS=server, error: accept failed, reason={error}, relay={}",
            conn.client
        ),
    );
}
