//! Private keys live in the key holder only (issue 16): a live front after
//! its handshake, the front factory, master, the queue runner and the
//! delivery client after an outbound STARTTLS with a client certificate
//! hold none of a key's secret numbers, in either byte order, while the
//! holder does (which shows the search would find them). Handshakes with
//! the delegated keys work for every signature TLS 1.2 and 1.3 use, with an
//! RSA and an ECDSA certificate configured together, with Postfix, Python
//! and swaks as clients; a holder that dies is restarted. (A requester
//! that behaves as a compromised front: `key_holder_hostile.rs`.)

mod common;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::memory::{contains, memory};
use common::{role_pid, seed_tls_defines, WAIT};
use openssl::asn1::Asn1Time;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::{X509NameBuilder, X509};
use postern_testkit::{
    ensure_test_users, make_certs, running_as_root, smtp_send, wait_for_maildir, Daemon,
    DaemonBuilder,
};
use postern_tls::{ClientTls, Handshake, Keys, TlsFiles};

/// An ECDSA (P-256) certificate and key in `dir`: `ec.crt`, `ec.key`
/// (0600).
fn ec_pair(dir: &Path) -> (PathBuf, PathBuf) {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    let key = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "localhost").unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(2).unwrap())
        .unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    let (cert, key_file) = (dir.join("ec.crt"), dir.join("ec.key"));
    fs::write(&cert, b.build().to_pem().unwrap()).unwrap();
    fs::write(&key_file, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    fs::set_permissions(&key_file, fs::Permissions::from_mode(0o600)).unwrap();
    (cert, key_file)
}

fn read_key(path: &Path) -> PKey<Private> {
    PKey::private_key_from_pem(&fs::read(path).unwrap()).unwrap()
}

/// What must never be found outside the holder: the private exponent and
/// primes of an RSA key, or an EC key's scalar, each whole and in 16-byte
/// pieces (start, middle, end), big- and little-endian (OpenSSL keeps its
/// numbers as little-endian words).
fn secrets(key: &PKey<Private>) -> Vec<(String, Vec<u8>)> {
    let numbers: Vec<(&str, Vec<u8>)> = if let Ok(rsa) = key.rsa() {
        vec![
            ("d", rsa.d().to_vec()),
            ("p", rsa.p().unwrap().to_vec()),
            ("q", rsa.q().unwrap().to_vec()),
        ]
    } else {
        vec![("scalar", key.ec_key().unwrap().private_key().to_vec())]
    };
    let mut needles = Vec::new();
    for (name, be) in numbers {
        let le: Vec<u8> = be.iter().rev().copied().collect();
        for (order, bytes) in [("big-endian", be), ("little-endian", le)] {
            let n = bytes.len();
            for (part, at) in [("start", 0), ("middle", n / 2 - 8), ("end", n - 16)] {
                needles.push((
                    format!("{name} ({order}, 16 bytes at the {part})"),
                    bytes[at..at + 16].to_vec(),
                ));
            }
            needles.push((format!("{name} ({order}, whole)"), bytes));
        }
    }
    needles
}

fn assert_holds_no_key(pid: u32, role: &str, keys: &[&PKey<Private>]) {
    let mem = memory(pid);
    assert!(mem.len() > 1 << 20, "{role} (pid {pid}): memory not read");
    for key in keys {
        for (what, needle) in secrets(key) {
            assert!(
                !contains(&mem, &needle),
                "{role} (pid {pid}) holds the key's {what}"
            );
        }
    }
}

fn assert_holds_key(pid: u32, key: &PKey<Private>) {
    let mem = memory(pid);
    let whole: Vec<_> = secrets(key)
        .into_iter()
        .filter(|(what, _)| what.ends_with("whole)"))
        .collect();
    assert!(
        whole.iter().any(|(_, needle)| contains(&mem, needle)),
        "the key holder (pid {pid}) does not hold the key: the search finds nothing"
    );
}

fn daemon(lines: &[String], tables: &[(&str, String)]) -> Daemon {
    ensure_test_users();
    let mut b = DaemonBuilder::new(postern_testkit::binary("posternd"));
    for line in lines {
        b = b.config_line(line);
    }
    for (name, text) in tables {
        b = b.table(name, text.clone());
    }
    b.start()
}

/// A TLS session to a daemon's listener, greeted and handshaken, left
/// open so that its front stays alive.
fn live_tls_session(addr: std::net::SocketAddr) -> postern_tls::TlsStream<TcpStream> {
    let tcp = TcpStream::connect(addr).unwrap();
    let mut reader = BufReader::new(tcp.try_clone().unwrap());
    let mut writer = tcp.try_clone().unwrap();
    let read_reply = |reader: &mut BufReader<TcpStream>| loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line.len() < 4 || line.as_bytes()[3] == b' ' {
            return line;
        }
    };
    assert!(read_reply(&mut reader).starts_with("220"));
    writer.write_all(b"EHLO client.test\r\n").unwrap();
    assert!(read_reply(&mut reader).starts_with("250"));
    writer.write_all(b"STARTTLS\r\n").unwrap();
    assert!(read_reply(&mut reader).starts_with("220"));
    let client = ClientTls::from_files(&TlsFiles::default(), Keys::Load).unwrap();
    let mut tls = client.session(tcp, "localhost").unwrap();
    assert_eq!(tls.handshake().unwrap(), Handshake::Done);
    tls.write_all(b"EHLO client.test\r\n").unwrap();
    tls
}

#[test]
fn no_network_facing_process_holds_a_private_key() {
    if !running_as_root() {
        // /proc/<pid>/mem of a non-dumpable process is root's to read.
        eprintln!("not root: the roles cannot be read; run the suite as root");
        return;
    }
    // The receiver: an RSA and an ECDSA certificate; trusts the sender's CA.
    let receiver_certs = make_certs();
    let sender_certs = make_certs();
    let (ec_cert, ec_key_file) = ec_pair(receiver_certs.path());
    let rc = receiver_certs.path().display();
    let receiver = daemon(
        &[
            // The seed's CACertPath: the directory that holds key.pem too.
            format!("define(`confCACERT_PATH', `{rc}')"),
            format!(
                "define(`confCACERT', `{}/cacert.pem')",
                sender_certs.path().display()
            ),
            format!(
                "define(`confSERVER_CERT', `{rc}/cert.pem,{}')",
                ec_cert.display()
            ),
            format!(
                "define(`confSERVER_KEY', `{rc}/key.pem,{}')",
                ec_key_file.display()
            ),
            "O LogLevel=14".into(),
        ],
        &[("local-host-names", "b.test\n".into())],
    );
    let receiver_rsa = read_key(&receiver_certs.path().join("key.pem"));
    let receiver_ec = read_key(&ec_key_file);

    // A live front after its handshake.
    let _session = live_tls_session(receiver.smtp_addr());
    receiver.wait_for_log("STARTTLS=server, relay=", WAIT);
    let front = role_pid(&receiver, "front");
    assert_holds_no_key(front, "a front", &[&receiver_rsa, &receiver_ec]);
    for role in ["forker", "queue", "deliv"] {
        let pid = role_pid(&receiver, role);
        assert_holds_no_key(pid, role, &[&receiver_rsa, &receiver_ec]);
    }
    assert_holds_no_key(receiver.pid(), "master", &[&receiver_rsa, &receiver_ec]);
    let holder = role_pid(&receiver, "keys");
    assert_holds_key(holder, &receiver_rsa);
    assert_holds_key(holder, &receiver_ec);

    // The sender relays to the receiver with its client certificate.
    let route = format!("b.test esmtp:[127.0.0.1]:{}\n", receiver.smtp_addr().port());
    let mut lines = seed_tls_defines(sender_certs.path());
    lines.push("O LogLevel=14".into());
    let sender = daemon(&lines, &[("mailertable", route)]);
    let reply = smtp_send(
        sender.smtp_addr(),
        "a@example.net",
        &["root@b.test"],
        b"Subject: relayed\r\n\r\nwith a client certificate\r\n",
    )
    .unwrap();
    assert!(reply.starts_with("250 "), "{reply}");
    let delivered = wait_for_maildir(&receiver.mail_dir().join("root/Maildir"), 1, WAIT);
    let text = String::from_utf8_lossy(&delivered[0]);
    assert!(
        text.contains(" verify=OK)"),
        "client certificate not used:\n{text}"
    );
    let sender_key = read_key(&sender_certs.path().join("key.pem"));
    let delivery = role_pid(&sender, "deliv");
    assert_holds_no_key(delivery, "the delivery client", &[&sender_key]);
    assert_holds_no_key(sender.pid(), "master", &[&sender_key]);
    assert_holds_key(role_pid(&sender, "keys"), &sender_key);
}

/// `openssl s_client -starttls smtp` limited to one version and one
/// signature algorithm: the signature type the server used.
fn peer_signature(addr: std::net::SocketAddr, version: &str, sigalgs: &str) -> String {
    let out = Command::new("openssl")
        .args([
            "s_client",
            "-starttls",
            "smtp",
            version,
            "-sigalgs",
            sigalgs,
        ])
        .arg("-connect")
        .arg(addr.to_string())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{version} {sigalgs}:\n{text}");
    text.lines()
        .find_map(|l| l.strip_prefix("Peer signature type: "))
        .unwrap_or_else(|| panic!("{version} {sigalgs}: no signature:\n{text}"))
        .trim()
        .to_string()
}

#[test]
fn every_signature_tls_uses_through_the_holder() {
    let certs = make_certs();
    let (ec_cert, ec_key) = ec_pair(certs.path());
    let d = certs.path().display();
    let daemon = daemon(
        &[
            format!(
                "define(`confSERVER_CERT', `{d}/cert.pem,{}')",
                ec_cert.display()
            ),
            format!(
                "define(`confSERVER_KEY', `{d}/key.pem,{}')",
                ec_key.display()
            ),
        ],
        &[],
    );
    let addr = daemon.smtp_addr();
    for (version, sigalgs, expect) in [
        ("-tls1_3", "RSA-PSS+SHA256", "RSA-PSS"),
        ("-tls1_3", "rsa_pss_rsae_sha512", "RSA-PSS"),
        ("-tls1_2", "RSA-PSS+SHA256", "RSA-PSS"),
        ("-tls1_2", "RSA+SHA256", "RSA"),
        ("-tls1_2", "RSA+SHA384", "RSA"),
        ("-tls1_3", "ECDSA+SHA256", "ECDSA"),
        ("-tls1_2", "ECDSA+SHA256", "ECDSA"),
    ] {
        assert_eq!(
            peer_signature(addr, version, sigalgs),
            expect,
            "{version} {sigalgs}"
        );
    }
    // Python's smtplib and ssl, another TLS stack as a client.
    let script = "import smtplib, ssl, sys\n\
s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]))\n\
s.starttls(context=ssl._create_unverified_context())\n\
print(s.sock.version(), s.sock.cipher()[0])\n\
s.ehlo(); s.quit()\n";
    let out = Command::new("/usr/bin/python3")
        .args(["-c", script, &addr.port().to_string()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.starts_with("TLSv1.3 "),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // swaks, as a user would test it.
    let out = Command::new("swaks")
        .args([
            "--server",
            &addr.to_string(),
            "--tls",
            "--quit-after",
            "TLS",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("TLS started"), "{text}");
}

/// The holder is sandboxed as the other roles: RunAsUser, chrooted into
/// the empty jail, no capabilities, no new privileges, not dumpable.
fn assert_confined(pid: u32) {
    use std::os::unix::fs::MetadataExt;
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .map(|v| v.trim().to_string())
            .unwrap()
    };
    let run_as = nix::unistd::User::from_name(postern_testkit::RUN_AS_USER)
        .unwrap()
        .unwrap()
        .uid;
    assert_eq!(
        field("Uid"),
        format!("{run_as}\t{run_as}\t{run_as}\t{run_as}")
    );
    for caps in ["CapEff", "CapPrm", "CapBnd"] {
        assert_eq!(field(caps), "0000000000000000", "{caps}");
    }
    assert_eq!(field("NoNewPrivs"), "1");
    assert_eq!(
        fs::read_link(format!("/proc/{pid}/root")).unwrap(),
        Path::new("/run/postern/empty")
    );
    // Not dumpable: its /proc files are root's, not RunAsUser's.
    assert_eq!(fs::metadata(format!("/proc/{pid}/mem")).unwrap().uid(), 0);
}

/// Whether a STARTTLS handshake with the daemon completes now.
fn starttls_works(addr: std::net::SocketAddr) -> bool {
    Command::new("openssl")
        .args(["s_client", "-starttls", "smtp", "-brief"])
        .arg("-connect")
        .arg(addr.to_string())
        .stdin(Stdio::null())
        .output()
        .unwrap()
        .status
        .success()
}

#[test]
fn a_key_holder_that_dies_is_restarted_and_handshakes_resume() {
    let certs = make_certs();
    let daemon = daemon(&seed_tls_defines(certs.path()), &[]);
    assert!(starttls_works(daemon.smtp_addr()));
    let holder = role_pid(&daemon, "keys");
    if running_as_root() {
        assert_confined(holder);
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(holder as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    daemon.wait_for_log(&format!("key holder (pid {holder}) died"), WAIT);
    let restarted = postern_testkit::poll_until(WAIT, || {
        match common::role_pids(&daemon, "keys").as_slice() {
            [new] if *new != holder => Some(*new),
            _ => None,
        }
    });
    assert!(restarted.is_some(), "{}", daemon.log_lines().join("\n"));
    // The factory and the delivery client are replaced too (their sockets
    // went with the old holder); until then a handshake may fail.
    assert!(
        postern_testkit::poll_until(WAIT, || starttls_works(daemon.smtp_addr()).then_some(()))
            .is_some(),
        "{}",
        daemon.log_lines().join("\n")
    );
}

/// Another MTA's unpacked Debian package (`scripts/peer-packages.sh`):
/// where it is.
fn peer_package(which: &str) -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/peer-packages.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg(which)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{which}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// Postfix's own TLS client code (`posttls-finger`, from Debian's postfix
/// package as the benchmark unpacks it) against the delegated key, in
/// TLS 1.3 and 1.2.
#[test]
fn postfix_as_a_tls_client() {
    let pf = peer_package("postfix");
    let certs = make_certs();
    let daemon = daemon(&seed_tls_defines(certs.path()), &[]);
    // posttls-finger reads main.cf; Postfix's defaults are enough.
    let conf = tempfile::tempdir().unwrap();
    fs::write(conf.path().join("main.cf"), "").unwrap();
    let target = format!("[127.0.0.1]:{}", daemon.smtp_addr().port());
    for (protocols, expect) in [
        (">=TLSv1.3", "TLSv1.3 with cipher"),
        (">=TLSv1.2,<=TLSv1.2", "TLSv1.2 with cipher ECDHE-RSA-"),
    ] {
        let out = Command::new(pf.join("usr/sbin/posttls-finger"))
            .env("MAIL_CONFIG", conf.path())
            .env("LD_LIBRARY_PATH", pf.join("usr/lib/postfix"))
            .args(["-c", "-l", "encrypt", "-p", protocols, &target])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success()
                && text.contains("TLS connection established to 127.0.0.1")
                && text.contains(expect),
            "{protocols}:\n{text}"
        );
    }
}

/// The public key of the certificate the daemon presents now.
fn presented_key(addr: std::net::SocketAddr) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(
            "openssl s_client -starttls smtp -connect \"$0\" </dev/null 2>/dev/null \
             | openssl x509 -noout -pubkey",
        )
        .arg(addr.to_string())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn public_key_of(cert: &Path) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-pubkey", "-in"])
        .arg(cert)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn sighup_brings_a_new_holder_with_the_new_keys_and_the_old_one_leaves() {
    let (old, new) = (make_certs(), make_certs());
    let mut lines = seed_tls_defines(old.path());
    lines.push("O LogLevel=14".into());
    let daemon = daemon(&lines, &[]);
    let old_key = public_key_of(&old.path().join("cert.pem"));
    let new_key = public_key_of(&new.path().join("cert.pem"));
    assert_ne!(old_key, new_key);
    assert_eq!(presented_key(daemon.smtp_addr()), old_key);
    let old_holder = role_pid(&daemon, "keys");

    let cf = daemon.config_path();
    let text = fs::read_to_string(&cf).unwrap();
    let old_dir = old.path().display().to_string();
    fs::write(
        &cf,
        text.replace(&old_dir, &new.path().display().to_string()),
    )
    .unwrap();
    let mark = daemon.log_mark();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon.pid() as i32),
        nix::sys::signal::Signal::SIGHUP,
    )
    .unwrap();
    daemon.wait_for_log_since(mark, "configuration reloaded", WAIT);
    // The old holder goes once the old factory and delivery client have.
    daemon.wait_for_log_since(mark, &format!("key holder (pid {old_holder}) exited"), WAIT);
    assert!(
        postern_testkit::poll_until(WAIT, || {
            (presented_key(daemon.smtp_addr()) == new_key).then_some(())
        })
        .is_some(),
        "{}",
        daemon.log_lines().join("\n")
    );
    assert_ne!(role_pid(&daemon, "keys"), old_holder);
}

/// sendmail 8.17 itself (Debian's package, unpacked) relays to Postern
/// over STARTTLS with a client certificate, as the seed's recipe
/// configures it on the other side.
#[test]
fn sendmail_as_a_tls_client() {
    if !running_as_root() {
        // sendmail runs in a UTS namespace of its own, for a host name
        // with a dot (else it sleeps, waiting for one): root's to make.
        eprintln!("not root: sendmail cannot be given a host name; run the suite as root");
        return;
    }
    let sm = peer_package("sendmail");
    let certs = make_certs();
    let receiver = daemon(
        &seed_tls_defines(certs.path()),
        &[("local-host-names", "b.test\n".into())],
    );
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let (cf_dir, c) = (sm.join("usr/share/sendmail/cf"), certs.path().display());
    fs::create_dir(w.join("queue")).unwrap();
    fs::write(w.join("aliases"), "").unwrap();
    fs::write(w.join("service.switch"), "hosts files\naliases files\n").unwrap();
    // TrustStickyBit: the certificates sit under /tmp, a path sendmail
    // otherwise finds unsafe for a key file (it then sends no client
    // certificate, and says so only to syslog).
    let mc = format!(
        "include(`{cf}/m4/cf.m4')dnl
OSTYPE(`linux')dnl
define(`confDOMAIN_NAME', `client.sendmail.test')dnl
define(`confDONT_BLAME_SENDMAIL', `TrustStickyBit')dnl
define(`confSERVICE_SWITCH_FILE', `{w}/service.switch')dnl
define(`SMART_HOST', `esmtp:[127.0.0.1]')dnl
define(`ESMTP_MAILER_ARGS', `TCP $h {port}')dnl
define(`QUEUE_DIR', `{w}/queue')dnl
define(`ALIAS_FILE', `{w}/aliases')dnl
define(`STATUS_FILE', `{w}/statistics')dnl
define(`confPID_FILE', `{w}/sendmail.pid')dnl
define(`confCACERT_PATH', `{c}')dnl
define(`confCACERT', `{c}/cacert.pem')dnl
define(`confCLIENT_CERT', `{c}/cert.pem')dnl
define(`confCLIENT_KEY', `{c}/key.pem')dnl
FEATURE(`nocanonify')dnl
MAILER(`smtp')dnl
",
        cf = cf_dir.display(),
        w = w.display(),
        port = receiver.smtp_addr().port(),
    );
    let cf = Command::new("m4")
        .arg(format!("-D_CF_DIR_={}/", cf_dir.display()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut m4| {
            m4.stdin.take().unwrap().write_all(mc.as_bytes())?;
            m4.wait_with_output()
        })
        .unwrap();
    assert!(cf.status.success());
    fs::write(w.join("sendmail.cf"), &cf.stdout).unwrap();

    let mut sendmail = Command::new("unshare")
        .args(["--uts", "sh", "-c"])
        .arg(r#"hostname client.sendmail.test && exec "$0" -C "$1" -Am -v -odi -f a@example.net root@b.test"#)
        .arg(sm.join("usr/libexec/sendmail/sendmail"))
        .arg(w.join("sendmail.cf"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    sendmail
        .stdin
        .take()
        .unwrap()
        .write_all(b"Subject: from sendmail\n\nover STARTTLS\n")
        .unwrap();
    let out = sendmail.wait_with_output().unwrap();
    let transcript =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{transcript}");
    assert!(
        transcript.contains(">>> STARTTLS\n220 2.0.0 Ready to start TLS"),
        "{transcript}"
    );
    assert!(transcript.contains("root@b.test... Sent ("), "{transcript}");
    let delivered = wait_for_maildir(&receiver.mail_dir().join("root/Maildir"), 1, WAIT);
    let text = String::from_utf8_lossy(&delivered[0]);
    assert!(
        text.contains("(version=TLSv1.3 cipher=") && text.contains(" verify=OK)"),
        "{text}"
    );
}
