"""A push server's window on the Redis log: recent records in memory, each range read once.

Reconnecting pages ask for the records after their cursor. The window holds the
records this node has tailed, contiguous after ``base``. A cursor older than
``base`` extends the window backwards with one Redis read (plus some records
before it, for the next page); pages asking meanwhile wait for that read instead
of making their own (single flight). A reconnect storm so costs a few range
reads, not one per page, and the tail's own reads are shared by everyone.
"""
from __future__ import annotations

import threading
from bisect import bisect_right
from collections.abc import Callable

from serverpush.log.base import Gap
from serverpush.log.stream import Record, StreamId

# fetch(after, upto) -> records in (after, upto] and maybe some before, ascending.
Fetch = Callable[[StreamId, StreamId], list[Record]]

TRIMMED = "the log no longer holds every change since this page last heard from the server"


class Window:
    def __init__(self, epoch: str, created: StreamId, base: StreamId, cap: int, fetch: Fetch) -> None:
        self.epoch = epoch
        self.created = created
        self.base = base
        # Below this, Redis proved it cannot cover a cursor: fail without asking again.
        self.floor = StreamId(0, 0)
        self.cap = cap
        self._fetch = fetch
        self._records: list[Record] = []
        self._ids: list[StreamId] = []
        self._lock = threading.Lock()
        self._filling = threading.Lock()

    def head(self) -> StreamId:
        with self._lock:
            return self._ids[-1] if self._ids else self.base

    def add(self, records: list[Record]) -> None:
        """Append tailed records (chained after :meth:`head`); forget the oldest beyond ``cap``."""
        with self._lock:
            self._records.extend(records)
            self._ids.extend(r.id for r in records)
            excess = len(self._records) - self.cap
            if excess > 0 and not self._filling.locked():
                self.base = self._ids[excess - 1]
                del self._records[:excess], self._ids[:excess]

    def after(self, cursor: StreamId) -> list[Record]:
        """The records after ``cursor``; raises :class:`Gap` if the log cannot cover it."""
        with self._lock:
            if cursor >= self.base:
                return self._slice(cursor)
        with self._filling:
            with self._lock:
                if cursor >= self.base:
                    return self._slice(cursor)
                if cursor < self.floor:
                    raise Gap("log_gap", TRIMMED)
                upto = self.base
            fetched = self._fetch(cursor, upto)
            with self._lock:
                self._prepend(fetched, upto, cursor)
                return self._slice(cursor)

    def _slice(self, cursor: StreamId) -> list[Record]:
        return self._records[bisect_right(self._ids, cursor):]

    def _prepend(self, fetched: list[Record], upto: StreamId, cursor: StreamId) -> None:
        """Keep the run of ``fetched`` that chains into ``upto``; fail if it stops above ``cursor``."""
        chain: list[Record] = []
        expect = upto
        for record in reversed(fetched):
            if record.id > expect:
                continue
            if record.id != expect:
                break
            chain.append(record)
            expect = record.prev
        chain.reverse()
        self._records[:0] = chain
        self._ids[:0] = [r.id for r in chain]
        self.base = expect
        if expect > cursor:
            self.floor = expect
            raise Gap("log_gap", TRIMMED)
