//! A user's `~/.forward`, read by the local delivery agent as the user
//! (with the user's own rights, as sendmail reads it), before the mailbox
//! is written.
//!
//! It is honoured only when safe, as sendmail's DontBlameSendmail
//! defaults have it: the file is owned by the user or root and neither
//! group- nor world-writable, and so is the home directory it is in;
//! otherwise it is ignored (the mail goes to the mailbox, and the reply
//! says why). Its lines are an alias's right-hand side
//! (`postern_config::parse_include`): addresses, `/path/file`,
//! `|program`, and `\user` (or the user's own name: sendmail's
//! self-reference) for a copy in the mailbox too. `:include:` is not
//! followed from a `.forward`.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use postern_config::{parse_include, AliasTarget};
use postern_ipc::Forward;

/// What a `.forward` says.
#[derive(Debug, PartialEq, Eq)]
pub enum Forwarding {
    /// No `.forward`, or nothing in it: deliver to the mailbox.
    None,
    /// Not safe to honour: deliver to the mailbox; the reason.
    Ignored(String),
    /// Send the message there; `keep_copy`: and to the mailbox.
    To {
        /// `\user` (or the user's own name) was among the targets.
        keep_copy: bool,
        /// Where else.
        forward: Vec<Forward>,
    },
}

/// Reads `<home>/.forward` of `user` (uid, gid), deciding as above;
/// `local_domain` tells whether an address's domain is this host's.
pub fn read(
    home: &Path,
    user: &str,
    uid: u32,
    gid: u32,
    local_domain: &dyn Fn(&str) -> bool,
) -> Forwarding {
    let path = home.join(".forward");
    let Ok(meta) = std::fs::metadata(&path) else {
        return Forwarding::None;
    };
    let unsafe_because = |what: &Path, m: &std::fs::Metadata| -> Option<String> {
        if m.uid() != uid && m.uid() != 0 {
            return Some(format!("{}: owned by uid {}", what.display(), m.uid()));
        }
        if m.mode() & 0o022 != 0 {
            return Some(format!("{}: group or world writable", what.display()));
        }
        None
    };
    if let Some(why) = unsafe_because(&path, &meta) {
        return Forwarding::Ignored(why);
    }
    match std::fs::metadata(home) {
        Ok(m) => {
            if let Some(why) = unsafe_because(home, &m) {
                return Forwarding::Ignored(why);
            }
        }
        Err(e) => return Forwarding::Ignored(format!("{}: {e}", home.display())),
    }
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) => return Forwarding::Ignored(format!("{}: {e}", path.display())),
    };
    let targets = match parse_include(&text, &path) {
        Ok(targets) => targets,
        Err(e) => return Forwarding::Ignored(e.to_string().trim().to_string()),
    };
    let is_self = |address: &str| {
        let address = address.trim_start_matches('\\');
        match address.rsplit_once('@') {
            Some((local, domain)) => local.eq_ignore_ascii_case(user) && local_domain(domain),
            None => address.eq_ignore_ascii_case(user),
        }
    };
    let mut keep_copy = false;
    let mut forward = Vec::new();
    for target in targets {
        match target {
            AliasTarget::Address(a) if is_self(&a) => keep_copy = true,
            AliasTarget::Address(a) => forward.push(Forward::Address(a)),
            AliasTarget::File(path) => forward.push(Forward::File { path, uid, gid }),
            AliasTarget::Program(command) => forward.push(Forward::Program { command, uid, gid }),
            AliasTarget::Include(_) => {}
        }
    }
    if forward.is_empty() {
        return Forwarding::None;
    }
    Forwarding::To { keep_copy, forward }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn me() -> (u32, u32) {
        (
            nix::unistd::Uid::effective().as_raw(),
            nix::unistd::Gid::effective().as_raw(),
        )
    }

    fn home_with(text: &str, mode: u32) -> tempfile::TempDir {
        let home = tempfile::tempdir().unwrap();
        std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = home.path().join(".forward");
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        home
    }

    fn local(domain: &str) -> bool {
        domain.eq_ignore_ascii_case("mx.test")
    }

    #[test]
    fn addresses_files_programs_and_a_copy() {
        let (uid, gid) = me();
        let home = home_with(
            "# to work and here\nalice@example.com, \\bob\n/var/tmp/archive\n\"|/usr/bin/procmail\"\n",
            0o644,
        );
        assert_eq!(
            read(home.path(), "bob", uid, gid, &local),
            Forwarding::To {
                keep_copy: true,
                forward: vec![
                    Forward::Address("alice@example.com".into()),
                    Forward::File {
                        path: "/var/tmp/archive".into(),
                        uid,
                        gid
                    },
                    Forward::Program {
                        command: "/usr/bin/procmail".into(),
                        uid,
                        gid
                    },
                ]
            }
        );
        // The user's own name without a backslash is a copy too.
        let home = home_with("bob@MX.test, carol@example.com\n", 0o600);
        assert!(matches!(
            read(home.path(), "bob", uid, gid, &local),
            Forwarding::To {
                keep_copy: true,
                ..
            }
        ));
    }

    #[test]
    fn unsafe_or_empty_files_are_not_followed() {
        let (uid, gid) = me();
        let writable = home_with("alice@example.com\n", 0o666);
        assert!(matches!(
            read(writable.path(), "bob", uid, gid, &local),
            Forwarding::Ignored(why) if why.contains("writable")
        ));
        let home = home_with("alice@example.com\n", 0o644);
        std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(matches!(
            read(home.path(), "bob", uid, gid, &local),
            Forwarding::Ignored(_)
        ));
        let comments = home_with("# nothing\n", 0o644);
        assert_eq!(
            read(comments.path(), "bob", uid, gid, &local),
            Forwarding::None
        );
        let only_self = home_with("\\bob\n", 0o644);
        assert_eq!(
            read(only_self.path(), "bob", uid, gid, &local),
            Forwarding::None
        );
        let none = tempfile::tempdir().unwrap();
        assert_eq!(read(none.path(), "bob", uid, gid, &local), Forwarding::None);
        if uid != 0 {
            let home = home_with("x@example.com\n", 0o644);
            assert!(matches!(
                read(home.path(), "bob", uid + 1, gid, &local),
                Forwarding::Ignored(why) if why.contains("owned by")
            ));
        }
    }
}
