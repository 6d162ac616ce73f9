"""The interface every log backend implements.

Django processes call :meth:`Log.append`, :meth:`Log.position` (the
middleware, before a view runs) and :meth:`Log.cursor_at`; the push server calls
:meth:`Log.serve` (deliver new entries as they arrive, with their positions set),
:meth:`Log.read_after` (replay) and :meth:`Log.head`.
"""
from __future__ import annotations

import time
from collections.abc import Callable

from serverpush.entries import Entry

Deliver = Callable[[list[Entry]], None]


class Gap(Exception):
    """The log cannot cover a cursor; the client must resync."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class BadCursor(ValueError):
    """A cursor that is not in any form this log gives out."""


class Unavailable(Exception):
    """The log cannot answer right now (its store is unreachable); the client should retry."""


class Log:
    shared = False  # whether several push servers can tail it (runserverpush --workers, several nodes)

    def append(self, entries: list[Entry]) -> None:
        raise NotImplementedError

    def cursor_at(self, started_ms: int) -> str:
        """The page cursor of a request that started at ``started_ms`` (before its view ran).

        Every change committed after that instant must be replayable from it.
        """
        raise NotImplementedError

    def position(self) -> str:
        """The page cursor, read now, before the view runs (at most one round trip).

        Backends that cannot tell their position cheaply give the time-derived cursor.
        """
        return self.cursor_at(time.time_ns() // 1_000_000)

    def open(self, async_mode: str) -> None:
        """Get ready to :meth:`serve`, in the push server, before it accepts its first page."""

    def serve(self, deliver: Deliver, async_mode: str) -> None:
        """Run forever in the push server, passing each new batch of entries to ``deliver``.

        ``async_mode`` is the push server's (``eventlet``, ``gevent``, ``threading``):
        blocking calls must use that library's green versions. Raises :class:`Gap`
        when pages already live may have missed entries (the log was replaced, or
        lost entries); the server then resyncs every page and calls ``serve`` again.
        """
        raise NotImplementedError

    def previous(self, position: str) -> str:
        """A cursor just before ``position``: reading after it starts with that entry."""
        raise NotImplementedError

    def head(self) -> str:
        """The position of the last entry delivered by :meth:`serve`."""
        raise NotImplementedError

    def read_after(self, cursor: str) -> list[Entry]:
        """Entries after ``cursor`` up to :meth:`head`; raises :class:`Gap` or :class:`BadCursor`."""
        raise NotImplementedError

    def progress(self) -> tuple[object, object] | None:
        """In the push server: ``(newest position the log holds, newest this node read)``, comparable.

        None when the backend cannot tell (nothing to fall behind on: the embedded
        log is pushed to). Raises :class:`Unavailable` when the store does not answer.
        """
        return None

    def restart_tail(self) -> None:
        """Make :meth:`serve` drop its connection and reconnect: it stopped hearing new entries."""

    def identity(self) -> str:
        """What a Django process and a push server must agree on to share this log.

        Page tokens carry it, so a push server fed by another log refuses the page
        (``log_mismatch``) instead of keeping it live with nothing ever arriving.
        Addresses stay out: one host may reach the log under another name.
        """
        return type(self).__name__

    def close(self) -> None:
        """Release sockets and connections."""
