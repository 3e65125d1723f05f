//! The installed daemon, started as its unit (with the administrator's
//! drop-in) says, taking a message from the installed sendmail.

use std::fs;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Stdio};

use postern_testkit::{free_ports, poll_until, Sink, SmtpConversation};

use super::{run, show, ThrowawayRoot, DROP_IN, PORT_CF, UNIT, VERSION, WAIT};

/// The command systemd would start: the unit's ExecStart= as its drop-ins
/// leave it (an empty `ExecStart=` clears the list, as systemd reads it).
fn effective_exec_start(root: &ThrowawayRoot) -> Vec<String> {
    let mut files = vec![root.path(UNIT)];
    let drop_ins = root.path("/etc/systemd/system/posternd.service.d");
    let mut extra: Vec<PathBuf> = fs::read_dir(drop_ins)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    extra.retain(|p| p.extension().is_some_and(|e| e == "conf"));
    extra.sort();
    files.extend(extra);
    let mut exec = None;
    for file in files {
        for line in fs::read_to_string(&file).unwrap().lines() {
            if let Some(value) = line.strip_prefix("ExecStart=") {
                exec = (!value.is_empty()).then(|| value.to_string());
            }
        }
    }
    let exec = exec.expect("an ExecStart=");
    exec.split_whitespace().map(str::to_string).collect()
}

/// posternd, started as the unit with the administrator's drop-in would
/// start it; stopped by its pid (SIGTERM, as systemd stops it) on drop.
struct InstalledDaemon {
    child: Child,
    log: PathBuf,
    _log_dir: tempfile::TempDir,
}

impl InstalledDaemon {
    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then the exit status (SIGKILL after a minute).
    fn stop(&mut self) -> std::process::ExitStatus {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let child = &mut self.child;
        match poll_until(WAIT, || child.try_wait().ok().flatten()) {
            Some(status) => status,
            None => {
                let _ = child.kill();
                child.wait().unwrap()
            }
        }
    }
}

impl Drop for InstalledDaemon {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.stop();
        }
    }
}

/// What an administrator does to try the package on other ports: a copy of
/// the packaged postern.cf with other DaemonPortOptions, and a drop-in that
/// points the unit's ExecStart at it (posternd has no option to override
/// one setting of its file). Then the installed daemon, started as that
/// unit says, relays a message from the installed sendmail (run by an
/// ordinary user) by mailertable to the sink.
pub(crate) fn deliver_through_the_installed_daemon(root: &ThrowawayRoot, sink: &Sink) {
    let ports = free_ports(2);
    let packaged = fs::read_to_string(root.path("/etc/mail/postern.cf")).unwrap();
    let moved = packaged
        .replace(
            "\nO DaemonPortOptions=Port=smtp, Name=MTA\n",
            &format!(
                "\nO DaemonPortOptions=Port={}, Addr=127.0.0.1, Name=MTA\n",
                ports[0]
            ),
        )
        .replace(
            "\nO DaemonPortOptions=Port=submission, Name=MSA, M=Ea\n",
            &format!(
                "\nO DaemonPortOptions=Port={}, Addr=127.0.0.1, Name=MSA, M=Ea\n",
                ports[1]
            ),
        );
    assert!(
        !moved.contains("\nO DaemonPortOptions=Port=smtp,")
            && !moved.contains("\nO DaemonPortOptions=Port=submission,"),
        "the packaged listeners changed: update this test"
    );
    fs::write(root.path(PORT_CF), moved).unwrap();
    let mut mailertable = fs::OpenOptions::new()
        .append(true)
        .open(root.path("/etc/mail/mailertable"))
        .unwrap();
    writeln!(
        mailertable,
        "sink.test esmtp:[127.0.0.1]:{}",
        sink.addr().port()
    )
    .unwrap();
    fs::create_dir_all(root.path(DROP_IN).parent().unwrap()).unwrap();
    fs::write(
        root.path(DROP_IN),
        format!("[Service]\nExecStart=\nExecStart=/usr/sbin/posternd -C {PORT_CF}\n"),
    )
    .unwrap();
    let out = run(root.command("/usr/bin/systemd-analyze").args([
        "verify",
        "--man=no",
        "posternd.service",
    ]));
    let complaints = String::from_utf8_lossy(&out.stderr);
    assert!(
        !complaints.contains("posternd.service"),
        "systemd-analyze verify: {}",
        show(&out)
    );
    let exec = effective_exec_start(root);
    assert_eq!(exec, ["/usr/sbin/posternd", "-C", PORT_CF]);

    let log_dir = tempfile::tempdir().unwrap();
    let log = log_dir.path().join("posternd.log");
    let log_file = fs::File::create(&log).unwrap();
    // Where systemd would hand it the journal, the test reads its standard
    // error (--log-stderr); nothing else differs from the unit's command.
    let child = root
        .command(&exec[0])
        .args(&exec[1..])
        .arg("--log-stderr")
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file)
        .spawn()
        .unwrap();
    let mut daemon = InstalledDaemon {
        child,
        log,
        _log_dir: log_dir,
    };
    let mta = SocketAddr::from((Ipv4Addr::LOCALHOST, ports[0]));
    let up = poll_until(WAIT, || {
        if !matches!(daemon.child.try_wait(), Ok(None)) {
            return Some(false);
        }
        TcpStream::connect(mta).ok().map(|_| true)
    });
    assert_eq!(up, Some(true), "posternd did not start:\n{}", daemon.log());
    let greeting = SmtpConversation::connect(mta).read_reply();
    assert!(greeting.starts_with("220 "), "{greeting}");

    // As an ordinary local program would: mail goes through the control
    // socket, open to everyone, never through the spool.
    let mut sendmail = root
        .command_as("nobody:nogroup", "/usr/sbin/sendmail")
        .args(["-f", "someone@localhost", "admin@sink.test"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = sendmail.stdin.take().unwrap();
    stdin
        .write_all(b"Subject: from the package\n\nSent with the installed sendmail.\n")
        .unwrap();
    drop(stdin);
    let out = sendmail.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "sendmail: {}\n{}",
        show(&out),
        daemon.log()
    );

    let got = sink.wait_for_messages(1, WAIT);
    assert_eq!(got[0].rcpt_to, ["admin@sink.test"]);
    let message = got[0].text();
    assert!(
        message.contains("Sent with the installed sendmail."),
        "{message}"
    );
    assert!(
        message.contains(&format!("(Postern {VERSION})")),
        "{message}"
    );
    let status = daemon.stop();
    assert!(status.success(), "posternd: {status}\n{}", daemon.log());
}
