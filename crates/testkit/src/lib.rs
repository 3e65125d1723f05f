//! Postern's dev-only test kit: helpers that keep tests of a running daemon short.
//!
//! Following STYLE.md example 14 (ripgrep's `tests/util.rs`, KumoMTA's
//! integration tests with source and sink daemons): a test starts the real
//! `posternd` with [`DaemonBuilder`], talks to it with [`smtp_send`] or a
//! scripted [`SmtpConversation`], lets it relay to an in-process [`Sink`],
//! and waits on the sink, the daemon's log or a maildir.
//!
//! The rules every helper here keeps, so that tests keep them too:
//! - Sockets are real and on 127.0.0.1 only; ports come from the kernel
//!   ([`free_port`]); nothing resolves a name.
//! - Every process started is stopped by its PID, and every temporary
//!   directory is removed, in `Drop` impls, so a failing assertion cleans up
//!   as well as a passing test.
//! - Nothing sleeps where an event can be awaited: sink messages and log
//!   lines are awaited on a `Condvar` with a deadline. Polling with a short
//!   backoff ([`poll_until`]) is used only where no event exists (a port
//!   starting to accept, a file appearing in a maildir, a child's exit), and
//!   every wait is bounded and fails the test with a message saying what was
//!   awaited and what was seen instead.
//!
//! Nothing here is for production: the crate is a dev-dependency only.

#![forbid(unsafe_code)]

mod certs;
mod client;
mod daemon;
mod dns;
mod dovecot;
mod dovecot_auth;
mod maildir;
mod netns;
mod paths;
mod ports;
mod procfs;
mod sink;
mod users;
mod wait;

pub use certs::make_certs;
pub use client::{smtp_send, SmtpConversation, IO_TIMEOUT};
pub use daemon::{Daemon, DaemonBuilder, Instance, Listener};
pub use dns::Nsd;
pub use dovecot::Dovecot;
pub use dovecot_auth::{doveadm_pw, AuthDovecot, StoredAs};
pub use maildir::{maildir_messages, wait_for_maildir};
pub use netns::NetNs;
pub use nix::sys::signal::Signal;
pub use paths::{binary, repo_root, safe_tempdir, script};
pub use ports::{free_port, free_ports};
pub use procfs::{child_pids, descendant_pids, proc_status, proc_status_field};
pub use sink::{ReceivedMessage, Sink, SinkBehavior};
pub use users::{
    ensure_mail_user, ensure_system_user, ensure_test_users, running_as_root, uid_of, FRONT_USER,
    QUEUE_OWNER, RUN_AS_USER,
};
pub use wait::poll_until;
