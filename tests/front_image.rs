//! What a front is forked from: the front factory moves posternd's
//! read-only image (its read-only data and text, in 2 MB pages from the
//! image's first byte; posternd is linked for it) onto transparent huge
//! pages before it forks anything, and every front inherits that mapping
//! (one page-table entry per 2 MB) instead of faulting the file's pages
//! in. Checked on the live processes' /proc/PID/smaps and in the log.

mod common;

use common::{builder_with_sink, daemon_with_sink, role_pid, WAIT};
use postern_testkit::Daemon;
use postern_testkit::{running_as_root, Sink, SmtpConversation};

/// One mapping of /proc/PID/smaps.
#[derive(Debug)]
struct Mapping {
    start: u64,
    end: u64,
    perms: String,
    path: Option<String>,
    anon_huge_kb: u64,
}

fn mappings(pid: u32) -> Vec<Mapping> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap();
    let mut out: Vec<Mapping> = Vec::new();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let first = fields.next().unwrap_or_default();
        if let Some((a, b)) = first.split_once('-') {
            if let (Ok(start), Ok(end)) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16)) {
                let perms = fields.next().unwrap_or_default().to_string();
                let path = fields.nth(3).map(str::to_string);
                out.push(Mapping {
                    start,
                    end,
                    perms,
                    path,
                    anon_huge_kb: 0,
                });
                continue;
            }
        }
        if let (Some(kb), Some(last)) = (line.strip_prefix("AnonHugePages:"), out.last_mut()) {
            last.anon_huge_kb = kb.trim().trim_end_matches("kB").trim().parse().unwrap();
        }
    }
    out
}

/// Where posternd's image starts in `pid`: its program headers' address
/// (`AT_PHDR` in /proc/PID/auxv) less their offset in the file, which
/// rust-lld and GNU ld put right after the 64-byte ELF header.
fn image_base(pid: u32) -> u64 {
    const AT_PHDR: u64 = 3;
    let auxv = std::fs::read(format!("/proc/{pid}/auxv")).unwrap();
    let words: Vec<u64> = auxv
        .chunks_exact(8)
        .map(|w| u64::from_ne_bytes(w.try_into().unwrap()))
        .collect();
    let phdr = words
        .chunks_exact(2)
        .find(|pair| pair[0] == AT_PHDR)
        .map(|pair| pair[1])
        .expect("AT_PHDR");
    phdr - 64
}

/// The anonymous read-only mappings (text and read-only data) that lie
/// inside posternd's own image, from its base to its last file mapping.
fn moved_image(pid: u32) -> Vec<Mapping> {
    let all = mappings(pid);
    let base = image_base(pid);
    let high = all
        .iter()
        .filter(|m| m.path.as_deref().is_some_and(|p| p.ends_with("/posternd")))
        .map(|m| m.end)
        .max()
        .expect("posternd's own mappings");
    all.into_iter()
        .filter(|m| {
            m.path.is_none()
                && (m.perms == "r-xp" || m.perms == "r--p")
                && m.start >= base
                && m.end <= high
        })
        .collect()
}

fn transparent_huge_pages_off() -> bool {
    std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
        .map_or(true, |s| s.contains("[never]"))
}

/// systemd's MemoryDenyWriteExecute (the packaged unit sets it), as the
/// kernel's own `PR_SET_MDWE` (`PR_MDWE_REFUSE_EXEC_GAIN`), set by a
/// Python launcher that then execs posternd: exec keeps it, and every
/// process of the tree inherits it. Memory that was writable can never
/// become executable.
const MEMORY_DENY_WRITE_EXECUTE: &str = "\
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(65, 1, 0, 0, 0) != 0:
    sys.exit('PR_SET_MDWE: ' + os.strerror(ctypes.get_errno()))
os.execv(sys.argv[1], sys.argv[1:])
";

#[test]
fn fronts_inherit_the_factory_text_on_huge_pages() {
    let sink = Sink::start();
    let daemon = daemon_with_sink(&sink, &["O LogLevel=11"]);
    check_moved_image(&daemon);
}

#[test]
fn the_image_moves_under_memory_deny_write_execute() {
    // Copied through /proc/self/mem into memory mapped read-only and
    // executable from the start, since a writable copy may not be made
    // executable; and the whole tree works under the setting.
    let sink = Sink::start();
    let daemon = builder_with_sink(&sink, &["O LogLevel=11"], &[])
        .launcher("python3", &["-c", MEMORY_DENY_WRITE_EXECUTE])
        .start();
    check_moved_image(&daemon);
}

/// posternd's read-only image is on huge pages in the factory and a live
/// front (when the kernel has them to give), and a session works on it.
fn check_moved_image(daemon: &Daemon) {
    let mut client = SmtpConversation::connect(daemon.smtp_addr());
    client.read_reply();
    client.cmd("EHLO client.example", "250");
    let line = daemon.wait_for_log("MB of posternd's image on huge pages", WAIT);
    let logged_mb: u64 = line
        .split("front factory: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {line:?}"));
    if transparent_huge_pages_off() {
        // Nothing to be had: the image stays the file's.
        assert_eq!(logged_mb, 0, "{line}");
        return;
    }
    // posternd is linked with its segments on 2 MB boundaries: its
    // read-only data and its text, at least a huge page each.
    assert!(logged_mb >= 4 && logged_mb % 2 == 0, "{line}");
    if !running_as_root() {
        // The processes are not dumpable: their smaps are root's to read.
        client.cmd("QUIT", "221");
        return;
    }
    let factory = role_pid(daemon, "forker");
    let front = role_pid(daemon, "front");
    let moved = moved_image(factory);
    // The read-only data (from the image's first byte) and the text.
    assert_eq!(moved.first().map(|m| m.start), Some(image_base(factory)));
    assert!(moved.iter().any(|m| m.perms == "r-xp"), "{moved:?}");
    let total: u64 = moved.iter().map(|m| m.end - m.start).sum();
    assert_eq!(total >> 20, logged_mb);
    for m in &moved {
        assert_eq!(m.start % (2 << 20), 0, "{m:?}");
        assert_eq!(
            m.anon_huge_kb * 1024,
            m.end - m.start,
            "not all huge: {m:?}"
        );
    }
    // The front has the very same mappings, huge pages and all, without
    // having touched them.
    let in_front = moved_image(front);
    assert_eq!(
        in_front
            .iter()
            .map(|m| (m.start, m.end, m.anon_huge_kb))
            .collect::<Vec<_>>(),
        moved
            .iter()
            .map(|m| (m.start, m.end, m.anon_huge_kb))
            .collect::<Vec<_>>()
    );
    // And the session works on it.
    client.cmd("NOOP", "250");
    client.cmd("QUIT", "221");
}
