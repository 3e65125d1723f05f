#!/usr/bin/env python3
"""The spool's file system fills up. The queue lives on a small tmpfs of
its own, and the next hop is down, so accepted mail stays. Clients must
get `452 4.3.1 Insufficient system storage` once there is no room, what
was queued must be untouched, and when the next hop comes back and the
queue drains, acceptance must resume by itself. Needs root (it mounts).

  scripts/faults/disk_full.py [--short | SECONDS]  (load after the disk is
                                                  full: default 30, --short 5)
"""

import os
import subprocess
import sys
import time

import faultlib as f

SPOOL_SIZE = "4m"


def main():
    if os.geteuid() != 0:
        print("disk_full.py mounts a tmpfs for the spool: run it as root", file=sys.stderr)
        return 2
    full_for = f.duration(5, 30)
    with f.Workdir() as work:
        mount = work / "spoolfs"
        mount.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SPOOL_SIZE},mode=0755",
                        "postern-faults", str(mount)], check=True)
        sink_port = f.free_port()
        sink = None
        postern = f.Postern(work, sink_port, spool=mount / "spool")
        load = None
        status = 1
        try:
            postern.start()
            load = f.Load(postern.port, clients=3, size=100_000, pause=0.05).start()
            f.say(f"filling a {SPOOL_SIZE} spool, the next hop down")
            deadline = time.time() + 120
            while load.replies["452"] == 0 and time.time() < deadline:
                time.sleep(0.2)
            if load.replies["452"] == 0:
                print("the spool never filled up: no 452 in 120 s")
                return 1
            f.say(f"full: {postern.queued()} messages queued; {full_for:.0f} s more of load")
            time.sleep(full_for)
            queued_full = postern.queued()
            acked_full = len(load.acked)
            mailq = postern.tool("mailq")
            f.say("the next hop comes back")
            sink = f.Sink(port=sink_port)
            sink.start()
            # Acceptance must resume without anyone touching Postern: the
            # queue drains by its own retries and runq, space returns.
            deadline = time.time() + 120
            while len(load.acked) <= acked_full + 5 and time.time() < deadline:
                postern.tool("runq")
                time.sleep(1)
            resumed = len(load.acked) - acked_full
            load.stop()
            drained = f.drain(postern, sink, load, 120)
            storage = {t: n for t, n in load.texts.items() if t.startswith("452")}
            notes = [
                f"queued when full: {queued_full} (mailq exit {mailq.returncode}); "
                f"acknowledged after the space returned: {resumed}",
                f"452 replies: {storage}",
                f"other refusals: { {t: n for t, n in load.texts.items() if not t.startswith('452')} }",
            ]
            if not drained:
                notes.append("the queue did not drain in 120 s")
            status = f.report("spool file system full", load, sink, postern, notes)
            if not all("4.3.1 Insufficient system storage" in t for t in storage):
                print("a 452 that is not 4.3.1 Insufficient system storage")
                status = 1
            if resumed <= 5 or not drained or mailq.returncode != 0:
                status = 1
        finally:
            f.shut_down(postern, sink, load)
            subprocess.run(["umount", "-l", str(mount)])
        return f.verdict(status, postern)


if __name__ == "__main__":
    sys.exit(main())
