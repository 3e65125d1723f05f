//! The package's life after the first install: an upgrade under Debian's
//! conffile rules, a removal and a purge.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::installed::{
    account_lines, check_directories, check_unit_enabled, check_users, passwd_entry, SystemUser,
};
use super::{
    dpkg, exists, package_status, read, run, show, text, ThrowawayRoot, CONFFILES, DROP_IN,
    ENABLED_LINK, PORT_CF, PROGRAMS, SENDMAIL_NAMES, UNIT, VERSION,
};

/// What the next version changes in two conffiles.
const NEXT_LINE: &str = "# A line the next version adds.\n";

/// The same package as version VERSION+1, its postern.cf and access
/// changed, repacked with dpkg-deb.
fn next_version(deb: &Path, dir: &Path) -> PathBuf {
    let tree = dir.join("tree");
    run(Command::new("dpkg-deb")
        .arg("--raw-extract")
        .arg(deb)
        .arg(&tree));
    let control = tree.join("DEBIAN/control");
    let fields = fs::read_to_string(&control).unwrap();
    let version_line = format!("\nVersion: {VERSION}\n");
    assert!(fields.contains(&version_line), "{fields}");
    fs::write(
        &control,
        fields.replace(&version_line, &format!("\nVersion: {VERSION}+1\n")),
    )
    .unwrap();
    for conffile in ["etc/mail/postern.cf", "etc/mail/access"] {
        let path = tree.join(conffile);
        let shipped = fs::read_to_string(&path).unwrap();
        fs::write(&path, format!("{shipped}{NEXT_LINE}")).unwrap();
    }
    run(Command::new("sh").current_dir(&tree).args([
        "-c",
        "find . -path ./DEBIAN -prune -o -type f -printf '%P\\0' | LC_ALL=C sort -z | \
         xargs -0 md5sum >DEBIAN/md5sums",
    ]));
    let next = dir.join("postern_next.deb");
    run(Command::new("dpkg-deb")
        .args(["--root-owner-group", "-Zgzip", "-z1", "--build"])
        .arg(&tree)
        .arg(&next));
    next
}

/// An upgrade, by Debian's conffile rules: postern.cf, edited by the
/// administrator and changed by the new version, keeps the edit
/// (`--force-confold` answers dpkg's question as an administrator keeping
/// theirs does) and gets the new version beside it as `.dpkg-dist`; the
/// mailertable, which only the administrator changed, keeps the edit
/// silently; access, which only the package changed, is updated. The
/// users and directories stay as they were.
pub(crate) fn upgrade_keeps_the_administrators_edits(
    root: &ThrowawayRoot,
    deb: &Path,
    users: &[SystemUser],
) {
    let edited = format!(
        "{}O MaxMessageSize=10000000\n",
        read(root, "/etc/mail/postern.cf")
    );
    fs::write(root.path("/etc/mail/postern.cf"), &edited).unwrap();
    let mailertable = read(root, "/etc/mail/mailertable");
    let access = read(root, "/etc/mail/access");

    let dir = tempfile::tempdir().unwrap();
    fs::copy(
        next_version(deb, dir.path()),
        root.path("/tmp/postern-next.deb"),
    )
    .unwrap();
    let out = dpkg(root, &["-i", "--force-confold", "/tmp/postern-next.deb"]);
    assert_eq!(package_status(root), "ii", "{}", show(&out));
    let version = text(&run(root.command("/usr/bin/dpkg-query").args([
        "--show",
        "--showformat=${Version}",
        "postern",
    ])));
    assert_eq!(version, format!("{VERSION}+1"));

    assert_eq!(
        read(root, "/etc/mail/postern.cf"),
        edited,
        "the edit is lost"
    );
    let repo_cf = fs::read_to_string(postern_testkit::repo_root().join("etc/mail/postern.cf"));
    assert_eq!(
        read(root, "/etc/mail/postern.cf.dpkg-dist"),
        format!("{}{NEXT_LINE}", repo_cf.unwrap())
    );
    assert_eq!(read(root, "/etc/mail/mailertable"), mailertable);
    assert!(!exists(root, "/etc/mail/mailertable.dpkg-dist"));
    assert_eq!(
        read(root, "/etc/mail/access"),
        format!("{access}{NEXT_LINE}")
    );
    assert_eq!(check_users(root), users, "the postinst changed the users");
    check_directories(root, users);
    check_unit_enabled(root);
}

/// `dpkg --remove`: the programs and the unit go; the configuration (the
/// administrator's edits), the users, the queue and the mailboxes stay, as
/// Debian keeps them until a purge.
pub(crate) fn remove_keeps_configuration_and_users(root: &ThrowawayRoot, users: &[SystemUser]) {
    dpkg(root, &["--remove", "postern"]);
    assert_eq!(package_status(root), "rc");
    for gone in PROGRAMS.iter().chain(&SENDMAIL_NAMES).chain(&[UNIT]) {
        assert!(!exists(root, gone), "{gone} is still there");
    }
    for conffile in CONFFILES {
        assert!(exists(root, conffile), "{conffile} was removed");
    }
    assert!(read(root, "/etc/mail/postern.cf").contains("O MaxMessageSize=10000000\n"));
    for u in users {
        assert_eq!(passwd_entry(root, &u.name).as_ref(), Some(u));
    }
    check_directories(root, users);
}

/// `dpkg --purge`: nothing of the package is left, only what the
/// administrator made (the copied postern.cf and the drop-in).
pub(crate) fn purge_leaves_nothing_of_the_package(
    root: &ThrowawayRoot,
    owned: &BTreeSet<PathBuf>,
    users: &[SystemUser],
) {
    dpkg(root, &["--purge", "postern"]);
    assert_eq!(package_status(root), "un");
    for conffile in CONFFILES {
        assert!(!exists(root, conffile), "{conffile}");
        assert!(
            !exists(root, &format!("{conffile}.dpkg-dist")),
            "{conffile}.dpkg-dist"
        );
    }
    for u in users {
        for file in ["/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow"] {
            let left = account_lines(root, file, &u.name);
            assert!(left.is_empty(), "{file}: {left:?}");
        }
    }
    for dir in ["/var/spool/postern", "/var/mail/postern", ENABLED_LINK] {
        assert!(!exists(root, dir), "{dir}");
    }
    // Of what dpkg listed, only directories the machine has anyway remain,
    // and /etc/mail, for the administrator's own file.
    for path in owned {
        let inside = path.to_str().unwrap();
        if !exists(root, inside) {
            continue;
        }
        if inside == "/etc/mail" {
            for entry in fs::read_dir(root.path(inside)).unwrap() {
                let name = Path::new(inside).join(entry.unwrap().file_name());
                assert!(
                    name == Path::new(PORT_CF) || name.exists(),
                    "{} is left behind",
                    name.display()
                );
            }
            continue;
        }
        // (/lib is a link to usr/lib on a merged-/usr system: followed.)
        assert!(
            root.path(inside).is_dir() && path.is_dir(),
            "{inside} is left behind"
        );
    }
    // Nothing else anywhere: every file whose name says postern that the
    // root has and the machine has not is the administrator's.
    let left: Vec<PathBuf> = root
        .changes()
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("postern"))
        .collect();
    let admins = [
        PathBuf::from(PORT_CF),
        PathBuf::from(DROP_IN).parent().unwrap().to_path_buf(),
        PathBuf::from(DROP_IN),
    ];
    assert_eq!(left, admins);
}
