//! The local delivery agent: `posternd --local-delivery`, exec'ed by master
//! for one user's recipients of one message. It writes the mailbox as the
//! mailbox's owner and reports to the delivery client.
//!
//! What it finds when it starts (master put them there, see
//! `privsep::spawn_local_agent`): descriptor 3, the socket the report goes
//! to; 4, the message, read-only; 5, a pipe holding the [`AgentJob`]
//! master decided (the uid, the mailbox, the recipients).
//!
//! The steps, in order:
//! 1. As root (when master is root): make what the owner cannot make
//!    alone, given to the owner on its open descriptor: `<dir>/<user>/`
//!    for a Maildir under MailboxDirectory, `<dir>/<user>` (an empty
//!    mbox, mode 0600) for an mbox. Nothing that exists is changed; a
//!    symbolic link in their place is refused.
//! 2. Become the owner for good (`privsep::become_mailbox_owner`): its
//!    uid and gid, the spool directory's group when that lets it make a
//!    dot-lock, no capabilities, not dumpable.
//! 3. For a user's own mailbox, read `~/.forward` as the user
//!    (`forward.rs`): when it sends the mail elsewhere, report where (and
//!    write a copy when it says `\user`). Else write (`maildir.rs`,
//!    `mbox.rs`; a file an alias names as an mbox),
//!    or run the program an alias names (`program.rs`), and report one
//!    outcome.
//!
//! An alarm bounds the whole ([`AGENT_TIME_LIMIT`]): an NFS mailbox that
//! hangs ends as a deferral, not as an agent that never reports (the
//! delivery client defers a recipient whose agent ends without a report).
//!
//! Security posture: exec'ed, so nothing of master's memory is here; root
//! only for step 1, which works on descriptors (`openat` with
//! `O_NOFOLLOW`) below a directory master named; never root while it
//! touches what the user owns.

mod forward;
mod mailbox;
mod maildir;
mod mbox;
mod program;

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{mkdirat, Mode};
use nix::unistd::{fchown, Gid, Uid};
use postern_ipc::{frame, AgentJob, AgentReport, MailboxTarget, RecipientStatus, LOCAL_LIMIT};

use crate::privsep;

/// The longest an agent may take, in seconds.
pub const AGENT_TIME_LIMIT: u32 = 600;

/// Runs the agent; the process's exit code.
pub fn run() -> i32 {
    nix::unistd::alarm::set(AGENT_TIME_LIMIT);
    let (mut report, message, job) = match privsep::inherited_agent_fds() {
        Ok(fds) => fds,
        Err(why) => {
            eprintln!("posternd --local-delivery: {why}");
            return 78;
        }
    };
    let outcome = match read_job(job) {
        Ok(job) => deliver(&job, message),
        Err(why) => AgentReport::new(
            RecipientStatus::TempFail,
            format!("451 4.3.0 Local delivery agent: {why}"),
        ),
    };
    match frame::encode(&outcome, 0, LOCAL_LIMIT) {
        Ok(bytes) if report.write_all(&bytes).is_ok() => 0,
        _ => 1,
    }
}

/// The job master wrote into the pipe, up to its end.
fn read_job(pipe: File) -> Result<AgentJob, String> {
    let mut bytes = Vec::new();
    pipe.take(LOCAL_LIMIT as u64 + frame::HEADER_LEN as u64)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("reading the job: {e}"))?;
    let header = frame::header(&bytes, LOCAL_LIMIT)
        .map_err(|e| e.to_string())?
        .ok_or("the job is cut short")?;
    let body = bytes
        .get(frame::HEADER_LEN..frame::HEADER_LEN + header.len)
        .ok_or("the job is cut short")?;
    frame::decode(body).map_err(|e| e.to_string())
}

/// Steps 1 to 3; the outcome for every recipient of the job.
fn deliver(job: &AgentJob, message: File) -> AgentReport {
    let data = mailbox::Message::new(message, job.size);
    let path = match prepare(job).and_then(|path| become_owner(job).map(|()| path)) {
        Ok(path) => path,
        Err(failure) => return failure,
    };
    let mut note = String::new();
    if job.read_forward {
        let host = job.hostname.clone();
        let local = move |domain: &str| {
            domain.eq_ignore_ascii_case(&host) || domain.eq_ignore_ascii_case("localhost")
        };
        match forward::read(&job.home, &job.mailbox, job.uid, job.gid, &local) {
            forward::Forwarding::To { keep_copy, forward } => {
                if keep_copy {
                    if let Err(failure) = write(job, &path, &data) {
                        return failure;
                    }
                }
                let words = if keep_copy {
                    "250 2.0.0 Delivered and forwarded"
                } else {
                    "250 2.0.0 Forwarded"
                };
                let mut report = AgentReport::new(RecipientStatus::Sent, words);
                report.forwarded = forward;
                return report;
            }
            forward::Forwarding::Ignored(why) => note = format!(" (.forward ignored: {why})"),
            forward::Forwarding::None => {}
        }
    }
    match write(job, &path, &data) {
        Ok(()) => AgentReport::new(RecipientStatus::Sent, format!("250 2.0.0 Delivered{note}")),
        Err(failure) => failure,
    }
}

fn tempfail(reply: String) -> AgentReport {
    AgentReport::new(RecipientStatus::TempFail, reply)
}

/// Step 1: what root makes for the owner; the mailbox's path.
fn prepare(job: &AgentJob) -> Result<PathBuf, AgentReport> {
    let privileged = privsep::privileged();
    let owner = (Uid::from_raw(job.uid), Gid::from_raw(job.gid));
    match &job.target {
        MailboxTarget::Maildir { dir } => {
            make_owned(
                dir,
                &job.mailbox,
                Kind::Directory,
                privileged.then_some(owner),
            )?;
            Ok(dir.join(&job.mailbox).join("Maildir"))
        }
        MailboxTarget::Mbox { dir } => {
            make_owned(dir, &job.mailbox, Kind::Mbox, privileged.then_some(owner))?;
            Ok(dir.join(&job.mailbox))
        }
        MailboxTarget::HomeMaildir => Ok(job.home.join("Maildir")),
        MailboxTarget::File { path } => Ok(path.clone()),
        // Nothing to make: the program runs in the user's home.
        MailboxTarget::Program { .. } => Ok(job.home.clone()),
    }
}

enum Kind {
    Directory,
    Mbox,
}

/// Creates `<dir>/<name>` if missing (a directory, or an empty mbox) and,
/// as root, gives it to `owner`; an existing one is left as it is.
fn make_owned(
    dir: &Path,
    name: &str,
    kind: Kind,
    owner: Option<(Uid, Gid)>,
) -> Result<(), AgentReport> {
    let failed = |what: &str, e: Errno| {
        tempfail(format!(
            "451 4.3.0 {}/{name}: {what}: {}",
            dir.display(),
            e.desc()
        ))
    };
    let parent = nix::fcntl::open(
        dir,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| failed("MailboxDirectory", e))?;
    let made = match kind {
        Kind::Directory => match mkdirat(parent.as_fd(), name, Mode::from_bits_truncate(0o700)) {
            Ok(()) => Some(
                openat(
                    parent.as_fd(),
                    name,
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| failed("open", e))?,
            ),
            Err(Errno::EEXIST) => None,
            Err(e) => return Err(failed("mkdir", e)),
        },
        Kind::Mbox => match openat(
            parent.as_fd(),
            name,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        ) {
            Ok(fd) => Some(fd),
            Err(Errno::EEXIST) => None,
            Err(e) => return Err(failed("create", e)),
        },
    };
    if let (Some(fd), Some((uid, gid))) = (made, owner) {
        fchown(&fd, Some(uid), Some(gid)).map_err(|e| failed("chown", e))?;
    }
    Ok(())
}

/// Step 2.
fn become_owner(job: &AgentJob) -> Result<(), AgentReport> {
    let groups: Vec<Gid> = job.groups.iter().map(|&g| Gid::from_raw(g)).collect();
    privsep::become_mailbox_owner(Uid::from_raw(job.uid), Gid::from_raw(job.gid), &groups)
        .map_err(|e| tempfail(format!("451 4.3.0 Local delivery agent: {e}")))
}

/// Steps 1 and 3 without the uid change, in the calling process: the
/// delivery client's tests run the agent's code so.
#[cfg(test)]
pub(crate) fn deliver_in_place(job: &AgentJob, message: File) -> AgentReport {
    let data = mailbox::Message::new(message, job.size);
    match prepare(job).and_then(|path| write(job, &path, &data)) {
        Ok(()) => AgentReport::new(RecipientStatus::Sent, "250 2.0.0 Delivered"),
        Err(failure) => failure,
    }
}

/// Step 3.
fn write(job: &AgentJob, path: &Path, data: &mailbox::Message) -> Result<(), AgentReport> {
    let result = match &job.target {
        MailboxTarget::Mbox { .. } => append(path, mbox::Owner::Uid(job.uid), job, data),
        MailboxTarget::File { .. } => append(path, mbox::Owner::AnyNotExecutable, job, data),
        MailboxTarget::Program { command } => {
            let outcome = program::run(command, path, &job.sender, data);
            return match outcome.status {
                RecipientStatus::Sent => Ok(()),
                _ => Err(outcome),
            };
        }
        _ => maildir::deliver(path, &job.sender, data, &job.hostname).map(|_| ()),
    };
    result.map_err(|e| tempfail(failure_reply(path, &e)))
}

fn append(
    path: &Path,
    owner: mbox::Owner,
    job: &AgentJob,
    data: &mailbox::Message,
) -> std::io::Result<()> {
    mbox::append(path, owner, &job.sender, data, SystemTime::now()).map_err(|e| match e {
        mbox::MboxError::Io(io) => io,
        other => std::io::Error::other(other.to_string()),
    })
}

/// A full disk or quota is sendmail's `452 4.2.2`; anything else is the
/// administrator's to fix and the message waits (`451 4.3.0`).
fn failure_reply(path: &Path, e: &std::io::Error) -> String {
    match e.raw_os_error().map(Errno::from_raw) {
        Some(Errno::ENOSPC | Errno::EDQUOT) => {
            format!("452 4.2.2 Mailbox full: {}", path.display())
        }
        _ => format!("451 4.3.0 {}: {e}", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_disks_and_quotas_are_452_4_2_2() {
        let p = Path::new("/var/mail/alice");
        assert_eq!(
            failure_reply(p, &std::io::Error::from_raw_os_error(Errno::ENOSPC as i32)),
            "452 4.2.2 Mailbox full: /var/mail/alice"
        );
        assert_eq!(
            failure_reply(p, &std::io::Error::from_raw_os_error(Errno::EDQUOT as i32)),
            "452 4.2.2 Mailbox full: /var/mail/alice"
        );
        assert!(
            failure_reply(p, &std::io::Error::from_raw_os_error(Errno::EACCES as i32))
                .starts_with("451 4.3.0 /var/mail/alice: ")
        );
    }

    #[test]
    fn what_root_makes_is_made_once_and_never_through_a_link() {
        let dir = tempfile::tempdir().unwrap();
        make_owned(dir.path(), "alice", Kind::Directory, None).unwrap();
        assert!(dir.path().join("alice").is_dir());
        make_owned(dir.path(), "alice", Kind::Directory, None).unwrap();
        make_owned(dir.path(), "bob", Kind::Mbox, None).unwrap();
        std::fs::write(dir.path().join("bob"), b"kept").unwrap();
        make_owned(dir.path(), "bob", Kind::Mbox, None).unwrap();
        assert_eq!(std::fs::read(dir.path().join("bob")).unwrap(), b"kept");
        // A link in an mbox's place is left for mbox.rs to refuse.
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("carol")).unwrap();
        make_owned(dir.path(), "carol", Kind::Mbox, None).unwrap();
        assert!(std::fs::symlink_metadata(dir.path().join("carol"))
            .unwrap()
            .file_type()
            .is_symlink());
        assert!(make_owned(&dir.path().join("missing"), "x", Kind::Mbox, None).is_err());
    }
}
