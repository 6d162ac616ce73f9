"""Per-connection limits on what a client may send."""
from __future__ import annotations

import time

from serverpush import conf


class Budget:
    """A token bucket: ``SERVERPUSH_CLIENT_EVENTS_PER_SECOND``, bursts of twice that."""

    def __init__(self) -> None:
        self.rate = float(conf.get("SERVERPUSH_CLIENT_EVENTS_PER_SECOND"))
        self.tokens = self.capacity = 2 * self.rate
        self.stamp = time.monotonic()

    def spend(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True
