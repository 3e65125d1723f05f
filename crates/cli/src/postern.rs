//! `postern`: the administrative subcommands.
//!
//! ```text
//! postern check-config [-C file]     print the effective configuration (exit 78 on errors)
//! postern queue show|hold|release|delete|requeue <qid>
//! postern mailq [-v] [-C file]       = mailq
//! postern runq [SELECTOR] [-C file]  = runq; SELECTOR as after -q: Rfoo, !Sbar, I0AP8…
//! postern version
//! ```
//!
//! `-C` is root-only, as for sendmail, except with `check-config`: that
//! only reads the named file with the caller's own rights and talks to no
//! daemon, so anyone may check a file before installing it.

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand, ValueEnum};
use postern_config::Config;
use postern_ipc::{ControlReply, ControlRequest, QueueAction};

use crate::args::{self, Program, NOT_TRUSTED};
use crate::context::{self, Context};
use postern_ipc::Sysexit;

#[derive(Debug, Parser)]
#[command(name = "postern", version, about = "Postern's administrative commands")]
struct Cli {
    /// The configuration file (root only, except for check-config).
    #[arg(short = 'C', long = "config", global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate the configuration and print every option, defaults included;
    /// then make every check posternd makes before it starts (the tables,
    /// the TLS files, the users, the directories). Run it as root to check
    /// what the daemon will see.
    CheckConfig,
    /// Act on one queued message.
    Queue {
        /// What to do.
        action: Action,
        /// The queue ID, as mailq shows it.
        queue_id: String,
    },
    /// List the queue (= mailq).
    Mailq {
        /// sendmail's verbose listing, with priorities.
        #[arg(short, long)]
        verbose: bool,
    },
    /// Run the queue now (= runq).
    Runq {
        /// Only messages picked by this selector, written as after sendmail's
        /// -q: `R<substring>` (recipient), `S<substring>` (sender),
        /// `I<substring>` (queue ID), with `!` in front to negate.
        selector: Option<String>,
    },
    /// Print the version.
    Version,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Action {
    /// Print its control file and headers.
    Show,
    /// Keep it in the queue without trying it.
    Hold,
    /// Undo hold and try it now.
    Release,
    /// Remove it from the queue.
    Delete,
    /// Try every undelivered recipient again, failed ones included.
    Requeue,
}

impl From<Action> for QueueAction {
    fn from(a: Action) -> QueueAction {
        match a {
            Action::Show => QueueAction::Show,
            Action::Hold => QueueAction::Hold,
            Action::Release => QueueAction::Release,
            Action::Delete => QueueAction::Delete,
            Action::Requeue => QueueAction::Requeue,
        }
    }
}

/// Runs `postern <args>`; the exit status.
pub fn main(args: &[String]) -> Sysexit {
    let cli = match Cli::try_parse_from(
        std::iter::once("postern".to_string()).chain(args.iter().cloned()),
    ) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                Sysexit::Usage
            } else {
                Sysexit::Ok
            };
        }
    };
    let config = cli.config.as_deref();
    match cli.command {
        Command::CheckConfig => check_config(config),
        Command::Version => {
            println!("postern {}", env!("CARGO_PKG_VERSION"));
            Sysexit::Ok
        }
        Command::Mailq { verbose } => match context_for(config) {
            Ok(ctx) => crate::print_queue(&ctx, verbose, None),
            Err(code) => code,
        },
        Command::Runq { selector } => {
            let selector = match selector.map(|s| parse_selector(&s)).transpose() {
                Ok(selector) => selector,
                Err(code) => return code,
            };
            match context_for(config) {
                Ok(ctx) => crate::run_queue(&ctx, selector),
                Err(code) => code,
            }
        }
        Command::Queue { action, queue_id } => queue(config, action, queue_id),
    }
}

/// The context, refusing `-C` from anyone but root (REFERENCE §4.4).
fn context_for(config: Option<&Path>) -> Result<Context, Sysexit> {
    if config.is_some() && !context::is_root() {
        eprintln!("{NOT_TRUSTED}");
        return Err(Sysexit::Usage);
    }
    Ok(Context::new("postern", config))
}

/// `Rfoo`, `!Sbar`, `I0AP8`: what follows sendmail's `-q`.
fn parse_selector(text: &str) -> Result<postern_ipc::QueueSelector, Sysexit> {
    match args::parse(Program::Runq, &[format!("-q{text}")], context::is_root()) {
        Ok(opts) => opts.selector.ok_or_else(|| {
            eprintln!("postern: runq: {text}: not a selector (R…, S…, I…, !R…)");
            Sysexit::Usage
        }),
        Err(e) => {
            eprintln!("{}", e.message.replacen("runq:", "postern runq:", 1));
            Err(e.exit_code)
        }
    }
}

fn check_config(explicit: Option<&Path>) -> Sysexit {
    let (path, _) = context::config_path(explicit);
    match Config::load(&path) {
        Ok(config) => {
            for line in config.effective_lines() {
                println!("{line}");
            }
        }
        Err(errors) => {
            for e in errors.errors() {
                eprintln!("{e}");
            }
            return Sysexit::Config;
        }
    }
    // The rest is what the daemon checks at start: ask it, so that the two
    // can never disagree.
    let Some(daemon) = daemon_binary() else {
        eprintln!(
            "postern: check-config: posternd not found (beside this program, in /usr/sbin or /usr/local/sbin); only the file itself was checked"
        );
        return Sysexit::Unavailable;
    };
    let status = std::process::Command::new(&daemon)
        .arg("--check-config")
        .arg("-C")
        .arg(&path)
        .status();
    match status {
        Ok(status) if status.success() => Sysexit::Ok,
        Ok(_) => {
            if !context::is_root() {
                eprintln!(
                    "postern: check-config ran as uid {}, not root: files and users were checked with its rights",
                    nix::unistd::getuid()
                );
            }
            Sysexit::Config
        }
        Err(e) => {
            eprintln!(
                "postern: check-config: cannot run {}: {e}",
                daemon.display()
            );
            Sysexit::Unavailable
        }
    }
}

/// posternd: installed beside this program (a build tree, /usr/sbin for
/// both), else in the system directories.
fn daemon_binary() -> Option<PathBuf> {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("posternd")));
    beside
        .into_iter()
        .chain(["/usr/sbin/posternd", "/usr/local/sbin/posternd"].map(PathBuf::from))
        .find(|candidate| candidate.is_file())
}

fn queue(config: Option<&Path>, action: Action, queue_id: String) -> Sysexit {
    // Queue IDs are 14 letters and digits; anything else is a typo or worse.
    let queue_id = match queue_id.parse::<postern_ipc::QueueId>() {
        Ok(id) => id,
        Err(_) => {
            eprintln!("postern: {queue_id:?} is not a queue ID");
            return Sysexit::Usage;
        }
    };
    let ctx = match context_for(config) {
        Ok(ctx) => ctx,
        Err(code) => return code,
    };
    let request = ControlRequest::Queue {
        action: action.into(),
        queue_id,
    };
    crate::request(&ctx, request, |reply| match reply {
        ControlReply::Done { message } => {
            crate::print_message(&message);
            Some(Sysexit::Ok)
        }
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
