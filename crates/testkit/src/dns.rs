//! A real DNS server on loopback for a test: Debian's NSD, authoritative
//! for the zones the test writes, on a free port of 127.0.0.1, with its own
//! files in a temporary directory.
//!
//! A zone is given with its records (`Some(text)`) or without
//! (`None`): NSD then knows the zone but has no data for it and answers
//! SERVFAIL, the DNS outage a mailer must defer on. [`Nsd::set_zone`]
//! writes a zone's records and restarts the server on the same port (the
//! outage is over). Names outside every zone are refused; names inside a
//! zone that are not in it are NXDOMAIN.
//!
//! The server is stopped by its PID when the [`Nsd`] is dropped.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::ports::free_port;
use crate::wait::poll_until;

/// How long NSD gets to start answering.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running NSD.
pub struct Nsd {
    dir: tempfile::TempDir,
    port: u16,
    zones: Vec<(String, Option<String>)>,
    child: Option<Child>,
}

impl Nsd {
    /// Starts NSD serving `zones`: `(name, records)`, the records in zone
    /// file syntax relative to the zone's origin (`@ MX 10 mx1`). A SOA
    /// and NS record are added; the TTLs are 1 second, so that a test can
    /// change a zone without waiting for caches.
    pub fn start(zones: &[(&str, Option<&str>)]) -> Nsd {
        let dir = tempfile::Builder::new()
            .prefix("postern-nsd-")
            .tempdir()
            .expect("nsd: temporary directory");
        let mut nsd = Nsd {
            dir,
            port: free_port(),
            zones: zones
                .iter()
                .map(|(name, records)| (name.to_string(), records.map(str::to_string)))
                .collect(),
            child: None,
        };
        nsd.run();
        nsd
    }

    /// The address to give `O NameServers=`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// Gives `zone` these records (it served SERVFAIL before, or other
    /// records) and restarts NSD on the same port.
    pub fn set_zone(&mut self, zone: &str, records: &str) {
        match self.zones.iter_mut().find(|(name, _)| name == zone) {
            Some((_, r)) => *r = Some(records.to_string()),
            None => self
                .zones
                .push((zone.to_string(), Some(records.to_string()))),
        }
        self.stop();
        self.run();
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn run(&mut self) {
        let dir = self.dir.path().display().to_string();
        let mut conf = format!(
            "server:\n  ip-address: 127.0.0.1@{port}\n  port: {port}\n  username: \"\"\n  \
             chroot: \"\"\n  zonesdir: \"{dir}\"\n  database: \"\"\n  \
             zonelistfile: \"{dir}/zone.list\"\n  pidfile: \"{dir}/nsd.pid\"\n  \
             xfrdfile: \"{dir}/xfrd.state\"\n  xfrdir: \"{dir}\"\n  logfile: \"{dir}/nsd.log\"\n  \
             server-count: 1\n  verbosity: 1\nremote-control:\n  control-enable: no\n",
            port = self.port
        );
        for (zone, records) in &self.zones {
            let file = self.path(&format!("{zone}.zone"));
            match records {
                Some(records) => std::fs::write(&file, zone_file(zone, records))
                    .unwrap_or_else(|e| panic!("nsd: cannot write {}: {e}", file.display())),
                None => {
                    let _ = std::fs::remove_file(&file);
                }
            }
            conf += &format!("zone:\n  name: \"{zone}\"\n  zonefile: \"{zone}.zone\"\n");
        }
        let conf_path = self.path("nsd.conf");
        std::fs::write(&conf_path, conf).expect("nsd: write nsd.conf");
        let child = Command::new("nsd")
            .arg("-d")
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("nsd: cannot start (is Debian's nsd installed?): {e}"));
        self.child = Some(child);
        let answering = poll_until(START_TIMEOUT, || answers(self.port).then_some(()));
        if answering.is_none() {
            let log = std::fs::read_to_string(self.path("nsd.log")).unwrap_or_default();
            panic!(
                "nsd did not answer on 127.0.0.1:{} in time; its log:\n{log}",
                self.port
            );
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // A restarted NSD recreates its state from the zone files.
        let _ = std::fs::remove_file(self.path("zone.list"));
        let _ = std::fs::remove_file(self.path("xfrd.state"));
    }

    /// NSD's log so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path("nsd.log")).unwrap_or_default()
    }

    /// The directory of NSD's files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Nsd {
    fn drop(&mut self) {
        self.stop();
    }
}

fn zone_file(zone: &str, records: &str) -> String {
    format!(
        "$ORIGIN {zone}.\n$TTL 1\n@ SOA ns.{zone}. hostmaster.{zone}. 1 3600 600 86400 1\n\
         @ NS ns.{zone}.\n{records}\n"
    )
}

/// True once the server answers a query (any answer: REFUSED for the root
/// is an answer).
fn answers(port: u16) -> bool {
    let Ok(socket) = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)) else {
        return false;
    };
    let _ = socket.set_read_timeout(Some(Duration::from_millis(100)));
    // ID 0x5054, RD, one question: ". IN SOA".
    let query = [
        0x50, 0x54, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x06, 0x00, 0x01,
    ];
    if socket.send_to(&query, (Ipv4Addr::LOCALHOST, port)).is_err() {
        return false;
    }
    let mut buf = [0u8; 512];
    matches!(socket.recv(&mut buf), Ok(n) if n >= 12 && buf[0] == 0x50 && buf[1] == 0x54)
}
