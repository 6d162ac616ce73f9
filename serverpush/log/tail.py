"""The push server's side of the Redis log: follow the stream, answer replays.

One connection blocks in ``XREAD`` and feeds a :class:`Window`; replays read the
window, which reads older ranges from Redis once for everyone. The tail checks
the chain of ``p`` ids and the epoch: when pages already live may have missed
entries (the stream was replaced, trimmed past this node, or a Django process
reported a loss) it raises :class:`Gap` and the server resyncs them. A Redis
outage is waited out with backoff, logged once, and counted.
"""
from __future__ import annotations

import logging
import socket
import threading
import time

import redis

from serverpush.entries import Entry, clock_skew_ms
from serverpush.log.base import BadCursor, Deliver, Gap, Unavailable
from serverpush.log.stream import ZERO, Record, Snapshot, Stream, StreamId, connect
from serverpush.log.window import Window
from serverpush.stats import stats

logger = logging.getLogger(__name__)

BLOCK_MS = 2000  # one XREAD waits this long; then the tail checks the epoch
BATCH = 500  # records per XREAD
READ_AHEAD = 500  # records read before a reconnecting page's cursor, for the pages after it
TIMEOUT = 5.0  # seconds the push server waits for Redis before treating it as down
MIN_BACKOFF, MAX_BACKOFF = 0.05, 2.0  # seconds between attempts while Redis is down

RESTARTED = "the Redis log was flushed or replaced since this page last heard from the server"
LOST = "a Django process could not write some changes to Redis while it was unreachable"


class Tail:
    def __init__(self, url: str, key: str, cap: int) -> None:
        self.url = url
        self.key = key
        self.cap = cap
        self.window: Window | None = None
        self._last = ZERO
        self._reads = Stream(connect(url, TIMEOUT, TIMEOUT), key)
        self._down_since: float | None = None
        self._closed = threading.Event()
        self._serving: Stream | None = None

    def serve(self, deliver: Deliver) -> None:
        """Follow the stream until :meth:`close`; Redis errors are waited out, :class:`Gap` is raised."""
        stream = self._serving = Stream(connect(self.url, BLOCK_MS / 1000 + TIMEOUT, TIMEOUT), self.key)
        delay = MIN_BACKOFF
        try:
            while not self._closed.is_set():
                try:
                    self._sync(stream)
                    self._recovered()
                    delay = MIN_BACKOFF
                    while not self._closed.is_set():
                        self._step(stream, deliver)
                except redis.RedisError as exc:
                    self._failed(exc)
                    self._closed.wait(delay)
                    delay = min(delay * 2, MAX_BACKOFF)
        finally:
            stream.client.close()

    def _failed(self, exc: Exception) -> None:
        stats["redis_errors"] += 1
        if self._down_since is None:
            self._down_since = time.monotonic()
            stats["redis_outages"] += 1
            logger.warning("serverpush: lost Redis at %s (%s); retrying with backoff", self.url, exc)

    def _recovered(self) -> None:
        if self._down_since is not None:
            logger.warning("serverpush: Redis at %s is back after %.1fs; tailing from %s", self.url, time.monotonic() - self._down_since, self._last)
            stats["redis_recoveries"] += 1
            self._down_since = None

    def _step(self, stream: Stream, deliver: Deliver) -> None:
        records = stream.wait(self.window.epoch, self._last, BLOCK_MS, BATCH)
        if not records:
            self._sync(stream)  # the stream may have been replaced without a new entry reaching us
            return
        if records[0].prev != self._last:
            self._hole(stream, records[0].prev)
        start = 0
        for n, record in enumerate(records):
            if record.lost is not None or n == len(records) - 1:
                self._take(records[start:n + 1], deliver)
                start = n + 1

    def _take(self, records: list[Record], deliver: Deliver) -> None:
        """Window first, then deliver: a page going live sees each record in one or the other."""
        self.window.add(records)
        self._last = records[-1].id
        changes = [r.entry for r in records if r.entry is not None]
        if changes:
            deliver(changes)
        if records[-1].lost is not None:
            stats["lost_markers"] += 1
            logger.warning("serverpush: a Django process reported changes it could not write (%s); resyncing every page", records[-1].lost)
            raise Gap("log_gap", LOST)

    def _hole(self, stream: Stream, prev: StreamId) -> None:
        self._sync(stream)
        stats["log_holes"] += 1
        logger.warning("serverpush: entries between %s and %s were trimmed before this node read them; resyncing every page", self._last, prev)
        self.window = self._window(self.window.epoch, self.window.created, prev)
        self._last = prev
        raise Gap("log_gap", "the log was trimmed past what this push server had read")

    def _sync(self, stream: Stream) -> None:
        """Learn the epoch; raise :class:`Gap` if it is not the one the window holds."""
        snap = stream.read()
        if self.window is None:
            self.window = self._window(snap.epoch, snap.created, snap.last)
            self._last = snap.last
            logger.info("serverpush: tailing Redis stream %r at %s (epoch %s) from %s", self.key, self.url, snap.epoch, snap.last)
            return
        if snap.epoch == self.window.epoch and snap.last < self._last:
            logger.warning("serverpush: Redis lost entries up to %s that this node had read; opening a new epoch", self._last)
            snap = stream.read(replace=snap.epoch)
        if snap.epoch != self.window.epoch:
            self._restart(snap)

    def _restart(self, snap: Snapshot) -> None:
        stats["log_restarts"] += 1
        logger.warning("serverpush: the Redis log was flushed or replaced (epoch %s, now %s); resyncing every page", self.window.epoch, snap.epoch)
        self.window = self._window(snap.epoch, snap.created, ZERO)
        self._last = ZERO
        raise Gap("log_restarted", RESTARTED)

    def _window(self, epoch: str, created: StreamId, base: StreamId) -> Window:
        def fetch(after: StreamId, upto: StreamId) -> list[Record]:
            stats["redis_range_reads"] += 1
            snap = self._reads.read(after, upto, READ_AHEAD)
            if snap.epoch != epoch:
                raise Gap("log_restarted", RESTARTED)
            return snap.records

        return Window(epoch, created, base, self.cap, fetch)

    def head(self) -> str:
        window = self._ready()
        return f"{window.epoch}:{window.head()}"

    def read_after(self, cursor: str) -> list[Entry]:
        window = self._ready()
        try:
            records = window.after(_start(cursor, window))
        except redis.RedisError as exc:
            raise Unavailable(f"Redis did not answer the replay read: {exc}") from None
        if any(r.lost is not None for r in records):
            raise Gap("log_gap", LOST)
        return [r.entry for r in records if r.entry is not None]

    def _ready(self) -> Window:
        if self.window is None:
            raise Unavailable(f"the push server has not reached Redis at {self.url} yet; retry shortly")
        return self.window

    def progress(self) -> tuple[StreamId, StreamId]:
        """``(last id Redis holds, last id this tail read)``; raises :class:`Unavailable`."""
        window = self._ready()
        if self._down_since is not None:
            raise Unavailable(f"Redis at {self.url} has not answered the tail for {time.monotonic() - self._down_since:.1f}s")
        try:
            snap = self._reads.read()
        except redis.RedisError as exc:
            raise Unavailable(f"Redis at {self.url} did not answer: {exc}") from None
        return (snap.last if snap.epoch == window.epoch else self._last), self._last

    def restart(self) -> None:
        """Drop the tail's connection, so a read that never returns fails and :meth:`serve` reconnects."""
        stream = self._serving
        if stream is None:
            return
        # Shut the socket down under the blocked read: it fails as a closed connection,
        # which the client retries at once on a new one (closing the connection
        # object itself is its reader's business).
        pool = stream.client.connection_pool
        with pool._lock:
            in_use = list(pool._in_use_connections)
        for connection in in_use:
            sock = getattr(connection, "_sock", None)
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        """Stop :meth:`serve` (after its current XREAD) and release connections."""
        self._closed.set()
        self._reads.client.close()


def _start(cursor: str, window: Window) -> StreamId:
    """The stream id after which ``cursor`` needs every record."""
    if cursor.startswith("t") and cursor[1:].isdigit():
        ms = int(cursor[1:])
        if ms < window.created.ms:
            raise Gap("log_restarted", "the Redis log was started or replaced after this page was rendered")
        return StreamId(ms - clock_skew_ms(), 0)  # the page's clock is the Django host's, stream ids are Redis's
    epoch, sep, raw = cursor.partition(":")
    try:
        position = StreamId.parse(raw)
    except ValueError:
        position = None
    if not sep or position is None:
        raise BadCursor(f"cursor {cursor!r} is not 't<ms>' or '<epoch>:<stream id>'")
    if epoch != window.epoch:
        raise Gap("log_restarted", RESTARTED)
    return position
