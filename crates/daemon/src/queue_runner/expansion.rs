//! Alias expansion when a message is queued (as sendmail expands at
//! receipt): each new recipient becomes the recipients it stands for
//! (`crate::aliases`), recorded in the control file with the address it
//! came from (`alias=`), file and program targets with their controlling
//! user. A recipient that cannot be delivered (an unknown member, a loop,
//! an unsafe include) is failed at once, with its reply, and reported.
//!
//! Members of a list with an `owner-list` alias go into a message of
//! their own (a copy of the data file, queued with the same care) whose
//! envelope sender is `owner-list@$j`, as sendmail splits the envelope:
//! their errors, a remote server's later bounce included, go to the owner.
//! When every recipient belongs to one owner, the message itself takes
//! that sender and no copy is made.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;

use postern_queue::{ControlFile, RecipientEntry, RecipientState};

use super::dsn::policy;
use super::QueueRunner;
use crate::aliases::{expand, Expansion};
use crate::log;

impl QueueRunner {
    /// `control`'s recipients expanded, split by owner: the first group is
    /// `control` itself (with its sender, or its only owner's), then one
    /// control file per other owner, sender set, id still `control`'s (the
    /// caller gives each a new one).
    pub(super) fn expand_recipients(&mut self, control: &ControlFile) -> Vec<ControlFile> {
        // Going to the MTA listener first: expanded when it comes back.
        if control.through_mta {
            return vec![control.clone()];
        }
        let mut groups: Vec<(Option<String>, Vec<RecipientEntry>)> = vec![(None, Vec::new())];
        let mut add = |owner: Option<String>, entry: RecipientEntry| match groups
            .iter_mut()
            .find(|(o, _)| *o == owner)
        {
            Some((_, list)) => list.push(entry),
            None => groups.push((owner, vec![entry])),
        };
        let aliases = self.aliases.current();
        for r in &control.recipients {
            if r.alias.is_some() || r.target.is_some() || r.state != RecipientState::Pending {
                add(None, r.clone());
                continue;
            }
            match expand(aliases, &self.settings, &r.address, false) {
                Expansion::Itself => add(None, r.clone()),
                Expansion::Failed(reply) => add(None, failed(r.clone(), &reply)),
                Expansion::Members {
                    members,
                    failed: bad,
                } => {
                    for m in members {
                        let mut entry = RecipientEntry::new(m.address);
                        entry.notify = r.notify;
                        entry.orcpt = r.orcpt.clone();
                        entry.alias = Some(r.address.clone());
                        entry.target = m.target;
                        add(m.owner, entry);
                    }
                    for (address, reply, owner) in bad {
                        let mut entry = RecipientEntry::new(address);
                        entry.notify = r.notify;
                        entry.orcpt = r.orcpt.clone();
                        entry.alias = Some(r.address.clone());
                        add(owner, failed(entry, &reply));
                    }
                }
            }
        }
        if groups[0].1.is_empty() && groups.len() > 1 {
            groups.remove(0);
        }
        groups
            .into_iter()
            .map(|(owner, recipients)| {
                let mut c = control.clone();
                if let Some(owner) = owner {
                    c.sender = owner;
                }
                c.recipients = recipients;
                c
            })
            .collect()
    }

    /// Writes a copy of `data` (the first `control.size` bytes) into the
    /// spool under a new id, committed but not yet scheduled; `Err`
    /// leaves nothing behind.
    pub(super) fn commit_copy(
        &mut self,
        data: &File,
        control: ControlFile,
        original: &str,
    ) -> std::io::Result<ControlFile> {
        let (copy, control) = self.copy_message(data, control, original)?;
        self.commit_to_spool(&copy, &control)?;
        Ok(control)
    }

    /// Writes a copy of `data` (the first `control.size` bytes) under a
    /// new id into `incoming/`, not committed; `Err` leaves nothing behind.
    pub(super) fn copy_message(
        &mut self,
        data: &File,
        mut control: ControlFile,
        original: &str,
    ) -> std::io::Result<(File, ControlFile)> {
        let (id, mut copy) = self.spool.create(&mut self.ids)?;
        if let Err(e) = copy_bytes(data, &mut copy, control.size) {
            let _ = self.spool.abort(&id);
            return Err(e);
        }
        control.id = id.clone();
        log::info(
            log::Level::Query,
            &format!("{original}: clone {id}, owner={}", control.sender),
        );
        Ok((copy, control))
    }
}

fn copy_bytes(from: &File, to: &mut File, size: u64) -> std::io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut at = 0u64;
    while at < size {
        let want = buf.len().min((size - at) as usize);
        let n = from.read_at(&mut buf[..want], at)?;
        if n == 0 {
            return Err(std::io::Error::other("message file shorter than its size"));
        }
        to.write_all(&buf[..n])?;
        at += n as u64;
    }
    Ok(())
}

/// `entry` failed for good at expansion with `reply`.
fn failed(mut entry: RecipientEntry, reply: &str) -> RecipientEntry {
    entry.state = RecipientState::Failed;
    entry.status = reply.split(' ').nth(1).map(str::to_string);
    entry.last_reply = Some(reply.to_string());
    entry.dsn = policy::failure_due(entry.notify);
    entry
}

impl QueueRunner {
    /// A local user's `.forward` sent the message on (the local delivery
    /// agent read it as the user): its targets become recipients of the
    /// message, expanded as any recipient is, with the user's address as
    /// the one they came from (`alias=`). A target the message already has
    /// is not added again: that is what ends a loop of `.forward`s
    /// (`a` to `b`, `b` to `a`), as sendmail's duplicate check does.
    pub(super) fn add_forwarded(
        &mut self,
        control: &mut ControlFile,
        from: &RecipientEntry,
        forwarded: &[postern_ipc::Forward],
    ) {
        use postern_ipc::Forward;
        use postern_queue::{LocalTarget, TargetKind};
        let host = self.settings.hostname.clone();
        let aliases = self.aliases.current();
        let mut added: Vec<RecipientEntry> = Vec::new();
        let mut add = |address: String, target: Option<LocalTarget>, reply: Option<&str>| {
            let mut entry = RecipientEntry::new(address);
            entry.notify = from.notify;
            entry.orcpt = from.orcpt.clone();
            entry.alias = Some(from.address.clone());
            entry.target = target;
            added.push(match reply {
                Some(reply) => failed(entry, reply),
                None => entry,
            });
        };
        for f in forwarded {
            match f {
                Forward::Address(a) => {
                    let (bare, no_alias) = match a.strip_prefix('\\') {
                        Some(user) => (user, true),
                        None => (a.as_str(), false),
                    };
                    let qualified = if bare.contains('@') {
                        bare.to_string()
                    } else {
                        format!("{bare}@{host}")
                    };
                    if no_alias {
                        add(qualified, None, None);
                        continue;
                    }
                    match expand(aliases, &self.settings, &qualified, false) {
                        Expansion::Itself => add(qualified, None, None),
                        Expansion::Failed(reply) => add(qualified, None, Some(&reply)),
                        Expansion::Members { members, failed } => {
                            for m in members {
                                add(m.address, m.target, None);
                            }
                            for (address, reply, _) in failed {
                                add(address, None, Some(&reply));
                            }
                        }
                    }
                }
                Forward::File { path, uid, gid } => add(
                    path.display().to_string(),
                    Some(LocalTarget {
                        kind: TargetKind::File,
                        uid: *uid,
                        gid: *gid,
                    }),
                    None,
                ),
                Forward::Program { command, uid, gid } => add(
                    format!("|{command}"),
                    Some(LocalTarget {
                        kind: TargetKind::Program,
                        uid: *uid,
                        gid: *gid,
                    }),
                    None,
                ),
            }
        }
        let kept_copy = from
            .last_reply
            .as_deref()
            .is_some_and(|r| r.ends_with("Delivered and forwarded"));
        let mut names = Vec::new();
        for entry in added {
            let known = control
                .recipients
                .iter()
                .any(|e| e.address.eq_ignore_ascii_case(&entry.address));
            if !known {
                names.push(entry.address.clone());
                control.recipients.push(entry);
            }
        }
        if names.is_empty() && !kept_copy {
            // Every target was here already (a loop of .forwards, a to b
            // to a): nobody would get it. It goes back to the sender as
            // sendmail's alias loop does.
            if let Some(entry) = control
                .recipients
                .iter_mut()
                .find(|e| e.address == from.address && e.state == RecipientState::Sent)
            {
                *entry = failed(
                    entry.clone(),
                    &format!(
                        "554 5.4.6 <{}>... aliasing/forwarding loop broken",
                        from.address
                    ),
                );
            }
        }
        log::info(
            log::Level::Query,
            &format!(
                "{}: <{}>... forwarded to {}",
                control.id,
                from.address,
                if names.is_empty() {
                    "nothing new".to_string()
                } else {
                    names.join(", ")
                }
            ),
        );
    }
}
