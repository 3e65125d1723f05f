//! Tests of the delivery client in one process: [`run`] on a thread, the
//! queue runner's end of a socketpair in the test ([`Harness`]), master's
//! end served by a thread that runs the local delivery agent's code in
//! place ([`stand_in_master`]: no uid change), an SMTP sink from
//! `postern-testkit` on 127.0.0.1, and Maildirs in a tempdir.
//! This file holds the helpers the module tests share; `end_to_end.rs`
//! delivers, `channel.rs` checks the conversation with the queue runner,
//! `starttls.rs` delivers over STARTTLS to a small TLS server of its own,
//! `timeouts.rs` stalls at each phase for each `Timeout.*`.

mod channel;
mod end_to_end;
mod starttls;
mod timeouts;
mod tls_requirements;

use std::net::SocketAddr;
use std::sync::Mutex;

use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use postern_config::{Config, LocalHostNames, Mailertable};
use postern_ipc::{
    delivery_channel, delivery_master_channel, master_delivery_channel, queue_delivery_channel,
    DeliveryJob, DeliveryReport, DeliveryToMaster, DeliveryToQueue, EnvelopeRecipient,
    QueueDeliveryChannel, QueueToDelivery, RecipientStatus, PROTOCOL_VERSION,
};

use super::run;
use crate::privsep::unprivileged_for_tests;
use crate::settings::{Settings, TlsContexts};

pub const WAIT: Duration = Duration::from_secs(20);

/// Settings for tests: `local.test` is local, `MailboxDirectory` is
/// `<tempdir>/mail` (created), the mailertable holds `mailertable`, and
/// `smart_host` (when not empty) is SMART_HOST. `extra` adds .cf lines.
pub fn settings_full(
    mailertable: &str,
    smart_host: &str,
    extra: &str,
) -> (tempfile::TempDir, Settings) {
    let dir = tempfile::tempdir().unwrap();
    let mail = dir.path().join("mail");
    std::fs::create_dir(&mail).unwrap();
    let cf = dir.path().join("postern.cf");
    let mut text = format!(
        "Djdelivery.test\nO MailboxDirectory={}\n{extra}",
        mail.display()
    );
    if !smart_host.is_empty() {
        text.push_str(&format!("define(`SMART_HOST', `{smart_host}')dnl\n"));
    }
    let config = Config::parse_str(&text, &cf).unwrap();
    std::fs::write(config.table_path("mailertable"), mailertable).unwrap();
    let mailertable = Mailertable::load(&config.table_path("mailertable")).unwrap();
    let client = postern_tls::ClientTls::from_files(&config.tls, postern_tls::Keys::Load)
        .expect("client TLS files");
    let settings = Settings {
        hostname: config.hostname(),
        local_names: LocalHostNames::from_names(["local.test", "localhost", "delivery.test"]),
        mailertable,
        access: postern_config::AccessMap::load(&config.table_path("access")).unwrap(),
        relay_domains: postern_config::RelayDomains::default(),
        // As master builds it: the client context always exists.
        tls: TlsContexts {
            server: None,
            client: Some(client),
        },
        config,
    };
    (dir, settings)
}

/// Every `STARTTLS=client` line the delivery client logged, whatever the
/// LogLevel: (the server's address, the line's LogLevel, the text).
static TLS_LINES: Mutex<Vec<(SocketAddr, u32, String)>> = Mutex::new(Vec::new());

/// Called by `outbound.rs` for each `STARTTLS=client` line.
pub fn record_tls_line(addr: SocketAddr, level: crate::log::Level, text: &str) {
    TLS_LINES.lock().unwrap_or_else(|e| e.into_inner()).push((
        addr,
        level as u32,
        text.to_string(),
    ));
}

/// The `STARTTLS=client` lines logged for connections to `addr`.
pub fn tls_lines(addr: SocketAddr) -> Vec<(u32, String)> {
    TLS_LINES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|(a, ..)| *a == addr)
        .map(|(_, level, text)| (*level, text.clone()))
        .collect()
}

/// [`settings_full`] without extra lines.
pub fn settings_with(mailertable: &str, smart_host: &str) -> (tempfile::TempDir, Settings) {
    settings_full(mailertable, smart_host, "")
}

/// A job from `sender@example.org` to `recipients`.
pub fn job(n: u64, recipients: &[&str]) -> DeliveryJob {
    DeliveryJob {
        job: n,
        queue_id: format!("6AP8Cx{n:08}").parse().expect("test queue id"),
        sender: "sender@example.org".into(),
        recipients: recipients
            .iter()
            .map(|a| EnvelopeRecipient {
                address: a.to_string(),
                notify: None,
                orcpt: None,
                target: None,
            })
            .collect(),
        envid: None,
        ret: None,
        verbose: false,
        eight_bit: false,
        size: 0,
        arrival: 0,
        deliver_by: None,
        through: None,
    }
}

/// The queue runner's side of a running delivery client.
pub struct Harness {
    pub queue: QueueDeliveryChannel,
    pub thread: Option<JoinHandle<i32>>,
}

impl Harness {
    /// Starts `run` and exchanges Hello.
    pub fn start(settings: Settings) -> Harness {
        let mut h = Harness::start_raw(settings);
        h.send(&QueueToDelivery::Hello {
            version: PROTOCOL_VERSION,
        });
        h
    }

    /// Starts `run` and reads its Hello, sending none.
    pub fn start_raw(settings: Settings) -> Harness {
        let (a, b) = UnixStream::pair().unwrap();
        b.set_read_timeout(Some(WAIT)).unwrap();
        let (m, d) = UnixStream::pair().unwrap();
        let mailboxes = settings.config.mailbox_directory.clone();
        let hostname = settings.hostname.clone();
        std::thread::spawn(move || stand_in_master(m, &mailboxes, &hostname));
        let thread = std::thread::spawn(move || {
            run(
                unprivileged_for_tests(),
                settings,
                delivery_channel(a),
                delivery_master_channel(d),
            )
        });
        let mut queue = queue_delivery_channel(b);
        let (hello, fds) = queue.recv().expect("Hello from the delivery client");
        assert_eq!(
            hello,
            DeliveryToQueue::Hello {
                version: PROTOCOL_VERSION
            }
        );
        assert!(fds.is_empty());
        Harness {
            queue,
            thread: Some(thread),
        }
    }

    pub fn send(&mut self, msg: &QueueToDelivery) {
        self.queue.send(msg, &[]).unwrap();
    }

    pub fn deliver(&mut self, mut job: DeliveryJob, body: &[u8]) {
        let mut data = tempfile::tempfile().unwrap();
        data.write_all(body).unwrap();
        job.size = body.len() as u64;
        // The delivery client gets a read-only descriptor, as from the queue runner.
        let path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&data));
        let ro = std::fs::File::open(path).unwrap();
        self.queue
            .send(&QueueToDelivery::Deliver(job), &[ro.as_fd()])
            .unwrap();
    }

    pub fn report(&mut self) -> DeliveryReport {
        match self.queue.recv().expect("a Done report") {
            (DeliveryToQueue::Done(report), fds) if fds.is_empty() => report,
            other => panic!("unexpected {other:?}"),
        }
    }

    /// Waits (bounded) for `run` to return.
    pub fn exit_code(&mut self) -> i32 {
        join_bounded(self.thread.take().unwrap())
    }
}

/// master's part for local deliveries: each request's agent is run here,
/// on this thread, as the test's own user, and reports on the socket that
/// came with the request, as a real agent does. Ends with the channel.
fn stand_in_master(stream: UnixStream, mailboxes: &Path, hostname: &str) {
    let mut channel = master_delivery_channel(stream);
    while let Ok((msg, fds)) = channel.recv() {
        let DeliveryToMaster::Local(request) = msg else {
            continue;
        };
        let [message, report]: [std::os::fd::OwnedFd; 2] = fds.try_into().unwrap();
        let me = crate::privsep::current_identity();
        let job = postern_ipc::AgentJob {
            queue_id: request.queue_id,
            mailbox: request.user,
            uid: me.uid.as_raw(),
            gid: me.gid.as_raw(),
            groups: Vec::new(),
            home: std::path::PathBuf::new(),
            target: postern_ipc::MailboxTarget::Maildir {
                dir: mailboxes.to_path_buf(),
            },
            sender: request.sender,
            recipients: request.recipients,
            size: request.size,
            hostname: hostname.to_string(),
            read_forward: false,
        };
        let outcome = crate::local::deliver_in_place(&job, std::fs::File::from(message));
        let bytes = postern_ipc::frame::encode(&outcome, 0, postern_ipc::LOCAL_LIMIT).unwrap();
        let _ = std::fs::File::from(report).write_all(&bytes);
    }
}

pub fn join_bounded(thread: JoinHandle<i32>) -> i32 {
    let deadline = Instant::now() + WAIT;
    while !thread.is_finished() {
        assert!(Instant::now() < deadline, "delivery client did not exit");
        std::thread::sleep(Duration::from_millis(10));
    }
    thread.join().unwrap()
}

pub fn status_of(
    report: &DeliveryReport,
    address: &str,
) -> (RecipientStatus, String, String, String) {
    let matching: Vec<_> = report
        .recipients
        .iter()
        .filter(|r| r.address == address)
        .collect();
    assert_eq!(matching.len(), 1, "{address} in {report:?}");
    let r = matching[0];
    (r.status, r.reply.clone(), r.relay.clone(), r.mailer.clone())
}

pub fn maildir_files(root: &Path, user: &str) -> Vec<Vec<u8>> {
    let new = root.join("mail").join(user).join("Maildir/new");
    std::fs::read_dir(new)
        .map(|rd| {
            rd.map(|e| std::fs::read(e.unwrap().path()).unwrap())
                .collect()
        })
        .unwrap_or_default()
}

/// A local user every machine has (local delivery needs a real one).
pub const LOCAL_USER: &str = "root";

/// A body with leading dots, a lone dot line and smuggling-shaped text.
pub const BODY: &[u8] =
    b"Subject: dots\r\n\r\n.leading\r\n..two\r\n.\r\nmiddle . dot\r\n.\r\n\r\nend\r\n";
