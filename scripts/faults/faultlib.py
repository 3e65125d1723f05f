"""What every fault script shares: a private Postern, a next hop that can
misbehave on purpose, a steady load of numbered messages, and the count at
the end.

Every message carries `X-Fault-Token: N`. The load records which tokens
were sent and which got their 250 after DATA ("acknowledged"); the sink
records every token it received, as often as it received it. At the end:

  sent          messages the load tried to send
  acknowledged  of those, the ones Postern answered 250 after DATA
  delivered     acknowledged tokens the sink received at least once
  duplicated    tokens the sink received more than once
  lost          acknowledged tokens the sink never received: must be 0

Everything talks to 127.0.0.1 only, on ports the kernel handed out; every
process started is stopped by PID and the working directory is removed
(FAULT_KEEP=1 keeps it, with Postern's log). Only the standard library.
"""

import os
import random
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

HOST = "127.0.0.1"
REPO = Path(__file__).resolve().parents[2]
SINK_DOMAIN = "sink.test"
TOKEN = re.compile(rb"^X-Fault-Token: (\d+)\r?$", re.MULTILINE)


def say(text):
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def binaries():
    """posternd and postern: POSTERN_BIN and POSTERN_CLI, or a debug build."""
    daemon, cli = os.environ.get("POSTERN_BIN"), os.environ.get("POSTERN_CLI")
    if daemon and cli:
        return daemon, cli
    say("building Postern (debug)")
    subprocess.run(
        ["cargo", "build", "--quiet", "-p", "postern-daemon", "--bin", "posternd",
         "-p", "postern-cli", "--bin", "postern"],
        cwd=REPO, check=True)
    return str(REPO / "target/debug/posternd"), str(REPO / "target/debug/postern")


def ensure_users():
    """As root, Postern runs privilege-separated for real: its three users."""
    if os.geteuid() != 0:
        return
    for user in ("postern", "posternq", "posternf"):
        if subprocess.run(["id", user], capture_output=True).returncode != 0:
            subprocess.run(["useradd", "--system", "--no-create-home",
                            "--shell", "/usr/sbin/nologin", user], check=True)


def descendants(pid):
    """PID and every process below it (from /proc's parent links)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children.get(p, []))
    return found


def title(pid):
    """A Postern process's title: `posternd: queue runner` and the like."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
    except OSError:
        return ""


def alive(pid):
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class Postern:
    """A private instance: its own configuration, spool and log under
    `workdir`, SMTP on a free port, mail for sink.test to `sink_port`."""

    def __init__(self, workdir, sink_port, options=(), spool=None, preexec=None):
        self.daemon, self.cli = binaries()
        self.dir = Path(workdir)
        self.port = free_port()
        self.sink_port = sink_port
        self.options = list(options)
        self.spool = Path(spool) if spool else self.dir / "spool"
        self.preexec = preexec
        self.log_path = self.dir / "posternd.log"
        self.pid = None
        self.tree = []
        ensure_users()
        (self.dir / "etc").mkdir(parents=True, exist_ok=True)
        (self.dir / "mail").mkdir(exist_ok=True)
        if os.geteuid() == 0:
            # The users of the instance pass through the working directory.
            os.chmod(self.dir, 0o755)
        self.config = self.dir / "etc/postern.cf"
        lines = [
            "dnl Written by scripts/faults/faultlib.py",
            f"O DaemonPortOptions=Port={self.port}, Addr={HOST}, Name=MTA",
            f"O QueueDirectory={self.spool}",
            f"O MailboxDirectory={self.dir / 'mail'}",
            f"O ControlSocket={self.dir / 'control.sock'}",
            "O LogLevel=9",
            # Deferred mail is tried again within seconds, not hours.
            "O MinQueueAge=1s",
            "Dj fault.test",
        ] + [f"O {o}" for o in self.options]
        self.config.write_text("\n".join(lines) + "\n")
        (self.dir / "etc/mailertable").write_text(f"{SINK_DOMAIN} esmtp:[{HOST}]:{sink_port}\n")
        (self.dir / "etc/aliases").write_text("postmaster: root\nMAILER-DAEMON: postmaster\n")

    def start(self):
        log = open(self.log_path, "ab")
        proc = subprocess.Popen([self.daemon, "-C", str(self.config), "--log-stderr"],
                                stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                preexec_fn=self.preexec)
        log.close()
        self.proc = proc
        self.pid = proc.pid
        deadline = time.time() + 30
        while time.time() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"posternd exited with {proc.returncode}:\n{self.log_tail()}")
            if greeted(self.port, 1):
                self.tree = descendants(self.pid)
                return
            time.sleep(0.1)
        raise RuntimeError(f"posternd did not greet:\n{self.log_tail()}")

    def log_tail(self, lines=20):
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def processes(self, role):
        """PIDs of this instance's processes whose title starts with
        `posternd: ROLE` (master, queue runner, delivery client, front
        factory, front)."""
        if self.pid is None:
            return []
        return [p for p in descendants(self.pid)
                if title(p).startswith(f"posternd: {role}")]

    def wait_gone(self, pids, seconds):
        deadline = time.time() + seconds
        while time.time() < deadline:
            if not any(alive(p) for p in pids):
                return True
            time.sleep(0.05)
        return False

    def after_master_died(self):
        """Master was killed: its processes must end by themselves (they
        watch their channels); whatever is left after 10 s is killed and
        returned, as a finding."""
        self.proc.wait()
        left = [p for p in self.tree_now() if p != self.pid]
        if self.wait_gone(left, 10):
            return []
        stuck = [p for p in left if alive(p)]
        for p in stuck:
            os.kill(p, signal.SIGKILL)
        return stuck

    def tree_now(self):
        """Every process of the instance, orphans included (by title: the
        instance's processes all carry its queue's path in nothing else, so
        the tree recorded at start and what descends from it)."""
        pids = set(self.tree)
        for p in list(pids):
            if alive(p):
                pids.update(descendants(p))
        return [p for p in pids if alive(p)]

    def stop(self):
        if self.pid is None:
            return
        tree = set(self.tree_now()) | set(descendants(self.pid))
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                pass
        for p in tree:
            if alive(p):
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if self.proc.poll() is None:
            self.proc.wait()
        self.pid = None

    def tool(self, name, *args, timeout=60):
        """`runq`, `mailq` and the like for this instance."""
        env = dict(os.environ, POSTERN_CONFIG=str(self.config))
        return subprocess.run([name, *args], executable=self.cli, env=env,
                              capture_output=True, text=True, timeout=timeout)

    def queued(self):
        """Committed messages in the spool (control files)."""
        try:
            return sum(1 for n in os.listdir(self.spool / "queue") if n.startswith("qf"))
        except OSError:
            return 0


def greeted(port, timeout):
    """True when something on `port` answers 220 within `timeout`."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as s:
            line = s.makefile("rb").readline()
            s.sendall(b"QUIT\r\n")
            return line.startswith(b"220")
    except OSError:
        return False


class Sink(threading.Thread):
    """The next hop: an SMTP server that records every token it receives,
    and misbehaves as `faults` says. `faults` maps a fault to its chance
    per message (0..1):

      vanish     closes the connection in the middle of DATA
      421        answers 421 to MAIL and closes
      stall      receives the whole message, records it, never answers
                 (the sender times out: the message is sent again, and the
                 sink has it twice: a duplicate by design, RFC 1047)
    """

    def __init__(self, faults=None, port=None):
        super().__init__(daemon=True)
        self.faults = dict(faults or {})
        self.port = port or free_port()
        self.received = Counter()
        self.other = 0
        self.faulted = Counter()
        self.lock = threading.Lock()
        self.listener = socket.create_server((HOST, self.port), backlog=256)
        self.stopping = False

    def run(self):
        while not self.stopping:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self.session, args=(conn,), daemon=True).start()

    def stop(self):
        self.stopping = True
        self.listener.close()

    def heal(self):
        self.faults = {}

    def roll(self, fault):
        return random.random() < self.faults.get(fault, 0)

    def session(self, conn):
        conn.settimeout(120)
        with conn:
            try:
                self.converse(conn, conn.makefile("rb"))
            except OSError:
                pass

    def converse(self, conn, rfile):
        conn.sendall(b"220 sink.test ESMTP fault sink\r\n")
        while True:
            line = rfile.readline()
            if not line:
                return
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                conn.sendall(b"250-sink.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE\r\n")
            elif verb == b"MAIL":
                if self.roll("421"):
                    self.count_fault("421")
                    conn.sendall(b"421 4.3.0 sink.test going away (fault injected)\r\n")
                    return
                conn.sendall(b"250 2.1.0 ok\r\n")
            elif verb in (b"RCPT", b"RSET", b"NOOP"):
                conn.sendall(b"250 2.0.0 ok\r\n")
            elif verb == b"DATA":
                conn.sendall(b"354 go ahead\r\n")
                if not self.data(conn, rfile):
                    return
            elif verb == b"QUIT":
                conn.sendall(b"221 2.0.0 bye\r\n")
                return
            else:
                conn.sendall(b"500 5.5.1 what\r\n")

    def data(self, conn, rfile):
        """One message; False when the connection is to end."""
        vanish = self.roll("vanish")
        body = []
        while True:
            line = rfile.readline()
            if not line:
                return False
            if line == b".\r\n":
                break
            body.append(line)
            if vanish and len(body) > 3:
                self.count_fault("vanish")
                return False
        text = b"".join(body)
        tokens = TOKEN.findall(text)
        with self.lock:
            if tokens:
                self.received[int(tokens[0])] += 1
            else:
                self.other += 1
        if self.roll("stall"):
            self.count_fault("stall")
            while not self.stopping and rfile.readline():
                pass
            return False
        conn.sendall(b"250 2.0.0 received\r\n")
        return True

    def count_fault(self, fault):
        with self.lock:
            self.faulted[fault] += 1


class Load:
    """`clients` threads sending numbered messages to `port` until stopped
    (or `total` were sent), each on its own connection."""

    def __init__(self, port, clients=4, size=2048, total=None, pause=0.0):
        self.port = port
        self.clients = clients
        self.size = size
        self.total = total
        self.pause = pause
        self.sent = set()
        self.acked = set()
        self.replies = Counter()
        self.texts = Counter()
        self.lock = threading.Lock()
        self.next = 0
        self.stopping = False
        self.threads = []

    def start(self):
        for _ in range(self.clients):
            t = threading.Thread(target=self.client, daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def stop(self):
        self.stopping = True
        for t in self.threads:
            t.join(180)

    def take_token(self):
        with self.lock:
            if self.stopping or (self.total is not None and self.next >= self.total):
                return None
            self.next += 1
            self.sent.add(self.next)
            return self.next

    def message(self, token, size=None):
        size = size or self.size
        filler = ("x" * 70 + "\r\n") * max(1, size // 72)
        return (f"From: load@{SINK_DOMAIN}\r\nTo: rcpt@{SINK_DOMAIN}\r\n"
                f"Subject: fault test {token}\r\nX-Fault-Token: {token}\r\n\r\n{filler}")

    def client(self):
        while True:
            token = self.take_token()
            if token is None:
                return
            outcome = self.send(token)
            # Nobody listening (master being restarted): not a tight loop.
            if outcome == "ConnectionRefusedError":
                time.sleep(0.1)
            if self.pause:
                time.sleep(self.pause)

    def send_one(self, size=None):
        """One more message, now, from the caller's thread: its outcome."""
        with self.lock:
            self.next += 1
            token = self.next
            self.sent.add(token)
        return self.send(token, size)

    def send(self, token, size=None):
        """Sends message `token`; returns "250", the refusal's code, or the
        exception's name, and counts it."""
        try:
            with smtplib.SMTP(HOST, self.port, timeout=120) as smtp:
                smtp.sendmail(f"load@{SINK_DOMAIN}", [f"rcpt@{SINK_DOMAIN}"],
                              self.message(token, size))
                with self.lock:
                    self.acked.add(token)
                    self.replies["250"] += 1
                return "250"
        except smtplib.SMTPResponseException as e:
            outcome = str(e.smtp_code)
            with self.lock:
                self.texts[f"{e.smtp_code} {e.smtp_error.decode(errors='replace')}"] += 1
        except smtplib.SMTPRecipientsRefused as e:
            outcome = str(next(iter(e.recipients.values()))[0])
        except (smtplib.SMTPException, OSError) as e:
            outcome = type(e).__name__
        self.note(outcome)
        return outcome

    def note(self, what):
        with self.lock:
            self.replies[what] += 1


def drain(postern, sink, load, seconds):
    """Waits until the sink has every acknowledged token and the queue is
    empty, kicking the queue with runq every few seconds."""
    deadline = time.time() + seconds
    kicked = 0.0
    while time.time() < deadline:
        with sink.lock:
            missing = [t for t in load.acked if t not in sink.received]
        if not missing and postern.queued() == 0:
            return True
        if time.time() - kicked > 3:
            postern.tool("runq")
            kicked = time.time()
        time.sleep(0.2)
    return False


def report(name, load, sink, postern, notes=(), failed=False):
    """Prints the counts; returns the exit status (1 when anything was
    lost or left in the queue, or the caller's own checks `failed`)."""
    with sink.lock:
        received = Counter(sink.received)
    delivered = sum(1 for t in load.acked if t in received)
    lost = sorted(t for t in load.acked if t not in received)
    duplicated = sum(1 for n in received.values() if n > 1)
    unacked_delivered = sum(1 for t in received if t not in load.acked)
    queued = postern.queued()
    print(f"# {name}")
    print(f"sent={len(load.sent)} acknowledged={len(load.acked)} delivered={delivered} "
          f"duplicated={duplicated} lost={len(lost)}")
    print(f"replies other than 250: {dict((k, v) for k, v in load.replies.items() if k != '250')}")
    print(f"delivered without an acknowledgement (the client was told to try again): "
          f"{unacked_delivered}; left in the queue: {queued}; bounces at the sink: {sink.other}")
    if sink.faulted:
        print(f"faults injected at the next hop: {dict(sink.faulted)}")
    for note in notes:
        print(note)
    if lost:
        print(f"LOST: tokens {lost[:20]}")
    ok = not lost and queued == 0 and len(load.acked) > 0 and not failed
    print("result: " + ("ok" if ok else "FAILED"))
    sys.stdout.flush()
    return 0 if ok else 1


def shut_down(postern, sink=None, load=None):
    """Stops what a script started: the load first, then Postern and the
    sink (by PID)."""
    if load:
        load.stopping = True
    postern.stop()
    if sink:
        sink.stop()


def verdict(status, postern):
    """The script's exit status; on failure, Postern's last log lines go
    to standard error."""
    if status:
        print(postern.log_tail(30), file=sys.stderr)
    return status


def kill_random(postern, roles, killed):
    """kill -9 of one process in a random role of `roles` (counted in
    `killed`); master is then started again, as systemd would. Returns the
    processes that outlived master and had to be killed."""
    role = random.choice(roles)
    pids = [postern.pid] if role == "master" else postern.processes(role)
    if not pids:
        return []
    try:
        os.kill(random.choice(pids), signal.SIGKILL)
    except ProcessLookupError:
        # It ended between the listing and the kill (a front whose
        # session was over): nothing was killed this time.
        return []
    killed[role] = killed.get(role, 0) + 1
    if role != "master":
        return []
    stuck = postern.after_master_died()
    postern.start()
    return stuck


class Workdir:
    """A temporary directory, removed at the end unless FAULT_KEEP is set."""

    def __enter__(self):
        self.path = Path(tempfile.mkdtemp(prefix="postern-faults-"))
        return self.path

    def __exit__(self, *exc):
        if os.environ.get("FAULT_KEEP"):
            say(f"kept {self.path}")
        else:
            shutil.rmtree(self.path, ignore_errors=True)


def duration(default_short, default_long):
    """Seconds of fault: `--short` (CI) or the first numeric argument."""
    args = [a for a in sys.argv[1:]]
    for a in args:
        if a.replace(".", "", 1).isdigit():
            return float(a)
    return default_short if "--short" in args else default_long
