"""The ZeroMQ link from Django processes to the push server (embedded log only).

Django processes PUSH JSON batches to ``SERVERPUSH_NOTIFIER_HOST:PORT``; the push
server PULLs them. Sending never blocks: while the push server is down, messages
queue (up to a bound) and go out when it comes back; past the bound they are
dropped with a warning, and the pages learn of it by resyncing.
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import os
import threading
from collections.abc import Callable

import zmq
from django.core.exceptions import ImproperlyConfigured

from serverpush import conf
from serverpush.stats import stats

logger = logging.getLogger(__name__)

QUEUE_LIMIT = 10_000
MAX_MESSAGE_BYTES = 1 << 20
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


class Sender:
    """One PUSH socket per process, shared by its threads."""

    def __init__(self, address: str) -> None:
        self.address = address
        self._lock = threading.Lock()
        self._socket: zmq.Socket | None = None
        self._pid = 0

    def send(self, payload: bytes) -> bool:
        with self._lock:
            try:
                self._connected().send(seal(payload), zmq.NOBLOCK)
                return True
            except zmq.Again:
                logger.warning("serverpush: push server at %s is not taking messages; dropped one", self.address)
                return False

    def _connected(self) -> zmq.Socket:
        if self._socket is None or self._pid != os.getpid():  # a fork must not share the parent's socket
            self._socket = zmq.Context.instance().socket(zmq.PUSH)
            self._socket.setsockopt(zmq.SNDHWM, QUEUE_LIMIT)
            self._socket.setsockopt(zmq.LINGER, LINGER_MS)
            self._socket.connect(self.address)
            self._pid = os.getpid()
        return self._socket

    def close(self) -> None:
        with self._lock:
            if self._socket is not None and self._pid == os.getpid():
                self._socket.close()
            self._socket = None


def zmq_for(async_mode: str) -> object:
    """The zmq module whose blocking calls cooperate with ``async_mode``."""
    if async_mode == "eventlet":
        from eventlet.green import zmq as green
    elif async_mode == "gevent":
        import zmq.green as green
    else:
        green = zmq
    return green


def receive_forever(address: str, green_zmq: object, handle: Callable[[bytes], None]) -> None:
    """Bind a PULL socket on ``address`` and pass each message to ``handle``.

    ``green_zmq`` is the zmq module matching the server's async mode, so that a
    blocking ``recv`` yields to other green threads. Messages that fail
    authentication are logged and dropped.
    """
    require_safe_binding()
    context = green_zmq.Context()
    socket = context.socket(zmq.PULL)
    socket.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
    socket.setsockopt(zmq.RCVHWM, QUEUE_LIMIT)
    socket.bind(address)
    logger.info("serverpush: notifier listening on %s", address)
    while True:
        payload = unseal(socket.recv())
        if payload is None:
            logger.warning("serverpush: dropped a notifier message that failed authentication (SERVERPUSH_NOTIFIER_SECRET differs?)")
            stats["notifier_rejected"] += 1
            continue
        handle(payload)
