//! rspamd (Debian's `rspamd`) through its milter proxy, as sites plug it
//! into sendmail: `INPUT_MAIL_FILTER(`rspamd', `S=inet:PORT@127.0.0.1,
//! F=T')`. The test's rspamd has a configuration of its own: the proxy
//! scanning itself, milter_headers on, and a DNS server that is a closed
//! loopback port, so nothing is looked up anywhere. GTUBE is refused with
//! rspamd's reply; a clean message arrives with rspamd's headers.

mod common;

use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::time::Duration;

use common::filters::{relaying_daemon, send, session};
use common::WAIT;
use postern_testkit::{poll_until, Sink};

/// The GTUBE test string (rspamd's own, and SpamAssassin's).
const GTUBE: &str = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";

/// rspamd and its workers, a process group stopped when the test ends.
struct Rspamd {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Rspamd {
    fn drop(&mut self) {
        let group = nix::unistd::Pid::from_raw(-(self.child.id() as i32));
        let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_rspamd() -> Rspamd {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let port = free_port();
    let dns = free_port();
    let d = dir.path().display();
    let conf = dir.path().join("rspamd.conf");
    std::fs::write(
        &conf,
        format!(
            r#"options {{
  pidfile = "{d}/rspamd.pid";
  dbdir = "{d}";
  dns {{ nameserver = ["127.0.0.1:{dns}"]; timeout = 1s; retransmits = 1; }}
}}
logging {{ type = "console"; level = "error"; }}
actions {{ reject = 15; add_header = 6; greylist = 4; }}
worker "rspamd_proxy" {{
  bind_socket = "127.0.0.1:{port}";
  milter = yes;
  timeout = 120s;
  upstream "local" {{ default = yes; self_scan = yes; }}
  count = 1;
}}
modules {{ path = "/usr/share/rspamd/plugins/"; }}
milter_headers {{
  use = ["x-spamd-result", "x-spam-status"];
  skip_local = false;
  skip_authenticated = false;
}}
"#
        ),
    )
    .unwrap();
    let child = Command::new("/usr/bin/rspamd")
        .args(["-f", "-u", "_rspamd", "-g", "_rspamd", "-c"])
        .arg(&conf)
        .process_group(0)
        .spawn()
        .expect("rspamd (scripts/test.sh installs it)");
    let mut r = Rspamd {
        child,
        port,
        _dir: dir,
    };
    // rspamd compiles its rules first: seconds, not milliseconds.
    let up = poll_until(Duration::from_secs(120), || {
        if let Ok(Some(status)) = r.child.try_wait() {
            panic!("rspamd exited: {status}");
        }
        TcpStream::connect(("127.0.0.1", port)).ok()
    });
    assert!(up.is_some(), "rspamd never listened");
    r
}

#[test]
fn gtube_is_refused_with_rspamds_reply_and_clean_mail_gets_its_headers() {
    let rspamd = start_rspamd();
    let sink = Sink::start();
    let d = relaying_daemon(
        &sink,
        &[format!(
            "INPUT_MAIL_FILTER(`rspamd', `S=inet:{}@127.0.0.1, F=T, T=C:10s;S:1m;R:1m;E:5m')",
            rspamd.port
        )],
    );
    let mut c = session(&d, "client.example");
    let refused = send(
        &mut c,
        "s@example.com",
        &["r@example.net"],
        &format!("From: s@example.com\r\nSubject: test\r\n\r\n{GTUBE}\r\n"),
    );
    assert!(refused.starts_with("554 5.7.1 "), "{refused}");
    assert!(refused.to_lowercase().contains("gtube"), "{refused}");
    d.wait_for_log(&format!("Milter: data, reject={refused}"), WAIT);
    let accepted = send(
        &mut c,
        "s@example.com",
        &["r@example.net"],
        "From: s@example.com\r\nTo: r@example.net\r\nSubject: lunch\r\n\r\nNoon at the usual place?\r\n",
    );
    assert!(accepted.starts_with("250 2.0.0 "), "{accepted}");
    c.cmd("QUIT", "221");
    let m = sink.wait_for_messages(1, WAIT).remove(0);
    let text = String::from_utf8_lossy(&m.data).into_owned();
    let head = text.split("\r\n\r\n").next().unwrap();
    assert!(
        head.contains("\r\nX-Spamd-Result: default: False"),
        "{head}"
    );
    assert!(head.contains("\r\nX-Spam-Status: No, score="), "{head}");
    assert!(text.ends_with("Noon at the usual place?\r\n"), "{text}");
}
