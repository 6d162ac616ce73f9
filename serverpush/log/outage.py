"""What a Django process does while Redis is unreachable: never wait long, never hide a loss.

A change that cannot be written is not kept for later: written late, it could land
after a newer change to the same object from another process, and pages would end
on the older state without knowing. Instead the process counts what it could not
write and, as soon as Redis answers again (its next write, or a background retry),
writes one ``lost`` marker before anything else. Push servers that tail the marker
resync the pages they serve; a page that replays across it resyncs too.

A process that exits before Redis answers again leaves its unreported losses in a
:class:`Spool`, which the next process of the same user on the same host that uses
the log takes over and reports.
"""
from __future__ import annotations

import atexit
import fcntl
import hashlib
import json
import logging
import os
import stat
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

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


class Spool:
    """Loss reports that a process could not make before it exited, for the next process.

    One file per log (``name``: its Redis URL and stream) in a directory that only
    this user can use; each line is ``{"count": n, "since": ms}``. Taking the file
    is an atomic rename, so two processes never both report it, and writers lock
    it, so a line written while it is being taken is not lost. Processes of other
    users or hosts do not share it.
    """

    def __init__(self, name: str, directory: str | os.PathLike[str] | None = None) -> None:
        digest = hashlib.blake2b(name.encode(), digest_size=10).hexdigest()
        self.path = Path(directory or Path(tempfile.gettempdir()) / f"serverpush-{os.getuid()}") / f"{digest}.losses"

    def put(self, count: int, since_ms: int) -> bool:
        return self.append([{"count": count, "since": since_ms}], f"the report of {count} lost change(s)")

    def append(self, records: list[dict[str, Any]], what: str) -> bool:
        """Add JSON ``records`` for the next taker; False (logged, naming ``what``) if the file cannot be written."""
        line = "".join(json.dumps(record) + "\n" for record in records)
        try:
            _private_dir(self.path.parent)
            while True:
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                    if _same_file(fd, self.path):  # not taken between open and lock
                        os.write(fd, line.encode())
                        return True
                finally:
                    os.close(fd)
        except OSError as exc:
            logger.error("serverpush: could not keep %s in %s: %s", what, self.path, exc)
            return False

    def take(self) -> tuple[int, int]:
        """The spooled count and the time of the first loss; ``(0, 0)`` if none."""
        count = since_ms = 0
        for report in self.take_records():
            try:
                lost, since = int(report["count"]), int(report["since"])
            except (KeyError, TypeError, ValueError):
                continue
            count += lost
            since_ms = min(since_ms or since, since)
        return count, since_ms

    def take_records(self) -> list[dict[str, Any]]:
        """Every record spooled so far (they are no longer spooled); lines that do not parse are skipped."""
        claimed = self.path.with_name(f"{self.path.name}.{os.getpid()}-{threading.get_ident()}")
        try:
            os.rename(self.path, claimed)
        except OSError:
            return []
        try:
            fd = os.open(claimed, os.O_RDONLY | os.O_NOFOLLOW)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)  # a writer that opened it before the rename is done
                text = b"".join(iter(lambda: os.read(fd, 65536), b"")).decode(errors="replace")
            finally:
                os.close(fd)
        except OSError:
            return []
        finally:
            claimed.unlink(missing_ok=True)
        records = []
        for line in text.splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                records.append(record)
        return records


def _private_dir(path: Path) -> None:
    path.mkdir(mode=0o700, exist_ok=True)
    info = os.lstat(path)
    if info.st_uid != os.getuid() or not stat.S_ISDIR(info.st_mode) or info.st_mode & 0o077:
        raise PermissionError(f"{path} must be a directory that only this user can use")


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


class Losses:
    """Changes this process failed to write, until a ``lost`` marker has reported them.

    ``report()`` is called from a background thread every :data:`PAUSE_SECONDS`
    while losses are pending, so they are reported even if the process writes
    nothing else. It must call :meth:`take` and, on failure, :meth:`add` back.
    What is still pending when the process exits goes to ``spool``; :meth:`take`
    and :meth:`absorb` take over what exited processes left there.
    """

    def __init__(self, report: Callable[[], None], spool: Spool | None = None) -> None:
        self._report = report
        self._spool = spool
        self._lock = threading.Lock()
        self._count = 0
        self._since_ms = 0
        self._reporter: threading.Thread | None = None
        self._closed = threading.Event()
        self._spools_at_exit = False

    def add(self, count: int, since_ms: int) -> None:
        with self._lock:
            self._count += count
            self._since_ms = min(self._since_ms or since_ms, since_ms)
            if self._reporter is None or not self._reporter.is_alive():
                self._reporter = threading.Thread(target=self._retry, name="serverpush-loss-report", daemon=True)
                self._reporter.start()
            if self._spool is not None and not self._spools_at_exit:
                self._spools_at_exit = True
                atexit.register(self.spool_pending)

    def take(self) -> tuple[int, int]:
        """The pending count and the time of the first loss, spooled ones included; they are no longer pending."""
        spooled, spooled_since = self._spool.take() if self._spool is not None else (0, 0)
        with self._lock:
            count = self._count + spooled
            since = min((t for t in (self._since_ms, spooled_since) if t), default=0)
            self._count = self._since_ms = 0
        return count, since

    def absorb(self) -> None:
        """Take over what exited processes spooled; it is reported in the background."""
        count, since = self._spool.take() if self._spool is not None else (0, 0)
        if count:
            logger.warning("serverpush: reporting %d change(s) that an exited process could not write to Redis", count)
            self.add(count, since)

    def spool_pending(self) -> None:
        """At exit (or close): leave what is still unreported to the next process."""
        with self._lock:
            count, since = self._count, self._since_ms
            self._count = self._since_ms = 0
        if count and self._spool is not None and self._spool.put(count, since):
            logger.error("serverpush: Redis has not taken the report of %d lost change(s) yet; left it in %s, the next process using this log on this host will report them", count, self._spool.path)

    def pending(self) -> int:
        with self._lock:
            return self._count

    def _retry(self) -> None:
        while self.pending() and not self._closed.wait(PAUSE_SECONDS):
            self._report()

    def close(self) -> None:
        """The log is being replaced (its settings changed): hand what is unreported to the spool now."""
        self._closed.set()
        atexit.unregister(self.spool_pending)
        self.spool_pending()
