//! Postern's command-line tools: one binary that behaves as `sendmail`,
//! `mailq`, `runq`, `newaliases` or `postern` according to the name it was
//! started under (the basename of argv[0]; any other name is `postern`).
//!
//! The tools never touch the spool. Everything goes to master over the
//! control socket (`ControlSocket`, default `/run/postern/control.sock`):
//! master learns the caller's uid from the socket itself and applies
//! restrictmailq, restrictqrun and the rest there. A message submitted with
//! `sendmail` is written to an unnamed temporary file whose descriptor
//! travels with the request; it is accepted only when master answers
//! `Submitted`, so a tool that cannot reach the daemon exits with
//! EX_TEMPFAIL (75) and nothing is lost.
//!
//! The configuration file is `-C file` (root only), else `$POSTERN_CONFIG`,
//! else `/etc/mail/postern.cf` (see [`context`]).
#![forbid(unsafe_code)]

pub mod args;
pub mod bs;
pub mod context;
pub mod control;
pub mod mailq;
pub mod newaliases;
pub mod postern;
pub mod prepare;
pub mod submit;

use std::ffi::OsString;
use std::io::Write;

use postern_ipc::{ControlReply, ControlRequest};

use args::{Mode, Options, Program};
use context::Context;
use postern_ipc::Sysexit;

/// Runs the tool named by `argv[0]`; the exit status.
pub fn main(argv: Vec<OsString>) -> Sysexit {
    let argv0 = argv
        .first()
        .map(|a| a.to_string_lossy().into_owned())
        .unwrap_or_default();
    let program = Program::from_argv0(&argv0);
    let mut args = Vec::with_capacity(argv.len());
    for a in argv.into_iter().skip(1) {
        match a.into_string() {
            Ok(s) => args.push(s),
            Err(_) => {
                eprintln!("{}: arguments must be valid UTF-8", program.name());
                return Sysexit::Usage;
            }
        }
    }
    if program == Program::Postern {
        return postern::main(&args);
    }
    let opts = match args::parse(program, &args, context::is_root()) {
        Ok(opts) => opts,
        Err(e) => {
            eprintln!("{}", e.message);
            return e.exit_code;
        }
    };
    run_sendmail(program.name(), &opts)
}

/// `sendmail`, `mailq`, `runq`, `newaliases` with parsed flags.
fn run_sendmail(prog: &'static str, opts: &Options) -> Sysexit {
    let ctx = Context::new(prog, opts.config.as_deref());
    match opts.mode {
        Mode::Deliver => submit::run(&ctx, opts, std::io::stdin().lock()),
        Mode::Smtp => bs::run(&ctx, std::io::stdin().lock(), std::io::stdout().lock()),
        Mode::PrintQueue => print_queue(&ctx, opts.verbose, opts.selector.as_ref()),
        Mode::RunQueue => run_queue(&ctx, opts.selector.clone()),
        Mode::Verify => verify(&ctx, &opts.addresses),
        Mode::NewAliases => newaliases::run(&ctx),
    }
}

/// Sends `request`; `Refused` is printed on standard output with its exit
/// status (sendmail prints `You are not permitted to see the queue` there),
/// `Failed` and transport errors on standard error. Other replies go to
/// `done`.
fn request(
    ctx: &Context,
    request: ControlRequest,
    done: impl FnOnce(ControlReply) -> Option<Sysexit>,
) -> Sysexit {
    answered(ctx, control::ask(ctx.control_socket(), request, &[]), done)
}

/// [`request`]'s handling of an answer already received.
fn answered(
    ctx: &Context,
    answer: Result<ControlReply, control::ControlError>,
    done: impl FnOnce(ControlReply) -> Option<Sysexit>,
) -> Sysexit {
    match answer {
        Ok(ControlReply::Refused { message, exit_code }) => {
            println!("{message}");
            failure(exit_code)
        }
        Ok(ControlReply::Failed { message, exit_code }) => {
            eprintln!("{message}");
            failure(exit_code)
        }
        Ok(reply) => {
            let shown = format!("{reply:?}");
            done(reply).unwrap_or_else(|| {
                ctx.error(&format!("unexpected answer from the mail daemon: {shown}"));
                Sysexit::Software
            })
        }
        Err(e) => {
            ctx.error(&e.message);
            e.exit_code
        }
    }
}

/// The status of a reply that says something failed: never success, even
/// if the daemon said so.
pub(crate) fn failure(status: Sysexit) -> Sysexit {
    match status {
        Sysexit::Ok => Sysexit::Software,
        failed => failed,
    }
}

/// Prints `message` with a final newline unless it is empty.
fn print_message(message: &str) {
    if message.is_empty() {
        return;
    }
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(message.as_bytes());
    if !message.ends_with('\n') {
        let _ = out.write_all(b"\n");
    }
}

/// `mailq`, `sendmail -bp`: the listing in sendmail's layout. A `-qR…`
/// selector filters it here, and the counts are of what it picked.
pub fn print_queue(
    ctx: &Context,
    verbose: bool,
    selector: Option<&postern_ipc::QueueSelector>,
) -> Sysexit {
    let answer = control::ask(ctx.control_socket(), ControlRequest::ListQueue, &[]);
    if let Ok(ControlReply::Refused { message, .. }) = &answer {
        // sendmail's answer under restrictmailq: on standard output, with
        // a count of nothing, and exit 0; scripts that read the count
        // keep working.
        println!("{message}\n\t\tTotal requests: 0");
        return Sysexit::Ok;
    }
    answered(ctx, answer, |reply| {
        let ControlReply::Queue { directory, entries } = reply else {
            return None;
        };
        let mut picked: Vec<_> = entries
            .iter()
            .filter(|e| selector.is_none_or(|s| mailq::selected(e, s)))
            .collect();
        mailq::sort(&mut picked);
        let text = mailq::render(&directory, &picked, verbose, &mailq::LocalClock);
        let _ = std::io::stdout().lock().write_all(text.as_bytes());
        Some(Sysexit::Ok)
    })
}

/// `runq`, `sendmail -q`: one queue run; quiet on success.
pub fn run_queue(ctx: &Context, selector: Option<postern_ipc::QueueSelector>) -> Sysexit {
    request(
        ctx,
        ControlRequest::RunQueue { selector },
        |reply| match reply {
            ControlReply::Done { message } => {
                print_message(&message);
                Some(Sysexit::Ok)
            }
            _ => None,
        },
    )
}

/// `sendmail -bv`: master's verdict for each address.
fn verify(ctx: &Context, addresses: &[String]) -> Sysexit {
    if addresses.is_empty() {
        eprintln!("Recipient names must be specified");
        return Sysexit::Usage;
    }
    let addresses = addresses.to_vec();
    request(
        ctx,
        ControlRequest::Verify { addresses },
        |reply| match reply {
            ControlReply::Verified { message, exit_code } => {
                print_message(&message);
                Some(exit_code)
            }
            _ => None,
        },
    )
}
