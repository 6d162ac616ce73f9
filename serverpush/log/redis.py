"""The Redis log: a Redis Stream every Django process appends to and every push server tails.

Selected with ``SERVERPUSH_LOG = "redis://host:6379/0"``. Django processes write
to Redis directly: :meth:`RedisLog.append` writes a transaction's changes in one
round trip, and :meth:`RedisLog.position` (called by the middleware before a view
runs) reads the page cursor ``<epoch>:<stream id>`` in one. Both give up after
``SERVERPUSH_REDIS_TIMEOUT``; what happens then is in :mod:`serverpush.log.outage`.
Push servers follow the stream with a :class:`~serverpush.log.tail.Tail`; as many
as you like can follow the same stream, which is how serverpush scales out.
"""
from __future__ import annotations

import logging
import time

import redis

from serverpush import conf
from serverpush.entries import Entry, encode, now_ms
from serverpush.log.base import Deliver, Log
from serverpush.log.outage import Breaker, Losses, Spool, marker
from serverpush.log.stream import Stream, connect
from serverpush.log.tail import Tail

logger = logging.getLogger(__name__)


class RedisLog(Log):
    shared = True

    def __init__(self, url: str) -> None:
        self.url = url
        self.key = conf.get("SERVERPUSH_REDIS_STREAM")
        self.maxlen = conf.get("SERVERPUSH_REDIS_MAXLEN")
        self.max_age_ms = int(conf.get("SERVERPUSH_REDIS_MAX_AGE") * 1000)
        timeout = conf.get("SERVERPUSH_REDIS_TIMEOUT")
        self._stream = Stream(connect(url, timeout, timeout), self.key)
        self._breaker = Breaker()
        self._losses = Losses(report=lambda: self._write([], probe=True), spool=Spool(f"{url}|{self.key}", conf.get("SERVERPUSH_REDIS_SPOOL_DIR")))
        self._tail: Tail | None = None
        self._cursor_max_age = conf.get("SERVERPUSH_CURSOR_MAX_AGE")
        self._recent: tuple[str, float] | None = None  # (a position read, monotonic time the read began)

    # Django processes

    def append(self, entries: list[Entry]) -> None:
        self._write(entries)

    def _write(self, entries: list[Entry], probe: bool = False) -> None:
        """Write pending losses, then ``entries``; on failure they become losses too."""
        lost, since = self._losses.take()
        if not entries and not lost:
            return
        if self._breaker.is_open() and not probe:
            self._losses.add(lost + len(entries), since or now_ms())
            return
        try:
            self._stream.append([encode([e]).decode() for e in entries], marker(lost, since), self.maxlen, self._min_id())
        except redis.RedisError as exc:
            self._breaker.trip()
            self._losses.add(lost + len(entries), since or now_ms())
            logger.warning("serverpush: Redis did not take %d change(s) (%s); pages will be told to resync once it answers", lost + len(entries), exc)
            return
        if lost:
            logger.warning("serverpush: Redis answers again; reported %d change(s) it missed, pages will resync", lost)

    def _min_id(self) -> str:
        return f"{now_ms() - self.max_age_ms}-0" if self.max_age_ms > 0 else "0"

    def position(self) -> str:
        """``<epoch>:<last id>``; the time-derived cursor if Redis does not answer.

        One round trip, unless this process read a position less than
        ``SERVERPUSH_CURSOR_MAX_AGE`` seconds ago: that one is reused. It was read
        before this request began, so every change this page could miss (committed
        after the request began) has a later id and is replayed; the page may replay
        a few it already shows, which is harmless.
        """
        recent = self._recent
        began = time.monotonic()
        if recent is not None and began - recent[1] < self._cursor_max_age:
            return recent[0]
        started = now_ms()
        self._losses.absorb()
        if not self._breaker.is_open():
            try:
                snap = self._stream.read()
                self._recent = (f"{snap.epoch}:{snap.last}", began)
                return self._recent[0]
            except redis.RedisError as exc:
                self._breaker.trip()
                logger.warning("serverpush: could not read the page cursor from Redis (%s); using a time-derived one", exc)
        return self.cursor_at(started)

    def cursor_at(self, started_ms: int) -> str:
        """``t<ms>``: replayed from that time in the current epoch (see docs/redis.md)."""
        return f"t{started_ms}"

    def identity(self) -> str:
        db = self._stream.client.connection_pool.connection_kwargs.get("db", 0)
        return f"the Redis stream {self.key!r} in database {db}"

    # The push server

    def open(self, async_mode: str) -> None:
        self._server_tail()  # before any thread of the push server asks for it

    def serve(self, deliver: Deliver, async_mode: str) -> None:
        self._server_tail().serve(deliver)

    def head(self) -> str:
        return self._server_tail().head()

    def previous(self, position: str) -> str:
        epoch, _, stream_id = position.partition(":")
        ms, _, seq = stream_id.partition("-")
        before = f"{ms}-{int(seq) - 1}" if int(seq) > 0 else f"{int(ms) - 1}-18446744073709551615"
        return f"{epoch}:{before}"

    def read_after(self, cursor: str) -> list[Entry]:
        return self._server_tail().read_after(cursor)

    def progress(self) -> tuple[object, object]:
        return self._server_tail().progress()

    def restart_tail(self) -> None:
        self._server_tail().restart()

    def _server_tail(self) -> Tail:
        if self._tail is None:
            self._tail = Tail(self.url, self.key, self.maxlen)
        return self._tail

    def close(self) -> None:
        self._losses.close()
        self._stream.client.close()
        if self._tail is not None:
            self._tail.close()
