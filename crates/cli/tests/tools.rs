//! The tools as real processes, started through symlinks named `sendmail`,
//! `mailq`, `runq` and `newaliases`, talking to a fake master: a Unix
//! listener that records each request (and the content of a submitted
//! message's descriptor) and answers with a scripted `ControlReply`.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread::JoinHandle;

#[path = "tools/bs.rs"]
mod bs;

use postern_ipc::{
    control_channel, BodyType, ControlHello, ControlReply, ControlRequest, EnvelopeRecipient,
    Notify, QueueAction, QueueEntry, QueueId, QueueRecipient, QueueSelector, Ret, SelectorField,
    Submission, Sysexit, PROTOCOL_VERSION,
};

/// The message as text, the Date: header's value (today) made `*`.
fn without_date(message: &[u8]) -> String {
    let text = String::from_utf8(message.to_vec()).unwrap();
    let start = if text.starts_with("Date: ") {
        0
    } else {
        text.find("\r\nDate: ").expect("a Date: header") + "\r\n".len()
    } + "Date: ".len();
    let end = start + text[start..].find("\r\n").unwrap();
    let date = &text[start..end];
    assert!(chrono::DateTime::parse_from_rfc2822(date).is_ok(), "{date}");
    format!("{}*{}", &text[..start], &text[end..])
}

/// The user the tests run as, as the tools name the caller.
fn context_user() -> String {
    postern_cli::context::caller().1
}

fn qid(text: &str) -> QueueId {
    text.parse().expect("a valid queue id")
}

struct Fake {
    dir: tempfile::TempDir,
    socket: PathBuf,
    config: PathBuf,
}

/// What the fake master saw: the request and, for a submission, the bytes
/// of the attached file.
struct Seen {
    hello: ControlHello,
    message: Option<Vec<u8>>,
}

impl Fake {
    fn new() -> Fake {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("control.sock");
        let config = dir.path().join("postern.cf");
        std::fs::write(
            &config,
            format!("O ControlSocket={}\nDj test.example\n", socket.display()),
        )
        .unwrap();
        // Readable by the unprivileged user some tests run the tools as.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        for name in ["sendmail", "mailq", "runq", "newaliases"] {
            std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_postern"), dir.path().join(name))
                .unwrap();
        }
        Fake {
            dir,
            socket,
            config,
        }
    }

    /// Answers one connection per reply, in order.
    fn serve(&self, replies: Vec<ControlReply>) -> JoinHandle<Vec<Seen>> {
        let listener = UnixListener::bind(&self.socket).unwrap();
        std::fs::set_permissions(&self.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            for reply in replies {
                let (stream, _) = listener.accept().unwrap();
                let mut channel = control_channel(stream);
                let (hello, fds) = channel.recv().unwrap();
                let message = fds.into_iter().next().map(|fd| {
                    let mut bytes = Vec::new();
                    File::from(fd).read_to_end(&mut bytes).unwrap();
                    bytes
                });
                channel.send(&reply, &[]).unwrap();
                seen.push(Seen { hello, message });
            }
            seen
        })
    }

    fn tool(&self, name: &str) -> PathBuf {
        if name == "postern" {
            PathBuf::from(env!("CARGO_BIN_EXE_postern"))
        } else {
            self.dir.path().join(name)
        }
    }

    fn run(&self, name: &str, args: &[&str], stdin: &str) -> Output {
        run_with(&self.tool(name), args, stdin, &self.config)
    }

    /// Runs the tool as `nobody` (only possible as root), started under
    /// `name` through argv[0].
    fn run_as_nobody(&self, name: &str, args: &[&str], stdin: &str) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_postern"));
        command.arg0(name).uid(NOBODY).gid(NOBODY);
        spawn(command, args, stdin, &self.config)
    }
}

const NOBODY: u32 = 65534;

fn run_with(tool: &Path, args: &[&str], stdin: &str, config: &Path) -> Output {
    spawn(Command::new(tool), args, stdin, config)
}

fn spawn(mut command: Command, args: &[&str], stdin: &str, config: &Path) -> Output {
    let mut child = command
        .args(args)
        .env("POSTERN_CONFIG", config)
        .env("TZ", "UTC")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let _ = input.write_all(stdin.as_bytes());
    drop(input);
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn is_root() -> bool {
    // The real uid, from /proc.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(str::to_string)
        })
        .is_some_and(|l| l.split_whitespace().nth(1) == Some("0"))
}

fn one(seen: JoinHandle<Vec<Seen>>) -> Seen {
    let mut seen = seen.join().unwrap();
    assert_eq!(seen.len(), 1);
    let s = seen.remove(0);
    assert_eq!(s.hello.version, PROTOCOL_VERSION);
    s
}

#[test]
fn mailq_prints_sendmails_listing() {
    let fake = Fake::new();
    let entry = QueueEntry {
        queue_id: qid("0AP8Cx00006826"),
        size: 412,
        created: 1_606_293_000,
        sender: "alice@example.net".into(),
        body: None,
        held: false,
        quarantine: None,
        in_progress: false,
        attempts: 1,
        recipients: vec![QueueRecipient {
            address: "bob@example.com".into(),
            state: "deferred".into(),
            last_reply: Some("451 4.3.0 Try again later".into()),
        }],
    };
    let seen = fake.serve(vec![ControlReply::Queue {
        directory: "/var/spool/postern".into(),
        entries: vec![entry],
    }]);
    let out = fake.run("mailq", &[], "");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        concat!(
            "\t\t/var/spool/postern (1 request)\n",
            "-----Q-ID----- --Size-- -----Q-Time----- ------------Sender/Recipient-----------\n",
            "0AP8Cx00006826      412 Wed Nov 25 08:30 <alice@example.net>\n",
            "                 (Deferred: 451 4.3.0 Try again later)\n",
            "\t\t\t\t\t <bob@example.com>\n",
            "\t\tTotal requests: 1\n",
        )
    );
    assert_eq!(one(seen).hello.request, ControlRequest::ListQueue);
}

#[test]
fn sendmail_bp_on_an_empty_queue() {
    let fake = Fake::new();
    let seen = fake.serve(vec![ControlReply::Queue {
        directory: "/var/spool/postern".into(),
        entries: vec![],
    }]);
    let out = fake.run("sendmail", &["-bp"], "");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        stdout(&out),
        "/var/spool/postern is empty\n\t\tTotal requests: 0\n"
    );
    assert_eq!(one(seen).hello.request, ControlRequest::ListQueue);
}

#[test]
fn mailq_refused_by_restrictmailq() {
    let fake = Fake::new();
    let seen = fake.serve(vec![ControlReply::Refused {
        message: "You are not permitted to see the queue".into(),
        exit_code: Sysexit::NoPerm,
    }]);
    let out = fake.run("mailq", &[], "");
    // sendmail 8.17's answer exactly: standard output, a zero count, 0.
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        stdout(&out),
        "You are not permitted to see the queue\n\t\tTotal requests: 0\n"
    );
    one(seen);
}

#[test]
fn runq_with_a_negated_selector() {
    let fake = Fake::new();
    let seen = fake.serve(vec![ControlReply::Done {
        message: String::new(),
    }]);
    let out = fake.run("runq", &["-q!Rexample.com"], "");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
    assert_eq!(
        one(seen).hello.request,
        ControlRequest::RunQueue {
            selector: Some(QueueSelector {
                field: SelectorField::Recipient,
                substring: "example.com".into(),
                negate: true,
            })
        }
    );
}

#[test]
fn sendmail_q_and_restrictqrun() {
    let fake = Fake::new();
    let seen = fake.serve(vec![
        ControlReply::Done {
            message: String::new(),
        },
        ControlReply::Refused {
            message: "You do not have permission to process the queue".into(),
            exit_code: Sysexit::NoPerm,
        },
    ]);
    let out = fake.run("sendmail", &["-q"], "");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = fake.run("sendmail", &["-qSalice"], "");
    assert_eq!(out.status.code(), Some(77));
    assert_eq!(
        stdout(&out),
        "You do not have permission to process the queue\n"
    );
    let seen = seen.join().unwrap();
    assert_eq!(
        seen[0].hello.request,
        ControlRequest::RunQueue { selector: None }
    );
    assert!(matches!(
        &seen[1].hello.request,
        ControlRequest::RunQueue { selector: Some(s) } if s.field == SelectorField::Sender && s.substring == "alice"
    ));
}

fn rcpt(address: &str, notify: Option<Notify>) -> EnvelopeRecipient {
    EnvelopeRecipient {
        address: address.into(),
        notify,
        orcpt: None,
        target: None,
    }
}

/// `-N`, `-R`, `-V`, `-B` travel in the Submission as MAIL FROM's and
/// RCPT TO's parameters do in a front's envelope; with `-t`, the
/// recipients found in the headers get -N's NOTIFY too.
#[test]
fn sendmail_passes_the_dsn_parameters_on() {
    let fake = Fake::new();
    let seen = fake.serve(vec![ControlReply::Submitted {
        queue_id: qid("0AP8Cx00006826"),
    }]);
    let out = fake.run(
        "sendmail",
        &[
            "-N",
            "success,delay",
            "-R",
            "hdrs",
            "-V",
            "env+2B1",
            "-B",
            "8bitmime",
            "-t",
        ],
        "To: bob@example.com\nSubject: hi\n\nbody\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let notify = Notify {
        success: true,
        delay: true,
        ..Default::default()
    };
    match one(seen).hello.request {
        ControlRequest::Submit(s) => {
            assert_eq!(s.recipients, [rcpt("bob@example.com", Some(notify))]);
            assert_eq!(s.ret, Some(Ret::Hdrs));
            assert_eq!(s.envid.as_deref(), Some("env+1"));
            assert_eq!(s.body, Some(BodyType::EightBitMime));
        }
        other => panic!("{other:?}"),
    }
}

/// A value sendmail refuses stops the tool before it reads the message
/// or asks master anything: exit 64, nothing submitted (no master
/// listens here: a tool that went on would exit 75, cannot connect).
#[test]
fn sendmail_refuses_bad_dsn_values_before_submitting() {
    let fake = Fake::new();
    for (args, text) in [
        (
            &["-N", "bogus", "bob@example.com"][..],
            "Invalid -N argument",
        ),
        (
            &["-N", "never,success", "bob@example.com"],
            "Invalid -N argument",
        ),
        (&["-R", "xyz", "bob@example.com"], "Invalid -R value"),
        (
            &["-V", "a+zz", "bob@example.com"],
            "Invalid syntax in -V flag",
        ),
        (
            &["-B", "binarymime", "bob@example.com"],
            "Illegal body type",
        ),
    ] {
        let out = fake.run("sendmail", args, "Subject: hi\n\nbody\n");
        assert_eq!(out.status.code(), Some(64), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(text), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn sendmail_submits_up_to_the_lone_dot() {
    let fake = Fake::new();
    let seen = fake.serve(vec![ControlReply::Submitted {
        queue_id: qid("0AP8Cx00006826"),
    }]);
    let out = fake.run(
        "sendmail",
        &[
            "-fme@example.net",
            "-F",
            "Me Myself",
            "-oem",
            "bob@example.com,carol@example.com",
        ],
        "Subject: hi\n\n..stuffed stays\nbody\n.\nafter the dot\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
    let seen = one(seen);
    assert_eq!(
        seen.hello.request,
        ControlRequest::Submit(Submission {
            sender: Some("me@example.net".into()),
            recipients: vec![
                rcpt("bob@example.com", None),
                rcpt("carol@example.com", None)
            ],
            envid: None,
            ret: None,
            body: None,
            from_headers: false,
            message_id: None,
            verbose: false,
            smtp: false,
            session: None,
        })
    );
    // The header work is done here, as the caller: From: with -F's name
    // and Date: added, the body up to the lone dot, unstuffed by nobody.
    assert_eq!(
        without_date(&seen.message.unwrap()),
        "Date: *\r\nFrom: \"Me Myself\" <me@example.net>\r\nSubject: hi\n\r\n..stuffed stays\nbody\n"
    );
}

#[test]
fn sendmail_oi_t_keeps_dots_and_extracts() {
    let fake = Fake::new();
    let seen = fake.serve(vec![ControlReply::Submitted {
        queue_id: qid("0AP8Cx00006826"),
    }]);
    let text = "To: bob@example.com\n\nline\n.\nmore\n";
    let out = fake.run("sendmail", &["-oi", "-t", "-v"], text);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // -v names the recipients found in the headers.
    assert_eq!(
        stdout(&out),
        "bob@example.com... Queued\nQueued as 0AP8Cx00006826\n"
    );
    let seen = one(seen);
    let ControlRequest::Submit(sub) = seen.hello.request else {
        panic!("not a submission")
    };
    assert_eq!(sub.recipients, [rcpt("bob@example.com", None)]);
    assert!(sub.from_headers);
    assert_eq!(sub.sender, None);
    assert_eq!(
        without_date(&seen.message.unwrap()),
        "Date: *\r\nFrom: nobody@test.example\r\nTo: bob@example.com\n\r\nline\n.\nmore\n"
            .replace("nobody", &context_user())
    );
}

#[test]
fn sendmail_verbose_lists_recipients() {
    let fake = Fake::new();
    let seen = fake.serve(vec![ControlReply::Submitted {
        queue_id: qid("0AP8Cx00000001"),
    }]);
    let out = fake.run("sendmail", &["-v", "bob@example.com"], "x\n");
    assert_eq!(
        stdout(&out),
        "bob@example.com... Queued\nQueued as 0AP8Cx00000001\n"
    );
    one(seen);
}

#[test]
fn submission_failure_is_printed_with_its_status() {
    let fake = Fake::new();
    let seen = fake.serve(vec![ControlReply::Failed {
        message: "Message exceeds maximum fixed size (1000)".into(),
        exit_code: Sysexit::DataErr,
    }]);
    let out = fake.run("sendmail", &["bob@example.com"], "x\n");
    assert_eq!(out.status.code(), Some(65));
    assert_eq!(stderr(&out), "Message exceeds maximum fixed size (1000)\n");
    one(seen);
}

#[test]
fn unreachable_daemon_is_a_temporary_failure() {
    let fake = Fake::new();
    let out = fake.run("sendmail", &["bob@example.com"], "Subject: x\n\nbody\n");
    assert_eq!(out.status.code(), Some(75));
    let err = stderr(&out);
    assert!(
        err.starts_with(&format!(
            "sendmail: cannot connect to the mail daemon at {}: ",
            fake.socket.display()
        )),
        "{err}"
    );
    let out = fake.run("mailq", &[], "");
    assert_eq!(out.status.code(), Some(75));
}

#[test]
fn missing_recipients_and_bad_flags_are_usage_errors() {
    let fake = Fake::new();
    let out = fake.run("sendmail", &[], "x\n");
    assert_eq!(out.status.code(), Some(64));
    assert_eq!(stderr(&out), "Recipient names must be specified\n");
    let out = fake.run("sendmail", &["-x", "bob@example.com"], "x\n");
    assert_eq!(out.status.code(), Some(64));
    assert_eq!(stderr(&out), "sendmail: unknown option -x\n");
    let out = fake.run("sendmail", &["-oQ/tmp", "bob@example.com"], "x\n");
    assert_eq!(out.status.code(), Some(64));
    let out = fake.run("mailq", &["-z"], "");
    assert_eq!(stderr(&out), "mailq: unknown option -z\n");
}

#[test]
fn config_flag_only_for_root() {
    let fake = Fake::new();
    let config = fake.config.display().to_string();
    if is_root() {
        let seen = fake.serve(vec![ControlReply::Queue {
            directory: "/q".into(),
            entries: vec![],
        }]);
        // -C wins over the environment.
        let out = run_with(
            &fake.tool("mailq"),
            &["-C", &config],
            "",
            Path::new("/nonexistent"),
        );
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert_eq!(stdout(&out), "/q is empty\n\t\tTotal requests: 0\n");
        one(seen);
        let out = fake.run_as_nobody("sendmail", &["-C", &config, "-bp"], "");
        assert_eq!(out.status.code(), Some(64));
        assert_eq!(stderr(&out), "Permission denied (real uid not trusted)\n");
        let out = fake.run_as_nobody("postern", &["-C", &config, "mailq"], "");
        assert_eq!(out.status.code(), Some(64));
        assert_eq!(stderr(&out), "Permission denied (real uid not trusted)\n");
    } else {
        let out = fake.run("sendmail", &["-C", &config, "-bp"], "");
        assert_eq!(out.status.code(), Some(64));
        assert_eq!(stderr(&out), "Permission denied (real uid not trusted)\n");
        let out = fake.run("sendmail", &["-X/tmp/traffic", "bob@example.com"], "x\n");
        assert_eq!(out.status.code(), Some(64));
        assert_eq!(stderr(&out), "Permission denied (real uid not trusted)\n");
        let out = fake.run("runq", &["-q15m"], "");
        assert_eq!(out.status.code(), Some(64));
        assert_eq!(stderr(&out), "Permission denied (real uid not trusted)\n");
    }
}

#[test]
fn bv_prints_masters_verdict() {
    let fake = Fake::new();
    let verdict =
        "bob@example.com... deliverable: mailer esmtp, host [192.0.2.1], user bob@example.com";
    let seen = fake.serve(vec![ControlReply::Verified {
        message: verdict.into(),
        exit_code: Sysexit::Ok,
    }]);
    let out = fake.run("sendmail", &["-bv", "bob@example.com"], "");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), format!("{verdict}\n"));
    assert_eq!(
        one(seen).hello.request,
        ControlRequest::Verify {
            addresses: vec!["bob@example.com".into()]
        }
    );
}

/// An undeliverable address: its line on standard output, and sendmail's
/// exit status 67 (EX_NOUSER).
#[test]
fn bv_exits_67_for_an_unknown_user() {
    let fake = Fake::new();
    let lines = "root... deliverable: mailer local, user root\nnosuchuser... User unknown\n";
    fake.serve(vec![ControlReply::Verified {
        message: lines.into(),
        exit_code: Sysexit::NoUser,
    }]);
    let out = fake.run("sendmail", &["-bv", "root", "nosuchuser"], "");
    assert_eq!(out.status.code(), Some(67));
    assert_eq!(stdout(&out), lines);
}

#[test]
fn newaliases_checks_the_aliases_file() {
    let fake = Fake::new();
    // The aliases file beside the configuration in use, not /etc/mail's.
    let aliases = fake.config.with_file_name("aliases");
    std::fs::write(&aliases, "postmaster: root\nMAILER-DAEMON: postmaster\n").unwrap();
    for (name, args) in [("newaliases", &[][..]), ("sendmail", &["-bi"][..])] {
        let out = fake.run(name, args, "");
        assert_eq!(out.status.code(), Some(0), "{name}");
        assert_eq!(
            stdout(&out),
            format!(
                "{}: 2 aliases, longest 10 bytes, 37 bytes total\n",
                aliases.display()
            )
        );
        assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    }
    // Each bad line named, nothing on standard output, exit 78.
    std::fs::write(&aliases, "postmaster: root\nstaff alice\nlist: bob@@x\n").unwrap();
    let out = fake.run("newaliases", &[], "");
    assert_eq!(out.status.code(), Some(78));
    assert_eq!(stdout(&out), "");
    let p = aliases.display();
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!("{p}:2: missing colon\n{p}:3: bob@@x... bad address (invalid domain)\n")
    );
    // A missing required alias is a warning.
    std::fs::write(&aliases, "root: alice\n").unwrap();
    let out = fake.run("newaliases", &[], "");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "WARNING: {p}: no alias for postmaster\nWARNING: {p}: no alias for MAILER-DAEMON\n"
        )
    );
}

#[test]
fn postern_queue_and_runq_subcommands() {
    let fake = Fake::new();
    let seen = fake.serve(vec![
        ControlReply::Done {
            message: "0AP8Cx00006826: held".into(),
        },
        ControlReply::Done {
            message: String::new(),
        },
    ]);
    let out = fake.run("postern", &["queue", "hold", "0AP8Cx00006826"], "");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "0AP8Cx00006826: held\n");
    let out = fake.run("postern", &["runq", "Sbob"], "");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let seen = seen.join().unwrap();
    assert_eq!(
        seen[0].hello.request,
        ControlRequest::Queue {
            action: QueueAction::Hold,
            queue_id: qid("0AP8Cx00006826")
        }
    );
    assert!(
        matches!(&seen[1].hello.request, ControlRequest::RunQueue { selector: Some(s) } if s.substring == "bob")
    );
    let out = fake.run("postern", &["queue", "hold", "../x"], "");
    assert_eq!(out.status.code(), Some(64));
    let out = fake.run("postern", &["frobnicate"], "");
    assert_eq!(out.status.code(), Some(64));
}

#[test]
fn postern_check_config() {
    let fake = Fake::new();
    // The file's part; what posternd then checks (tables, files, users)
    // is tested end to end, in tests/check_config.rs.
    let out = fake.run("postern", &["check-config"], "");
    let text = stdout(&out);
    assert!(
        text.lines()
            .any(|l| l == format!("O ControlSocket={}", fake.socket.display())),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l == "Djtest.example" || l == "Dj test.example"),
        "{text}"
    );
    let bad = fake.dir.path().join("bad.cf");
    std::fs::write(&bad, "O LogLevle=9\n").unwrap();
    let out = fake.run(
        "postern",
        &["check-config", "-C", &bad.display().to_string()],
        "",
    );
    assert_eq!(out.status.code(), Some(78));
    let err = stderr(&out);
    assert!(err.starts_with(&format!("{}:1: ", bad.display())), "{err}");
    let out = fake.run("postern", &["version"], "");
    assert_eq!(
        stdout(&out),
        format!("postern {}\n", env!("CARGO_PKG_VERSION"))
    );
}
