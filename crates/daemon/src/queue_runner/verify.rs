//! VRFY and EXPN for fronts, and `sendmail -bv` for the tools: who an
//! address is and what it expands to, as sendmail answers them.
//!
//! - **VRFY** never expands: a local user is `Full Name <user@$j>` (the
//!   first field of the GECOS, `&` standing for the capitalised login,
//!   as sendmail's buildfname), an alias is itself (`<list@$j>`, as
//!   sendmail's alias() stops at QS_VERIFIED), a remote address is
//!   itself and gets 252 (only the local, file and program mailers have
//!   sendmail's M_VRFY250 flag), an unknown name `550 5.1.1 <name>... User
//!   unknown`.
//! - **EXPN** expands an alias through nesting and include files into
//!   the users, remote addresses, files and programs it stands for (what
//!   a message to it would be delivered to); a member that cannot be
//!   delivered makes the whole answer that member's error, as sendmail's
//!   QuickAbort does.
//! - **restrictexpand**: a caller who is not trusted sees only an alias's
//!   own targets, unexpanded. Over SMTP no client is trusted; for
//!   `sendmail -bv` root, the queue owner and TrustedUser are.
//! - `sendmail -bv` prints each final address as sendmail does
//!   (`user... deliverable: mailer local, user user`, `x@example.com...
//!   deliverable: mailer esmtp, host example.com., user x@example.com`,
//!   `*file*`, `prog`, `*include*`), an undeliverable one as `x... User
//!   unknown`, and exits 67 (EX_NOUSER) when there was one.
//!
//! Security posture: the answers come from the queue runner, which reads
//! the aliases, include files and the password database; a front only
//! relays them. The queue runner applies PrivacyOptions itself, so a
//! front that was taken over cannot VRFY under `novrfy`, EXPN under
//! `noexpn`, or see past the first level under `restrictexpand`.

use postern_config::{AliasTarget, Aliases};
use postern_ipc::{Caller, ControlReply, QueueToFront, Sysexit, VerifiedAddress};
use postern_queue::TargetKind;
use postern_smtp::address::{parse_mailbox, Domain};
use postern_smtp::PrivacyFlags;

use super::QueueRunner;
use crate::aliases::{expand, Expansion};
use crate::delivery::route::{self, Host, Route, Target};
use crate::policy;
use crate::settings::Settings;

/// How far an alias is followed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Depth {
    /// Not at all: an alias is shown as itself (VRFY).
    Itself,
    /// Its own targets, unexpanded (restrictexpand).
    TopLevel,
    /// Through nesting and include files (EXPN, root's `-bv`).
    Full,
}

/// Where a found address goes: sendmail's mailer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A local user, or an alias shown unexpanded: `mailer local`.
    Local {
        /// The user (or alias) name.
        user: String,
    },
    /// Over SMTP.
    Remote {
        /// The address, without brackets.
        address: String,
        /// How.
        target: Target,
    },
    /// Appended to this file: `mailer *file*`.
    File(String),
    /// Piped to this command (without `|`): `mailer prog`.
    Program(String),
    /// The list in this file, unread (restrictexpand): `mailer *include*`.
    Include(String),
}

/// One answer for one address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Deliverable.
    Found {
        /// The address as the caller (or the aliases file) wrote it.
        written: String,
        /// Where it goes.
        kind: Kind,
        /// The GECOS name of a local user.
        full_name: Option<String>,
    },
    /// Not deliverable: this reply (`550 5.1.1 <x>... User unknown`).
    Failed {
        /// The address as written.
        written: String,
        /// The reply, code first.
        reply: String,
    },
}

/// What `written` (one address, brackets allowed) comes to.
pub(crate) fn lookup(
    aliases: &Aliases,
    settings: &Settings,
    written: &str,
    depth: Depth,
) -> Vec<Outcome> {
    let written = written.trim();
    let inner = written
        .strip_prefix('<')
        .and_then(|w| w.strip_suffix('>'))
        .unwrap_or(written)
        .trim();
    let failed = |reply: String| {
        vec![Outcome::Failed {
            written: written.to_string(),
            reply,
        }]
    };
    let Ok(mailbox) = parse_mailbox(inner) else {
        return failed(format!("553 5.1.3 {written}... Invalid address"));
    };
    let local = match &mailbox.domain {
        None => true,
        Some(Domain::Name(d)) => settings.is_local_domain(d),
        Some(_) => false,
    };
    if !local {
        return vec![routed(settings, written, inner)];
    }
    let name = policy::dequote(&mailbox.local);
    let Some(alias) = aliases.lookup(&name) else {
        return match known_user(&name) {
            Some(user) => vec![found_user(written, user)],
            None => failed(format!("550 5.1.1 {written}... User unknown")),
        };
    };
    let host = &settings.hostname;
    match depth {
        Depth::Itself => vec![Outcome::Found {
            written: written.to_string(),
            kind: Kind::Local {
                user: name.to_ascii_lowercase(),
            },
            full_name: None,
        }],
        Depth::TopLevel => {
            let mut out: Vec<Outcome> = Vec::new();
            for target in &alias.targets {
                let outcome = top_level(settings, target);
                if !out.contains(&outcome) {
                    out.push(outcome);
                }
            }
            out
        }
        Depth::Full => {
            let qualified = format!("{}@{host}", mailbox.local);
            match expand(aliases, settings, &qualified, false) {
                Expansion::Itself => vec![found_user(written, name.to_ascii_lowercase())],
                Expansion::Failed(reply) => failed(reply),
                Expansion::Members { members, failed } => {
                    let mut out: Vec<Outcome> = members
                        .into_iter()
                        .map(|m| match m.target.map(|t| t.kind) {
                            Some(TargetKind::File) => Outcome::Found {
                                kind: Kind::File(m.address.clone()),
                                written: m.address,
                                full_name: None,
                            },
                            Some(TargetKind::Program) => Outcome::Found {
                                kind: Kind::Program(m.address.trim_start_matches('|').to_string()),
                                written: m.address,
                                full_name: None,
                            },
                            None => member(settings, &m.address),
                        })
                        .collect();
                    out.extend(
                        failed
                            .into_iter()
                            .map(|(written, reply, _)| Outcome::Failed { written, reply }),
                    );
                    out
                }
            }
        }
    }
}

/// A user of the password database (or `postmaster`) by that name.
fn known_user(name: &str) -> Option<String> {
    policy::mailbox_name(name).filter(|u| policy::local_user_known(u))
}

fn found_user(written: &str, user: String) -> Outcome {
    Outcome::Found {
        written: written.to_string(),
        full_name: full_name(&user),
        kind: Kind::Local { user },
    }
}

/// A final member of an expansion: `user@$j` or a remote address.
fn member(settings: &Settings, address: &str) -> Outcome {
    match parse_mailbox(address) {
        Ok(m)
            if match &m.domain {
                Some(Domain::Name(d)) => settings.is_local_domain(d),
                None => true,
                Some(_) => false,
            } =>
        {
            let name = policy::dequote(&m.local);
            let user = policy::mailbox_name(&name).unwrap_or(name);
            found_user(address, user)
        }
        _ => routed(settings, address, address),
    }
}

/// One of an alias's own targets, unexpanded.
fn top_level(settings: &Settings, target: &AliasTarget) -> Outcome {
    let found = |written: String, kind: Kind| Outcome::Found {
        written,
        kind,
        full_name: None,
    };
    match target {
        AliasTarget::Address(a) => {
            let a = a.trim_start_matches('\\');
            let qualified = match parse_mailbox(a) {
                Ok(m) if m.domain.is_some() => a.to_string(),
                _ => format!("{a}@{}", settings.hostname),
            };
            member(settings, &qualified)
        }
        AliasTarget::File(path) => {
            let path = path.display().to_string();
            found(path.clone(), Kind::File(path))
        }
        AliasTarget::Program(command) => {
            found(format!("|{command}"), Kind::Program(command.clone()))
        }
        AliasTarget::Include(path) => {
            let path = path.display().to_string();
            found(format!(":include:{path}"), Kind::Include(path))
        }
    }
}

/// A remote address (or one a mailertable sends elsewhere).
fn routed(settings: &Settings, written: &str, address: &str) -> Outcome {
    match route::route(settings, address) {
        Route::Local { user } => found_user(written, user),
        Route::Remote(target) => Outcome::Found {
            written: written.to_string(),
            kind: Kind::Remote {
                address: address.to_string(),
                target,
            },
            full_name: None,
        },
        // An LMTP server gets the recipient as `rcpt` (`user@$j` for a
        // local user under LocalDelivery=lmtp).
        Route::Lmtp { target, rcpt } => Outcome::Found {
            written: written.to_string(),
            kind: Kind::Remote {
                address: rcpt,
                target,
            },
            full_name: None,
        },
        Route::Fail { reply, .. } => Outcome::Failed {
            written: written.to_string(),
            reply,
        },
    }
}

/// The first field of `user`'s GECOS, `&` standing for the login name
/// capitalised (sendmail's buildfname); control characters dropped.
pub(crate) fn full_name(user: &str) -> Option<String> {
    let pw = nix::unistd::User::from_name(user).ok().flatten()?;
    let gecos = pw.gecos.to_string_lossy().into_owned();
    let first = gecos.split(',').next().unwrap_or("").trim();
    let mut login = pw.name.chars();
    let capitalised: String = login
        .next()
        .map(|c| c.to_uppercase().chain(login).collect())
        .unwrap_or_default();
    let mut name = String::new();
    for c in first.chars().filter(|c| !c.is_control()) {
        match c {
            '&' => name.push_str(&capitalised),
            c => name.push(c),
        }
    }
    let name = name.trim().to_string();
    (!name.is_empty()).then_some(name)
}

/// Splits a VRFY, EXPN or `-bv` argument into its addresses: commas
/// separate them, outside quotes and angle brackets (sendmail's
/// sendtolist).
pub(crate) fn split_list(arg: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let (mut quoted, mut angle, mut escaped) = (false, 0u32, false);
    for c in arg.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => angle += 1,
            '>' if !quoted => angle = angle.saturating_sub(1),
            ',' if !quoted && angle == 0 => {
                out.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    out.push(current);
    out.into_iter()
        .map(|a| a.trim().to_string())
        .filter(|a| !a.is_empty())
        .collect()
}

/// How a found address is named in a VRFY/EXPN reply line.
fn smtp_address(kind: &Kind, hostname: &str) -> String {
    match kind {
        Kind::Local { user } => format!("{user}@{hostname}"),
        Kind::Remote { address, .. } => address.clone(),
        Kind::File(path) => path.clone(),
        Kind::Program(command) => format!("|{command}"),
        Kind::Include(path) => format!(":include:{path}"),
    }
}

/// The answer to a front's VRFY (`expand` false) or EXPN: every address
/// of the argument, or the first one's error.
pub(crate) fn smtp_answer(
    aliases: &Aliases,
    settings: &Settings,
    argument: &str,
    expand: bool,
    trusted: bool,
) -> QueueToFront {
    let depth = match expand {
        false => Depth::Itself,
        // No SMTP client is trusted; a `sendmail -bs` caller may be.
        true if !trusted
            && settings
                .config
                .privacy
                .contains(PrivacyFlags::RESTRICT_EXPAND) =>
        {
            Depth::TopLevel
        }
        true => Depth::Full,
    };
    let mut addresses = Vec::new();
    let mut definitive = true;
    for written in split_list(argument) {
        for outcome in lookup(aliases, settings, &written, depth) {
            match outcome {
                Outcome::Found {
                    kind, full_name, ..
                } => {
                    definitive &= !matches!(kind, Kind::Remote { .. });
                    addresses.push(VerifiedAddress {
                        full_name,
                        address: smtp_address(&kind, &settings.hostname),
                    });
                }
                Outcome::Failed { reply, .. } => return refused(&reply),
            }
        }
    }
    QueueToFront::Verified {
        addresses,
        definitive,
    }
}

/// `550 5.1.1 text` as a `Refused`.
fn refused(reply: &str) -> QueueToFront {
    let mut words = reply.splitn(3, ' ');
    let code = words.next().and_then(|c| c.parse().ok()).unwrap_or(550);
    let enhanced = words.next().unwrap_or("5.0.0").to_string();
    let text = words.next().unwrap_or("").to_string();
    QueueToFront::Refused {
        code,
        enhanced,
        text,
    }
}

/// sendmail's -bv line for one outcome.
fn bv_line(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Found { written, kind, .. } => {
            let how = match kind {
                Kind::Local { user } => format!("mailer local, user {user}"),
                Kind::Remote { address, target } => {
                    let host = match &target.host {
                        Host::Literal(ip) => route::bracketed(*ip),
                        // sendmail writes a host without MX lookup in
                        // brackets, a canonical name with its root dot.
                        Host::Name(name) => format!("[{name}]"),
                        Host::Mx(name) => format!("{name}."),
                        Host::Unix(path) => path.display().to_string(),
                    };
                    format!("mailer {}, host {host}, user {address}", target.mailer)
                }
                Kind::File(path) => format!("mailer *file*, user {path}"),
                Kind::Program(command) => format!("mailer prog, user |{command}"),
                Kind::Include(path) => format!("mailer *include*, user {path}"),
            };
            format!("{written}... deliverable: {how}")
        }
        Outcome::Failed { written, reply } => {
            // `550 5.1.1 <x@host>... User unknown` → `x@host... User unknown`.
            let mut words = reply.splitn(3, ' ');
            let text = match (words.next(), words.next(), words.next()) {
                (Some(_), Some(_), Some(text)) => text,
                _ => reply.as_str(),
            };
            match text.split_once("... ") {
                Some((who, why)) => {
                    let who = who.trim_start_matches('<').trim_end_matches('>');
                    format!("{who}... {why}")
                }
                None => format!("{written}... {text}"),
            }
        }
    }
}

/// A front's VRFY (`expand` false) or EXPN. `None`: the front asked
/// what PrivacyOptions forbid, which an honest front never does.
pub(crate) fn front_answer(
    aliases: &Aliases,
    settings: &Settings,
    argument: &str,
    expand: bool,
) -> Option<QueueToFront> {
    let privacy = settings.config.privacy;
    let forbidden = if expand {
        !privacy.expn_allowed()
    } else {
        privacy.contains(PrivacyFlags::NO_VRFY)
    };
    (!forbidden).then(|| smtp_answer(aliases, settings, argument, expand, false))
}

/// `sendmail -bs`'s VRFY or EXPN (its session already refused what
/// PrivacyOptions forbid): as a front's, but root, the queue owner and
/// TrustedUser see the whole expansion under restrictexpand.
pub(crate) fn bs_answer(
    aliases: &Aliases,
    settings: &Settings,
    caller: &Caller,
    argument: &str,
    expand: bool,
) -> ControlReply {
    let privacy = settings.config.privacy;
    let forbidden = if expand {
        !privacy.expn_allowed()
    } else {
        privacy.contains(PrivacyFlags::NO_VRFY)
    };
    let answer = if forbidden {
        refused("502 5.7.0 Sorry, we do not allow this operation")
    } else {
        let trusted = caller.uid == 0 || caller.trusted;
        smtp_answer(aliases, settings, argument, expand, trusted)
    };
    ControlReply::SmtpVerified { answer }
}

/// `sendmail -bv`: the full expansion for a trusted caller (root, the
/// queue owner, TrustedUser), the first level for others under
/// restrictexpand.
pub(crate) fn tool_answer(
    aliases: &Aliases,
    settings: &Settings,
    caller: &Caller,
    addresses: &[String],
) -> ControlReply {
    let restricted = settings
        .config
        .privacy
        .contains(PrivacyFlags::RESTRICT_EXPAND)
        && !(caller.uid == 0 || caller.trusted);
    let depth = if restricted {
        Depth::TopLevel
    } else {
        Depth::Full
    };
    let mut message = String::new();
    let mut all_good = true;
    for written in addresses.iter().flat_map(|a| split_list(a)) {
        for outcome in lookup(aliases, settings, &written, depth) {
            all_good &= matches!(outcome, Outcome::Found { .. });
            message.push_str(&bv_line(&outcome));
            message.push('\n');
        }
    }
    ControlReply::Verified {
        message,
        exit_code: if all_good {
            Sysexit::Ok
        } else {
            Sysexit::NoUser
        },
    }
}

impl QueueRunner {
    /// A front's VRFY or EXPN ([`front_answer`]).
    pub(super) fn verify_for_front(
        &mut self,
        argument: &str,
        expand: bool,
    ) -> Option<QueueToFront> {
        let aliases = self.aliases.current();
        front_answer(aliases, &self.settings, argument, expand)
    }

    /// `sendmail -bv` ([`tool_answer`]).
    pub(super) fn verify_for_tool(
        &mut self,
        caller: &Caller,
        addresses: &[String],
    ) -> ControlReply {
        let aliases = self.aliases.current();
        tool_answer(aliases, &self.settings, caller, addresses)
    }

    /// `sendmail -bs`'s VRFY or EXPN.
    pub(super) fn verify_for_bs(
        &mut self,
        caller: &Caller,
        argument: &str,
        expand: bool,
    ) -> ControlReply {
        let aliases = self.aliases.current();
        bs_answer(aliases, &self.settings, caller, argument, expand)
    }
}

#[cfg(test)]
mod tests;
