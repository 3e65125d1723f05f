//! What an administrator installs: the systemd unit (`systemd/`), the
//! default configuration and side tables (`etc/mail/`) and the installer
//! (`scripts/install.sh`).
//!
//! - the unit passes `systemd-analyze verify` and keeps the settings the
//!   process tree depends on (notify, reload by SIGHUP, master as root with
//!   exactly the capabilities it uses);
//! - the shipped `postern.cf` parses with the real parser and means what
//!   its comments say (every `#O` line is the built-in default, every
//!   option is documented, the STARTTLS recipe is right once uncommented);
//! - `install.sh --destdir` installs the tree with the right modes, and a
//!   second run changes nothing, not even a timestamp, and an edited
//!   configuration is kept (the shipped one goes beside it as
//!   `.postern-new`). As root it also creates the users and gives the spool
//!   to `posternq`; without root it stages with `--no-users` and checks
//!   everything but ownership.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use postern_config::{Config, DaemonPort, LocalHostNames, MailerRoute, Mailertable};
use postern_smtp::PrivacyFlags;
use postern_testkit::{
    ensure_test_users, free_ports, running_as_root, smtp_send, uid_of, wait_for_maildir,
    DaemonBuilder, SmtpConversation, FRONT_USER, QUEUE_OWNER, RUN_AS_USER,
};

/// The repository's root.
fn repo() -> PathBuf {
    postern_testkit::repo_root()
}

fn read_repo(path: &str) -> String {
    fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn shipped_cf() -> String {
    read_repo("etc/mail/postern.cf")
}

fn parse(text: &str) -> Config {
    Config::parse_str(text, Path::new("/etc/mail/postern.cf"))
        .unwrap_or_else(|e| panic!("the configuration does not parse:\n{e}\n---\n{text}"))
}

fn show(out: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `Key=value` settings of a unit file's `[Service]` section (a key given
/// twice keeps both values, space-separated).
fn service_settings(unit: &str) -> BTreeMap<String, String> {
    let mut section = "";
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for line in unit.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line;
        } else if section == "[Service]" && !line.starts_with('#') {
            if let Some((k, v)) = line.split_once('=') {
                let entry = out.entry(k.to_string()).or_default();
                if !entry.is_empty() {
                    entry.push(' ');
                }
                entry.push_str(v);
            }
        }
    }
    out
}

#[test]
fn unit_passes_systemd_analyze_verify() {
    let analyze = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("systemd-analyze is missing: install Debian's `systemd` package");
    let unit = read_repo("systemd/posternd.service");
    let shipped = "ExecStart=/usr/local/sbin/posternd -C /etc/mail/postern.cf\n";
    assert!(
        unit.contains(shipped),
        "ExecStart changed; install.sh rewrites exactly this line"
    );
    // verify checks that the binary exists: point it at the one just built.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("posternd.service");
    let ours = format!(
        "ExecStart={} -C /etc/mail/postern.cf\n",
        postern_testkit::binary("posternd").display()
    );
    fs::write(&path, unit.replace(shipped, &ours)).unwrap();
    let out = Command::new(analyze)
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}", show(&out));
    let complaints: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("posternd.service"))
        .collect();
    assert!(complaints.is_empty(), "{}", show(&out));

    // The settings the daemon's design depends on.
    let s = service_settings(&unit);
    for (key, value) in [
        ("Type", "notify"),
        ("NotifyAccess", "main"),
        ("ExecReload", "/bin/kill -HUP $MAINPID"),
        ("Restart", "on-failure"),
        ("RestartPreventExitStatus", "78"),
        ("KillMode", "mixed"),
        ("RuntimeDirectory", "postern"),
        ("RuntimeDirectoryMode", "0755"),
        ("ProtectSystem", "strict"),
        ("ReadWritePaths", "-/var/spool/postern -/var/mail/postern"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectKernelLogs", "yes"),
        ("ProtectControlGroups", "yes"),
        ("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"),
        ("RestrictNamespaces", "yes"),
        ("LockPersonality", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("RestrictRealtime", "yes"),
        ("SystemCallArchitectures", "native"),
        ("NoNewPrivileges", "yes"),
    ] {
        assert_eq!(s.get(key).map(String::as_str), Some(value), "{key}=");
    }
    // master runs as root; the children drop to the users themselves.
    assert!(!s.contains_key("User"), "master must start as root");
    let mut caps: Vec<&str> = s["CapabilityBoundingSet"].split_whitespace().collect();
    caps.sort_unstable();
    assert_eq!(
        caps,
        [
            "CAP_CHOWN",
            "CAP_DAC_OVERRIDE",
            "CAP_FOWNER",
            "CAP_KILL",
            "CAP_NET_BIND_SERVICE",
            "CAP_SETGID",
            "CAP_SETPCAP",
            "CAP_SETUID",
            "CAP_SYS_CHROOT",
        ]
    );
    // Each capability is explained in a comment.
    for cap in caps {
        assert!(
            unit.lines().any(|l| l.starts_with('#') && l.contains(cap)),
            "{cap} is not explained"
        );
    }
}

#[test]
fn shipped_configuration_has_the_documented_values() {
    let text = shipped_cf();
    let cfg = parse(&text);
    assert_eq!(
        cfg.privacy,
        PrivacyFlags::AUTH_WARNINGS | PrivacyFlags::RESTRICT_MAILQ | PrivacyFlags::RESTRICT_QRUN
    );
    assert_eq!(cfg.log_level, 9);
    let listeners: Vec<(u16, Option<&str>, &str)> = cfg
        .daemons
        .iter()
        .map(|d: &DaemonPort| (d.port, d.name.as_deref(), d.modifiers.as_str()))
        .collect();
    assert_eq!(listeners, [(25, Some("MTA"), ""), (587, Some("MSA"), "Ea")]);
    assert!(cfg.daemons.iter().all(|d| d.addr.is_none()));
    // The STARTTLS recipe is there but commented out: no certificate yet.
    let no_files = postern_config::TlsFiles {
        cipher_list: cfg.tls.cipher_list.clone(),
        ..Default::default()
    };
    assert_eq!(cfg.tls, no_files, "no TLS file may be set");
    assert_eq!(cfg.tls.server_cert_file, None);
    assert_eq!(cfg.queue_directory, Path::new("/var/spool/postern"));
    assert_eq!(cfg.mailbox_directory, Path::new("/var/mail/postern"));
    assert_eq!(cfg.run_as_user, RUN_AS_USER);
    assert_eq!(cfg.queue_owner, QUEUE_OWNER);
    assert_eq!(cfg.front_user, FRONT_USER);
    assert_eq!(cfg.domain_name, None);
    assert_eq!(cfg.smart_host, None);
    // The active listeners are the built-in ones, spelled out.
    let without_listeners: String = text
        .lines()
        .filter(|l| !l.starts_with("O DaemonPortOptions="))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(parse(&without_listeners).daemons, cfg.daemons);
}

#[test]
fn commented_defaults_are_the_built_in_defaults() {
    let text = shipped_cf();
    let cfg = parse(&text);
    // `#O Name=value` claims to be the default: uncommenting changes nothing.
    let uncommented: String = text
        .lines()
        .map(|l| {
            l.strip_prefix('#')
                .filter(|r| r.starts_with("O "))
                .unwrap_or(l)
        })
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(uncommented.matches("\nO Timeout.").count() >= 16);
    assert_eq!(parse(&uncommented), cfg);

    // Every option Postern knows appears in the file (active, as a default
    // or as an example), so the file documents all of them.
    for line in cfg.effective_lines() {
        // `O Name=` (set, default or example) or a `# Name (m4name): …`
        // description.
        let name: String = match line.strip_prefix("O ") {
            Some(rest) => rest.split('=').next().unwrap().to_string(),
            None => line.chars().take(2).collect(),
        };
        let documented = text
            .lines()
            .any(|l| l.contains(&format!("O {name}=")) || l.starts_with(&format!("# {name} (")));
        assert!(documented, "postern.cf does not document {name:?}");
    }

    // Each example (`dnl` + a configuration line) is valid as written.
    for example in text.lines().filter_map(|l| l.strip_prefix("dnl ")) {
        let is_config =
            example.starts_with("O ") || example.starts_with("Dj ") || example.contains("(`");
        if is_config {
            parse(&format!("{text}{example}\n"));
        }
    }
}

#[test]
fn starttls_recipe_points_at_etc_mail_certs() {
    let text = shipped_cf();
    let defines: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("dnl "))
        .filter(|l| {
            ["CACERT", "SERVER_", "CLIENT_"]
                .iter()
                .any(|n| l.starts_with(&format!("define(`conf{n}")))
        })
        .collect();
    assert_eq!(defines.len(), 6, "{defines:?}");
    let enabled = format!("{text}{}\n", defines.join("\n"));
    let tls = parse(&enabled).tls;
    let certs = Path::new("/etc/mail/certs");
    assert_eq!(tls.ca_cert_path.as_deref(), Some(certs));
    assert_eq!(tls.ca_cert_file, Some(certs.join("cacert.pem")));
    assert_eq!(tls.server_cert_file, Some(certs.join("cert.pem")));
    assert_eq!(tls.server_key_file, Some(certs.join("key.pem")));
    assert_eq!(tls.client_cert_file, Some(certs.join("cert.pem")));
    assert_eq!(tls.client_key_file, Some(certs.join("key.pem")));
}

#[test]
fn posternd_runs_with_the_shipped_configuration_and_tables() {
    ensure_test_users();
    // The shipped file as it is, but for the listeners: the same two, on
    // free loopback ports instead of 25 and 587.
    let ports = free_ports(2);
    let mut builder = DaemonBuilder::new(postern_testkit::binary("posternd"));
    for line in shipped_cf().lines() {
        let line = match line {
            "O DaemonPortOptions=Port=smtp, Name=MTA" => {
                format!(
                    "O DaemonPortOptions=Port={}, Addr=127.0.0.1, Name=MTA",
                    ports[0]
                )
            }
            "O DaemonPortOptions=Port=submission, Name=MSA, M=Ea" => format!(
                "O DaemonPortOptions=Port={}, Addr=127.0.0.1, Name=MSA, M=Ea",
                ports[1]
            ),
            other => other.to_string(),
        };
        builder = builder.config_line(&line);
    }
    for table in [
        "access",
        "aliases",
        "local-host-names",
        "mailertable",
        "relay-domains",
    ] {
        builder = builder.table(table, read_repo(&format!("etc/mail/{table}")));
    }
    let daemon = builder.start();
    let msa = daemon.instance().listener_addr("MSA");
    let greeting = SmtpConversation::connect(msa).read_reply();
    assert!(greeting.starts_with("220 "), "MSA: {greeting}");
    let reply = smtp_send(
        daemon.instance().listener_addr("MTA"),
        "someone@example.net",
        &["postmaster@mx.test"],
        b"Subject: installed\r\n\r\nThe shipped configuration works.\r\n",
    )
    .unwrap();
    assert!(reply.starts_with("250 2.0.0 "), "{reply}");
    // The shipped aliases send postmaster's mail to root.
    let got = wait_for_maildir(
        &daemon.mail_dir().join("root/Maildir"),
        1,
        std::time::Duration::from_secs(60),
    );
    assert!(String::from_utf8_lossy(&got[0]).contains("The shipped configuration works."));
}

/// The lines of a side table with a leading `#` removed where it comments
/// out an entry (`#example.com …`) rather than a sentence (`# …`).
fn uncomment_entries(text: &str) -> String {
    text.lines()
        .map(|l| match l.strip_prefix('#') {
            Some(rest) if rest.starts_with(|c: char| !c.is_whitespace() && c != '#') => rest,
            _ => l,
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
fn shipped_side_tables_are_read_and_their_examples_are_valid() {
    let dir = tempfile::tempdir().unwrap();
    let mt = dir.path().join("mailertable");
    let lhn = dir.path().join("local-host-names");

    // As shipped: everything commented out, so nothing changes.
    fs::write(&mt, read_repo("etc/mail/mailertable")).unwrap();
    fs::write(&lhn, read_repo("etc/mail/local-host-names")).unwrap();
    assert!(Mailertable::load(&mt).unwrap().is_empty());
    assert!(!LocalHostNames::load(&lhn).unwrap().contains("example.com"));

    // The examples mean what the comments say.
    fs::write(&mt, uncomment_entries(&read_repo("etc/mail/mailertable"))).unwrap();
    let table = Mailertable::load(&mt).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(table.len(), 4);
    match table.lookup("example.com") {
        Some(MailerRoute::Smtp(r)) => {
            assert_eq!(
                (r.host.as_str(), r.port, r.mx_lookup),
                ("192.0.2.1", Some(2525), false)
            );
        }
        other => panic!("example.com: {other:?}"),
    }
    match table.lookup("www.example.com") {
        Some(MailerRoute::Smtp(r)) => assert_eq!(r.host, "mx.example.com"),
        other => panic!("www.example.com: {other:?}"),
    }
    assert_eq!(
        table.lookup("local.example"),
        Some(&MailerRoute::Local { user: None })
    );
    match table.lookup("blocked.example") {
        Some(MailerRoute::Error {
            code,
            enhanced,
            text,
        }) => {
            assert_eq!(
                (*code, enhanced.as_deref(), text.as_str()),
                (550, Some("5.7.1"), "Not here")
            );
        }
        other => panic!("blocked.example: {other:?}"),
    }
    fs::write(
        &lhn,
        uncomment_entries(&read_repo("etc/mail/local-host-names")),
    )
    .unwrap();
    assert!(LocalHostNames::load(&lhn).unwrap().contains("example.com"));

    // The access map and relay-domains: their examples, uncommented, are
    // read with the meaning their comments give.
    let access = read_repo("etc/mail/access");
    let map = postern_config::AccessMap::parse_str(&uncomment_entries(&access)).unwrap();
    assert!(map.connect_relays("198.51.100.9".parse().unwrap()));
    assert!(map.to_relays("x@example.com", "example.com"));
    use postern_config::AccessAction;
    assert_eq!(
        map.connect_action(None, "192.0.2.1".parse().unwrap()),
        Some(AccessAction::Reject)
    );
    assert_eq!(
        map.connect_action(Some("bad.example"), "192.0.2.99".parse().unwrap()),
        Some(AccessAction::Error {
            code: 550,
            enhanced: Some("5.7.1".into()),
            text: "Go away".into()
        })
    );
    assert_eq!(
        map.from_action("spammer@example.net", Some("example.net")),
        Some(AccessAction::Reject)
    );
    assert_eq!(
        map.to_action("abuse@example.org", "example.org"),
        Some(AccessAction::Ok)
    );
    let client: std::net::IpAddr = "192.0.2.7".parse().unwrap();
    assert_eq!(map.client_connections(client), Some(5));
    assert_eq!(map.client_rate(client), Some(10));
    assert_eq!(map.greet_pause(None, "127.0.0.1".parse().unwrap()), Some(0));
    let rd = dir.path().join("relay-domains");
    fs::write(&rd, uncomment_entries(&read_repo("etc/mail/relay-domains"))).unwrap();
    let relay_domains = postern_config::RelayDomains::load(&rd).unwrap();
    assert!(relay_domains.has_domain("mail.partner.example"));
    let aliases = read_repo("etc/mail/aliases");
    let active: Vec<&str> = aliases
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .collect();
    assert_eq!(active, ["postmaster: root", "MAILER-DAEMON: postmaster"]);
}

/// What an installer could change about one file: mode (with the file
/// type), owner, group, modification time (seconds, nanoseconds) and
/// contents (or link target).
type FileState = (u32, u32, u32, i64, i64, Vec<u8>);

/// Every file of a tree, by path.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, FileState> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            let content = if meta.file_type().is_symlink() {
                fs::read_link(&path)
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes()
            } else if meta.is_dir() {
                todo.push(path.clone());
                Vec::new()
            } else {
                fs::read(&path).unwrap()
            };
            let key = path.strip_prefix(root).unwrap().to_path_buf();
            out.insert(
                key,
                (
                    meta.mode(),
                    meta.uid(),
                    meta.gid(),
                    meta.mtime(),
                    meta.mtime_nsec(),
                    content,
                ),
            );
        }
    }
    out
}

fn install(destdir: &Path) -> Output {
    let built = postern_testkit::binary("posternd")
        .parent()
        .unwrap()
        .to_path_buf();
    let mut cmd = Command::new("bash");
    cmd.arg(repo().join("scripts/install.sh"))
        .args(["--prefix", "/opt/postern", "--no-build", "--destdir"])
        .arg(destdir)
        .env("POSTERN_BUILD_DIR", built);
    if !running_as_root() {
        // Without root no user can be made and nothing chowned: stage.
        cmd.arg("--no-users");
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "install.sh failed: {}", show(&out));
    out
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

#[test]
fn install_sh_installs_once_and_then_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("root");
    // Debian's /var/mail is setgid mail (2775): a directory made in it
    // inherits the bit, and `chmod 0700` alone would keep it.
    fs::create_dir_all(dest.join("var/mail")).unwrap();
    fs::set_permissions(
        dest.join("var/mail"),
        std::os::unix::fs::PermissionsExt::from_mode(0o2775),
    )
    .unwrap();
    let first = install(&dest);
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(stdout.contains("change(s) made"), "{}", show(&first));

    // The daemon, byte for byte, executable.
    let posternd = dest.join("opt/postern/sbin/posternd");
    assert_eq!(mode(&posternd), 0o755);
    assert!(
        fs::read(&posternd).unwrap() == fs::read(postern_testkit::binary("posternd")).unwrap(),
        "installed posternd differs from the built one"
    );
    // The command-line tool, when it has been built, with its names.
    let built_cli = postern_testkit::binary("postern");
    if built_cli.is_file() {
        assert_eq!(mode(&dest.join("opt/postern/bin/postern")), 0o755);
        for name in ["sendmail", "mailq", "runq", "newaliases"] {
            let link = dest.join("opt/postern/sbin").join(name);
            assert_eq!(
                fs::read_link(&link).unwrap(),
                Path::new("../bin/postern"),
                "{name}"
            );
        }
    } else {
        let stderr = String::from_utf8_lossy(&first.stderr);
        assert!(stderr.contains("no postern"), "{}", show(&first));
    }
    // The configuration and tables, as shipped, world-readable.
    for f in [
        "postern.cf",
        "access",
        "aliases",
        "local-host-names",
        "mailertable",
        "relay-domains",
    ] {
        let installed = dest.join("etc/mail").join(f);
        assert_eq!(mode(&installed), 0o644, "{f}");
        assert_eq!(
            fs::read_to_string(&installed).unwrap(),
            read_repo(&format!("etc/mail/{f}")),
            "{f}"
        );
    }
    // The directories.
    for (dir, want) in [
        ("etc/mail", 0o755),
        ("etc/mail/certs", 0o755),
        ("var/spool/postern", 0o700),
        ("var/mail/postern", 0o711),
    ] {
        assert_eq!(mode(&dest.join(dir)), want, "{dir}");
    }
    // The unit, pointing at the prefix.
    let unit = fs::read_to_string(dest.join("etc/systemd/system/posternd.service")).unwrap();
    assert_eq!(
        unit,
        read_repo("systemd/posternd.service").replace(
            "ExecStart=/usr/local/sbin/posternd ",
            "ExecStart=/opt/postern/sbin/posternd "
        )
    );

    if running_as_root() {
        // The users exist, and the directories belong to them.
        let spool = fs::metadata(dest.join("var/spool/postern")).unwrap();
        assert_eq!(spool.uid(), uid_of(QUEUE_OWNER));
        assert_eq!(spool.mode() & 0o7777, 0o700);
        let mail = fs::metadata(dest.join("var/mail/postern")).unwrap();
        assert_eq!(mail.uid(), 0);
        assert_eq!(
            mail.mode() & 0o7777,
            0o711,
            "setgid inherited from /var/mail"
        );
        assert_eq!(fs::metadata(&posternd).unwrap().uid(), 0);
    } else {
        // Staged as the invoking user, who is told who must own them.
        let me = nix::unistd::Uid::effective().as_raw();
        assert_eq!(
            fs::metadata(dest.join("var/spool/postern")).unwrap().uid(),
            me
        );
        assert!(stdout.contains("it must belong to posternq"), "{stdout}");
    }

    // Again: nothing changes, not even a timestamp.
    let before = snapshot(&dest);
    let second = install(&dest);
    assert!(
        String::from_utf8_lossy(&second.stdout).contains("no changes"),
        "{}",
        show(&second)
    );
    assert!(snapshot(&dest) == before, "the second run changed the tree");

    // An edited configuration is the administrator's: kept, and the
    // shipped one put beside it.
    let cf = dest.join("etc/mail/postern.cf");
    let edited = format!(
        "{}O MaxMessageSize=10000000\n",
        read_repo("etc/mail/postern.cf")
    );
    fs::write(&cf, &edited).unwrap();
    let third = install(&dest);
    assert_eq!(fs::read_to_string(&cf).unwrap(), edited);
    let new = dest.join("etc/mail/postern.cf.postern-new");
    assert_eq!(fs::read_to_string(&new).unwrap(), shipped_cf());
    assert_eq!(mode(&new), 0o644);
    assert!(
        String::from_utf8_lossy(&third.stdout).contains("kept your"),
        "{}",
        show(&third)
    );
    // ...and that, too, is stable.
    let before = snapshot(&dest);
    let fourth = install(&dest);
    assert!(
        String::from_utf8_lossy(&fourth.stdout).contains("no changes"),
        "{}",
        show(&fourth)
    );
    assert!(snapshot(&dest) == before, "the fourth run changed the tree");
}

#[test]
fn install_sh_as_root_creates_the_users() {
    if !running_as_root() {
        // Not skipped silently: without root, useradd cannot run, and
        // install.sh must refuse rather than half-install.
        let tmp = tempfile::tempdir().unwrap();
        let out = Command::new("bash")
            .arg(repo().join("scripts/install.sh"))
            .args(["--no-build", "--destdir"])
            .arg(tmp.path())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{}", show(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("needs root"),
            "{}",
            show(&out)
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    install(&tmp.path().join("root"));
    for user in [RUN_AS_USER, QUEUE_OWNER, FRONT_USER] {
        let u = nix::unistd::User::from_name(user)
            .unwrap()
            .unwrap_or_else(|| panic!("no user {user} after install.sh"));
        assert_eq!(u.shell, Path::new("/usr/sbin/nologin"), "{user}");
    }
}
