//! Expanding one recipient through the aliases, as sendmail's `alias()`
//! and `include()` do when a message is queued.
//!
//! - a local recipient (a local domain, or none) whose local part is an
//!   alias becomes the alias's targets, each expanded again; one that is
//!   not stays itself if it is a user of the password database (or
//!   `postmaster`), else it fails with `550 5.1.1 <addr>... User unknown`;
//! - `\user` is that user, never aliased again;
//! - `:include:/path` is the list in that file (checked: see the module
//!   above), its file and program targets controlled by the file's owner;
//! - `/path/file` and `|program` targets are kept as such, with their
//!   controlling user;
//! - remote addresses are kept as they are;
//! - the same final recipient twice is kept once;
//! - deeper than [`MAX_ALIAS_DEPTH`] (sendmail's MaxAliasRecursion, 10):
//!   the recipient fails with sendmail's `554 5.4.6 aliasing/forwarding
//!   loop broken (11 aliases deep; 10 max)`, which is also what an alias
//!   that names itself, directly or not, comes to;
//! - the members of `list` whose `owner-list` alias exists carry
//!   `owner-list@$j` as their owner: the queue runner gives them an
//!   envelope of their own with that sender, so their errors go there.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use postern_config::{parse_include, AliasTarget, Aliases};
use postern_queue::{LocalTarget, TargetKind};
use postern_smtp::address::{parse_mailbox, Domain};

use crate::policy;
use crate::settings::Settings;

/// sendmail's MaxAliasRecursion.
pub const MAX_ALIAS_DEPTH: usize = 10;

/// One final recipient.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expanded {
    /// `user@$j`, a remote address, a file's path or `|command`.
    pub address: String,
    /// Set for file and program targets.
    pub target: Option<LocalTarget>,
    /// `owner-list@$j` for the members of a list that has an owner.
    pub owner: Option<String>,
}

/// What a recipient comes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expansion {
    /// Not an alias: deliver to it as it is.
    Itself,
    /// An alias: these recipients instead (none: every member was a
    /// duplicate or failed).
    Members {
        /// The final recipients.
        members: Vec<Expanded>,
        /// Members that cannot be delivered: `(address, reply, owner)`.
        failed: Vec<(String, String, Option<String>)>,
    },
    /// Cannot be delivered: this reply (`550 5.1.1 …`, `554 5.4.6 …`).
    Failed(String),
}

/// How to expand: the table, the host, and how deep to go.
struct Walk<'a> {
    aliases: &'a Aliases,
    settings: &'a Settings,
    members: Vec<Expanded>,
    failed: Vec<(String, String, Option<String>)>,
    /// Only the first level (VRFY, restrictexpand).
    shallow: bool,
}

/// Expands `address` (a qualified mailbox, as a control file holds it).
/// `shallow` stops after the first level (what EXPN shows under
/// restrictexpand): the alias's own targets, unexpanded.
pub fn expand(aliases: &Aliases, settings: &Settings, address: &str, shallow: bool) -> Expansion {
    let Some(name) = local_name(settings, address) else {
        return Expansion::Itself;
    };
    if aliases.lookup(&name).is_none() {
        return match known_user(settings, &name) {
            Some(_) => Expansion::Itself,
            None => Expansion::Failed(format!("550 5.1.1 <{address}>... User unknown")),
        };
    }
    let mut walk = Walk {
        aliases,
        settings,
        members: Vec::new(),
        failed: Vec::new(),
        shallow,
    };
    let controller = controller_of(aliases.path());
    walk.alias(&name, 1, None, controller);
    if let [(_, reply, _)] = walk.failed.as_slice() {
        if walk.members.is_empty() && reply.starts_with("554 5.4.6") {
            return Expansion::Failed(reply.clone());
        }
    }
    Expansion::Members {
        members: walk.members,
        failed: walk.failed,
    }
}

/// The local part (dequoted) when `address` is local here.
fn local_name(settings: &Settings, address: &str) -> Option<String> {
    let mailbox = parse_mailbox(address).ok()?;
    let local = match &mailbox.domain {
        None => true,
        Some(Domain::Name(d)) => settings.is_local_domain(d),
        Some(_) => false,
    };
    local.then(|| policy::dequote(&mailbox.local))
}

/// `user` when mail for it can go to a mailbox here.
fn known_user(_settings: &Settings, name: &str) -> Option<String> {
    policy::mailbox_name(name).filter(|u| policy::local_user_known(u))
}

impl Walk<'_> {
    fn alias(&mut self, name: &str, depth: usize, owner: Option<String>, ctl: (u32, u32)) {
        let host = self.settings.hostname.clone();
        if depth > MAX_ALIAS_DEPTH {
            self.fail(
                format!("{name}@{host}"),
                format!(
                    "554 5.4.6 aliasing/forwarding loop broken ({depth} aliases deep; {MAX_ALIAS_DEPTH} max)"
                ),
                owner,
            );
            return;
        }
        let Some(alias) = self.aliases.lookup(name) else {
            return self.user(name, owner);
        };
        let owner_name = format!("owner-{}", alias.name.to_ascii_lowercase());
        let owner = match self.aliases.lookup(&owner_name) {
            // `owner-owner-x` is not looked for: an owner's own errors go
            // to the sender (sendmail stops there too).
            Some(_) if !alias.name.to_ascii_lowercase().starts_with("owner-") => {
                Some(format!("{owner_name}@{host}"))
            }
            _ => owner,
        };
        for target in alias.targets.clone() {
            self.target(&target, depth, owner.clone(), ctl);
        }
    }

    fn target(
        &mut self,
        target: &AliasTarget,
        depth: usize,
        owner: Option<String>,
        ctl: (u32, u32),
    ) {
        let host = self.settings.hostname.clone();
        match target {
            _ if self.shallow => {
                let address = match target {
                    AliasTarget::Address(a) if !a.contains('@') => {
                        format!("{}@{host}", a.trim_start_matches('\\'))
                    }
                    other => other.to_string(),
                };
                self.push(address, None, owner);
            }
            AliasTarget::Address(a) => {
                if let Some(user) = a.strip_prefix('\\') {
                    return self.user(&policy::dequote(user), owner);
                }
                let qualified =
                    if a.contains('@') && parse_mailbox(a).is_ok_and(|m| m.domain.is_some()) {
                        a.clone()
                    } else {
                        format!("{a}@{host}")
                    };
                match local_name(self.settings, &qualified) {
                    Some(name) => self.alias(&name, depth + 1, owner, ctl),
                    None => self.push(qualified, None, owner),
                }
            }
            AliasTarget::Include(path) => self.include(path, depth, owner),
            AliasTarget::File(path) => self.push(
                path.display().to_string(),
                Some(LocalTarget {
                    kind: TargetKind::File,
                    uid: ctl.0,
                    gid: ctl.1,
                }),
                owner,
            ),
            AliasTarget::Program(command) => self.push(
                format!("|{command}"),
                Some(LocalTarget {
                    kind: TargetKind::Program,
                    uid: ctl.0,
                    gid: ctl.1,
                }),
                owner,
            ),
        }
    }

    fn include(&mut self, path: &Path, depth: usize, owner: Option<String>) {
        let shown = path.display().to_string();
        let text = match safe_read(path) {
            Ok(text) => text,
            Err(why) => {
                let reply = format!("550 5.7.1 Cannot open {shown}: {why}");
                return self.fail(format!(":include:{shown}"), reply, owner);
            }
        };
        match parse_include(&text, path) {
            Ok(targets) => {
                let ctl = controller_of(path);
                for t in &targets {
                    self.target(t, depth + 1, owner.clone(), ctl);
                }
            }
            Err(errors) => {
                for e in errors.errors() {
                    crate::log::err(&format!("{e}"));
                }
                let reply = format!("550 5.3.5 Cannot open {shown}: bad address in list");
                self.fail(format!(":include:{shown}"), reply, owner);
            }
        }
    }

    fn user(&mut self, name: &str, owner: Option<String>) {
        let host = self.settings.hostname.clone();
        match known_user(self.settings, name) {
            Some(user) => self.push(format!("{user}@{host}"), None, owner),
            None => self.fail(
                format!("{name}@{host}"),
                format!("550 5.1.1 <{name}@{host}>... User unknown"),
                owner,
            ),
        }
    }

    fn push(&mut self, address: String, target: Option<LocalTarget>, owner: Option<String>) {
        let duplicate = self.members.iter().any(|m| {
            m.address.eq_ignore_ascii_case(&address)
                && m.target.map(|t| t.kind) == target.map(|t| t.kind)
        });
        if !duplicate {
            self.members.push(Expanded {
                address,
                target,
                owner,
            });
        }
    }

    fn fail(&mut self, address: String, reply: String, owner: Option<String>) {
        if !self.failed.iter().any(|(a, _, _)| *a == address) {
            self.failed.push((address, reply, owner));
        }
    }
}

/// Reads an include file if it and every directory above it are safe:
/// not group- or world-writable (sendmail's DontBlameSendmail defaults),
/// a regular file. The reason otherwise, in sendmail's words.
fn safe_read(path: &Path) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| errno_text(&e))?;
    if !meta.is_file() {
        return Err("Not a regular file".into());
    }
    if meta.mode() & 0o002 != 0 {
        return Err("World writable file".into());
    }
    if meta.mode() & 0o020 != 0 {
        return Err("Group writable file".into());
    }
    let mut dir = path.parent();
    while let Some(d) = dir {
        let m = std::fs::metadata(d).map_err(|e| errno_text(&e))?;
        if m.mode() & 0o002 != 0 {
            return Err("World writable directory".into());
        }
        if m.mode() & 0o020 != 0 {
            return Err("Group writable directory".into());
        }
        dir = d.parent();
    }
    std::fs::read_to_string(path).map_err(|e| errno_text(&e))
}

/// `No such file or directory`, without Rust's `(os error 2)`.
fn errno_text(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// The controlling user of targets a file names: its owner, or, for a
/// file root owns, DefaultUser (sendmail's `daemon`, 1:1): file and program
/// deliveries never run as root.
fn controller_of(path: &Path) -> (u32, u32) {
    match std::fs::metadata(path) {
        Ok(m) if m.uid() != 0 => (m.uid(), m.gid()),
        _ => nix::unistd::User::from_name("daemon")
            .ok()
            .flatten()
            .filter(|u| !u.uid.is_root())
            .map_or((1, 1), |u| (u.uid.as_raw(), u.gid.as_raw())),
    }
}

#[cfg(test)]
mod tests;
