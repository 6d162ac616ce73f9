"""The clients of bench/throughput.py: one process of python-socketio clients.

    python bench/throughput_clients.py --url URL --clients C --expected N [--token T] [--timeout S]
    python bench/throughput_clients.py --url URL --clients C --latest [--token T | --pages FILE] [--timeout S]

Connects C clients over the websocket transport (as a serverpush page with
``auth={'token': T, 'cursor': None}`` when ``--token`` is given, and waits for
their ``serverpush_ready``), then talks JSON lines on stdin/stdout:

- prints ``{"ready": true}`` once every client is connected;
- on a line on stdin ("go"), waits until every client has received N
  ``serverpush`` events (or ``--timeout`` seconds) and prints
  ``{"counts", "last", "latencies_ms"}``: events per client, the time.time() at
  which the last client got its last event (null if one never did), and each
  event's receive time minus the creation time stamped in its ``data.title``
  (end of stdin instead of "go": exits);
- on the next line or end of stdin, disconnects and exits.

With ``--latest`` (bench/burst.py: one object changing, conflation allowed), the
line after "go" is the title of the last change; once every client has received
that title, it prints ``{"counts", "last", "received"}``, ``received`` holding, per
client, each event's ``[title, receive time]``. ``--pages`` names a JSON file with
one ``{"token", "cookie"}`` per client (a page of its own user each).

It runs apart from the producer so the clients' threads do not hold up the
producer's GIL (a Django save waits for the GIL after every SQLite call).
"""
from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import socketio

from serverpush.testing.client import InOrderClient


class Audience:
    """``clients`` python-socketio clients counting the ``serverpush`` events they get."""

    def __init__(self, clients: int, expected: int | None) -> None:
        self.expected = expected
        self.final: str | None = None  # --latest: the title of the last change, once known
        self.counts = [0] * clients
        self.last = [0.0] * clients
        self.latencies: list[float] = []
        self.received: list[list[tuple[str, float]]] = [[] for _ in range(clients)]
        self.ready = 0
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.sockets = [self._client(i) for i in range(clients)]

    def _client(self, i: int) -> socketio.Client:
        client = InOrderClient(reconnection=False)  # not a thread per event: that, not the server, would be measured
        client.on("serverpush", lambda data: self._received(i, data))
        client.on("serverpush_ready", lambda data: self._ready())
        return client

    def _ready(self) -> None:
        with self.lock:
            self.ready += 1

    def _received(self, i: int, data: dict[str, Any]) -> None:
        now = time.time()
        title = data["data"]["title"]
        with self.lock:
            self.counts[i] += 1
            if self.expected is None:
                self.received[i].append((title, now))
                if title == self.final:
                    self._arrived(i, now)
                return
            self.latencies.append(now - float(title))
            if self.counts[i] == self.expected:
                self._arrived(i, now)

    def _arrived(self, i: int, now: float) -> None:
        self.last[i] = now
        if all(self.last):
            self.done.set()

    def expect_final(self, title: str) -> None:
        with self.lock:
            self.final = title
            for i, received in enumerate(self.received):
                if not self.last[i] and any(t == title for t, _ in received):
                    self._arrived(i, received[-1][1])

    def connect(self, url: str, pages: list[dict[str, Any]], first: int, wait_ready: bool) -> None:
        """``pages``: ``{"auth", "headers"}`` for client ``i`` at ``first + i``, round robin."""
        def connect_one(i: int) -> None:
            page = pages[(first + i) % len(pages)]
            self.sockets[i].connect(url, auth=page["auth"], headers=page["headers"], transports=["websocket"], wait_timeout=10)

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(connect_one, range(len(self.sockets))))
        deadline = time.monotonic() + 30
        while wait_ready and self.ready < len(self.sockets):
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {self.ready} of {len(self.sockets)} clients got serverpush_ready")
            time.sleep(0.02)

    def result(self) -> dict[str, Any]:
        with self.lock:
            result = {"counts": list(self.counts), "last": max(self.last) if self.done.is_set() else None}
            if self.expected is None:
                return {**result, "received": self.received}
            return {**result, "latencies_ms": [round(1000 * s, 2) for s in self.latencies]}

    def close(self) -> None:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda client: client.disconnect(), self.sockets))


def say(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def pages_of(options: argparse.Namespace) -> list[dict[str, Any]]:
    if options.pages:
        with open(options.pages) as f:
            return [{"auth": {"token": p["token"], "cursor": None}, "headers": {"Cookie": p["cookie"]}} for p in json.load(f)]
    return [{"auth": {"token": options.token, "cursor": None} if options.token else None, "headers": {}}]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--expected", type=int, default=None)
    parser.add_argument("--latest", action="store_true", help="done when every client has the last change's title (read after go)")
    parser.add_argument("--token", default=None, help="connect as a serverpush page with this token")
    parser.add_argument("--pages", default=None, help="JSON file: one {token, cookie} per client")
    parser.add_argument("--first", type=int, default=0, help="this process's first client, an index into --pages")
    parser.add_argument("--timeout", type=float, default=60)
    options = parser.parse_args()
    if (options.expected is None) != options.latest:
        parser.error("give one of --expected N or --latest")
    audience = Audience(options.clients, options.expected)
    try:
        pages = pages_of(options)
        audience.connect(options.url, pages, options.first, wait_ready=pages[0]["auth"] is not None)
        say({"ready": True})
        if not sys.stdin.readline():  # the bench gave up before starting
            return
        if options.latest:
            audience.expect_final(sys.stdin.readline().strip())
        audience.done.wait(options.timeout)
        say(audience.result())
        sys.stdin.readline()
    finally:
        audience.close()


if __name__ == "__main__":
    main()
