"""Bursts and per-user audiences: how soon does every page show the latest value?

    .venv/bin/python bench/burst.py [--clients 1000] [--rate-changes 200] [--rate 20] [--burst 200]
                                    [--users 1] [--modes raw,serverpush] [--client-procs 2]

One object changes ``--rate-changes`` times at ``--rate`` per second, then
``--burst`` times as fast as the producer goes; ``--clients`` real python-socketio
clients (websocket transport, bench/throughput_clients.py --latest) watch it.

- ``raw``: bench/raw_socketio_server.py, a bare python-socketio server emitting
  every change to one room (it cannot skip one), fed over ZeroMQ.
- ``serverpush``: ``manage.py runserverpush``; the producer saves one
  ``testapp.Note`` through the ORM. With ``--users 1`` every client opens
  ``/t/registered/`` (one audience); with ``--users K`` client ``i`` is signed in
  as user ``i % K`` on ``/t/per-user/<pk>/``, whose field map names the viewer:
  K audiences, K serializations per change unless they are conflated.

Each change's title is its time stamp. The latency of a change, for one client, is
the time until that client receives that title or a later one (a page that is
behind may skip values; it must never miss the latest). Every client must end on
the last title (``final`` column). Percentiles are over changes x clients, per
phase. The push server's stats show serializations and conflated updates.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import throughput  # noqa: E402
from throughput import Clients, Server, ZmqProducer, page_token, setup_django, ticks, wait_until  # noqa: E402

Produce = Callable[[int, "float | None"], list[str]]  # (changes, per second or None) -> the titles, in order


@dataclass
class Run:
    mode: str
    phases: dict[str, list[str]]  # phase -> titles produced
    results: list[dict[str, Any]]
    elapsed_s: float
    server_cpu_s: float
    stats: dict[str, int]

    def received(self) -> list[list[tuple[str, float]]]:
        return [list(map(tuple, r)) for result in self.results for r in result["received"]]

    def latencies_ms(self, phase: str) -> list[float]:
        """Per change and client: until that title or a later one arrived (none: never)."""
        out = []
        produced = [float(t) for t in self.phases[phase]]
        for received in self.received():
            stamps = [(float(title), at) for title, at in received]
            j = 0
            for s in produced:
                while j < len(stamps) and stamps[j][0] < s:
                    j += 1
                out.append(1000 * (stamps[j][1] - s) if j < len(stamps) else float("inf"))
        return out

    def final_ok(self) -> int:
        last = list(self.phases.values())[-1][-1]
        return sum(1 for received in self.received() if received and received[-1][0] == last)


def percentile(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1] if len(values) > 1 else float("nan")


def measure(mode: str, server: Server, clients: Clients, produce: Produce, options: argparse.Namespace) -> Run:
    before, cpu = server.stats(), server.cpu_seconds()
    clients.go()
    start = time.time()
    phases = {f"rate {options.rate:g}/s": produce(options.rate_changes, options.rate), "burst": produce(options.burst, None)}
    clients.go(list(phases.values())[-1][-1])
    results = clients.results()
    lasts = [r["last"] for r in results]
    elapsed = (max(lasts) if None not in lasts else time.time()) - start
    after = server.stats()
    stats = {k: v - before.get(k, 0) for k, v in after.items() if isinstance(v, int) and k not in throughput.GAUGES}
    return Run(mode, phases, results, elapsed, server.cpu_seconds() - cpu, stats)


# ---- producers -------------------------------------------------------------------

class RawProducer(ZmqProducer):
    def __call__(self, n: int, rate: float | None = None) -> list[str]:
        from serverpush.entries import encode

        titles = []
        for i in ticks(n, rate):
            entry = throughput.stamped_entry(1)
            self.socket.send(encode([entry]))
            titles.append(entry.fields["title"])
        return titles


def save_note(pk: int) -> Produce:
    from tests.testapp.models import Note

    note = Note.objects.get(pk=pk)

    def produce(n: int, rate: float | None) -> list[str]:
        titles = []
        for _ in ticks(n, rate):
            note.title = repr(time.time())
            note.save(update_fields=["title"])
            titles.append(note.title)
        return titles

    return produce


# ---- pages -----------------------------------------------------------------------

def user_pages(path: str, users: int, tmp: Path) -> Path:
    """One signed-in page of ``path`` per user, as JSON for throughput_clients --pages."""
    from django.contrib.auth.models import User
    from django.test import Client

    User.objects.bulk_create([User(username=f"bench{i}") for i in range(users)], ignore_conflicts=True)
    pages = []
    for user in User.objects.filter(username__startswith="bench").order_by("pk")[:users]:
        client = Client(HTTP_HOST="localhost")
        client.force_login(user)
        token = page_token(client, path)
        pages.append({"token": token, "cookie": "; ".join(f"{k}={v.value}" for k, v in client.cookies.items())})
    target = tmp / f"pages-{users}.json"
    target.write_text(json.dumps(pages))
    return target


def run_raw(options: argparse.Namespace) -> Run:
    server, zmq_port = throughput.start_raw_server(options.tmp, options)
    producer = RawProducer(zmq_port)
    try:
        producer(1)
        wait_until(lambda: server.stats().get("entries") == 1, 10, "the raw server's warm-up entry")
        clients = Clients(server.url, None, options, options.tmp / "clients-raw.log", ["--latest"])
        try:
            return measure("raw", server, clients, producer, options)
        finally:
            clients.close()
    finally:
        producer.close()
        server.stop()


def run_serverpush(options: argparse.Namespace) -> Run:
    from tests.testapp.models import Note

    server = throughput.start_push_server(options.tmp, options)
    try:
        note = Note.objects.create(title=repr(time.time()))
        wait_until(lambda: server.stats().get("entries", 0) >= 1, 10, "the push server's warm-up entry")
        if options.users > 1:
            wanted = ["--latest", "--pages", str(user_pages(f"/t/per-user/{note.pk}/", options.users, options.tmp))]
            token = None
        else:
            wanted, token = ["--latest"], page_token(browser(), "/t/registered/")
        clients = Clients(server.url, token, options, options.tmp / "clients-serverpush.log", wanted)
        try:
            return measure("serverpush", server, clients, save_note(note.pk), options)
        finally:
            clients.close()
    finally:
        server.stop()


def browser() -> Any:
    from django.test import Client

    return Client(HTTP_HOST="localhost")


# ---- report ----------------------------------------------------------------------

def report(runs: list[Run], options: argparse.Namespace) -> None:
    audiences = f"{options.users} users (per-user audiences)" if options.users > 1 else "one audience"
    print(f"\n{options.clients} clients in {options.client_procs} process(es), {audiences}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}\n")
    rows = [("mode", "phase", "changes", "p50 ms", "p99 ms", "max ms", "msgs", "final", "elapsed s", "server cpu s")]
    for run in runs:
        msgs = sum(sum(r["counts"]) for r in run.results)
        for phase, titles in run.phases.items():
            lat = run.latencies_ms(phase)
            rows.append((run.mode, phase, str(len(titles)), f"{percentile(lat, 50):.0f}", f"{percentile(lat, 99):.0f}", f"{max(lat):.0f}",
                         f"{msgs:,}", f"{run.final_ok()}/{options.clients}", f"{run.elapsed_s:.2f}", f"{run.server_cpu_s:.2f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
    by_mode = {run.mode: run for run in runs}
    if {"raw", "serverpush"} <= set(by_mode):
        for phase in by_mode["serverpush"].phases:
            ours, raw = percentile(by_mode["serverpush"].latencies_ms(phase), 99), percentile(by_mode["raw"].latencies_ms(phase), 99)
            print(f"serverpush/raw p99, {phase}: x{ours / raw:.2f}")
    for run in runs:
        if run.mode != "raw":
            shown = ", ".join(f"{k} {run.stats.get(k, 0)}" for k in ("entries", "serializations", "conflated", "serializer_errors"))
            print(f"push server stats ({run.mode}): {shown}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rate-changes", type=int, default=200, help="changes in the rate phase (default 200)")
    parser.add_argument("--rate", type=float, default=20, help="changes per second in the rate phase (default 20)")
    parser.add_argument("--burst", type=int, default=200, help="changes in the burst, flat out (default 200)")
    parser.add_argument("--users", type=int, default=1, help="distinct signed-in users, one audience each (default 1)")
    parser.add_argument("--modes", default="raw,serverpush", help="comma-separated subset of raw,serverpush")
    parser.add_argument("--async-mode", choices=("eventlet", "gevent"), default="eventlet")
    parser.add_argument("--client-procs", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=60, help="seconds to wait for the last change per mode")
    options = parser.parse_args()
    options.modes = [m.strip() for m in options.modes.split(",") if m.strip()]
    options.changes = options.rate_changes + options.burst
    return options


def main() -> None:
    options = parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory(prefix="serverpush-burst-") as tmp:
        options.tmp = Path(tmp)
        setup_django(options.tmp)
        runners = {"raw": run_raw, "serverpush": run_serverpush}
        runs = [runners[mode](options) for mode in options.modes]
    report(runs, options)


if __name__ == "__main__":
    main()
