#!/usr/bin/env python3
"""The next hop misbehaves: it vanishes in the middle of DATA, answers 421
in the middle of a session, or takes a whole message and then never
answers. Every message must still arrive; a message the sink received
before it stalled is sent again (the sender never heard the 250), which
the sink counts as a duplicate: that is RFC 1047's duplicate, by design.

  scripts/faults/next_hop.py [--short | SECONDS]   (default 60 s, --short 10 s)
"""

import sys
import time

import faultlib as f


def main():
    seconds = f.duration(10, 60)
    with f.Workdir() as work:
        sink = f.Sink({"vanish": 0.1, "421": 0.1, "stall": 0.05})
        sink.start()
        # A stalled next hop is given up on after 5 s (sendmail's default
        # is an hour), so that the retry comes within the run.
        postern = f.Postern(work, sink.port, options=["Timeout.datafinal=5s"])
        postern.start()
        load = f.Load(postern.port, clients=4, pause=0.05).start()
        status = 1
        try:
            f.say(f"load through a misbehaving next hop for {seconds:.0f} s")
            time.sleep(seconds)
            load.stop()
            f.say("the next hop heals; draining the queue")
            sink.heal()
            drained = f.drain(postern, sink, load, 120)
            notes = [] if drained else ["the queue did not drain in 120 s"]
            status = f.report("next hop vanishes, says 421, stalls", load, sink, postern, notes)
            if not drained:
                status = 1
            faulted = sum(sink.faulted.values())
            if faulted == 0:
                print("no fault was injected: the run proves nothing")
                status = 1
            # Every duplicate must be a stalled transfer's.
            duplicates = sum(1 for n in sink.received.values() if n > 1)
            if duplicates > sink.faulted["stall"]:
                print(f"more duplicates ({duplicates}) than stalled transfers "
                      f"({sink.faulted['stall']})")
                status = 1
        finally:
            f.shut_down(postern, sink, load)
        return f.verdict(status, postern)


if __name__ == "__main__":
    sys.exit(main())
