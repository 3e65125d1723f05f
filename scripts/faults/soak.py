#!/usr/bin/env python3
"""The soak: a long run of mixed load with every kind of fault at once,
and the same counts at the end. Not for CI: an hour by default.

  - a steady load of 4 clients, messages of 2 kB to 200 kB;
  - a next hop that vanishes mid-DATA (2%), answers 421 (2%) and stalls
    after taking a message (1%);
  - every 2 to 10 s, kill -9 of a random process (a front, the queue
    runner, the delivery client, the front factory, or master, which is
    then started again);
  - every minute or so the queue runner is stopped for 5 s (sessions get
    451 after Timeout.queuereply);
  - slowloris and idle clients coming and going.

  scripts/faults/soak.py [SECONDS]        (default 3600)
"""

import os
import random
import signal
import sys
import threading
import time

import faultlib as f
import slow_clients

ROLES = ["front for", "queue runner", "delivery client", "front factory", "master"]


class SizedLoad(f.Load):
    """Messages of random sizes."""

    def message(self, token, size=None):
        return super().message(token, size or random.choice([2_000, 20_000, 200_000]))


def slow_ones(port, until, results):
    while time.time() < until:
        phase = random.choice(["the first command", "MAIL", "DATA"])
        slow_clients.slowloris(port, phase, results)
        slow_clients.idle(port, 20, results)


def main():
    seconds = f.duration(3600, 3600)
    with f.Workdir() as work:
        sink = f.Sink({"vanish": 0.02, "421": 0.02, "stall": 0.01})
        sink.start()
        postern = f.Postern(work, sink.port, options=[
            "Timeout.datafinal=10s", "Timeout.queuereply=3s",
            f"Timeout.command={slow_clients.TIMEOUT}s",
            f"Timeout.datablock={slow_clients.TIMEOUT}s"])
        postern.start()
        load = SizedLoad(postern.port, clients=4, pause=0.02).start()
        results = slow_clients.Results()
        end = time.time() + seconds
        slow = threading.Thread(target=slow_ones, args=(postern.port, end, results), daemon=True)
        slow.start()
        killed, stuck, stops = {}, [], 0
        next_stop = time.time() + random.uniform(45, 75)
        status = 1
        f.say(f"soak for {seconds:.0f} s")
        try:
            while time.time() < end:
                time.sleep(random.uniform(2, 10))
                if time.time() >= next_stop:
                    runners = postern.processes("queue runner")
                    for p in runners:
                        os.kill(p, signal.SIGSTOP)
                    time.sleep(5)
                    for p in runners:
                        os.kill(p, signal.SIGCONT)
                    stops += 1
                    next_stop = time.time() + random.uniform(45, 75)
                    continue
                stuck += f.kill_random(postern, ROLES, killed)
            f.say("stopping the load; the next hop heals; draining")
            load.stop()
            slow.join(60)
            sink.heal()
            drained = f.drain(postern, sink, load, 300)
            failed_slow = [r for r in results.rows if not r[1]]
            notes = [f"killed: {killed}; queue runner stopped {stops} times",
                     f"slow clients: {len(results.rows)} sessions, {len(failed_slow)} not ended "
                     f"as they should be" + (f", e.g. {failed_slow[0]}" if failed_slow else "")]
            if stuck:
                notes.append(f"processes that outlived master: {len(stuck)}")
            if not drained:
                notes.append("the queue did not drain in 300 s")
            status = f.report("soak", load, sink, postern, notes,
                              failed=bool(stuck) or not drained)
        finally:
            f.shut_down(postern, sink, load)
        return f.verdict(status, postern)


if __name__ == "__main__":
    sys.exit(main())
