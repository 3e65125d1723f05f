#!/usr/bin/env python3
"""Out of descriptors, processes and memory, one at a time, under a light
load, each limit lowered on the running process with prlimit(2) and then
restored:

  1. master's RLIMIT_NOFILE at what it has open: `accept` fails (EMFILE).
     A client that connected then must be greeted once the limit is back,
     without another connection arriving to wake master: it retries on a
     timer.
  2. master's RLIMIT_NOFILE one above that: the connection is accepted
     but there is no descriptor to hand it on: `421 4.3.2`.
  3. the front factory's RLIMIT_NPROC at the processes its user has: it
     cannot fork, and each client hears `421 4.3.2 ... Cannot start a
     session now`; master keeps accepting.
  4. the front factory's RLIMIT_AS far below what it maps, inherited by
     its fronts: a front that must grow its buffers for a large message
     cannot, and dies; master replaces the factory and the next client's
     message is taken.

RLIMIT_NPROC binds no process whose real user is root, so the instance
runs as an ordinary user (`posternx`, made when the script runs as root;
otherwise the caller): no privilege separation here, which the other
scripts cover.

  scripts/faults/exhaustion.py [--short]
"""

import os
import pwd
import socket
import subprocess
import sys
import time

import faultlib as f

USER = "posternx"


def instance_user():
    """(uid, gid) the instance runs as."""
    if os.geteuid() != 0:
        return os.getuid(), os.getgid()
    if subprocess.run(["id", USER], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "--system", "--no-create-home", "--user-group",
                        "--shell", "/usr/sbin/nologin", USER], check=True)
    pw = pwd.getpwnam(USER)
    return pw.pw_uid, pw.pw_gid


def first_line(port, seconds):
    """The first line a new client gets: the text, '' when the connection
    was closed without one, None when nothing came in `seconds`."""
    try:
        with socket.create_connection((f.HOST, port), timeout=seconds) as s:
            line = s.makefile("rb").readline()
            try:
                s.sendall(b"QUIT\r\n")
            except OSError:
                pass
            return line.decode(errors="replace").strip()
    except socket.timeout:
        return None
    except OSError:
        return ""


def lowest_free_fd(pid):
    """The descriptor number `pid`'s next open would get: with
    RLIMIT_NOFILE there, it gets EMFILE."""
    used = {int(n) for n in os.listdir(f"/proc/{pid}/fd")}
    n = 0
    while n in used:
        n += 1
    return n


def processes_of(uid):
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    count += 1
            except OSError:
                pass
    return count


class Limits:
    """prlimit(2) on the instance's processes, called as the instance's
    user: a process of the same user may change its limits without
    CAP_SYS_RESOURCE (which a container's root may lack)."""

    def __init__(self, uid, gid):
        self.uid, self.gid = uid, gid

    def set(self, pid, option, soft, hard=False):
        """Sets the soft limit util-linux's prlimit calls `option`
        (nofile, nproc, as), and the hard one to the same with `hard`
        (for good: an unprivileged process cannot raise it again);
        returns what the soft limit was."""
        def prlimit(*args):
            return subprocess.run(["prlimit", "--pid", str(pid), *args],
                                  preexec_fn=self.become, capture_output=True,
                                  text=True, check=True).stdout
        was = prlimit(f"--{option}", "--raw", "--noheadings", "--output=SOFT").strip()
        prlimit(f"--{option}={soft}:{soft if hard else ''}")
        return was

    def become(self):
        if os.geteuid() == 0:
            os.setgid(self.gid)
            os.setuid(self.uid)


class Checks:
    def __init__(self):
        self.lines, self.failed = [], False

    def check(self, name, ok, detail):
        self.lines.append(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}")
        self.failed |= not ok


def main():
    uid, gid = instance_user()
    checks = Checks()
    with f.Workdir() as work:
        os.chown(work, uid, gid)

        def become_user():
            os.setgid(gid)
            os.setuid(uid)

        sink = f.Sink()
        sink.start()
        postern = f.Postern(work, sink.port, preexec=become_user)
        for path in [work / "etc", work / "mail"] + list((work / "etc").iterdir()):
            os.chown(path, uid, gid)
        load = None
        status = 1
        try:
            postern.start()
            load = f.Load(postern.port, clients=1, pause=0.2).start()
            master = postern.pid

            # 1. accept fails: the connection waits in the backlog. The
            # load's sessions open and close descriptors in master too: a
            # descriptor freed after the limit was read lets one accept
            # through, so the scenario is tried again (at most three times)
            # until accept did fail.
            limits = Limits(uid, gid)
            for attempt in range(3):
                soft = limits.set(master, "nofile", lowest_free_fd(master))
                waiting = socket.create_connection((f.HOST, postern.port), timeout=10)
                waiting.settimeout(1.5)
                try:
                    early = waiting.makefile("rb").readline()
                except socket.timeout:
                    early = None
                time.sleep(0.5)
                limits.set(master, "nofile", soft)
                started = time.time()
                waiting.settimeout(5)
                try:
                    late = waiting.makefile("rb").readline().decode(errors="replace").strip()
                except socket.timeout:
                    late = None
                waited = time.time() - started
                waiting.close()
                logged = "trying again every 250 ms" in postern.log_path.read_text()
                if logged:
                    break
            checks.check("EMFILE on accept", early is None and logged,
                         f"nothing while out of descriptors ({early!r}); logged: {logged}; "
                         f"tries: {attempt + 1}")
            checks.check("accept retried on a timer",
                         late is not None and late.startswith("220") and waited < 2,
                         f"greeted {waited:.2f} s after the limit was restored: {late!r}")

            # 2. accepted, but no descriptors for the front's socketpair.
            # (The load's sessions open and close descriptors in master
            # too: the limit is read again for each try.)
            answers = []
            for _ in range(5):
                limits.set(master, "nofile", lowest_free_fd(master) + 1)
                answers.append(first_line(postern.port, 5))
                limits.set(master, "nofile", soft)
            checks.check("no descriptor for a front: 421",
                         any(a and a.startswith("421 4.3.2") and "Cannot start a session now" in a
                             for a in answers),
                         f"answers: {answers}")

            # 3. the factory cannot fork.
            [factory] = postern.processes("front factory")
            nproc = limits.set(factory, "nproc", processes_of(uid))
            answers = [first_line(postern.port, 5) for _ in range(3)]
            limits.set(factory, "nproc", nproc)
            checks.check("fork fails: 421, master keeps accepting",
                         all(a and a.startswith("421 4.3.2") for a in answers),
                         f"answers: {answers}")
            after = first_line(postern.port, 5)
            checks.check("served again once fork works", bool(after) and after.startswith("220"),
                         f"{after!r}")

            # 4. the fronts cannot allocate: a message of 300 kB makes a
            # front grow its buffers.
            # The hard limit: a front's jail lowers its limits, never
            # raises them.
            limits.set(factory, "as", 16 << 20, hard=True)
            limited = [load.send_one(300_000) for _ in range(2)]
            # A front that died of it was a crash: master replaces the
            # factory, whose image had the limit.
            deadline = time.time() + 30
            while time.time() < deadline:
                afterwards = load.send_one(300_000)
                if afterwards == "250":
                    break
                time.sleep(0.5)
            crashed = "crashed" in postern.log_path.read_text()
            checks.check("out of memory: fronts die, master recovers",
                         crashed and afterwards == "250",
                         f"while limited: {limited}; a front crashed: {crashed}; "
                         f"afterwards: {afterwards}")

            time.sleep(1)
            load.stop()
            drained = f.drain(postern, sink, load, 60)
            if not drained:
                checks.check("queue drained", False, "not in 60 s")
            status = f.report("out of descriptors, processes and memory", load, sink,
                              postern, checks.lines, failed=checks.failed)
        finally:
            f.shut_down(postern, sink, load)
        return f.verdict(status, postern)


if __name__ == "__main__":
    sys.exit(main())
