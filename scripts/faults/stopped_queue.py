#!/usr/bin/env python3
"""The queue runner stops (SIGSTOP) under load, for longer than a session
may wait for it. Sessions must answer `451 4.3.0` after Timeout.queuereply
(3 s here) instead of hanging, new clients must still be greeted, and
once it continues (SIGCONT) nothing acknowledged is lost.

  scripts/faults/stopped_queue.py [--short | SECONDS]  (stopped for SECONDS:
                                                      default 30, --short 8)
"""

import os
import signal
import sys
import time

import faultlib as f

QUEUE_REPLY = 3


def main():
    stopped_for = f.duration(8, 30)
    with f.Workdir() as work:
        sink = f.Sink()
        sink.start()
        postern = f.Postern(work, sink.port, options=[f"Timeout.queuereply={QUEUE_REPLY}s"])
        postern.start()
        load = f.Load(postern.port, clients=4, pause=0.05).start()
        status = 1
        notes = []
        try:
            time.sleep(2)
            [runner] = postern.processes("queue runner")
            f.say(f"SIGSTOP to the queue runner (pid {runner}) for {stopped_for:.0f} s")
            os.kill(runner, signal.SIGSTOP)
            slowest = 0.0
            end = time.time() + stopped_for
            while time.time() < end:
                started = time.time()
                if not f.greeted(postern.port, 5):
                    notes.append("a client was not greeted while the queue runner was stopped")
                slowest = max(slowest, time.time() - started)
                time.sleep(0.5)
            replies_while_stopped = dict(load.replies)
            os.kill(runner, signal.SIGCONT)
            f.say("SIGCONT; load for 3 s more")
            time.sleep(3)
            load.stop()
            drained = f.drain(postern, sink, load, 60)
            notes.append(f"slowest greeting while stopped: {slowest:.2f} s; "
                         f"replies by then: {replies_while_stopped}")
            if not drained:
                notes.append("the queue did not drain in 60 s")
            status = f.report("stopped queue runner", load, sink, postern, notes)
            if replies_while_stopped.get("451", 0) == 0:
                print("no session answered 451 while the queue runner was stopped")
                status = 1
            if slowest > 1.0 or not drained or any("not greeted" in n for n in notes):
                status = 1
        finally:
            for p in postern.processes("queue runner"):
                os.kill(p, signal.SIGCONT)
            f.shut_down(postern, sink, load)
        return f.verdict(status, postern)


if __name__ == "__main__":
    sys.exit(main())
