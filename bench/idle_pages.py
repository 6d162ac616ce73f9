"""How many idle subscribed pages one push server holds, and what each costs in memory.

    python bench/idle_pages.py [--pages 10000] [--modes eventlet,gevent,threading,raw-eventlet,raw-gevent]

For each mode, one push server (``runserverpush --async-mode M``, default settings;
``raw-M`` is bench/raw_socketio_server.py, plain python-socketio) takes ``--pages``
websocket pages, opened a thousand at a time, each connected with the token of a
rendered page (so each is a subscribed, live page) and answering pings. Reported side
by side: pages live (as the clients see it, and as the server counts them), the
server's RSS before and after, and RSS per page.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import harness

from tests.crowd import Crowd
from tests.ports import free_port

BATCH = 1000
STALL_SECONDS = 60.0  # a batch that makes no progress for this long ends the mode


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def stats(url: str) -> dict[str, int]:
    with urllib.request.urlopen(url, timeout=120) as response:
        return json.load(response)


def wait_for(predicate: object, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


class RawServer:
    """bench/raw_socketio_server.py on free ports."""

    def __init__(self, tmp: Path, async_mode: str) -> None:
        self.port = free_port()
        command = [sys.executable, str(harness.ROOT / "bench" / "raw_socketio_server.py"), "--port", str(self.port), "--zmq-port", str(free_port()), "--async-mode", async_mode]
        self.process = subprocess.Popen(command, stdout=open(tmp / f"raw-{async_mode}.log", "ab"), stderr=subprocess.STDOUT)
        self.stats_url = f"http://127.0.0.1:{self.port}/stats"
        if not wait_for(self._ready, 30):
            raise RuntimeError(f"the raw server did not start (log: {tmp})")

    def _ready(self) -> bool:
        try:
            return bool(stats(self.stats_url) is not None)
        except OSError:
            return False

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


class PushServer:
    """``runserverpush`` with its default settings."""

    def __init__(self, tmp: Path, async_mode: str) -> None:
        self.server = harness.start_push_server(tmp, async_mode)
        self.port, self.process = self.server.port, self.server.process
        self.stats_url = f"{self.server.url}/serverpush/stats"

    def stop(self) -> None:
        self.server.stop()


def fill(crowd: Crowd, pages: int, live: str) -> float:
    """Open ``pages`` pages a batch at a time until each is ``live`` or gave up; return the seconds it took (stops at a stall)."""
    started = time.monotonic()
    done = {live, "refreshed", "refused", "closed"}
    while len(crowd.pages) < pages:
        crowd.open(min(BATCH, pages - len(crowd.pages)))
        print(f"  {len(crowd.pages)} opened, {crowd.count(live)} live, {time.monotonic() - started:.0f}s", file=sys.stderr, flush=True)
        last, stalled_at = -1, time.monotonic()
        while not set(crowd.states()) <= done:
            ready = crowd.count(live)
            if ready != last:
                last, stalled_at = ready, time.monotonic()
            elif time.monotonic() - stalled_at > STALL_SECONDS:
                return time.monotonic() - started
            time.sleep(0.05)
    return time.monotonic() - started


def measure(mode: str, tmp: Path, pages: int) -> dict[str, object]:
    from tests.conftest import render

    raw = mode.startswith("raw-")
    server = RawServer(tmp, mode[4:]) if raw else PushServer(tmp, mode)
    page = render(harness.browser(), "/t/registered/")  # after the server started: the embedded log's cursors are its own
    live_state = "connected" if raw else "ready"  # the raw server sends no serverpush_ready
    try:
        before = rss_kb(server.process.pid)
        crowd = Crowd(server.port, {"token": page.token, "cursor": page.cursor}, page.cookies)
        try:
            seconds = fill(crowd, pages, live_state)
            live = crowd.count(live_state)
            counted = stats(server.stats_url).get("connections")
            after = rss_kb(server.process.pid)
            states = crowd.states()
            for state in ("refreshed", "refused", "closed"):
                events = next((page.events for page in crowd.pages if page.state == state), None)
                if events:
                    print(f"{mode}: a page {state}: {events[-3:]}", file=sys.stderr)
        finally:
            crowd.close()
    finally:
        server.stop()
    return {"mode": mode, "live": live, "counted": counted, "rss_before_mb": before / 1024, "rss_after_mb": after / 1024,
            "kb_per_page": (after - before) / live if live else float("nan"), "seconds": seconds, "states": states}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=10_000)
    parser.add_argument("--modes", default="eventlet,gevent,threading,raw-eventlet,raw-gevent")
    options = parser.parse_args()
    tmp = harness.setup("memory")
    rows = [measure(mode, tmp, options.pages) for mode in options.modes.split(",")]
    print(f"\n{options.pages} idle pages per push server (one run, {os.cpu_count()} cores)\n")
    print(f"{'mode':<14}{'pages live':>12}{'server counts':>15}{'RSS before':>12}{'RSS after':>12}{'KB/page':>10}{'seconds':>9}  client states")
    for r in rows:
        print(f"{r['mode']:<14}{r['live']:>12}{r['counted']!s:>15}{r['rss_before_mb']:>10.0f}MB{r['rss_after_mb']:>10.0f}MB{r['kb_per_page']:>10.1f}{r['seconds']:>9.0f}  {r['states']}")


if __name__ == "__main__":
    main()
