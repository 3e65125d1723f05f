//! The replies a server session sends, with sendmail's texts
//! (`sendmail/srvrsmtp.c` 8.17), in one place so that a transcript test
//! and a reader of this file see the same words.

use crate::address::AddressError;
use crate::reply::{EnhancedCode, Reply};

fn r(code: u16, (c, s, d): (u8, u16, u16), text: impl Into<String>) -> Reply {
    Reply::new(code, EnhancedCode::new(c, s, d), text)
}

/// `220 <host> ESMTP <rest>`: sendmail inserts `ESMTP` as the second word.
pub fn greeting(code: u16, text: &str) -> Reply {
    let text = match text.split_once(' ') {
        Some((host, rest)) => format!("{host} ESMTP {rest}"),
        None => format!("{text} ESMTP"),
    };
    Reply::plain(code, text)
}

/// The greeting to a client that spoke first (greet_pause): sendmail's
/// `554 <host> ESMTP not accepting messages`.
pub fn not_accepting(host: &str) -> Reply {
    Reply::plain(554, format!("{host} ESMTP not accepting messages"))
}

/// What a null server answers to all but QUIT, HELO, EHLO, NOOP and RSET.
pub fn command_rejected() -> Reply {
    r(550, (5, 0, 0), "Command rejected")
}

pub fn hello(host: &str, client: &str) -> String {
    format!("{host} Hello {client}, pleased to meet you")
}

pub fn helo_requires_domain(verb: &str) -> Reply {
    r(501, (5, 0, 0), format!("{verb} requires domain address"))
}

pub fn invalid_domain_name() -> Reply {
    r(501, (5, 0, 0), "Invalid domain name")
}

pub fn protocol_error() -> Reply {
    r(554, (5, 5, 0), "SMTP protocol error")
}

pub fn ok() -> Reply {
    r(250, (2, 0, 0), "OK")
}

pub fn reset() -> Reply {
    r(250, (2, 0, 0), "Reset state")
}

pub fn closing(host: &str) -> Reply {
    r(221, (2, 0, 0), format!("{host} closing connection"))
}

pub fn unrecognized(shown: &str) -> Reply {
    r(500, (5, 5, 1), format!("Command unrecognized: \"{shown}\""))
}

pub fn line_too_long() -> Reply {
    r(500, (5, 5, 2), "Line too long")
}

pub fn bare_lf_command() -> Reply {
    r(500, (5, 5, 2), "Bare linefeed (LF) not allowed")
}

pub fn bare_cr_command() -> Reply {
    r(500, (5, 5, 2), "Bare carriage return (CR) not allowed")
}

pub fn too_many_bad_commands(host: &str) -> Reply {
    r(
        421,
        (4, 7, 0),
        format!("{host} Too many bad commands; closing connection"),
    )
}

pub fn command_too_long(host: &str, client: &str) -> Reply {
    r(
        421,
        (4, 7, 0),
        format!("{host} Command too long, possible attack {client}"),
    )
}

pub fn timeout(host: &str, client: &str) -> Reply {
    r(
        421,
        (4, 4, 2),
        format!("{host} timeout waiting for input from {client}"),
    )
}

pub fn polite_people() -> Reply {
    r(503, (5, 0, 0), "Polite people say HELO first")
}

pub fn introduce_yourself() -> Reply {
    r(503, (5, 0, 0), "I demand that you introduce yourself first")
}

pub fn sender_already_specified() -> Reply {
    r(503, (5, 5, 0), "Sender already specified")
}

pub fn syntax_scanning(word: &str) -> Reply {
    r(
        501,
        (5, 5, 2),
        format!("Syntax error in parameters scanning \"{word}\""),
    )
}

/// A path whose `<` is never closed, as sendmail's parser says it.
pub fn unbalanced(path: &str) -> Reply {
    r(553, (5, 0, 0), format!("{path}... Unbalanced '<'"))
}

pub fn sender_ok(path: &str) -> Reply {
    r(250, (2, 1, 0), format!("{path}... Sender ok"))
}

pub fn recipient_ok(path: &str) -> Reply {
    r(250, (2, 1, 5), format!("{path}... Recipient ok"))
}

pub fn domain_required(path: &str, local: &str) -> Reply {
    r(
        553,
        (5, 5, 4),
        format!("{path}... Domain name required for sender address {local}"),
    )
}

/// A refused MAIL or RCPT path; `sender` picks RFC 3463's sender codes.
pub fn bad_address(path: &str, error: AddressError, sender: bool) -> Reply {
    let (syntax, system) = if sender { (7, 8) } else { (3, 2) };
    match error {
        AddressError::TooLong => r(501, (5, 1, syntax), "Path too long"),
        // sendmail's own code for this one, 5.0.0.
        AddressError::Empty => r(553, (5, 0, 0), format!("{path}... User address required")),
        AddressError::Domain => r(553, (5, 1, system), format!("{path}... Invalid domain")),
        AddressError::NonAscii => r(
            553,
            (5, 6, 7),
            format!("{path}... Non-ASCII address requires SMTPUTF8"),
        ),
        AddressError::Syntax | AddressError::LocalPart => r(
            553,
            (5, 1, syntax),
            format!("{path}... Invalid address syntax"),
        ),
    }
}

pub fn need_mail_before_rcpt() -> Reply {
    r(503, (5, 0, 0), "Need MAIL before RCPT")
}

pub fn too_many_recipients() -> Reply {
    r(452, (4, 5, 3), "Too many recipients")
}

pub fn need_mail() -> Reply {
    r(503, (5, 0, 0), "Need MAIL command")
}

pub fn need_rcpt() -> Reply {
    r(503, (5, 0, 0), "Need RCPT (recipient)")
}

pub fn enter_mail() -> Reply {
    Reply::plain(354, "Enter mail, end with \".\" on a line by itself")
}

pub fn accepted(queue_id: &str) -> Reply {
    r(
        250,
        (2, 0, 0),
        format!("{queue_id} Message accepted for delivery"),
    )
}

pub fn bare_lf_data() -> Reply {
    r(550, (5, 6, 0), "Bare linefeed (LF) not allowed")
}

pub fn bare_cr_data() -> Reply {
    r(550, (5, 6, 0), "Bare carriage return (CR) not allowed")
}

pub fn nul_data() -> Reply {
    r(554, (5, 6, 0), "Message contains NUL characters")
}

/// A message that turned out larger than MaxMessageSize (sendmail's
/// `collect.c`; a SIZE= over it is refused at MAIL, in `params`).
pub fn message_too_big(max: u64) -> Reply {
    r(
        552,
        (5, 2, 3),
        format!("Message exceeds maximum fixed size ({max})"),
    )
}

pub fn not_allowed() -> Reply {
    r(502, (5, 7, 0), "Sorry, we do not allow this operation")
}

pub fn cannot_vrfy() -> Reply {
    r(
        252,
        (2, 5, 2),
        "Cannot VRFY user; try RCPT to attempt delivery (or try finger)",
    )
}

pub fn argument_required() -> Reply {
    r(501, (5, 5, 2), "Argument required")
}

pub fn nothing_to(verb: &str) -> Reply {
    r(554, (5, 5, 2), format!("Nothing to {verb}"))
}

pub fn verbose_mode() -> Reply {
    r(250, (2, 0, 0), "Verbose mode")
}

pub fn verbose_unavailable() -> Reply {
    r(502, (5, 7, 0), "Verbose unavailable")
}

pub fn parameter_required() -> Reply {
    r(500, (5, 5, 2), "Parameter required")
}

pub fn etrn_in_transaction() -> Reply {
    r(
        503,
        (5, 5, 0),
        "ETRN not permitted during a mail transaction",
    )
}

/// sendmail's reply when the queue run an ETRN asked for has started:
/// for a queue group (`#mqueue`) or for a node (`host`, `@domain`, named
/// as the client wrote it).
pub fn etrn_started(argument: &str) -> Reply {
    match crate::etrn::Target::parse(argument) {
        crate::etrn::Target::QueueGroup(group) => etrn_group_started(group),
        _ => etrn_node_started(argument),
    }
}

/// sendmail's reply when a queue run for a node has been started.
pub fn etrn_node_started(node: &str) -> Reply {
    r(250, (2, 0, 0), format!("Queuing for node {node} started"))
}

/// sendmail's reply when a queue run for a queue group has been started.
pub fn etrn_group_started(group: &str) -> Reply {
    r(
        250,
        (2, 0, 0),
        format!("Queuing for queue group {group} started"),
    )
}

/// sendmail's reply for an ETRN naming a queue group that does not exist.
pub fn etrn_unknown_group(group: &str) -> Reply {
    r(459, (4, 5, 4), format!("Queue {group} unknown"))
}

pub fn help_unknown(topic: &str) -> Reply {
    r(504, (5, 3, 0), format!("HELP topic \"{topic}\" unknown"))
}

pub fn help_not_implemented(version: &str) -> Reply {
    r(
        502,
        (5, 3, 0),
        format!("Postern {version} -- HELP not implemented"),
    )
}

pub fn ready_to_start_tls() -> Reply {
    r(220, (2, 0, 0), "Ready to start TLS")
}

pub fn tls_not_available() -> Reply {
    r(503, (5, 5, 0), "TLS not available")
}

pub fn tls_already_active() -> Reply {
    r(503, (5, 5, 1), "TLS already active")
}

pub fn no_parameters_allowed() -> Reply {
    r(501, (5, 5, 2), "Syntax error (no parameters allowed)")
}

pub fn tls_in_transaction() -> Reply {
    r(
        503,
        (5, 5, 0),
        "TLS not permitted during a mail transaction",
    )
}

pub fn auth_not_available() -> Reply {
    r(503, (5, 3, 3), "AUTH not available")
}

pub fn already_authenticated() -> Reply {
    r(503, (5, 5, 0), "Already Authenticated")
}

pub fn auth_in_transaction() -> Reply {
    r(
        503,
        (5, 5, 0),
        "AUTH not permitted during a mail transaction",
    )
}

pub fn auth_mechanism_unavailable(mechanism: &str) -> Reply {
    r(
        504,
        (5, 3, 3),
        format!("AUTH mechanism {mechanism} not available"),
    )
}

pub fn auth_aborted() -> Reply {
    r(501, (5, 0, 0), "AUTH aborted")
}

pub fn authenticated() -> Reply {
    r(235, (2, 0, 0), "OK Authenticated")
}

/// AuthOptions `p`: a plain-text mechanism before STARTTLS (RFC 4954 §6).
pub fn auth_encryption_required() -> Reply {
    r(
        538,
        (5, 7, 11),
        "Encryption required for requested authentication mechanism",
    )
}

/// A response that is not base64, as sendmail words it.
pub fn auth_cannot_decode(text: &str) -> Reply {
    r(
        501,
        (5, 5, 4),
        format!("cannot decode AUTH parameter {text}"),
    )
}

/// MAIL on a listener with `M=a` before AUTH.
pub fn auth_required() -> Reply {
    r(530, (5, 7, 0), "Authentication required")
}

/// The session's last failed AUTH.
pub fn too_many_auth_failures(host: &str) -> Reply {
    r(
        421,
        (4, 7, 0),
        format!("{host} Too many authentication failures; closing connection"),
    )
}
