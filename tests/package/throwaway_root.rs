//! A throwaway copy of this machine's root file system, for installing a
//! package with the real `dpkg` without touching the machine's own packages.
//!
//! An overlay with `/` as its lower layer and a tmpfs as its upper one,
//! mounted in a private mount namespace that only a holder process
//! (`unshare --mount --propagation private … sleep`) and the commands run
//! in it (`nsenter --mount`, then `chroot`) can see. Whatever is written
//! there, dpkg's database included, lands in the tmpfs; the machine sees
//! nothing, not even the mounts. Killing the holder (Drop) takes the
//! namespace, its mounts and the tmpfs away with it.
//!
//! The root gets its own /proc, the machine's /dev (for /dev/null and
//! /dev/urandom), and a fresh /run and /tmp, as a booted system has: there
//! is no /run/systemd/system, so maintainer scripts see a system without a
//! running systemd (as in an image being built) and start nothing. The
//! network is the machine's: a daemon in the root reaches 127.0.0.1.
//!
//! From the test process the root's files are reached through
//! `/proc/<holder>/root`, which resolves paths in the holder's mount
//! namespace ([`ThrowawayRoot::path`]). Needs root.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};

/// The mounted root and the process that keeps its namespace alive.
pub struct ThrowawayRoot {
    holder: Child,
    /// The tmpfs's mount point (inside the namespace; an empty directory
    /// outside it): `upper/`, `work/` and the overlay at `root/`.
    dir: tempfile::TempDir,
}

/// Set up in the new namespace by the holder, which then only waits.
const SETUP: &str = r#"
set -e
d=$1
mount -t tmpfs -o mode=0755 postern-throwaway "$d"
mkdir "$d/upper" "$d/work" "$d/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$d/upper,workdir=$d/work" "$d/root"
mount -t proc proc "$d/root/proc"
mount --rbind /dev "$d/root/dev"
mount -t tmpfs -o mode=0755 tmpfs "$d/root/run"
mount -t tmpfs -o mode=1777 tmpfs "$d/root/tmp"
echo ready
exec sleep infinity
"#;

impl ThrowawayRoot {
    /// Mounts the root; panics with the holder's error output if it
    /// cannot.
    pub fn new() -> ThrowawayRoot {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut holder = Command::new("unshare")
            .args([
                "--mount",
                "--propagation",
                "private",
                "--",
                "sh",
                "-c",
                SETUP,
                "sh",
            ])
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot run unshare (util-linux)");
        let stdout: ChildStdout = holder.stdout.take().expect("piped stdout");
        let mut line = String::new();
        // `ready` comes after the last mount; end of file means the
        // script failed (set -e) and the holder is gone.
        BufReader::new(stdout).read_line(&mut line).unwrap();
        if line.trim() != "ready" {
            let mut err = String::new();
            if let Some(mut e) = holder.stderr.take() {
                e.read_to_string(&mut err).ok();
            }
            let _ = holder.kill();
            let _ = holder.wait();
            panic!("cannot mount the throwaway root: {err}");
        }
        ThrowawayRoot { holder, dir }
    }

    /// The overlay as the namespace sees it.
    fn merged(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// `inside` (an absolute path in the root) as this process reaches it.
    /// A symbolic link with an absolute target on the way would lead out of
    /// the root (it resolves against this process's root): Debian's
    /// merged-/usr links (/lib -> usr/lib) are relative; resolve others in
    /// the root (`readlink -f`).
    pub fn path(&self, inside: &str) -> PathBuf {
        let rel = inside.trim_start_matches('/');
        Path::new(&format!("/proc/{}/root", self.holder.id()))
            .join(self.merged().strip_prefix("/").unwrap())
            .join(rel)
    }

    /// `program` run in the root as root (nsenter and chroot both exec,
    /// so the child's pid is the program's).
    pub fn command(&self, program: &str) -> Command {
        self.chroot(&[], program)
    }

    /// `program` run in the root as `user` (and the user's groups).
    pub fn command_as(&self, user: &str, program: &str) -> Command {
        self.chroot(&[&format!("--userspec={user}")], program)
    }

    fn chroot(&self, options: &[&str], program: &str) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg("--target")
            .arg(self.holder.id().to_string())
            .args(["--mount", "--", "chroot"])
            .args(options)
            .arg(self.merged())
            .arg(program)
            // Debian's, whatever the test runner's is: dpkg looks for
            // ldconfig and start-stop-daemon in it, nsenter for chroot.
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            );
        cmd
    }

    /// Every file and directory the root has that the machine has not
    /// (the overlay's upper layer), as absolute paths in the root. A path
    /// removed from the machine's tree shows as a whiteout, which is left
    /// out.
    pub fn changes(&self) -> Vec<PathBuf> {
        let upper = Path::new(&format!("/proc/{}/root", self.holder.id()))
            .join(self.dir.path().strip_prefix("/").unwrap())
            .join("upper");
        let mut out = Vec::new();
        let mut todo = vec![upper.clone()];
        while let Some(dir) = todo.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                let file_type = std::fs::symlink_metadata(&path).unwrap().file_type();
                if file_type.is_char_device() {
                    continue;
                }
                if file_type.is_dir() {
                    todo.push(path.clone());
                }
                out.push(Path::new("/").join(path.strip_prefix(&upper).unwrap()));
            }
        }
        out.sort();
        out
    }

    /// Runs `sh -c script` in the root; panics with its output unless it
    /// succeeds.
    pub fn sh(&self, script: &str) -> Output {
        let out = self
            .command("/bin/sh")
            .args(["-c", script])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "in the root: {script}\n{}",
            show(&out)
        );
        out
    }
}

impl Drop for ThrowawayRoot {
    fn drop(&mut self) {
        // The namespace, its mounts and the tmpfs go when its last process
        // does; the caller stops what it started in it first.
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// A command's status and output, for assertion messages.
pub fn show(out: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
