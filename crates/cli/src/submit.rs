//! `sendmail [-t] [-i] recipients…`: the message from standard input into
//! an unnamed temporary file, the file's descriptor to master.

use std::fs::File;
use std::io::{self, BufRead, BufWriter, Seek, Write};
use std::os::fd::AsFd;

use postern_ipc::{ControlReply, ControlRequest, Submission, Sysexit};

use crate::args::Options;
use crate::context::Context;
use crate::{control, failure};

/// Copies the message from `input` to `out`. Without `ignore_dots` a line
/// holding a single `.` ends the message (sendmail's rule for `-bm`;
/// `-i`/`-oi` turn it off). Nothing else is changed: no dot unstuffing
/// (sendmail does that only in SMTP mode) and no line-end conversion (the
/// queue runner canonicalises line ends when it commits the message).
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
    let file = match spool(input, opts.ignore_dots) {
        Ok(file) => file,
        Err(e) => {
            ctx.error(&format!(
                "cannot store the message in a temporary file: {e}"
            ));
            return Sysexit::OsErr;
        }
    };
    let submission = Submission {
        sender: opts.sender.clone(),
        full_name: opts.full_name.clone(),
        recipients: opts.addresses.clone(),
        extract_recipients: opts.extract_recipients,
        verbose: opts.verbose,
        smtp: false,
    };
    match control::ask(
        ctx.control_socket(),
        ControlRequest::Submit(submission),
        &[file.as_fd()],
    ) {
        // -v: the daemon delivered at once and sent what happened, as
        // sendmail -v shows it.
        Ok(ControlReply::Transcript { lines, .. }) => {
            for line in lines {
                println!("{line}");
            }
            Sysexit::Ok
        }
        // -v for an untrusted caller under restrictexpand (or without -v):
        // queued, nothing more to show.
        Ok(ControlReply::Submitted { queue_id }) => {
            if opts.verbose {
                for r in &opts.addresses {
                    println!("{r}... Queued");
                }
                println!("Queued as {queue_id}");
            }
            Sysexit::Ok
        }
        Ok(
            ControlReply::Refused { message, exit_code }
            | ControlReply::Failed { message, exit_code },
        ) => {
            eprintln!("{message}");
            failure(exit_code)
        }
        Ok(other) => {
            ctx.error(&format!(
                "unexpected answer from the mail daemon: {other:?}"
            ));
            Sysexit::Software
        }
        Err(e) => {
            ctx.error(&e.message);
            e.exit_code
        }
    }
}

/// The message in an unnamed temporary file, rewound.
fn spool(input: impl BufRead, ignore_dots: bool) -> io::Result<File> {
    let file = tempfile::tempfile()?;
    let mut out = BufWriter::new(file);
    copy_message(input, &mut out, ignore_dots)?;
    let mut file = out.into_inner().map_err(|e| e.into_error())?;
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
