#!/usr/bin/env python3
"""Slow and greedy clients, all at once, beside a steady load:

  slowloris   a byte every 1.5 s: in its first command, in MAIL, and inside
              a message; the whole line must come within Timeout.command
              (Timeout.datablock inside a message), so each is ended after
              it with sendmail's `421 4.4.2 <host> timeout waiting for input
              from <client>`
  idle        hundreds of connections that say nothing after the greeting:
              each ended by Timeout.command with the same reply
  non-reader  a client that sends NOOPs and never reads the replies: its
              twentieth NOOP (MaxNOOPCommands) ends the session with 421

Throughout, a new client must be greeted within a second, and the load's
mail must all arrive.

  scripts/faults/slow_clients.py [--short]    (--short: 200 idle, else 1000)
"""

import re
import socket
import sys
import threading
import time

import faultlib as f

TIMEOUT = 4
# Each ended session may take the timeout, a second for the reply and the
# close, and the trickle's own step.
LATEST = TIMEOUT + 2.5


def until_closed(sock, deadline):
    """Everything the server sends until it closes, and when it closed
    (None: still open at `deadline`)."""
    got = b""
    while time.time() < deadline:
        sock.settimeout(max(0.01, deadline - time.time()))
        try:
            chunk = sock.recv(4096)
        except socket.timeout:
            return got.decode(errors="replace"), None
        except OSError:
            return got.decode(errors="replace"), time.time()
        if not chunk:
            return got.decode(errors="replace"), time.time()
        got += chunk
    return got.decode(errors="replace"), None


class Results:
    def __init__(self):
        self.lock = threading.Lock()
        self.rows = []

    def add(self, name, ok, detail):
        with self.lock:
            self.rows.append((name, ok, detail))


def slowloris(port, phase, results):
    """Trickles one byte every 1.5 s from `phase` on."""
    name = f"slowloris in {phase}"
    try:
        s = socket.create_connection((f.HOST, port), timeout=10)
        s.recv(4096)
        # The commands before the trickle, each answered before the next
        # (PIPELINING is known only once EHLO is answered).
        lead = {"the first command": [],
                "MAIL": [b"EHLO slow.example\r\n"],
                "DATA": [b"EHLO slow.example\r\n", b"MAIL FROM:<s@sink.test>\r\n",
                         b"RCPT TO:<rcpt@sink.test>\r\n", b"DATA\r\n"]}[phase]
        trickle = {"the first command": b"EHLO slowloris.example\r\n",
                   "MAIL": b"MAIL FROM:<slowloris@sink.test>\r\n",
                   "DATA": b"Subject: slow\r\n\r\nthis line never ends " * 10}[phase]
        s.settimeout(10)
        for command in lead:
            s.sendall(command)
            got = b"\n"
            # The reply's last line: a code and a space.
            while not re.search(rb"\n\d{3} [^\n]*\n$", got):
                chunk = s.recv(4096)
                if not chunk:
                    raise OSError(f"closed before the trickle: {got!r}")
                got += chunk
        started = time.time()
        closed_at = None
        text = ""
        for byte in trickle:
            try:
                s.sendall(bytes([byte]))
            except OSError:
                break
            text, closed_at = until_closed(s, time.time() + 1.5)
            if closed_at:
                break
        if not closed_at:
            text, closed_at = until_closed(s, time.time() + 5)
        took = (closed_at or time.time()) - started
        ok = bool(closed_at) and "421 4.4.2" in text and "timeout waiting for input" in text \
            and took <= LATEST
        results.add(name, ok, f"ended after {took:.1f} s: {text.strip()[-90:]!r}")
        s.close()
    except OSError as e:
        results.add(name, False, repr(e))


def idle(port, count, results):
    """`count` greeted connections that say nothing."""
    socks, started = [], time.time()
    for _ in range(count):
        try:
            s = socket.create_connection((f.HOST, port), timeout=10)
            socks.append(s)
        except OSError as e:
            results.add(f"{count} idle", False, f"connect: {e!r}")
            return
    greeted = ended = 0
    slowest = 0.0
    deadline = started + LATEST + count * 0.01
    for s in socks:
        text, closed_at = until_closed(s, deadline)
        greeted += text.startswith("220")
        if closed_at and "421 4.4.2" in text and "timeout waiting for input" in text:
            ended += 1
            slowest = max(slowest, closed_at - started)
        s.close()
    results.add(f"{count} idle", greeted == count and ended == count,
                f"greeted {greeted}, ended by the timeout {ended}, the last "
                f"{slowest:.1f} s after the first connected")


def non_reader(port, results):
    """Sends NOOPs without ever reading the replies. The session's
    twentieth NOOP (MaxNOOPCommands) ends it: MaxDaemonChildren is set, so
    the front answers `421 4.7.0 ... Too many bad commands` after a
    second, as sendmail does, and closes; the client's next write fails."""
    s = socket.create_connection((f.HOST, port), timeout=10)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.setblocking(False)
    started = time.time()
    ended = None
    while time.time() - started < 60 and ended is None:
        try:
            s.send(b"NOOP\r\n" * 100)
        except BlockingIOError:
            pass
        except OSError:
            ended = time.time()
        time.sleep(0.1)
    s.close()
    ok = ended is not None and ended - started <= 10
    detail = (f"closed {ended - started:.1f} s after it connected" if ended
              else "still open after 60 s")
    results.add("non-reader", ok, detail)


def main():
    count = 200 if "--short" in sys.argv else 1000
    with f.Workdir() as work:
        sink = f.Sink()
        sink.start()
        postern = f.Postern(work, sink.port, options=[
            f"Timeout.command={TIMEOUT}s", f"Timeout.datablock={TIMEOUT}s",
            f"MaxDaemonChildren={count + 100}"])
        postern.start()
        load = f.Load(postern.port, clients=2, pause=0.1).start()
        results = Results()
        status = 1
        try:
            threads = [threading.Thread(target=slowloris, args=(postern.port, phase, results))
                       for phase in ("the first command", "MAIL", "DATA")]
            threads.append(threading.Thread(target=idle, args=(postern.port, count, results)))
            threads.append(threading.Thread(target=non_reader, args=(postern.port, results)))
            for t in threads:
                t.start()
            slowest = 0.0
            while any(t.is_alive() for t in threads):
                started = time.time()
                greeted = f.greeted(postern.port, 5)
                slowest = max(slowest, time.time() - started if greeted else 99)
                time.sleep(0.3)
            load.stop()
            drained = f.drain(postern, sink, load, 60)
            rows = [f"{'ok  ' if ok else 'FAIL'} {name}: {detail}"
                    for name, ok, detail in results.rows]
            greeting_ok = slowest <= 1.0
            rows.append(f"{'ok  ' if greeting_ok else 'FAIL'} a new client greeted within a "
                        f"second throughout: slowest {slowest:.2f} s")
            failed = not all(ok for _, ok, _ in results.rows) or not greeting_ok or not drained
            status = f.report("slow and greedy clients", load, sink, postern, rows, failed=failed)
        finally:
            f.shut_down(postern, sink, load)
        return f.verdict(status, postern)


if __name__ == "__main__":
    sys.exit(main())
