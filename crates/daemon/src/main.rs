//! posternd: Postern's daemon. One binary, seven roles:
//!
//! - **master** (root when started as root): reads the configuration, binds
//!   the listeners, starts the queue runner, the delivery client and the
//!   front factory, accepts connections, supervises, reloads on SIGHUP,
//!   drains on SIGTERM.
//! - **front factory** (exec'ed by master as `posternd --front-factory`,
//!   root with two capabilities, jailed): forks a front per connection.
//! - **front** (FrontUser, jailed, seccomp): one SMTP session.
//! - **queue runner** (QueueOwner): the only process that touches the spool.
//! - **delivery client** (RunAsUser): outbound SMTP; asks master for a
//!   local delivery agent per local mailbox.
//! - **key holder** (exec'ed by master as `posternd --key-holder`,
//!   RunAsUser, jailed): the only process with private keys; signs for
//!   the others' handshakes.
//! - **local delivery agent** (exec'ed by master as `posternd
//!   --local-delivery`, the mailbox's owner): writes one mbox or Maildir.
//!
//! See DESIGN.md §1–3 for the picture; each role's module opens with its
//! security posture.
#![deny(unsafe_code)]

mod aliases;
mod delivery;
mod factory;
mod front;
mod key_holder;
mod local;
mod log;
mod master;
mod policy;
mod privsep;
mod queue_runner;
mod settings;
mod title;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

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
    /// Run as the front factory (master starts it so, with its channel on
    /// descriptor 3; not for use by hand).
    #[arg(long = "front-factory", hide = true)]
    front_factory: bool,
    /// Run as the key holder (master starts it so, with its channel on
    /// descriptor 3; not for use by hand).
    #[arg(long = "key-holder", hide = true)]
    key_holder: bool,
    /// Run as a local delivery agent (master execs it so, with its
    /// descriptors 3 to 5; not for use by hand).
    #[arg(long = "local-delivery", hide = true)]
    local_delivery: bool,
    /// Check that the fronts' jail holds on this machine: enter it as a
    /// front does and try what an attacker would (signal, socket, fork,
    /// exec, open, executable memory); print each result and exit 0 only
    /// if all were refused. Run as root to check the real thing.
    #[arg(long = "check-front-jail")]
    check_front_jail: bool,
    /// With --check-front-jail: also try to signal this process (the
    /// delivery client's pid, say).
    #[arg(long = "signal-pid", requires = "check_front_jail")]
    signal_pid: Option<i32>,
    /// Make every check the daemon makes before it starts (the file, the
    /// tables, the TLS files, the users, the directories) without starting;
    /// print each problem and exit 78 if there is one, else 0. What
    /// `postern check-config` runs.
    #[arg(long = "check-config")]
    check_config: bool,
}

fn main() -> ExitCode {
    // Before anything else, while single-threaded: see title.rs.
    title::init();
    let args = Args::parse();
    if args.local_delivery {
        return ExitCode::from(u8::try_from(local::run()).unwrap_or(1));
    }
    if args.check_front_jail {
        let code = factory::check_front_jail(&args.config, args.signal_pid);
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    if args.check_config {
        return master::check::run(&args.config).into();
    }
    if args.key_holder {
        return ExitCode::from(
            u8::try_from(key_holder::main(&args.config, args.log_stderr)).unwrap_or(1),
        );
    }
    if args.front_factory {
        let code = factory::main(&args.config, args.log_stderr);
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    let settings = match settings::Settings::load(&args.config) {
        Ok(settings) => settings,
        Err(errors) => {
            eprintln!("{errors}");
            return postern_ipc::Sysexit::Config.into();
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
            // What the configuration asked for cannot be (an unknown user,
            // a spool owned by someone else): EX_CONFIG, as for a bad file;
            // the system failed us (a port in use): EX_OSERR.
            match e {
                master::MasterError::Setup(_) | master::MasterError::Privsep(_) => {
                    postern_ipc::Sysexit::Config.into()
                }
                master::MasterError::Io(_) => postern_ipc::Sysexit::OsErr.into(),
            }
        }
    }
}
