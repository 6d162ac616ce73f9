"""What a Django process does while Redis is unreachable: never wait long, never hide a loss.

A change that cannot be written is not kept for later: written late, it could land
after a newer change to the same object from another process, and pages would end
on the older state without knowing. Instead the process counts what it could not
write and, as soon as Redis answers again (its next write, or a background retry),
writes one ``lost`` marker before anything else. Push servers that tail the marker
resync the pages they serve; a page that replays across it resyncs too.
"""
from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable

# After a failure, Redis is skipped for this long: requests go on at full speed.
PAUSE_SECONDS = 1.0


def marker(count: int, since_ms: int) -> str:
    """The ``lost`` marker's JSON: how many changes, since when, from which process."""
    return json.dumps({"count": count, "since": since_ms, "pid": os.getpid()}) if count else ""


class Breaker:
    """Open for :data:`PAUSE_SECONDS` after each failure; while open, nobody calls Redis."""

    def __init__(self, pause: float = PAUSE_SECONDS) -> None:
        self.pause = pause
        self._until = 0.0

    def is_open(self) -> bool:
        return time.monotonic() < self._until

    def trip(self) -> None:
        self._until = time.monotonic() + self.pause


class Losses:
    """Changes this process failed to write, until a ``lost`` marker has reported them.

    ``report()`` is called from a background thread every :data:`PAUSE_SECONDS`
    while losses are pending, so they are reported even if the process writes
    nothing else. It must call :meth:`take` and, on failure, :meth:`add` back.
    """

    def __init__(self, report: Callable[[], None]) -> None:
        self._report = report
        self._lock = threading.Lock()
        self._count = 0
        self._since_ms = 0
        self._reporter: threading.Thread | None = None
        self._closed = threading.Event()

    def add(self, count: int, since_ms: int) -> None:
        with self._lock:
            self._count += count
            self._since_ms = min(self._since_ms or since_ms, since_ms)
            if self._reporter is None or not self._reporter.is_alive():
                self._reporter = threading.Thread(target=self._retry, name="serverpush-loss-report", daemon=True)
                self._reporter.start()

    def take(self) -> tuple[int, int]:
        """The pending count and the time of the first loss; they are no longer pending."""
        with self._lock:
            taken = self._count, self._since_ms
            self._count = self._since_ms = 0
        return taken

    def pending(self) -> int:
        with self._lock:
            return self._count

    def _retry(self) -> None:
        while self.pending() and not self._closed.wait(PAUSE_SECONDS):
            self._report()

    def close(self) -> None:
        self._closed.set()
