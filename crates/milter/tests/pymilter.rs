//! The milter client against a real filter: `every_action.py`, written
//! with Debian's pymilter, which is libmilter underneath, so every packet
//! here is parsed and produced by sendmail's own filter library.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use postern_milter::filter::{ClientAddress, MacroLists, Timeouts};
use postern_milter::macros::Stage as MacroStage;
use postern_milter::{Filter, Modification, Verdict};

/// The filter process, killed by its PID when the test ends.
struct FilterProcess {
    child: Child,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for FilterProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_filter() -> FilterProcess {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("filter.sock");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/filters/every_action.py");
    let child = Command::new("/usr/bin/python3")
        .arg(&script)
        .arg(format!("unix:{}", socket.display()))
        .spawn()
        .expect("start /usr/bin/python3 (python3-milter is installed by scripts/test.sh)");
    let mut filter = FilterProcess {
        child,
        socket,
        _dir: dir,
    };
    // libmilter creates the socket when it is ready to accept.
    let deadline = Instant::now() + Duration::from_secs(20);
    while UnixStream::connect(&filter.socket).is_err() {
        if let Some(status) = filter.child.try_wait().unwrap() {
            panic!("the filter exited: {status}");
        }
        assert!(Instant::now() < deadline, "the filter never listened");
        std::thread::sleep(Duration::from_millis(20));
    }
    filter
}

fn lists() -> MacroLists {
    MacroStage::ALL
        .iter()
        .map(|s| {
            (
                *s,
                s.default_names().iter().map(|n| n.to_string()).collect(),
            )
        })
        .collect::<BTreeMap<_, _>>()
}

fn value(name: &str) -> Option<String> {
    match name {
        "j" => Some("mx.example".into()),
        "daemon_name" => Some("MTA".into()),
        "msg_id" => Some("<1@mx.example>".into()),
        "i" => Some("6B63Fa00000001".into()),
        _ => None,
    }
}

fn session(filter: &FilterProcess) -> Filter<UnixStream> {
    let stream = UnixStream::connect(&filter.socket).unwrap();
    let mut f = Filter::negotiate(stream, Timeouts::default(), lists()).unwrap();
    let client = ClientAddress::Ip {
        addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
        port: 40000,
    };
    assert_eq!(
        f.connect("localhost", &client, &value).unwrap(),
        Verdict::Continue
    );
    assert_eq!(f.helo("client.example", &value).unwrap(), Verdict::Continue);
    f
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

#[test]
fn every_action_comes_back_from_a_libmilter_filter() {
    let process = start_filter();
    let mut f = session(&process);
    assert!(f.negotiated().version >= 2);
    assert_eq!(
        f.mail(&args(&["<s@example.com>", "BODY=8BITMIME"]), &value)
            .unwrap(),
        Verdict::Continue
    );
    assert_eq!(
        f.rcpt(&args(&["<r@example.net>"]), &value).unwrap(),
        Verdict::Continue
    );
    assert_eq!(
        f.rcpt(&args(&["<tempfail@example.net>"]), &value).unwrap(),
        Verdict::TempFail
    );
    assert_eq!(
        f.rcpt(&args(&["<custom@example.net>"]), &value).unwrap(),
        Verdict::Reply("550-5.7.1 first line\r\n550 5.7.1 second line".into())
    );
    assert_eq!(f.data(&value).unwrap(), Verdict::Continue);
    for (name, v) in [
        ("Subject", " hello"),
        ("X-Drop", " one"),
        ("X-Drop", " two"),
    ] {
        assert_eq!(f.header(name, v.as_bytes()).unwrap(), Verdict::Continue);
    }
    assert_eq!(f.end_of_headers(&value).unwrap(), Verdict::Continue);
    assert_eq!(f.body(b"please replace me\r\n").unwrap(), Verdict::Continue);
    let (verdict, changes) = f.end_of_message(&value).unwrap();
    assert_eq!(verdict, Verdict::Accept);
    let seen = changes
        .iter()
        .find_map(|c| match c {
            Modification::AddHeader { name, value } if name == "X-Seen" => Some(value.clone()),
            _ => None,
        })
        .expect("X-Seen added");
    assert_eq!(
        seen,
        "connect=localhost 127.0.0.1 helo=client.example from=<s@example.com> rcpts=1 \
         headers=3 body=19 daemon=MTA msg=<1@mx.example>"
    );
    for expected in [
        Modification::InsertHeader {
            index: 0,
            name: "X-First".into(),
            value: "yes".into(),
        },
        Modification::ChangeHeader {
            index: 1,
            name: "Subject".into(),
            value: "[filtered] hello".into(),
        },
        Modification::ChangeHeader {
            index: 2,
            name: "X-Drop".into(),
            value: String::new(),
        },
        Modification::AddRecipient {
            address: "<added@example.org>".into(),
            args: None,
        },
        Modification::DeleteRecipient("<gone@example.org>".into()),
        Modification::ChangeSender {
            address: "<filter@example.org>".into(),
            args: None,
        },
        Modification::ReplaceBody(b"replaced body\r\n".to_vec()),
    ] {
        assert!(
            changes.contains(&expected),
            "{expected:?} not in {changes:?}"
        );
    }
    f.quit();
}

#[test]
fn a_rejected_sender_ends_the_filters_part_in_the_message_only() {
    let process = start_filter();
    let mut f = session(&process);
    assert_eq!(
        f.mail(&args(&["<reject-mail@example.com>"]), &value)
            .unwrap(),
        Verdict::Reject
    );
    // Nothing more is sent for this message.
    assert_eq!(
        f.rcpt(&args(&["<r@example.net>"]), &value).unwrap(),
        Verdict::Continue
    );
    f.abort().unwrap();
    // The next message is filtered again, and can be quarantined or
    // discarded.
    assert_eq!(
        f.mail(&args(&["<s@example.com>"]), &value).unwrap(),
        Verdict::Continue
    );
    f.rcpt(&args(&["<r@example.net>"]), &value).unwrap();
    f.header("Subject", b" quarantine this").unwrap();
    f.end_of_headers(&value).unwrap();
    f.body(b"x\r\n").unwrap();
    let (verdict, changes) = f.end_of_message(&value).unwrap();
    assert_eq!(verdict, Verdict::Accept);
    assert!(changes.contains(&Modification::Quarantine("held by the test".into())));
    f.mail(&args(&["<s@example.com>"]), &value).unwrap();
    f.rcpt(&args(&["<r@example.net>"]), &value).unwrap();
    f.header("Subject", b" discard").unwrap();
    f.end_of_headers(&value).unwrap();
    let (verdict, _) = f.end_of_message(&value).unwrap();
    assert_eq!(verdict, Verdict::Discard);
    f.quit();
}
