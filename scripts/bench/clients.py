#!/usr/bin/env python3
"""The small measuring tools of scripts/bench/run.sh, one subcommand each
(the connection loops, which must be fast, are the compiled
postern-bench-client).

  ports N                        N free TCP ports on 127.0.0.1
  idle PORT COUNT READY_FILE     COUNT greeted sessions held open until
                                 SIGTERM; READY_FILE appears once all greeted
  burst PORT COUNT               COUNT connections opened at once, each
                                 reading its greeting and saying QUIT: the
                                 time until the last greeting, and how many
                                 connections waited for a SYN retry
  fsync DIR SECONDS              serialized write+fsync+rename+dir-fsync rate
  tree PID                       PID and all its descendants, as PID:STARTTIME
  pss PID                        PSS (kB) of PID and all its descendants
  pss-peak PID OUT_FILE          sample that sum until SIGTERM, write the peak
  cpu PID                        CPU seconds of PID's tree so far (reaped
                                 children included)
  sink-count FILE                messages smtp-sink -c has counted in FILE
  wait-sink FILE TARGET STALL    wait until smtp-sink's counter in FILE
                                 reaches TARGET; exit 3 after STALL seconds
                                 without progress

Each prints one line of `key=value` words (run.sh reads them); everything
talks to 127.0.0.1 only. Only the standard library: it runs on any python3.
"""

import asyncio
import os
import resource
import selectors
import signal
import socket
import struct
import sys
import time

HOST = "127.0.0.1"
# A stuck server must not hang the benchmark: every read has this limit.
TIMEOUT = 30


def free_ports(n):
    """Ports the kernel hands out for port 0, all held until all are known
    (so that they differ)."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind((HOST, 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    print(" ".join(map(str, ports)))


async def reply(reader, code):
    """Reads one (possibly multi-line) SMTP reply; fails unless it is `code`."""
    while True:
        line = await asyncio.wait_for(reader.readline(), TIMEOUT)
        if not line.startswith(code.encode()):
            raise RuntimeError(f"expected {code}, got {line!r}")
        if line[3:4] != b"-":
            return


async def idle_hold(port, count, ready_file):
    conns = []
    for _ in range(count):
        reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), TIMEOUT)
        conns.append((reader, writer))
    # Greeted all: each server-side session has reached its idle state.
    await asyncio.gather(*(reply(r, "220") for r, _ in conns))
    with open(ready_file + ".tmp", "w") as f:
        f.write(f"{count}\n")
    os.rename(ready_file + ".tmp", ready_file)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    # A polite goodbye, so that neither MTA logs a lost connection.
    for _, w in conns:
        w.write(b"QUIT\r\n")
    await asyncio.gather(*(reply(r, "221") for r, _ in conns), return_exceptions=True)
    for _, w in conns:
        w.close()
    return 0


def syn_retransmitted(sock):
    """Whether the kernel had to send this connection's SYN again (the
    server's listen queue was full and its kernel dropped the first; the
    retry comes a second later). struct tcp_info: eight one-byte fields,
    then 32-bit ones, the 24th of which (offset 100) is tcpi_total_retrans;
    before the client has sent anything, only the SYN can have been sent
    again."""
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    return struct.unpack_from("=I", info, 100)[0] > 0


class Burst:
    """The clients of a burst, served from one loop: each reads its
    greeting, says QUIT and waits for the server to close."""

    def __init__(self):
        self.sel = selectors.DefaultSelector()
        self.greeted = self.refused = self.retried = 0
        self.last_greeting = None

    def open(self, port):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex((HOST, port))
        # [bytes read, greeting seen]
        self.sel.register(s, selectors.EVENT_READ, [b"", False])

    def serve(self, timeout):
        """Serves what is ready, waiting up to `timeout` for something;
        false when nothing was."""
        events = self.sel.select(timeout=timeout)
        for key, _ in events:
            self.step(key.fileobj, key.data)
        return bool(events)

    def step(self, s, state):
        try:
            data = s.recv(4096)
        except OSError:
            data = b""
        if not state[1]:
            state[0] += data
            if b"\n" not in state[0] and data:
                return
            state[1] = True
            if state[0].startswith(b"220"):
                self.greeted += 1
                self.last_greeting = time.monotonic()
            else:
                self.refused += 1
            if syn_retransmitted(s):
                self.retried += 1
            if data:
                try:
                    s.send(b"QUIT\r\n")
                    return
                except OSError:
                    pass
        elif data:
            return  # the 221; the close follows
        self.sel.unregister(s)
        s.close()


def burst(port, count):
    """COUNT clients arriving at once, as a mail host sees after a network
    outage or from a botnet: connections opened one right after the other
    (non-blocking connects, serving whoever is ready in between), each
    reading its greeting and saying QUIT. What matters is whether the
    server's listen queue holds the burst and when the last client is
    greeted."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, count + 64)), hard))
    clients = Burst()
    start = time.monotonic()
    for _ in range(count):
        clients.open(port)
        clients.serve(0)
    while clients.sel.get_map() and clients.serve(TIMEOUT):
        pass
    lost = count - clients.greeted - clients.refused
    for key in list(clients.sel.get_map().values()):
        key.fileobj.close()
    last = (clients.last_greeting or start) - start
    print(f"last_greeting_ms={last * 1000:.1f} greeted={clients.greeted} "
          f"refused={clients.refused} syn_retries={clients.retried} lost={lost}")
    return 0 if clients.greeted == count else 1


def fsync_rate(directory, seconds):
    """What a queue that syncs each message can at best do on this file
    system, one message after another: the disk's own limit."""
    data = os.urandom(4096)
    dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    n = 0
    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < seconds:
            tmp = os.path.join(directory, f"fsync-probe.{n}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.write(fd, data)
            os.fsync(fd)
            os.close(fd)
            os.rename(tmp, os.path.join(directory, f"fsync-probe.{n}"))
            os.fsync(dfd)
            n += 1
        elapsed = time.monotonic() - t0
    finally:
        for i in range(n + 1):
            for name in (f"fsync-probe.{i}", f"fsync-probe.{i}.tmp"):
                try:
                    os.unlink(os.path.join(directory, name))
                except FileNotFoundError:
                    pass
        os.close(dfd)
    print(f"rate={n / elapsed:.1f}")
    return 0


def descendants(root):
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # The name may hold spaces and parentheses: fields follow the last ')'.
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def start_time(pid):
    """Field 22 of stat(5): with the PID, names one process even after the
    PID is reused."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return 0
    return int(stat[stat.rindex(")") + 2:].split()[19])


def pss_kb(root):
    total = 0
    for pid in descendants(root):
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass  # exited meanwhile
    return total


def pss_peak(root, out_file):
    peak = 0
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    while not stop:
        peak = max(peak, pss_kb(root))
        time.sleep(0.2)
    with open(out_file, "w") as f:
        f.write(f"peak_kb={peak}\n")
    return 0


def cpu_seconds_of_tree(root):
    """utime+stime of the live processes plus what they reaped (cutime,
    cstime): a front or smtpd that came and went is counted in its parent."""
    ticks = 0
    for pid in descendants(root):
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        # utime, stime, cutime, cstime are fields 14-17 of stat(5).
        ticks += sum(int(x) for x in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def sink_count(path):
    """smtp-sink -c rewrites one line of counters, ending in \r, after each
    event: the last complete `mesg=N` is the number of messages received."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 256))
            tail = f.read()
    except OSError:
        return 0
    records = tail.split(b"\r")[:-1]  # the last one may be half written
    for rec in reversed(records):
        if b"mesg=" in rec:
            return int(rec.rsplit(b"mesg=", 1)[1])
    return 0


def wait_sink(path, target, stall):
    """Polls cheaply (one process, 10 ms) so that waiting does not take
    CPU from the MTA it measures. Prints the time (epoch seconds, as
    `date +%s.%N`) the target was reached."""
    last, since = -1, time.monotonic()
    while True:
        n = sink_count(path)
        if n >= target:
            print(f"t={time.time():.6f} count={n}")
            return 0
        if n != last:
            last, since = n, time.monotonic()
        elif time.monotonic() - since > stall:
            print(f"count={n}")
            return 3
        time.sleep(0.01)


def main(argv):
    cmd, args = argv[1], argv[2:]
    if cmd == "ports":
        free_ports(int(args[0]))
        return 0
    if cmd == "idle":
        return asyncio.run(idle_hold(int(args[0]), int(args[1]), args[2]))
    if cmd == "burst":
        return burst(int(args[0]), int(args[1]))
    if cmd == "fsync":
        return fsync_rate(args[0], float(args[1]))
    if cmd == "tree":
        print(" ".join(f"{pid}:{start_time(pid)}" for pid in descendants(int(args[0]))))
        return 0
    if cmd == "pss":
        print(f"pss_kb={pss_kb(int(args[0]))}")
        return 0
    if cmd == "cpu":
        print(f"cpu={cpu_seconds_of_tree(int(args[0])):.2f}")
        return 0
    if cmd == "sink-count":
        print(f"count={sink_count(args[0])}")
        return 0
    if cmd == "wait-sink":
        return wait_sink(args[0], int(args[1]), float(args[2]))
    if cmd == "pss-peak":
        return pss_peak(int(args[0]), args[1])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
