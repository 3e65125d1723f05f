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
        mut control: ControlFile,
        original: &str,
    ) -> std::io::Result<ControlFile> {
        let (id, mut copy) = self.spool.create(&mut self.ids)?;
        if let Err(e) = copy_bytes(data, &mut copy, control.size) {
            let _ = self.spool.abort(&id);
            return Err(e);
        }
        control.id = id.clone();
        self.commit_to_spool(&copy, &control)?;
        log::info(
            log::Level::Query,
            &format!("{original}: clone {id}, owner={}", control.sender),
        );
        Ok(control)
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
