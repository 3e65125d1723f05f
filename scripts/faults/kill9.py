#!/usr/bin/env python3
"""kill -9 of a random Postern process every few hundred milliseconds
under a steady load: a front, the queue runner, the delivery client, the
front factory, or master itself (then Postern is started again, as systemd
would). Nothing acknowledged may be lost; a message the sink received
twice is one whose delivery was done but not yet recorded when its
delivery client died (at-least-once, as every MTA).

  scripts/faults/kill9.py [--short | SECONDS]     (default 60 s, --short 12 s)
"""

import random
import sys
import time

import faultlib as f

ROLES = ["front for", "front for", "queue runner", "delivery client", "front factory", "master"]


def main():
    seconds = f.duration(12, 60)
    with f.Workdir() as work:
        sink = f.Sink()
        sink.start()
        postern = f.Postern(work, sink.port)
        postern.start()
        load = f.Load(postern.port, clients=6).start()
        killed, stuck = {}, []
        f.say(f"kill -9 every 0.2-0.6 s for {seconds:.0f} s")
        try:
            end = time.time() + seconds
            while time.time() < end:
                time.sleep(random.uniform(0.2, 0.6))
                stuck += f.kill_random(postern, ROLES, killed)
            f.say("stopping the load, draining the queue")
            load.stop()
            drained = f.drain(postern, sink, load, 120)
            notes = [f"killed: {killed} (master started again each time)"]
            if stuck:
                notes.append(f"processes that outlived master and had to be killed: {len(stuck)}")
            if not drained:
                notes.append("the queue did not drain in 120 s")
            status = f.report("kill -9 under load", load, sink, postern, notes)
            if stuck or not drained:
                status = 1
        finally:
            f.shut_down(postern, sink, load)
        return f.verdict(status, postern)


if __name__ == "__main__":
    sys.exit(main())
