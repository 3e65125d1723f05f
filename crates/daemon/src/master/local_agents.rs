//! Local delivery agents on the delivery client's request: master reads
//! [`DeliveryToMaster::Local`] from the delivery client's channel, decides
//! whose uid and which mailbox from its own password database and
//! settings (the request names a user, nothing more), and starts
//! `posternd --local-delivery` with the message and the report socket that
//! came with the request (`privsep::spawn_local_agent`). The agent reports
//! to the delivery client directly; master only reaps it.
//!
//! A file or program target runs as the user the aliases name for it (the
//! owner of the file that named it; never root), and only when master,
//! expanding the aliases itself, finds an alias that leads to exactly that
//! target with exactly that user: a delivery client taken over cannot have
//! anything run as anyone.
//!
//! Whose uid: a user of the password database other than root writes as
//! itself. `root`, and `postmaster` when no such user exists, have no
//! mailbox owner of their own: theirs are written as RunAsUser (sendmail's
//! DefaultUser), under MailboxDirectory whatever `LocalMailbox` says, never
//! as root. Without root, everything runs as the invoking user.

use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use nix::unistd::{Gid, Uid, User};
use postern_config::LocalMailbox;
use postern_ipc::{
    frame, AgentJob, AgentReport, DeliveryToMaster, LocalRequest, LocalTarget, MailboxTarget,
    RecipientStatus, LOCAL_LIMIT, PROTOCOL_VERSION,
};

use super::Master;
use crate::privsep::{self, AgentDescriptors, Identity};
use crate::{log, policy};

impl Master {
    /// The delivery client's channel is readable: its requests, each
    /// started at once.
    pub(super) fn delivery_channel_ready(&mut self) {
        loop {
            let Some(channel) = self.workers.delivery.as_mut() else {
                return;
            };
            let (msg, fds) = match channel.try_recv() {
                Ok(Some(frame)) => frame,
                Ok(None) => return,
                // The delivery client is going away; its exit is noticed
                // through SIGCHLD.
                Err(_) => {
                    self.drop_delivery_channel();
                    return;
                }
            };
            let violation = match msg {
                DeliveryToMaster::Hello { version } if !self.workers.delivery_hello => {
                    self.workers.delivery_hello = version == PROTOCOL_VERSION;
                    (!self.workers.delivery_hello)
                        .then(|| format!("protocol version {version}, ours is {PROTOCOL_VERSION}"))
                }
                _ if !self.workers.delivery_hello => Some("first frame is not Hello".into()),
                DeliveryToMaster::Hello { .. } => Some("second Hello".into()),
                DeliveryToMaster::Local(request) => self.start_agent(request, fds).err(),
            };
            if let Some(why) = violation {
                log::err(&format!("master: delivery client: {why}"));
                self.drop_delivery_channel();
                return;
            }
        }
    }

    fn drop_delivery_channel(&mut self) {
        if let Some(channel) = self.workers.delivery.take() {
            let _ = self.poll.registry().deregister(&mut mio::unix::SourceFd(
                &std::os::fd::AsRawFd::as_raw_fd(&channel),
            ));
        }
        self.workers.delivery_hello = false;
    }

    /// One request; `Err` is a protocol violation. A request master will
    /// not serve (an impossible user name, a file or program no alias or
    /// `.forward` leads to) gets no agent: master itself reports a
    /// permanent failure with the reason, and logs it.
    fn start_agent(&mut self, request: LocalRequest, fds: Vec<OwnedFd>) -> Result<(), String> {
        let [message, report]: [OwnedFd; 2] = fds
            .try_into()
            .map_err(|fds: Vec<OwnedFd>| format!("{} descriptors with Local", fds.len()))?;
        let queue_id = request.queue_id.clone();
        let job = match agent_job(&self.settings, &self.users.run_as, request) {
            Ok(job) => job,
            Err(why) => {
                // Said on the report socket, so the recipient fails with
                // the reason instead of waiting for an agent.
                log::err(&format!("{queue_id}: local delivery refused: {why}"));
                let refusal =
                    AgentReport::new(RecipientStatus::PermFail, format!("550 5.7.1 {why}"));
                if let Ok(bytes) = frame::encode(&refusal, 0, LOCAL_LIMIT) {
                    let _ = std::io::Write::write_all(&mut std::fs::File::from(report), &bytes);
                }
                return Ok(());
            }
        };
        let bytes = frame::encode(&job, 0, LOCAL_LIMIT).map_err(|e| e.to_string())?;
        match privsep::spawn_local_agent(AgentDescriptors { report, message }, &bytes) {
            Ok(pid) => log::info(
                log::Level::EndOfJob,
                &format!(
                    "{}: local delivery agent (pid {pid}) for {} as uid {}",
                    job.queue_id, job.mailbox, job.uid
                ),
            ),
            Err(e) => log::err(&format!(
                "{}: cannot start a local delivery agent: {e}",
                job.queue_id
            )),
        }
        Ok(())
    }
}

/// What master decides for a request.
fn agent_job(
    settings: &crate::settings::Settings,
    run_as: &Identity,
    request: LocalRequest,
) -> Result<AgentJob, String> {
    if let Some(target) = request.target {
        return target_job(settings, target, request);
    }
    let config = &settings.config;
    let mailbox = policy::mailbox_name(&request.user)
        .filter(|m| *m == request.user && policy::local_user_known(m))
        .ok_or_else(|| format!("\"{}\" is not a local user", request.user))?;
    let user = User::from_name(&mailbox).ok().flatten();
    let own = user.as_ref().filter(|u| !u.uid.is_root());
    let (uid, gid, home) = match (privsep::privileged(), own) {
        (false, _) => {
            let me = privsep::current_identity();
            let home = own.map_or_else(PathBuf::new, |u| u.dir.clone());
            (me.uid, me.gid, home)
        }
        (true, Some(u)) => (u.uid, u.gid, u.dir.clone()),
        (true, None) => (run_as.uid, run_as.gid, PathBuf::new()),
    };
    let dir = config.mailbox_directory.clone();
    let target = match config.local_mailbox {
        LocalMailbox::Mbox => MailboxTarget::Mbox { dir },
        LocalMailbox::HomeMaildir if own.is_some() => MailboxTarget::HomeMaildir,
        LocalMailbox::Maildir | LocalMailbox::HomeMaildir => MailboxTarget::Maildir { dir },
    };
    // A spool directory its group may write in (/var/mail is root:mail,
    // 2775, on Debian) lets the agent make a dot-lock as that group.
    let groups = match &target {
        MailboxTarget::Mbox { dir } => std::fs::metadata(dir)
            .ok()
            .filter(|m| m.mode() & 0o020 != 0)
            .map(|m| vec![m.gid()])
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    Ok(AgentJob {
        queue_id: request.queue_id,
        mailbox,
        uid: uid.as_raw(),
        gid: gid.as_raw(),
        groups,
        home,
        target,
        sender: request.sender,
        recipients: request.recipients,
        size: request.size,
        hostname: settings.hostname.clone(),
        // A user's own mailbox: its .forward may send the mail elsewhere.
        read_forward: own.is_some(),
    })
}

/// A file or program target: checked against the aliases, run as its
/// controlling user with that user's groups.
fn target_job(
    settings: &crate::settings::Settings,
    target: LocalTarget,
    request: LocalRequest,
) -> Result<AgentJob, String> {
    let (uid, gid) = match target {
        LocalTarget::File { uid, gid } | LocalTarget::Program { uid, gid } => (uid, gid),
    };
    if uid == 0 {
        return Err(format!("{}: never as root", request.user));
    }
    if !aliases_lead_to(settings, &request.user, target) && !forward_leads_to(&request.user, target)
    {
        return Err(format!(
            "{}: neither an alias nor the .forward of uid {uid} leads to it",
            request.user
        ));
    }
    let (uid, gid, home, groups) = if privsep::privileged() {
        let user = User::from_uid(Uid::from_raw(uid))
            .ok()
            .flatten()
            .ok_or_else(|| format!("{}: no user with uid {uid}", request.user))?;
        let name = std::ffi::CString::new(user.name.clone()).map_err(|e| e.to_string())?;
        let groups = nix::unistd::getgrouplist(&name, Gid::from_raw(gid))
            .map(|g| g.into_iter().map(|g| g.as_raw()).collect())
            .unwrap_or_default();
        (uid, gid, user.dir, groups)
    } else {
        let me = privsep::current_identity();
        (me.uid.as_raw(), me.gid.as_raw(), PathBuf::new(), Vec::new())
    };
    let mailbox_target = match target {
        LocalTarget::File { .. } => MailboxTarget::File {
            path: PathBuf::from(&request.user),
        },
        LocalTarget::Program { .. } => MailboxTarget::Program {
            command: request
                .user
                .strip_prefix('|')
                .ok_or("a program target without its |")?
                .to_string(),
        },
    };
    Ok(AgentJob {
        queue_id: request.queue_id,
        mailbox: request.user,
        uid,
        gid,
        groups,
        home,
        target: mailbox_target,
        sender: request.sender,
        recipients: request.recipients,
        size: request.size,
        hostname: settings.hostname.clone(),
        read_forward: false,
    })
}

/// True when some alias, expanded as the queue runner expands it, leads
/// to `address` as `target` (same kind, same user).
fn aliases_lead_to(
    settings: &crate::settings::Settings,
    address: &str,
    target: LocalTarget,
) -> bool {
    let Ok(aliases) = postern_config::Aliases::load(&settings.config.alias_path()) else {
        return false;
    };
    let (kind, uid, gid) = match target {
        LocalTarget::File { uid, gid } => (postern_queue::TargetKind::File, uid, gid),
        LocalTarget::Program { uid, gid } => (postern_queue::TargetKind::Program, uid, gid),
    };
    let wanted = postern_queue::LocalTarget { kind, uid, gid };
    let found = aliases.names().any(|name| {
        let qualified = format!("{name}@{}", settings.hostname);
        match crate::aliases::expand(&aliases, settings, &qualified, false) {
            crate::aliases::Expansion::Members { members, .. } => members
                .iter()
                .any(|m| m.address == address && m.target == Some(wanted)),
            _ => false,
        }
    });
    found
}

/// True when the `.forward` of the user `target` runs as names it, and
/// that user may have mail sent to files and programs (a shell listed in
/// `/etc/shells`, as sendmail requires). Read as root; the agent read it
/// as the user and checked it was safe.
fn forward_leads_to(address: &str, target: LocalTarget) -> bool {
    let (uid, gid) = match target {
        LocalTarget::File { uid, gid } | LocalTarget::Program { uid, gid } => (uid, gid),
    };
    let Some(user) = User::from_uid(Uid::from_raw(uid)).ok().flatten() else {
        return false;
    };
    if user.gid.as_raw() != gid || !valid_shell(&user.shell) {
        return false;
    }
    let path = user.dir.join(".forward");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return false;
    };
    let Ok(targets) = postern_config::parse_include(&text, &path) else {
        return false;
    };
    targets.iter().any(|t| match (t, target) {
        (postern_config::AliasTarget::File(p), LocalTarget::File { .. }) => {
            p.as_os_str() == address
        }
        (postern_config::AliasTarget::Program(c), LocalTarget::Program { .. }) => {
            address.strip_prefix('|') == Some(c.as_str())
        }
        _ => false,
    })
}

/// sendmail's rule for files and programs in a `.forward`: the user's
/// shell is one `/etc/shells` lists.
pub fn valid_shell(shell: &std::path::Path) -> bool {
    std::fs::read_to_string("/etc/shells").is_ok_and(|list| {
        list.lines()
            .map(str::trim)
            .any(|l| !l.starts_with('#') && std::path::Path::new(l) == shell)
    })
}
