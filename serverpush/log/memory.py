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
from collections import deque

from serverpush import conf
from serverpush.entries import Entry, clock_skew_ms, now_ms
from serverpush.log import notifier
from serverpush.log.base import BadCursor, Deliver, Gap, Log
from serverpush.stats import stats

logger = logging.getLogger(__name__)

LOST = "lost"  # the op of a ring entry that marks changes which never reached the ring
LOST_MESSAGE = "changes committed since this page last heard from the server never reached it (the notifier dropped them)"


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
                self._append(entry)

    def add_lost(self, lost: notifier.Lost) -> None:
        """Mark changes that never arrived: a replay that covers the time they committed is a gap."""
        with self._lock:
            self._append(Entry("", None, LOST, {"count": lost.count, "since": lost.since}, ts=lost.until))

    def _append(self, entry: Entry) -> None:
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
        since = ms - clock_skew_ms()
        if self.evicted_ts >= since:
            raise Gap("log_gap", "the log no longer holds every change since this page was rendered")
        return _checked([e for e in self.entries if e.ts >= since])

    def _after_seq(self, epoch: str, seq: int) -> list[Entry]:
        if epoch != self.epoch:
            raise Gap("log_restarted", "the push server restarted since this page last heard from it")
        if seq > self.seq:
            raise BadCursor(f"cursor {epoch}:{seq} is ahead of the log ({self.epoch}:{self.seq})")
        first = self.seq - len(self.entries) + 1
        if seq < first - 1:
            raise Gap("log_gap", "the log no longer holds every change since this page last heard from it")
        return _checked(list(self.entries)[len(self.entries) - (self.seq - seq):] if seq < self.seq else [])


def _checked(entries: list[Entry]) -> list[Entry]:
    if any(e.op == LOST for e in entries):
        raise Gap("log_gap", LOST_MESSAGE)
    return entries


def _int(text: str, cursor: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise BadCursor(f"cursor {cursor!r} is not 't<ms>' or '<epoch>:<sequence>'") from None


class MemoryLog(Log):
    def __init__(self) -> None:
        self._sender = notifier.Sender(notifier.endpoint())
        self._ring: Ring | None = None
        self._receiver: notifier.Receiver | None = None
        self._senders: notifier.Senders | None = None

    def append(self, entries: list[Entry]) -> None:
        self._sender.send(entries)

    def cursor_at(self, started_ms: int) -> str:
        return f"t{started_ms}"

    def identity(self) -> str:
        return f"the embedded log, notifier port {conf.get('SERVERPUSH_NOTIFIER_PORT')}"

    def open(self, async_mode: str) -> None:
        """Start the ring (its epoch) and bind the notifier, before the first page can connect."""
        if self._receiver is None:
            self._ring = Ring(conf.get("SERVERPUSH_MEMORY_LOG_SIZE"))
            self._senders = notifier.Senders(self._ring.started_ms)
            self._receiver = notifier.Receiver(notifier.endpoint(), notifier.zmq_for(async_mode))

    def serve(self, deliver: Deliver, async_mode: str) -> None:
        """Take frames from the notifier; raise :class:`Gap` after marking changes that never arrived.

        The ring and the socket outlive a :class:`Gap`: the server heals its pages and
        calls ``serve`` again, in the same epoch.
        """
        self.open(async_mode)
        while True:
            batch: list[Entry] = []
            losses = 0
            # Every frame of the batch is taken, those after a loss too: they were
            # received, and their senders' numbers must be recorded, or their
            # changes would be lost for good (unmarked) if those senders say nothing more.
            for frame in self._receiver.frames():
                lost = self._senders.check(frame)
                if lost is not None:
                    self._take(batch, deliver)
                    batch = []
                    self._ring.add_lost(lost)
                    losses += 1
                    stats["notifier_losses"] += 1
                    logger.warning("serverpush: %d change(s) committed from %s on never reached this push server; healing its pages", lost.count, lost.since)
                batch += frame.entries
            self._take(batch, deliver)
            if losses:
                raise Gap("log_gap", LOST_MESSAGE)

    def _take(self, entries: list[Entry], deliver: Deliver) -> None:
        if entries:
            self._ring.add(entries)
            deliver(entries)

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
        if self._receiver is not None:
            self._receiver.close()
