"""Time to replay missed updates to a reconnecting page.

    .venv/bin/python bench/replay.py [--log redis|memory] [--missed 100] [--runs 20]

A page showing every note connects, goes away, ``--missed`` notes change, and it
reconnects with the cursor of the last event it applied: the figure is the time
from connecting to ``serverpush_ready``, all replayed events received (a real
Socket.IO client over a websocket, a real push server, a real redis-server).
"Nothing missed" is the same reconnect with nothing to replay: the handshake's
own cost. With Redis, "cold" is a push server that restarted after the page left,
so the missed range comes from Redis (one XRANGE) rather than its memory.
"""
from __future__ import annotations

import argparse
import statistics
import time

import harness


def reconnect_ms(tab: object, server: object) -> float:
    started = time.perf_counter()
    tab.connect(server)
    elapsed = (time.perf_counter() - started) * 1000
    assert not tab.refreshes, tab.refreshes
    return elapsed


def run(server: object, notes: list, tab: object, missed: int, restart: bool) -> float:
    tab.disconnect()
    for note in notes[:missed]:
        note.title = f"{note.title}+"
        note.save()
    if restart:
        server.stop(kill=True)
        server.start()
    seen = len(tab.events)
    elapsed = reconnect_ms(tab, server)
    replayed = [data for name, data in tab.events[seen:] if name == "serverpush"]
    assert len(replayed) == missed, (len(replayed), missed)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--log", choices=("redis", "memory"), default="redis")
    parser.add_argument("--missed", type=int, default=100)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    tmp = harness.setup(args.log)
    redis = harness.start_redis(tmp) if args.log == "redis" else None
    server = harness.start_push_server(tmp)
    try:
        measure(server, args, cold=redis is not None)
    finally:
        server.stop()
        if redis is not None:
            redis.close()


def measure(server: object, args: argparse.Namespace, cold: bool) -> None:
    from tests.tabs import Tab
    from tests.testapp.models import Note

    notes = [Note.objects.create(title=f"note {n}") for n in range(args.missed)]
    tab = Tab(harness.browser(), "/t/registered/").connect(server)
    cases = [("nothing missed", 0, False, args.runs), (f"{args.missed} missed", args.missed, False, args.runs)]
    if cold:
        cases.append((f"{args.missed} missed, cold push server", args.missed, True, max(3, args.runs // 4)))
    print(f"log: {args.log}; connect to serverpush_ready, ms")
    for label, missed, restart, runs in cases:
        times = sorted(run(server, notes, tab, missed, restart) for _ in range(runs))
        print(f"  {label:40s} median {statistics.median(times):7.1f}   p90 {times[int(len(times) * 0.9) - 1]:7.1f}   min {times[0]:7.1f}   ({runs} runs)")
    tab.disconnect()


if __name__ == "__main__":
    main()
