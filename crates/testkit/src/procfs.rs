//! What /proc says about the daemon's processes: children, status, and the
//! identity of a PID over time.
//!
//! Linux only, like the daemon's privilege separation it helps to test.

use std::fs;

/// The fields of `/proc/<pid>/stat` the kit needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ProcStat {
    pub(crate) pid: u32,
    pub(crate) ppid: u32,
    /// `R`, `S`, `Z` …
    pub(crate) state: char,
    /// Clock ticks after boot: with the PID, names a process even after the
    /// PID could have been reused.
    pub(crate) start_time: u64,
}

impl ProcStat {
    /// Reads `/proc/<pid>/stat`; `None` if the process is gone.
    pub(crate) fn read(pid: u32) -> Option<ProcStat> {
        let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        Self::parse(&text)
    }

    /// `pid (comm) state ppid … starttime …`; comm may hold spaces and
    /// parentheses, so fields are counted from the last `)`.
    fn parse(text: &str) -> Option<ProcStat> {
        let (head, tail) = text.rsplit_once(')')?;
        let pid = head.split(" (").next()?.trim().parse().ok()?;
        let fields: Vec<&str> = tail.split_whitespace().collect();
        // tail starts at field 3 (state); starttime is field 22.
        Some(ProcStat {
            pid,
            state: fields.first()?.chars().next()?,
            ppid: fields.get(1)?.parse().ok()?,
            start_time: fields.get(19)?.parse().ok()?,
        })
    }

    /// Whether this very process (same start time) still runs; a zombie
    /// counts as gone.
    pub(crate) fn still_running(&self) -> bool {
        matches!(ProcStat::read(self.pid),
            Some(now) if now.start_time == self.start_time && now.state != 'Z')
    }
}

fn all_processes() -> Vec<ProcStat> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(ProcStat::read)
        .collect()
}

/// The PIDs whose parent is `pid` (zombies included), sorted.
pub fn child_pids(pid: u32) -> Vec<u32> {
    let mut children: Vec<u32> = all_processes()
        .into_iter()
        .filter(|p| p.ppid == pid)
        .map(|p| p.pid)
        .collect();
    children.sort_unstable();
    children
}

/// Children, grandchildren … of `pid`, sorted.
pub fn descendant_pids(pid: u32) -> Vec<u32> {
    let mut found: Vec<u32> = descendants(pid).iter().map(|p| p.pid).collect();
    found.sort_unstable();
    found
}

pub(crate) fn descendants(pid: u32) -> Vec<ProcStat> {
    let all = all_processes();
    let mut found: Vec<ProcStat> = Vec::new();
    let mut frontier = vec![pid];
    while let Some(parent) = frontier.pop() {
        for p in all.iter().filter(|p| p.ppid == parent) {
            if !found.iter().any(|f| f.pid == p.pid) {
                found.push(*p);
                frontier.push(p.pid);
            }
        }
    }
    found
}

/// `/proc/<pid>/status`; panics if the process is gone.
pub fn proc_status(pid: u32) -> String {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("cannot read /proc/{pid}/status: {e}"))
}

/// One field of `/proc/<pid>/status` (`"Uid"`, `"Groups"`, `"CapEff"`,
/// `"NoNewPrivs"` …), its value trimmed; panics if the process is gone.
pub fn proc_status_field(pid: u32, key: &str) -> Option<String> {
    proc_status(pid).lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        (k == key).then(|| v.trim().to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    #[test]
    fn parses_stat_with_awkward_comm() {
        let line = "42 (a) b (c) S 7 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 12345 0 0";
        let stat = ProcStat::parse(line).expect("parses");
        assert_eq!(
            (stat.pid, stat.ppid, stat.state, stat.start_time),
            (42, 7, 'S', 12345)
        );
    }

    #[test]
    fn finds_our_child_and_its_status() {
        let me = std::process::id();
        let mut child = Command::new("/bin/cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn cat");
        let pid = child.id();
        assert!(child_pids(me).contains(&pid));
        assert!(descendant_pids(me).contains(&pid));
        assert_eq!(ProcStat::read(pid).map(|s| s.ppid), Some(me));
        assert!(proc_status(pid).contains("Name:\tcat"));
        assert_eq!(proc_status_field(pid, "PPid"), Some(me.to_string()));
        drop(child.stdin.take());
        child.wait().expect("cat exits at EOF");
        assert!(!child_pids(me).contains(&pid));
    }
}
