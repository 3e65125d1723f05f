//! `sendmail [-t] [-i] recipients…`: the message from standard input,
//! prepared as the caller ([`crate::prepare`]), into an unnamed temporary
//! file whose descriptor goes to master. `sendmail -bs` hands its messages
//! over the same way ([`hand_over`]).

use std::fs::File;
use std::io::{self, BufRead, Seek, Write};
use std::os::fd::AsFd;

use postern_ipc::{ControlReply, ControlRequest, EnvelopeRecipient, Submission, Sysexit};
use postern_smtp::params::{BodyType, Notify, Ret};

use crate::args::Options;
use crate::context::Context;
use crate::prepare::{prepare, Draft};
use crate::{control, failure};

/// Copies the message from `input` to `out`. Without `ignore_dots` a line
/// holding a single `.` ends the message (sendmail's rule for `-bm`;
/// `-i`/`-oi` turn it off). Nothing else is changed: no dot unstuffing
/// (sendmail does that only in SMTP mode) and no line-end conversion (the
/// queue runner makes every line end CRLF when it stores the message).
pub fn copy_message(
    mut input: impl BufRead,
    out: &mut impl Write,
    ignore_dots: bool,
) -> io::Result<u64> {
    let mut line = Vec::with_capacity(1024);
    let mut total = 0u64;
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        if !ignore_dots && matches!(line.as_slice(), b".\n" | b".\r\n" | b".") {
            break;
        }
        out.write_all(&line)?;
        total += line.len() as u64;
    }
    out.flush()?;
    Ok(total)
}

/// Reads standard input and submits it; the exit status.
pub fn run(ctx: &Context, opts: &Options, input: impl BufRead) -> Sysexit {
    if opts.addresses.is_empty() && !opts.extract_recipients {
        eprintln!("Recipient names must be specified");
        return Sysexit::Usage;
    }
    let limit = ctx.config.submission_limit();
    let mut raw = Vec::new();
    if let Err(e) = copy_message(input.take(limit + 1), &mut raw, opts.ignore_dots) {
        ctx.error(&format!("cannot read the message: {e}"));
        return Sysexit::IoErr;
    }
    let envelope = Envelope {
        sender: opts.sender.clone(),
        recipients: opts
            .addresses
            .iter()
            .map(|address| EnvelopeRecipient {
                address: address.clone(),
                notify: opts.notify,
                orcpt: None,
                target: None,
            })
            .collect(),
        extract_recipients: opts.extract_recipients,
        full_name: opts.full_name.clone(),
        verbose: opts.verbose,
        smtp: None,
        dsn: Dsn {
            notify: opts.notify,
            ret: opts.ret,
            envid: opts.envid.clone(),
            body: opts.body,
        },
    };
    let (reply, recipients) = match hand_over(ctx, &raw, envelope) {
        Ok(handed) => handed,
        // sendmail's own complaints about the message stand alone; trouble
        // on this side says which program had it.
        Err(Refusal { message, exit_code }) if exit_code == Sysexit::DataErr => {
            eprintln!("{message}");
            return failure(exit_code);
        }
        Err(Refusal { message, exit_code }) => {
            ctx.error(&message);
            return failure(exit_code);
        }
    };
    match reply {
        // -v: the daemon delivered at once and sent what happened, as
        // sendmail -v shows it.
        ControlReply::Transcript {
            lines, exit_code, ..
        } => {
            for line in lines {
                println!("{line}");
            }
            exit_code
        }
        // -v for an untrusted caller under restrictexpand (or without -v):
        // queued, nothing more to show.
        ControlReply::Submitted { queue_id } => {
            if opts.verbose {
                for r in &recipients {
                    println!("{r}... Queued");
                }
                println!("Queued as {queue_id}");
            }
            Sysexit::Ok
        }
        ControlReply::Refused { message, exit_code }
        | ControlReply::Failed { message, exit_code } => {
            eprintln!("{message}");
            failure(exit_code)
        }
        other => {
            ctx.error(&format!(
                "unexpected answer from the mail daemon: {other:?}"
            ));
            Sysexit::Software
        }
    }
}

/// A submission's envelope and options, as the caller gave them.
pub struct Envelope {
    /// `-f` (or MAIL FROM under -bs).
    pub sender: Option<String>,
    /// The command line's recipients (or RCPT TO's), with their NOTIFY
    /// (and under -bs ORCPT).
    pub recipients: Vec<EnvelopeRecipient>,
    /// `-t`.
    pub extract_recipients: bool,
    /// `-F`.
    pub full_name: Option<String>,
    /// `-v`.
    pub verbose: bool,
    /// `sendmail -bs`: its HELO name and protocol.
    pub smtp: Option<postern_ipc::SmtpSession>,
    /// The DSN parameters and the body type.
    pub dsn: Dsn,
}

/// `-N`, `-R`, `-V`, `-B` (or MAIL FROM's RET=, ENVID=, BODY= under -bs).
#[derive(Clone, Debug, Default)]
pub struct Dsn {
    /// NOTIFY for recipients found with `-t` in the headers.
    pub notify: Option<Notify>,
    /// RET.
    pub ret: Option<Ret>,
    /// ENVID, decoded.
    pub envid: Option<String>,
    /// BODY.
    pub body: Option<BodyType>,
}

/// Why a message was not handed over: print `message`, exit `exit_code`.
#[derive(Debug)]
pub struct Refusal {
    /// What to say.
    pub message: String,
    /// sendmail's exit status.
    pub exit_code: Sysexit,
}

/// Prepares `raw` (the header work, as the caller) and hands it to master
/// in an unnamed temporary file; master's answer and the recipients the
/// message went to.
pub fn hand_over(
    ctx: &Context,
    raw: &[u8],
    envelope: Envelope,
) -> Result<(ControlReply, Vec<String>), Refusal> {
    let limit = ctx.config.submission_limit();
    if raw.len() as u64 > limit {
        return Err(Refusal {
            message: format!("Message is too large (more than {limit} bytes)"),
            exit_code: Sysexit::DataErr,
        });
    }
    let hostname = ctx.config.hostname();
    let from = match envelope.sender.as_deref() {
        Some(sender) if !sender.is_empty() && sender != "<>" => qualified(sender, &hostname),
        _ => format!("{}@{hostname}", ctx.user),
    };
    let now = chrono::Local::now();
    let date = postern_smtp::date::rfc5322_date(now.timestamp(), now.offset().local_minus_utc());
    let given: Vec<String> = envelope
        .recipients
        .iter()
        .map(|r| r.address.clone())
        .collect();
    let draft = Draft {
        recipients: &given,
        extract_recipients: envelope.extract_recipients,
        from: &from,
        full_name: envelope.full_name.as_deref(),
        date: &date,
    };
    let prepared = prepare(raw, &draft).map_err(|message| Refusal {
        message: message.to_string(),
        exit_code: Sysexit::DataErr,
    })?;
    let file = temporary_file(&prepared.text).map_err(|e| Refusal {
        message: format!("cannot store the message in a temporary file: {e}"),
        exit_code: Sysexit::OsErr,
    })?;
    // Each recipient keeps the parameters it was given with; those -t
    // found in the headers get -N's NOTIFY.
    let recipients = prepared
        .recipients
        .iter()
        .map(|address| {
            envelope
                .recipients
                .iter()
                .find(|r| r.address == *address)
                .cloned()
                .unwrap_or_else(|| EnvelopeRecipient {
                    address: address.clone(),
                    notify: envelope.dsn.notify,
                    orcpt: None,
                    target: None,
                })
        })
        .collect();
    let submission = Submission {
        sender: envelope.sender,
        recipients,
        envid: envelope.dsn.envid,
        ret: envelope.dsn.ret,
        body: envelope.dsn.body,
        from_headers: envelope.extract_recipients,
        message_id: prepared.message_id,
        verbose: envelope.verbose,
        smtp: envelope.smtp.is_some(),
        session: envelope.smtp,
    };
    let reply = control::ask(
        ctx.control_socket(),
        ControlRequest::Submit(submission),
        &[file.as_fd()],
    )
    .map_err(|e| Refusal {
        message: e.message,
        exit_code: e.exit_code,
    })?;
    Ok((reply, prepared.recipients))
}

/// `user` → `user@host`; an address with a domain as it is.
fn qualified(address: &str, hostname: &str) -> String {
    let address = address.trim_start_matches('<').trim_end_matches('>');
    if address.contains('@') {
        address.to_string()
    } else {
        format!("{address}@{hostname}")
    }
}

/// `text` in an unnamed temporary file, rewound.
fn temporary_file(text: &[u8]) -> io::Result<File> {
    let mut file = tempfile::tempfile()?;
    file.write_all(text)?;
    file.rewind()?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy(input: &str, ignore_dots: bool) -> String {
        let mut out = Vec::new();
        copy_message(input.as_bytes(), &mut out, ignore_dots).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_lone_dot_ends_the_message() {
        assert_eq!(
            copy("Subject: x\n\nbody\n.\nafter\n", false),
            "Subject: x\n\nbody\n"
        );
        assert_eq!(copy("body\r\n.\r\nafter\r\n", false), "body\r\n");
        assert_eq!(copy("body\n.", false), "body\n");
    }

    #[test]
    fn dots_are_not_unstuffed_and_only_a_lone_dot_counts() {
        assert_eq!(copy("..\n.x\n . \n", false), "..\n.x\n . \n");
    }

    #[test]
    fn with_i_the_dot_is_text() {
        assert_eq!(copy("body\n.\nafter\n", true), "body\n.\nafter\n");
    }

    #[test]
    fn no_final_newline_is_kept_as_is() {
        assert_eq!(copy("a\nb", false), "a\nb");
    }
}
