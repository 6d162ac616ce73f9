"""The embedded log: a bounded ring in the push server, fed over ZeroMQ.

Positions are ``<epoch>:<sequence>``; the epoch is new on every start of the push
server, so a cursor from an earlier run is detected. Django processes cannot ask
the ring for its position without a round trip, so a page's cursor is the time
its request started (``t<ms>``): a change committed after that time carries a
later timestamp and is replayed.
"""
from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import deque

from serverpush import conf
from serverpush.entries import Entry, decode, encode
from serverpush.log import notifier
from serverpush.log.base import BadCursor, Deliver, Gap, Log
from serverpush.stats import stats

logger = logging.getLogger(__name__)

# Replay a page cursor from this much earlier: Django processes stamp entries with
# their own clock, and a duplicate is harmless where a miss is not.
CLOCK_SKEW_MS = 2000


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Ring:
    """The last ``size`` entries, with contiguous sequence numbers.

    Locked: under ``--async-mode threading`` the notifier adds while connects read.
    """

    def __init__(self, size: int) -> None:
        self.epoch = secrets.token_hex(4)
        self.started_ms = now_ms()
        self.seq = 0
        self.entries: deque[Entry] = deque(maxlen=size)
        self.evicted_ts = 0
        self._lock = threading.Lock()

    def add(self, entries: list[Entry]) -> None:
        with self._lock:
            for entry in entries:
                if len(self.entries) == self.entries.maxlen:
                    self.evicted_ts = max(self.evicted_ts, self.entries[0].ts)
                self.seq += 1
                entry.position = f"{self.epoch}:{self.seq}"
                self.entries.append(entry)

    def head(self) -> str:
        with self._lock:
            return f"{self.epoch}:{self.seq}"

    def after(self, cursor: str) -> list[Entry]:
        with self._lock:
            if cursor.startswith("t"):
                return self._after_time(_int(cursor[1:], cursor))
            epoch, _, seq = cursor.partition(":")
            return self._after_seq(epoch, _int(seq, cursor))

    def _after_time(self, ms: int) -> list[Entry]:
        if ms < self.started_ms:
            raise Gap("log_restarted", "the push server started after this page was rendered")
        since = ms - CLOCK_SKEW_MS
        if self.evicted_ts >= since:
            raise Gap("log_gap", "the log no longer holds every change since this page was rendered")
        return [e for e in self.entries if e.ts >= since]

    def _after_seq(self, epoch: str, seq: int) -> list[Entry]:
        if epoch != self.epoch:
            raise Gap("log_restarted", "the push server restarted since this page last heard from it")
        if seq > self.seq:
            raise BadCursor(f"cursor {epoch}:{seq} is ahead of the log ({self.epoch}:{self.seq})")
        first = self.seq - len(self.entries) + 1
        if seq < first - 1:
            raise Gap("log_gap", "the log no longer holds every change since this page last heard from it")
        return list(self.entries)[len(self.entries) - (self.seq - seq):] if seq < self.seq else []


def _int(text: str, cursor: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise BadCursor(f"cursor {cursor!r} is not 't<ms>' or '<epoch>:<sequence>'") from None


class MemoryLog(Log):
    def __init__(self) -> None:
        self._sender = notifier.Sender(notifier.endpoint())
        self._ring: Ring | None = None

    def append(self, entries: list[Entry]) -> None:
        self._sender.send(encode(entries))

    def cursor_at(self, started_ms: int) -> str:
        return f"t{started_ms}"

    def serve(self, deliver: Deliver, async_mode: str) -> None:
        self._ring = Ring(conf.get("SERVERPUSH_MEMORY_LOG_SIZE"))

        def handle(payload: bytes) -> None:
            try:
                entries = decode(payload)
            except ValueError as exc:
                logger.warning("serverpush: dropped a malformed notifier message: %s", exc)
                stats["notifier_malformed"] += 1
                return
            self._ring.add(entries)
            deliver(entries)

        notifier.receive_forever(notifier.endpoint(), notifier.zmq_for(async_mode), handle)

    def head(self) -> str:
        return self._server_ring().head()

    def previous(self, position: str) -> str:
        epoch, _, seq = position.partition(":")
        return f"{epoch}:{int(seq) - 1}"

    def read_after(self, cursor: str) -> list[Entry]:
        return self._server_ring().after(cursor)

    def _server_ring(self) -> Ring:
        if self._ring is None:
            raise RuntimeError("the memory log's ring lives in the push server; call serve() first")
        return self._ring

    def close(self) -> None:
        self._sender.close()
