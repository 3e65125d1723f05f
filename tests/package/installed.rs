//! What `dpkg -i` must leave: the programs and the sendmail names, the
//! conffiles, the users, the directories and the enabled unit.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Stdio;

use postern_testkit::{FRONT_USER, QUEUE_OWNER, RUN_AS_USER};

use super::{
    meta, run, show, text, ThrowawayRoot, CONFFILES, ENABLED_LINK, PROGRAMS, SENDMAIL_NAMES, UNIT,
    VERSION,
};

pub(crate) fn check_programs(root: &ThrowawayRoot) {
    for program in PROGRAMS {
        let m = meta(root, program);
        assert!(m.is_file(), "{program}");
        assert_eq!(
            (m.mode() & 0o7777, m.uid(), m.gid()),
            (0o755, 0, 0),
            "{program}"
        );
    }
    let version = text(&run(root.command("/usr/sbin/posternd").arg("--version")));
    assert!(version.contains(VERSION), "{version}");
    // Each name leads to the multicall tool, which acts by the name.
    for name in SENDMAIL_NAMES {
        assert!(meta(root, name).file_type().is_symlink(), "{name}");
        let target = text(&root.sh(&format!("readlink -f {name}")));
        assert_eq!(target.trim(), "/usr/bin/postern", "{name}");
    }
    let out = run(root.command("/usr/bin/newaliases").stdin(Stdio::null()));
    assert!(text(&out).contains("/etc/mail/aliases"), "{}", show(&out));
}

pub(crate) fn check_configuration(root: &ThrowawayRoot) {
    let listed = fs::read_to_string(root.path("/var/lib/dpkg/info/postern.conffiles")).unwrap();
    assert_eq!(listed.lines().collect::<Vec<_>>(), CONFFILES);
    let repo = postern_testkit::repo_root();
    for conffile in CONFFILES {
        let m = meta(root, conffile);
        assert_eq!((m.mode() & 0o7777, m.uid()), (0o644, 0), "{conffile}");
        let shipped = repo.join(conffile.trim_start_matches('/'));
        assert_eq!(
            fs::read(root.path(conffile)).unwrap(),
            fs::read(&shipped).unwrap(),
            "{conffile}"
        );
    }
    assert_eq!(meta(root, "/etc/mail/certs").mode() & 0o7777, 0o755);
}

/// A system user as `/etc/passwd` in the root has it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SystemUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub shell: String,
}

pub(crate) fn passwd_entry(root: &ThrowawayRoot, name: &str) -> Option<SystemUser> {
    let passwd = fs::read_to_string(root.path("/etc/passwd")).unwrap();
    passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() == 7 && f[0] == name).then(|| SystemUser {
            name: name.to_string(),
            uid: f[2].parse().unwrap(),
            gid: f[3].parse().unwrap(),
            shell: f[6].to_string(),
        })
    })
}

/// Lines of an `/etc` account file in the root that name `name`.
pub(crate) fn account_lines(root: &ThrowawayRoot, file: &str, name: &str) -> Vec<String> {
    fs::read_to_string(root.path(file))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.split(':').next() == Some(name))
        .map(str::to_string)
        .collect()
}

/// The three users: system uids, no login, each with a group of its own.
pub(crate) fn check_users(root: &ThrowawayRoot) -> Vec<SystemUser> {
    let users: Vec<SystemUser> = [RUN_AS_USER, QUEUE_OWNER, FRONT_USER]
        .iter()
        .map(|name| passwd_entry(root, name).unwrap_or_else(|| panic!("no user {name}")))
        .collect();
    for u in &users {
        assert!(u.uid < 1000, "{u:?} is not a system user");
        assert_eq!(u.shell, "/usr/sbin/nologin", "{u:?}");
        let group = account_lines(root, "/etc/group", &u.name);
        assert_eq!(group.len(), 1, "group {}: {group:?}", u.name);
        assert_eq!(group[0].split(':').nth(2), Some(u.gid.to_string().as_str()));
    }
    let uids: BTreeSet<u32> = users.iter().map(|u| u.uid).collect();
    let gids: BTreeSet<u32> = users.iter().map(|u| u.gid).collect();
    assert_eq!((uids.len(), gids.len()), (3, 3), "{users:?}");
    users
}

pub(crate) fn check_directories(root: &ThrowawayRoot, users: &[SystemUser]) {
    let by_name = |name: &str| users.iter().find(|u| u.name == name).unwrap();
    let spool = meta(root, "/var/spool/postern");
    let q = by_name(QUEUE_OWNER);
    assert!(spool.is_dir());
    assert_eq!(
        (spool.mode() & 0o7777, spool.uid(), spool.gid()),
        (0o700, q.uid, q.gid),
        "/var/spool/postern must be {QUEUE_OWNER}'s alone"
    );
    // Each mailbox in it is made by root and written by its owner, who
    // passes through; nobody lists it.
    let mail = meta(root, "/var/mail/postern");
    assert!(mail.is_dir());
    assert_eq!(
        (mail.mode() & 0o7777, mail.uid(), mail.gid()),
        (0o711, 0, 0),
        "/var/mail/postern must be root's, 0711"
    );
}

pub(crate) fn check_unit_enabled(root: &ThrowawayRoot) {
    let unit = fs::read_to_string(root.path(UNIT)).unwrap();
    assert!(
        unit.contains("\nExecStart=/usr/sbin/posternd -C /etc/mail/postern.cf\n"),
        "{unit}"
    );
    assert_eq!(
        fs::read_link(root.path(ENABLED_LINK)).unwrap(),
        Path::new(UNIT)
    );
    // And systemd reads it so, without running.
    let out = run(root.command("/usr/bin/systemctl").args([
        "--root=/",
        "is-enabled",
        "posternd.service",
    ]));
    assert_eq!(text(&out).trim(), "enabled");
}
