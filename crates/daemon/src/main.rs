//! posternd: Postern's daemon. One binary, four roles, forked by master:
//!
//! - **master** (root when started as root): reads the configuration, binds
//!   the listeners, starts the queue runner and the delivery client, forks a
//!   front per connection, supervises, reloads on SIGHUP, drains on SIGTERM.
//! - **front** (RunAsUser, jailed): one SMTP session.
//! - **queue runner** (QueueOwner): the only process that touches the spool.
//! - **delivery client** (RunAsUser): outbound SMTP and local Maildirs.
//!
//! See DESIGN.md §1–3 for the picture; each role's module opens with its
//! security posture.
#![deny(unsafe_code)]

mod delivery;
mod front;
mod log;
mod master;
mod privsep;
mod queue_runner;
mod settings;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// sendmail's exit status for a configuration error (EX_CONFIG).
const EX_CONFIG: u8 = 78;

/// Command line of posternd.
#[derive(Parser, Debug)]
#[command(
    name = "posternd",
    version,
    about = "Postern mail transfer agent daemon"
)]
struct Args {
    /// The configuration file.
    #[arg(short = 'C', long = "config", default_value = postern_config::DEFAULT_PATH)]
    config: PathBuf,
    /// Also write every log line to standard error.
    #[arg(short = 'v', long = "log-stderr")]
    log_stderr: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let settings = match settings::Settings::load(&args.config) {
        Ok(settings) => settings,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::from(EX_CONFIG);
        }
    };
    log::init(settings.config.log_level, args.log_stderr);
    match master::run(settings, args.config, args.log_stderr) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::crit(&format!("fatal: {e}"));
            if !args.log_stderr {
                eprintln!("posternd: {e}");
            }
            ExitCode::FAILURE
        }
    }
}
