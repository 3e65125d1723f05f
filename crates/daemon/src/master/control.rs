//! The control socket: where `mailq`, `runq` and `sendmail` ask master for
//! things. The socket is mode 0666; every request is judged by who is on
//! the other end as the kernel reports it (SO_PEERCRED), before anything
//! reaches the queue runner. This is where sendmail's `restrictmailq` and
//! `restrictqrun` live (REFERENCE §1.2):
//!
//! - listing the queue, with restrictmailq: root, the queue owner,
//!   TrustedUser, and members of the queue directory's group;
//! - running the queue, with restrictqrun: root and the owner of the queue
//!   directory;
//! - hold, release, delete, requeue: root, the queue owner and TrustedUser,
//!   always;
//! - submitting mail and verifying addresses: anyone.

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt};

use std::os::unix::net::UnixListener;
use std::path::Path;

use mio::unix::SourceFd;
use mio::{Interest, Poll, Token};
use postern_ipc::{
    control_channel, Caller, ControlChannel, ControlHello, ControlReply, ControlRequest,
    MasterToQueue, Sysexit, PROTOCOL_VERSION,
};
use postern_smtp::PrivacyFlags;

use super::Master;
use crate::log;

/// Tools connected at once; more wait in the listen backlog.
const MAX_CONNECTIONS: usize = 256;

/// Control connections get tokens from here on.
pub const FIRST_CONTROL: usize = 1 << 20;

/// One tool's connection.
pub struct ControlConn {
    channel: ControlChannel,
    peer: postern_ipc::Peer,
    /// The reply is queued: close once it is written.
    answered: bool,
    /// The one request of this connection arrived; nothing more is read.
    requested: bool,
    /// When the connection was accepted, or its reply queued: a tool that
    /// does not send its request, or read its reply, is cut off.
    since: std::time::Instant,
}

/// How long a tool may take to send its request or to read its reply.
const CONTROL_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);
/// Control connections one uid may hold at once.
const PER_USER: usize = 16;

/// The listener and its connections.
pub struct ControlSocket {
    listener: UnixListener,
    conns: HashMap<Token, ControlConn>,
    next: usize,
}

impl ControlSocket {
    /// Binds the socket (replacing a stale one), mode 0666. Its directory
    /// must be ours and writable by nobody else: anyone who could write
    /// there could put their own socket in its place.
    pub fn bind(path: &Path, poll: &Poll, token: Token) -> std::io::Result<ControlSocket> {
        if let Some(dir) = path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(dir)?;
            check_socket_dir(dir)?;
        }
        if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
            std::fs::remove_file(path)?;
        }
        // The mode comes from the umask at bind, not from a chmod by path
        // afterwards (which would follow whatever is there by then). Master
        // is single-threaded: nothing else creates files meanwhile.
        let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o111));
        let bound = UnixListener::bind(path);
        nix::sys::stat::umask(old);
        let listener = bound.map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot bind the control socket {}: {e}", path.display()),
            )
        })?;
        listener.set_nonblocking(true)?;
        poll.registry().register(
            &mut SourceFd(&listener.as_raw_fd()),
            token,
            Interest::READABLE,
        )?;
        Ok(ControlSocket {
            listener,
            conns: HashMap::new(),
            next: FIRST_CONTROL,
        })
    }
}

/// [`check_socket_dir`] for a directory that exists; one that does not is
/// made at start, and is fine.
pub(super) fn check_socket_dir_if_present(dir: &Path) -> std::io::Result<()> {
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        _ => check_socket_dir(dir),
    }
}

/// The control socket's directory: ours (root's, or the invoking user's),
/// and writable by nobody else.
fn check_socket_dir(dir: &Path) -> std::io::Result<()> {
    let meta = std::fs::metadata(dir)?;
    let me = nix::unistd::Uid::effective().as_raw();
    if meta.uid() != me || meta.mode() & 0o022 != 0 {
        return Err(std::io::Error::other(format!(
            "the control socket's directory {} must belong to uid {me} and be writable by nobody else (uid {}, mode {:o})",
            dir.display(),
            meta.uid(),
            meta.mode() & 0o7777
        )));
    }
    Ok(())
}

/// The caller's groups as sendmail checks them: the real gid and the
/// user's groups from the group database (not the peer's /proc entry,
/// whose pid may belong to another process by the time we look).
fn groups_of(user: &str, gid: u32) -> Vec<u32> {
    let mut groups = vec![gid];
    if let Ok(name) = std::ffi::CString::new(user) {
        if let Ok(list) = nix::unistd::getgrouplist(&name, nix::unistd::Gid::from_raw(gid)) {
            groups.extend(list.into_iter().map(|g| g.as_raw()));
        }
    }
    groups
}

fn refused(message: &str) -> ControlReply {
    ControlReply::Refused {
        message: message.into(),
        exit_code: Sysexit::NoPerm,
    }
}

impl Master {
    /// Accepts waiting tools.
    pub(super) fn control_accept(&mut self) {
        loop {
            let Some(control) = self.control.as_mut() else {
                return;
            };
            if control.conns.len() >= MAX_CONNECTIONS {
                return;
            }
            let stream = match control.listener.accept() {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    // Out of descriptors, as for the SMTP listeners: logged
                    // once, tried again on master's accept timer.
                    if self.accept_failing_since.is_none() {
                        log::err(&format!("control socket: accept: {e}"));
                        self.accept_failing_since = Some(std::time::Instant::now());
                    }
                    self.accept_retry_at = Some(std::time::Instant::now() + super::ACCEPT_RETRY);
                    return;
                }
            };
            let Ok(peer) = postern_ipc::peer(&stream) else {
                continue;
            };
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            let token = Token(control.next);
            control.next += 1;
            let channel = control_channel(stream);
            let fd = channel.as_raw_fd();
            if self
                .poll
                .registry()
                .register(
                    &mut SourceFd(&fd),
                    token,
                    Interest::READABLE | Interest::WRITABLE,
                )
                .is_err()
            {
                continue;
            }
            if control
                .conns
                .values()
                .filter(|c| c.peer.uid == peer.uid)
                .count()
                >= PER_USER
            {
                log::notice(
                    log::Level::Refusal,
                    &format!("control socket: too many connections from uid {}", peer.uid),
                );
                let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
                continue;
            }
            control.conns.insert(
                token,
                ControlConn {
                    channel,
                    peer,
                    answered: false,
                    requested: false,
                    since: std::time::Instant::now(),
                },
            );
            self.control_ready(token);
        }
    }

    /// Reads a tool's request, or finishes writing its reply.
    pub(super) fn control_ready(&mut self, token: Token) {
        let Some(conn) = self.control.as_mut().and_then(|c| c.conns.get_mut(&token)) else {
            return;
        };
        match conn.channel.flush() {
            Ok(true) if conn.answered => return self.control_close(token),
            Ok(_) => {}
            Err(_) => return self.control_close(token),
        }
        // One request per connection: once it is here, nothing more is
        // read, so a tool can neither pipeline requests nor grow our buffer.
        if conn.answered || conn.requested {
            return;
        }
        match conn.channel.try_recv() {
            Ok(None) => {}
            Ok(Some((hello, fds))) => {
                conn.requested = true;
                self.control_request(token, hello, fds);
            }
            Err(postern_ipc::ChannelError::Closed) => self.control_close(token),
            Err(e) => {
                log::notice(
                    log::Level::Refusal,
                    &format!("control socket: uid {}: {e}", conn.peer.uid),
                );
                self.control_close(token);
            }
        }
    }

    /// Cuts off tools past their deadline, and takes connections that
    /// waited in the backlog while the table was full.
    pub(super) fn control_tick(&mut self) {
        let Some(control) = self.control.as_ref() else {
            return;
        };
        let late: Vec<Token> = control
            .conns
            .iter()
            .filter(|(_, c)| (!c.requested || c.answered) && c.since.elapsed() > CONTROL_DEADLINE)
            .map(|(t, _)| *t)
            .collect();
        for token in late {
            self.control_close(token);
        }
        self.control_accept();
    }

    fn control_request(&mut self, token: Token, hello: ControlHello, fds: Vec<OwnedFd>) {
        let Some(conn) = self.control.as_ref().and_then(|c| c.conns.get(&token)) else {
            return;
        };
        let peer = conn.peer;
        if hello.version != PROTOCOL_VERSION {
            let msg = format!(
                "this tool speaks protocol {}, the daemon {PROTOCOL_VERSION}",
                hello.version
            );
            return self.control_answer(
                token,
                ControlReply::Failed {
                    message: msg,
                    exit_code: Sysexit::Usage,
                },
            );
        }
        let caller = self.caller(&peer);
        if let Err(reply) = self.authorize(&peer, &caller, &hello.request) {
            log::notice(
                log::Level::Refusal,
                &format!(
                    "control socket: {} (uid {}) may not {}",
                    caller.user,
                    caller.uid,
                    request_name(&hello.request)
                ),
            );
            return self.control_answer(token, reply);
        }
        let fds = match (&hello.request, fds.as_slice()) {
            (ControlRequest::Submit(_), [file])
                if is_regular_file(file, self.settings.config.submission_limit()) =>
            {
                fds
            }
            (ControlRequest::Submit(_), _) => {
                let msg =
                    "the message must come as one regular file, within MaxMessageSize".to_string();
                return self.control_answer(
                    token,
                    ControlReply::Failed {
                        message: msg,
                        exit_code: Sysexit::Usage,
                    },
                );
            }
            (_, []) => fds,
            _ => return self.control_close(token),
        };
        let mut request = hello.request;
        if let ControlRequest::Submit(submission) = &mut request {
            // restrictexpand: no -v for those who are not trusted (sendmail
            // forces Verbose off), so delivery details stay private.
            let restricted = self
                .settings
                .config
                .privacy
                .contains(PrivacyFlags::RESTRICT_EXPAND);
            if restricted && !caller.trusted {
                submission.verbose = false;
            }
        }
        let request = MasterToQueue::Control {
            id: token.0 as u64,
            caller,
            request,
        };
        let borrowed: Vec<_> = fds.iter().map(|f| f.as_fd()).collect();
        let sent = self
            .workers
            .queue
            .as_mut()
            .map(|q| q.send(&request, &borrowed));
        if !matches!(sent, Some(Ok(()))) {
            let msg = "the mail queue is not available; try again later".to_string();
            self.control_answer(
                token,
                ControlReply::Failed {
                    message: msg,
                    exit_code: Sysexit::TempFail,
                },
            );
        }
    }

    /// The queue runner's answer for request `id`.
    pub(super) fn control_reply(&mut self, id: u64, reply: ControlReply) {
        self.control_answer(Token(id as usize), reply);
    }

    fn control_answer(&mut self, token: Token, reply: ControlReply) {
        let Some(conn) = self.control.as_mut().and_then(|c| c.conns.get_mut(&token)) else {
            return;
        };
        conn.answered = true;
        match conn.channel.send(&reply, &[]) {
            Ok(()) if !conn.channel.wants_write() => self.control_close(token),
            Ok(()) => {}
            Err(_) => self.control_close(token),
        }
    }

    fn control_close(&mut self, token: Token) {
        if let Some(conn) = self.control.as_mut().and_then(|c| c.conns.remove(&token)) {
            let _ = self
                .poll
                .registry()
                .deregister(&mut SourceFd(&conn.channel.as_raw_fd()));
        }
    }

    fn caller(&self, peer: &postern_ipc::Peer) -> Caller {
        let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(peer.uid))
            .ok()
            .flatten()
            .map_or_else(|| peer.uid.to_string(), |u| u.name);
        let trusted_user = self.settings.config.trusted_user.as_deref();
        let trusted = peer.uid == 0
            || peer.uid == self.users.queue_owner.uid.as_raw()
            || trusted_user == Some(user.as_str());
        Caller {
            uid: peer.uid,
            gid: peer.gid,
            user,
            trusted,
        }
    }

    /// sendmail's checks, at the IPC boundary.
    fn authorize(
        &self,
        peer: &postern_ipc::Peer,
        caller: &Caller,
        request: &ControlRequest,
    ) -> Result<(), ControlReply> {
        let privacy = self.settings.config.privacy;
        let spool = std::fs::metadata(&self.settings.config.queue_directory).ok();
        let (spool_uid, spool_gid) = spool.map_or((u32::MAX, u32::MAX), |m| (m.uid(), m.gid()));
        match request {
            ControlRequest::ListQueue => {
                let in_group = groups_of(&caller.user, peer.gid).contains(&spool_gid);
                if privacy.contains(PrivacyFlags::RESTRICT_MAILQ) && !caller.trusted && !in_group {
                    return Err(refused("You are not permitted to see the queue"));
                }
            }
            ControlRequest::RunQueue { .. } => {
                if privacy.contains(PrivacyFlags::RESTRICT_QRUN)
                    && caller.uid != 0
                    && caller.uid != spool_uid
                {
                    return Err(refused("You do not have permission to process the queue"));
                }
            }
            // `show` prints headers (Subject, Cc, Bcc …), more than mailq's
            // envelope: like the other queue operations, trusted users only.
            ControlRequest::Queue { .. } => {
                if !caller.trusted {
                    return Err(refused("You do not have permission to process the queue"));
                }
            }
            ControlRequest::Submit(_)
            | ControlRequest::Verify { .. }
            | ControlRequest::SmtpVerify { .. } => {}
        }
        Ok(())
    }
}

/// A FIFO, a socket or a file on a user's FUSE mount would let a tool make
/// the queue runner wait forever on a read; an oversized file would make it
/// read for long. Only a plain file of acceptable size is passed on.
fn is_regular_file(fd: &OwnedFd, max_size: u64) -> bool {
    use nix::sys::stat::SFlag;
    let Ok(st) = nix::sys::stat::fstat(fd.as_fd()) else {
        return false;
    };
    let regular = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFREG;
    let fuse = nix::sys::statfs::fstatfs(fd.as_fd())
        .is_ok_and(|fs| fs.filesystem_type() == nix::sys::statfs::FUSE_SUPER_MAGIC);
    regular && !fuse && (st.st_size as u64) <= max_size
}

fn request_name(request: &ControlRequest) -> &'static str {
    match request {
        ControlRequest::ListQueue => "list the queue",
        ControlRequest::RunQueue { .. } => "run the queue",
        ControlRequest::Queue { .. } => "change a queued message",
        ControlRequest::Submit(_) => "submit",
        ControlRequest::Verify { .. } => "verify",
        ControlRequest::SmtpVerify { .. } => "verify an address",
    }
}
