"""Is this push server delivering? Readiness, a watch on the log's tail, delivery latency.

A node can look healthy and deliver nothing: its tail stopped hearing the log (a
connection that went deaf, a wedged read). :class:`TailWatch` notices: when the
log holds an entry this node has not read for longer than ``SERVERPUSH_READY_LAG``
seconds, the node is not ready, says so in its log, counts it and restarts its tail.
"""
from __future__ import annotations

import bisect
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from serverpush.log import Log, Unavailable
from serverpush.stats import stats

logger = logging.getLogger(__name__)

CHECK_SECONDS = 0.5  # how often the tail is checked

# Seconds from a change's commit to its emission to the pages (live delivery only).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Latency:
    """A histogram of delivery latency, kept without any metrics library (exported by :mod:`serverpush.server.monitoring`)."""

    def __init__(self, buckets: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)  # the last one: above every bucket
        self.sum = 0.0
        self._lock = threading.Lock()

    def observe(self, seconds: float) -> None:
        seconds = max(seconds, 0.0)  # clocks of Django hosts and push servers may disagree a little
        with self._lock:
            self.counts[bisect.bisect_left(self.buckets, seconds)] += 1
            self.sum += seconds

    def cumulative(self) -> tuple[list[tuple[str, int]], float]:
        """``([(upper bound, count at or below), ..., ("+Inf", total)], sum)``."""
        with self._lock:
            counts, total = list(self.counts), self.sum
        running, rows = 0, []
        for bound, count in zip((*map(str, self.buckets), "+Inf"), counts):
            running += count
            rows.append((bound, running))
        return rows, total


latency = Latency()


@dataclass
class Readiness:
    ready: bool
    reason: str
    lag_seconds: float = 0.0


class TailWatch:
    """Checks that the tail reads what the log holds; a deaf tail is logged, counted and restarted."""

    def __init__(self, log: Log, threshold: float, sleep: Callable[[float], Any]) -> None:
        self.log = log
        self.threshold = threshold
        self.sleep = sleep
        self.state = Readiness(False, "the log is not tailed yet")
        self._waiting_for: Any = None  # the newest position the log held when the tail was first seen behind
        self._since = 0.0
        self._restarted_for: Any = None

    def run(self) -> None:
        while True:
            try:
                self.check()
            except Exception:
                logger.exception("serverpush: could not check the log's tail")
            self.sleep(CHECK_SECONDS)

    def check(self) -> Readiness:
        try:
            progress = self.log.progress()
        except Unavailable as exc:
            self.state = Readiness(False, str(exc))
            return self.state
        if progress is None:
            self.state = Readiness(True, "the log is pushed to this node")
            return self.state
        held, read = progress
        now = time.monotonic()
        if self._waiting_for is not None and read >= self._waiting_for:
            self._waiting_for = None  # the tail got there: it is moving
        if self._waiting_for is None and held > read:
            self._waiting_for, self._since = held, now
        lag = now - self._since if self._waiting_for is not None else 0.0
        if lag <= self.threshold:
            self.state = Readiness(True, "the tail reads the log", lag)
            return self.state
        self.state = Readiness(False, f"the log holds entries this node has not read for {lag:.1f}s (SERVERPUSH_READY_LAG is {self.threshold:g}s)", lag)
        if self._restarted_for != self._waiting_for:
            self._restarted_for = self._waiting_for
            stats["tail_deaf"] += 1
            logger.error("serverpush: the tail stopped hearing the log: it holds %s, this node read up to %s %.1fs ago; restarting the tail", held, read, lag)
            self.log.restart_tail()
        return self.state
