//! The Debian package (`scripts/package-deb.sh`, `packaging/debian/`), as
//! an administrator meets it.
//!
//! - its control fields make it one of Debian's MTAs (Provides, Conflicts
//!   and Replaces mail-transport-agent), and lintian finds no error in it;
//! - as root, in a throwaway copy of this machine's root (an overlay in a
//!   private mount namespace, `throwaway_root/`: the machine's own packages,
//!   Postfix's tools among them, stay as they are), `dpkg -i` installs the
//!   programs, the sendmail names, the conffiles, the enabled unit, the
//!   users and the directories; the installed `posternd`, with the packaged
//!   configuration moved to a high port by a systemd drop-in, takes a
//!   message from the installed `sendmail` and relays it to a sink; an
//!   upgrade keeps the administrator's edits (Debian's conffile rules);
//!   `dpkg --remove` keeps the conffiles and the users, and `dpkg --purge`
//!   leaves nothing of the package behind.

#[path = "package/daemon.rs"]
mod daemon;
#[path = "package/installed.rs"]
mod installed;
#[path = "package/lifecycle.rs"]
mod lifecycle;
#[path = "package/throwaway_root.rs"]
mod throwaway_root;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use daemon::deliver_through_the_installed_daemon;
use installed::{
    check_configuration, check_directories, check_programs, check_unit_enabled, check_users,
};
use lifecycle::{
    purge_leaves_nothing_of_the_package, remove_keeps_configuration_and_users,
    upgrade_keeps_the_administrators_edits,
};
use postern_testkit::{running_as_root, Sink};
use throwaway_root::{show, ThrowawayRoot};

/// Generous bound for anything the test waits for.
const WAIT: Duration = Duration::from_secs(60);
/// The conffiles, as `/var/lib/dpkg/info/postern.conffiles` lists them.
const CONFFILES: [&str; 6] = [
    "/etc/mail/access",
    "/etc/mail/aliases",
    "/etc/mail/local-host-names",
    "/etc/mail/mailertable",
    "/etc/mail/postern.cf",
    "/etc/mail/relay-domains",
];
/// Where the programs are, and the sendmail names, as in postfix's and
/// exim4's packages.
const PROGRAMS: [&str; 2] = ["/usr/sbin/posternd", "/usr/bin/postern"];
const SENDMAIL_NAMES: [&str; 5] = [
    "/usr/sbin/sendmail",
    "/usr/lib/sendmail",
    "/usr/bin/mailq",
    "/usr/sbin/runq",
    "/usr/bin/newaliases",
];
const UNIT: &str = "/lib/systemd/system/posternd.service";
const ENABLED_LINK: &str = "/etc/systemd/system/multi-user.target.wants/posternd.service";
/// The administrator's own files in this test: a copy of postern.cf on
/// other ports and the drop-in that points the unit at it.
const PORT_CF: &str = "/etc/mail/postern-port.cf";
const DROP_IN: &str = "/etc/systemd/system/posternd.service.d/port.conf";
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The package, built once per test process by `scripts/package-deb.sh`
/// from the binaries the suite tests (debug builds: no second cargo run).
fn package() -> &'static Path {
    static DEB: OnceLock<PathBuf> = OnceLock::new();
    DEB.get_or_init(|| {
        let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("package-deb");
        let _ = fs::remove_dir_all(&out_dir);
        let built = postern_testkit::binary("posternd");
        postern_testkit::binary("postern");
        let out = Command::new("bash")
            .arg(postern_testkit::script("package-deb.sh"))
            .args(["--no-build", "--output"])
            .arg(&out_dir)
            .env("POSTERN_BUILD_DIR", built.parent().unwrap())
            .output()
            .unwrap();
        assert!(out.status.success(), "package-deb.sh: {}", show(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let deb = PathBuf::from(stdout.lines().last().unwrap_or_default());
        assert!(deb.is_file(), "no package at {deb:?}: {}", show(&out));
        deb
    })
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {}", show(&out));
    out
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn package_is_an_mta_by_debian_rules_and_lintian_finds_no_error() {
    let deb = package();
    let field = |name: &str| {
        let out = run(Command::new("dpkg-deb").arg("--field").arg(deb).arg(name));
        text(&out).trim().to_string()
    };
    assert_eq!(field("Package"), "postern");
    assert_eq!(field("Version"), VERSION);
    let arch = text(&run(Command::new("dpkg").arg("--print-architecture")));
    assert_eq!(field("Architecture"), arch.trim());
    // One MTA at a time, as postfix and exim4-daemon-light say it.
    for name in ["Provides", "Conflicts", "Replaces"] {
        assert_eq!(field(name), "mail-transport-agent", "{name}");
    }
    let depends = field("Depends");
    for dep in ["libc6 (>= ", "libssl3 (>= ", "adduser (>= "] {
        assert!(depends.contains(dep), "Depends: {depends}");
    }
    assert_eq!(field("Section"), "mail");

    // lintian leaves index files in TMPDIR: give it one that goes away.
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new("lintian")
        .arg(deb)
        .env("TMPDIR", tmp.path())
        .output()
        .expect("lintian is missing: scripts/test.sh installs it");
    let report = text(&out);
    let errors: Vec<&str> = report.lines().filter(|l| l.starts_with("E:")).collect();
    assert!(errors.is_empty(), "lintian: {}", show(&out));
    // lintian exits non-zero on an error, or when it could not run at all.
    assert!(out.status.success(), "lintian: {}", show(&out));
    // The warnings left (no manual pages yet), for whoever reads the log.
    eprintln!("lintian:\n{report}");
}

#[test]
fn package_installs_runs_upgrades_removes_and_purges_cleanly() {
    if !running_as_root() {
        eprintln!(
            "skipped: dpkg in a throwaway root needs a mount namespace, so root (CI runs as root)"
        );
        return;
    }
    let deb = package();
    let root = ThrowawayRoot::new();
    start_from_a_machine_without_postern(&root);
    fs::copy(deb, root.path("/tmp/postern.deb")).unwrap();

    let out = dpkg(&root, &["-i", "/tmp/postern.deb"]);
    assert_eq!(package_status(&root), "ii", "{}", show(&out));
    check_programs(&root);
    check_configuration(&root);
    let users = check_users(&root);
    check_directories(&root, &users);
    check_unit_enabled(&root);
    // Everything posternd checks before it starts holds with what the
    // package installed (the users, the tables, the directories).
    root.sh("/usr/sbin/posternd -C /etc/mail/postern.cf --check-config");

    let sink = Sink::start();
    deliver_through_the_installed_daemon(&root, &sink);

    upgrade_keeps_the_administrators_edits(&root, deb, &users);
    let owned = dpkg_list(&root);
    assert!(owned.contains(&PathBuf::from(UNIT)), "{owned:?}");

    remove_keeps_configuration_and_users(&root, &users);
    purge_leaves_nothing_of_the_package(&root, &owned, &users);

    // The machine itself never had the package.
    assert!(!Path::new("/var/lib/dpkg/info/postern.list").exists());
}

/// `dpkg ARGS` in the root; panics with its output unless it succeeds.
fn dpkg(root: &ThrowawayRoot, args: &[&str]) -> Output {
    let out = root
        .command("/usr/bin/dpkg")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "dpkg {}: {}",
        args.join(" "),
        show(&out)
    );
    out
}

/// The package's two-letter state (`ii`, `rc`), or `un` once purged.
fn package_status(root: &ThrowawayRoot) -> String {
    let out = root
        .command("/usr/bin/dpkg-query")
        .args(["--show", "--showformat=${db:Status-Abbrev}", "postern"])
        .output()
        .unwrap();
    if !out.status.success() {
        return "un".to_string();
    }
    text(&out).trim().to_string()
}

/// The paths dpkg records for the package.
fn dpkg_list(root: &ThrowawayRoot) -> BTreeSet<PathBuf> {
    text(&dpkg(root, &["-L", "postern"]))
        .lines()
        .filter(|l| l.starts_with('/') && *l != "/.")
        .map(PathBuf::from)
        .collect()
}

/// Clears what would make this root other than a fresh machine for the
/// package: another MTA (Postfix, which the suite's other tests use,
/// conflicts with every MTA package: purged here, in the overlay only), and
/// whatever Postern the machine got by hand (install.sh, the tests' users).
/// A policy-rc.d keeps the purged MTA's scripts from stopping anything
/// (the root shares the machine's processes).
fn start_from_a_machine_without_postern(root: &ThrowawayRoot) {
    root.sh(r#"set -e
printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
chmod 0755 /usr/sbin/policy-rc.d
mtas=$(dpkg-query --show --showformat='${db:Status-Abbrev} ${Package} ${Provides}\n' |
    awk '$1 ~ /^[ih][iU]/ && / mail-transport-agent(,|$| )/ { print $2 }')
if [ -n "$mtas" ]; then
    DEBIAN_FRONTEND=noninteractive dpkg --purge --force-depends $mtas
fi
for u in postern posternq posternf; do
    if getent passwd "$u" >/dev/null; then userdel --force "$u"; fi
    if getent group "$u" >/dev/null; then groupdel "$u"; fi
done
rm -rf /var/spool/postern /var/mail/postern /etc/systemd/system/posternd.service \
    /etc/systemd/system/posternd.service.d
for f in postern.cf access aliases local-host-names mailertable relay-domains; do
    rm -f "/etc/mail/$f" "/etc/mail/$f.postern-new"
done
rmdir /etc/mail/certs /etc/mail 2>/dev/null || true
"#);
}

fn meta(root: &ThrowawayRoot, path: &str) -> fs::Metadata {
    fs::symlink_metadata(root.path(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn exists(root: &ThrowawayRoot, path: &str) -> bool {
    fs::symlink_metadata(root.path(path)).is_ok()
}

fn read(root: &ThrowawayRoot, path: &str) -> String {
    fs::read_to_string(root.path(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}
