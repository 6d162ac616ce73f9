"""Hostile frames against a push server in each async mode: what they cost it.

    .venv/bin/python bench/hostile_frames.py [--mb 300] [--modes eventlet gevent threading]

Per mode, a fresh push server (embedded log) and four attacks, one connection each:

- one text frame announcing ``--mb`` MB, its payload then written as fast as the
  server takes it;
- the same message as a chain of unfinished 64 KiB frames (each under the limit);
- one compressed frame of 58 KB (permessage-deflate, where the server offers it)
  inflating to 60 MB;
- a flood of 200 text frames of 6 KB, arrays nested 3,000 deep, from a connected page.

Reported: the bytes the attacker managed to send, the seconds until the server
closed the connection, the server's RSS before, after and at its peak during the
attack, the slowest answer of ``/serverpush/stats`` polled meanwhile (is everyone
else stalled?), the ``malformed_frames`` counter, and for the flood the tracebacks and
bytes it added to the server's log.
"""
from __future__ import annotations

import argparse
import json
import os
import threading
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import harness

MIB = 1024 * 1024
BOMB_BYTES = 60 * 1000 * 1000  # compresses to 58 KB: under the limit, so only inflating it can tell


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=int, default=300, help="size of the oversized message, in MB (10**6 bytes)")
    parser.add_argument("--modes", nargs="+", default=["eventlet", "gevent", "threading"])
    args = parser.parse_args()
    tmp = harness.setup("memory")
    os.environ["SERVERPUSH_LOG_LEVEL"] = "INFO"  # where refusals are logged: count what they cost
    from tests.hostile import deflate_bomb

    size, bomb = args.mb * 1000 * 1000, deflate_bomb(BOMB_BYTES)
    attacks: dict[str, Callable[[Any], int]] = {
        "one frame": lambda attacker: attacker.stream(size, size),
        "unfinished frames": lambda attacker: attacker.stream(size, size, fragments=True),
        "deflate bomb": lambda attacker: attacker.send_frame(bomb),
    }
    for mode in args.modes:
        server = harness.start_push_server(tmp, mode)
        try:
            for name, attack in attacks.items():
                report(mode, name, oversized(server, attack, deflate=name == "deflate bomb"))
            report(mode, "nested flood", nested_flood(server))
        finally:
            server.stop()


def oversized(server: Any, attack: Callable[[Any], int], deflate: bool) -> dict[str, object]:
    from tests.hostile import RawEngineSocket, peak_rss_kib, reset_peak, rss_kib

    pid = server.process.pid
    before, counted = rss_kib(pid), malformed(server)
    reset_peak(pid)
    attacker = RawEngineSocket(server.port, timeout=60, deflate=deflate)
    with Poller(server.url) as poller:
        started = time.monotonic()
        written = attack(attacker)
        closed = time_closed(attacker, 120)
    return {
        "sent MiB": round(written / MIB, 1),
        "closed after s": "still open after 120" if closed is None else round(closed - started, 4),
        "RSS MiB before/after/peak": f"{before / 1024:.0f}/{rss_kib(pid) / 1024:.0f}/{peak_rss_kib(pid) / 1024:.0f}",
        "slowest stats s": round(poller.slowest, 3),
        "counted": malformed(server) - counted,
    }


def nested_flood(server: Any) -> dict[str, object]:
    from tests.conftest import render
    from tests.hostile import RawEngineSocket, nested_event

    token = render(harness.browser(), "/t/hello-fields/").token
    log_before, counted = server.log(), malformed(server)
    attacker = RawEngineSocket(server.port).connect({"token": token, "cursor": None})
    started = time.monotonic()
    attacker.flood([nested_event(3000)] * 200)
    closed = time_closed(attacker, 60)
    time.sleep(1)  # a bench, not a test: let the server finish logging what it will
    added = server.log()[len(log_before):]
    return {
        "closed after s": "still open after 60" if closed is None else round(closed - started, 4),
        "counted": malformed(server) - counted,
        "tracebacks": added.count("Traceback"),
        "log KB": round(len(added.encode()) / 1024, 1),
    }


def malformed(server: Any) -> int:
    """The server's ``malformed_frames``, waiting as long as it takes a stalled server to answer."""
    with urllib.request.urlopen(f"{server.url}/serverpush/stats", timeout=300) as response:
        return json.load(response).get("malformed_frames", 0)


def time_closed(attacker: Any, timeout: float) -> float | None:
    """When the server closed ``attacker``'s connection (``time.monotonic()``), or None after ``timeout``."""
    try:
        attacker.wait_closed(timeout)
    except TimeoutError:
        return None
    return time.monotonic()


class Poller:
    """Polls ``/serverpush/stats`` while the block runs; ``slowest`` is its longest wait."""

    def __init__(self, url: str) -> None:
        self.url, self.slowest, self.done = f"{url}/serverpush/stats", 0.0, threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> Poller:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join()

    def _poll(self) -> None:
        while not self.done.wait(0.05):
            started = time.monotonic()
            try:
                urllib.request.urlopen(self.url, timeout=60).read()
            except OSError:
                pass  # timed out: counted below as the 60 s it waited
            self.slowest = max(self.slowest, time.monotonic() - started)


def report(mode: str, attack: str, numbers: dict[str, object]) -> None:
    print(f"{mode:9} {attack:17} " + "  ".join(f"{key}: {value}" for key, value in numbers.items()), flush=True)


if __name__ == "__main__":
    main()
