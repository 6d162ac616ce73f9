"""The ZeroMQ link from Django processes to the push server (embedded log only).

Django processes PUSH frames to ``SERVERPUSH_NOTIFIER_HOST:PORT``; the push server
PULLs them. A frame is a JSON header line ``{"s": sender, "n": number, "lost": ...,
"ended": ...}`` then a JSON list of entries. Sending never blocks: while the push
server is slow or down, frames queue (up to ``SERVERPUSH_NOTIFIER_QUEUE``) and go out
when it takes them; past that they are dropped, and never silently: the sender
reports what it dropped, and the push server also sees the hole in the sender's
numbers. A process that exits cannot report, nor be seen to miss, what it still
held: it leaves its last number in a spool, and the next process on the host that
sends passes it on (``ended``). Either way the push server marks the loss in its
ring and heals (or resyncs) every page that may have missed it.
"""
from __future__ import annotations

import atexit
import errno
import hashlib
import hmac
import ipaddress
import json
import logging
import os
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import zmq
from django.core.exceptions import ImproperlyConfigured

from serverpush import conf
from serverpush.entries import Entry, clock_skew_ms, decode, encode, now_ms
from serverpush.log.outage import Spool
from serverpush.stats import stats

logger = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 1 << 20
BATCH = 500  # frames the push server takes at once (read back and routed together)
REPORT_SECONDS = 0.5  # while a loss report is pending, how often the sender tries it alone
SPOOL_SECONDS = 1.0  # how often a sender looks for what exited processes left to pass on

# On exit, give queued messages this long to leave (a shell's notify() then quit).
LINGER_MS = 1000


MAC_BYTES = 32


def endpoint() -> str:
    host = conf.get("SERVERPUSH_NOTIFIER_HOST")
    return f"tcp://{f'[{host}]' if ':' in host else host}:{conf.get('SERVERPUSH_NOTIFIER_PORT')}"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _secret() -> bytes | None:
    secret = conf.get("SERVERPUSH_NOTIFIER_SECRET")
    return secret.encode() if isinstance(secret, str) else secret


def seal(payload: bytes) -> bytes:
    """Prefix ``payload`` with its HMAC when ``SERVERPUSH_NOTIFIER_SECRET`` is set."""
    secret = _secret()
    return payload if secret is None else hmac.digest(secret, payload, hashlib.sha256) + payload


def unseal(message: bytes) -> bytes | None:
    """The payload of an authentic ``message``, or None."""
    secret = _secret()
    if secret is None:
        return message
    mac, payload = message[:MAC_BYTES], message[MAC_BYTES:]
    return payload if hmac.compare_digest(mac, hmac.digest(secret, payload, hashlib.sha256)) else None


def require_safe_binding() -> None:
    """Refuse to listen off loopback without a secret: anyone who reaches the port could push."""
    host = conf.get("SERVERPUSH_NOTIFIER_HOST")
    if not is_loopback(host) and _secret() is None:
        raise ImproperlyConfigured(f"SERVERPUSH_NOTIFIER_HOST = {host!r} is not a loopback address; set SERVERPUSH_NOTIFIER_SECRET so the push server can tell Django's messages from anyone else's.")


@dataclass
class Lost:
    """Changes that never reached the push server: how many, and when the first and last committed."""

    count: int
    since: int
    until: int

    def merge(self, other: Lost | None) -> Lost:
        if other is None:
            return self
        return Lost(self.count + other.count, min(self.since, other.since), max(self.until, other.until))


class Sender:
    """One PUSH socket per process, shared by its threads.

    Every frame is numbered (``n``) under this sender's random ``id``, so the push
    server can tell a frame that went missing. What this process knows it dropped
    (its queue was full, the frame too large) goes with its next frame as ``lost``;
    while such a report is pending, a background thread sends it on its own. At
    exit the sender spools its last number (and any pending report): frames still
    queued then are lost without a trace the push server could see by itself.
    """

    def __init__(self, address: str) -> None:
        self.address = address
        self._lock = threading.Lock()
        self._socket: zmq.Socket | None = None
        self._pid = 0
        self._id = ""
        self._seq = 0
        self._until = 0  # the newest stamp this sender sent (or tried to)
        self._lost: Lost | None = None
        self._ended: list[list[Any]] = []  # exited senders' last words, until a frame carries them
        self._spool = Spool(f"notifier|{address}", conf.get("SERVERPUSH_REDIS_SPOOL_DIR"))
        self._spool_checked = 0.0
        self._reporter: threading.Thread | None = None

    def send(self, entries: list[Entry]) -> bool:
        with self._lock:
            socket = self._connected()
            self._adopt()
            self._seq += 1
            self._until = max([self._until, *(e.ts for e in entries)])
            header: dict[str, Any] = {"s": self._id, "n": self._seq}
            if self._lost is not None:
                header["lost"] = [self._lost.count, self._lost.since, self._lost.until]
            if self._ended:
                header["ended"] = self._ended
            frame = seal(json.dumps(header).encode() + b"\n" + encode(entries))
            try:
                if len(frame) > MAX_MESSAGE_BYTES:
                    raise ValueError(f"{len(frame)} bytes, over the notifier's limit of {MAX_MESSAGE_BYTES}")
                socket.send(frame, zmq.NOBLOCK)
            except (zmq.ZMQError, ValueError) as exc:
                self._dropped(entries, exc)
                return False
            self._lost = None
            self._ended = []
            return True

    def _dropped(self, entries: list[Entry], why: Exception) -> None:
        stamps = [e.ts for e in entries] or [now_ms()]
        self._lost = Lost(len(entries), min(stamps), max(stamps)).merge(self._lost)
        stats["notifier_dropped"] += len(entries)
        logger.warning("serverpush: the push server at %s did not take %d change(s) (%s); its pages will resync", self.address, len(entries), why)
        if self._reporter is None or not self._reporter.is_alive():
            self._reporter = threading.Thread(target=self._report, name="serverpush-notifier-report", daemon=True)
            self._reporter.start()

    def _report(self) -> None:
        """Send the loss report on its own until it leaves, even if this process changes nothing more."""
        while True:
            time.sleep(REPORT_SECONDS)
            with self._lock:
                if self._lost is None and not self._ended:
                    return
            self.send([])

    def _adopt(self) -> None:
        """Take over the last words that exited processes left in the spool (at most every SPOOL_SECONDS)."""
        if time.monotonic() - self._spool_checked < SPOOL_SECONDS:
            return
        self._spool_checked = time.monotonic()
        for record in self._spool.take_records():
            try:
                self._ended.append(_ended(record.get("ended")))
            except (TypeError, ValueError):
                logger.warning("serverpush: skipped a malformed record in %s: %r", self._spool.path, record)

    def _exit(self) -> None:
        """At exit: leave how far this sender got (and what it still had to pass on) for the next process."""
        with self._lock:
            if self._socket is None or self._pid != os.getpid():
                return
            lost = None if self._lost is None else [self._lost.count, self._lost.since, self._lost.until]
            records = [{"ended": [self._id, self._seq, self._until or now_ms(), lost]}] + [{"ended": e} for e in self._ended]
        self._spool.append(records, "what this process sent to the push server")

    def _connected(self) -> zmq.Socket:
        if self._socket is None or self._pid != os.getpid():  # a fork must not share the parent's socket
            self._socket = zmq.Context.instance().socket(zmq.PUSH)
            self._socket.setsockopt(zmq.SNDHWM, conf.get("SERVERPUSH_NOTIFIER_QUEUE"))
            self._socket.setsockopt(zmq.LINGER, LINGER_MS)
            self._socket.connect(self.address)
            self._pid = os.getpid()
            self._id, self._seq, self._until, self._lost, self._ended = secrets.token_hex(8), 0, 0, None, []
            atexit.unregister(self._exit)
            atexit.register(self._exit)
        return self._socket

    def close(self) -> None:
        with self._lock:
            if self._socket is not None and self._pid == os.getpid():
                self._socket.close()
            self._socket = None
        atexit.unregister(self._exit)


def _ended(value: Any) -> list[Any]:
    """``[sender, number, until, lost or None]``, checked; raises ``TypeError`` or ``ValueError``."""
    sender, number, until, lost = value
    if not isinstance(sender, str) or not isinstance(number, int) or not isinstance(until, int):
        raise TypeError("not [sender, number, until, lost]")
    if lost is not None:
        lost = [int(v) for v in lost]
        if len(lost) != 3:
            raise ValueError("lost is not [count, since, until]")
    return [sender, number, until, lost]


@dataclass
class Ended:
    """A sender that exited: its last number, its newest stamp, and the loss it had not reported."""

    sender: str
    number: int
    until: int
    lost: Lost | None


@dataclass
class Frame:
    """One notifier frame: who sent it, its number, what its sender knows it lost, the entries.

    ``ended``: senders that exited, as the spool of the host told this frame's sender.
    """

    sender: str
    number: int
    lost: Lost | None
    entries: list[Entry]
    ended: list[Ended] = field(default_factory=list)


def parse(message: bytes) -> Frame:
    """The frame of an unsealed ``message``; raises ``ValueError`` if it is malformed."""
    head, sep, body = message.partition(b"\n")
    try:
        header = json.loads(head)
        sender, number, lost = header["s"], header["n"], header.get("lost")
        if not sep or not isinstance(sender, str) or not isinstance(number, int):
            raise TypeError
        report = None if lost is None else Lost(*(int(v) for v in lost))
        ended = [Ended(s, n, u, None if gone is None else Lost(*gone)) for s, n, u, gone in map(_ended, header.get("ended", []))]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"not a notifier frame header ({type(exc).__name__}): {head[:80]!r}") from None
    return Frame(sender, number, report, decode(body), ended)


class Senders:
    """What the push server last heard from each sender, to tell when frames went missing."""

    def __init__(self, started_ms: int, limit: int = 10_000) -> None:
        self.started_ms = started_ms
        self.limit = limit
        self._last: OrderedDict[str, tuple[int, int]] = OrderedDict()

    def check(self, frame: Frame) -> Lost | None:
        """What ``frame`` says was lost since this server started (its sender's report, a hole in its numbers, senders that ended)."""
        lost = self._since_start(frame.lost)
        for ended in frame.ended:
            lost = self._ended(ended, lost)
        seen = self._last.pop(frame.sender, None)
        stamps = [e.ts for e in frame.entries]
        if seen is not None and frame.number != seen[0] + 1:
            lost = Lost(max(frame.number - seen[0] - 1, 1), seen[1], max(stamps, default=now_ms())).merge(lost)
        self._last[frame.sender] = (frame.number, max(stamps, default=seen[1] if seen else 0))
        if len(self._last) > self.limit:
            self._last.popitem(last=False)
        return lost

    def _since_start(self, lost: Lost | None) -> Lost | None:
        """``lost``, unless it all happened before this server started (its new epoch covers that)."""
        return lost if lost is not None and lost.until >= self.started_ms - clock_skew_ms() else None

    def _ended(self, ended: Ended, lost: Lost | None) -> Lost | None:
        """A sender exited having sent up to ``ended.number``: whatever of it did not arrive is lost."""
        reported = self._since_start(ended.lost)
        if reported is not None:
            lost = reported.merge(lost)
        seen = self._last.pop(ended.sender, None)
        if seen is not None and seen[0] < ended.number:
            lost = Lost(ended.number - seen[0], seen[1], ended.until).merge(lost)
        elif seen is None and ended.number and ended.until >= self.started_ms - clock_skew_ms():
            lost = Lost(ended.number, self.started_ms, ended.until).merge(lost)  # nothing of it reached this server
        return lost


class Receiver:
    """The push server's PULL socket, bound once and read by :meth:`MemoryLog.serve` for as long as it runs."""

    def __init__(self, address: str, green_zmq: Any) -> None:
        require_safe_binding()
        self._context = green_zmq.Context()
        self._socket = self._context.socket(zmq.PULL)
        self._socket.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
        self._socket.setsockopt(zmq.RCVHWM, conf.get("SERVERPUSH_NOTIFIER_QUEUE"))
        try:
            self._socket.bind(address)
        except zmq.ZMQError as exc:
            self._socket.close()
            if exc.errno == errno.EADDRINUSE:  # the same error as a port bound with socket, for runserverpush to report
                raise OSError(errno.EADDRINUSE, f"{address} is in use") from None
            raise
        logger.info("serverpush: notifier listening on %s", address)

    def frames(self, batch: int = BATCH) -> list[Frame]:
        """Wait for a frame; return it with those already waiting behind it (up to ``batch``).

        Frames that fail authentication or do not parse are logged, counted and skipped.
        """
        messages = [self._socket.recv()]
        while len(messages) < batch:
            try:
                messages.append(self._socket.recv(zmq.NOBLOCK))
            except zmq.Again:
                break
        return [frame for frame in map(_frame, messages) if frame is not None]

    def close(self) -> None:
        self._socket.close(linger=0)


def _frame(message: bytes) -> Frame | None:
    payload = unseal(message)
    if payload is None:
        logger.warning("serverpush: dropped a notifier message that failed authentication (SERVERPUSH_NOTIFIER_SECRET differs?)")
        stats["notifier_rejected"] += 1
        return None
    try:
        return parse(payload)
    except ValueError as exc:
        logger.warning("serverpush: dropped a malformed notifier message: %s", exc)
        stats["notifier_malformed"] += 1
        return None


def zmq_for(async_mode: str) -> object:
    """The zmq module whose blocking calls cooperate with ``async_mode``."""
    if async_mode == "eventlet":
        from eventlet.green import zmq as green
    elif async_mode == "gevent":
        import zmq.green as green
    else:
        green = zmq
    return green
