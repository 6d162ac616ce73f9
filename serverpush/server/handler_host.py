"""Runs the handlers of ``SERVERPUSH_HANDLERS`` (:mod:`serverpush.handlers`) in the push server.

Each connection to a handler namespace gets its own handler instance, called one
message at a time, in order, by a task that runs while messages wait (under ASGI,
in the bounded thread pool): an idle connection holds no thread.
"""
from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import socketio
from django.db import connections
from django.http import HttpRequest
from django.utils import translation

from serverpush import protocol
from serverpush.entries import Entry
from serverpush.handlers import WebSocketHandler, handler_classes
from serverpush.server.adapters import nonblocking
from serverpush.server.handshake import rebuild_request
from serverpush.server.hub import revoked
from serverpush.server.limits import Budget
from serverpush.stats import stats
from serverpush.tokens import TokenError, identity, read_token

logger = logging.getLogger(__name__)

NAMESPACE_PREFIX = protocol.HANDLER_NAMESPACE_PREFIX
# Messages a connection may have waiting for its handler before it is closed as overloaded.
QUEUE_LIMIT = 100
_CLOSE = object()


@dataclass(eq=False)
class Connection:
    handler: WebSocketHandler
    where: str
    identity: tuple[str | None, str | None]
    budget: Budget = field(default_factory=Budget)
    opened: bool = False
    failed: bool = False
    pending: deque[Any] = field(default_factory=deque)
    running: bool = False  # a task is draining ``pending``
    lock: threading.Lock = field(default_factory=threading.Lock)


class HandlerHost:
    """Runs the handlers of every ``SERVERPUSH_HANDLERS`` namespace in the push server."""

    def __init__(self, sio: Any) -> None:
        self.sio = sio
        self.connections: dict[str, Connection] = {}
        for name, cls in handler_classes().items():
            namespace = NAMESPACE_PREFIX + name
            self.sio.on("connect", partial(self.on_connect, name, cls), namespace=namespace)
            self.sio.on(protocol.HANDLER_MESSAGE, nonblocking(partial(self.on_message, namespace)), namespace=namespace)
            self.sio.on("disconnect", self.on_disconnect, namespace=namespace)

    def on_connect(self, name: str, cls: type[WebSocketHandler], sid: str, environ: dict[str, Any], auth: Any = None) -> bool:
        namespace = NAMESPACE_PREFIX + name
        try:
            if not isinstance(auth, dict) or not isinstance(auth.get("token"), str):
                raise TokenError("bad_payload", "connect with auth {token: <the page token>}")
            request = rebuild_request(read_token(auth["token"]), environ)
            handler = cls(request, name, partial(self.sio.send, to=sid, namespace=namespace))
        except TokenError as exc:
            raise _refused(exc.code, exc.message) from None
        except Exception:
            logger.exception("serverpush: could not open a %s handler connection (%s)", namespace, cls.__qualname__)
            raise _refused("server_error", "the push server could not start this handler; it logged why") from None
        finally:
            connections.close_all()
        self.connections[sid] = Connection(handler, *_describe(request, name, cls))
        stats["handler_connects"] += 1
        return True

    def on_message(self, namespace: str, sid: str, data: Any = None) -> None:
        """Queue ``data`` for the handler (in arrival order); a flood or a backlog closes the connection."""
        connection = self.connections.get(sid)
        if connection is None or connection.failed:
            return
        if not connection.budget.spend():
            self._close(sid, namespace, connection, "flood", f"more than {connection.budget.rate:g} messages per second (SERVERPUSH_CLIENT_EVENTS_PER_SECOND)")
        elif len(connection.pending) >= QUEUE_LIMIT:
            self._close(sid, namespace, connection, "overloaded", f"{QUEUE_LIMIT} messages are waiting for the handler; send fewer")
        else:
            self._enqueue(sid, namespace, connection, data)

    def on_disconnect(self, sid: str, *args: Any) -> None:
        connection = self.connections.pop(sid, None)
        if connection is not None:
            self._enqueue(sid, NAMESPACE_PREFIX + connection.handler.namespace, connection, _CLOSE)

    def revoke(self, entries: list[Entry]) -> None:
        """Close the handler connections of sessions and users a ``revoke`` entry ends."""
        for entry in entries:
            for sid, connection in list(self.connections.items()):
                if revoked(entry, *connection.identity):
                    namespace = NAMESPACE_PREFIX + connection.handler.namespace
                    self._close(sid, namespace, connection, "session_revoked", "this session ended; reload the page")

    def _enqueue(self, sid: str, namespace: str, connection: Connection, message: Any) -> None:
        with connection.lock:
            connection.pending.append(message)
            if connection.running:
                return
            connection.running = True
        self.sio.submit(self._drain, sid, namespace, connection)

    def _drain(self, sid: str, namespace: str, connection: Connection) -> None:
        """One handler call at a time, in arrival order, until no message waits."""
        while True:
            with connection.lock:
                if not connection.pending:
                    connection.running = False
                    return
                message = connection.pending.popleft()
            if message is _CLOSE:
                self._call(connection, "on_close")
            elif not connection.failed and not self._dispatch(connection, message):
                self._close(sid, namespace, connection, "handler_error", f"the {connection.handler.namespace!r} handler failed; the push server logged why")

    def _dispatch(self, connection: Connection, message: Any) -> bool:
        if not connection.opened:
            connection.opened = True
            ok, result = self._call(connection, "on_open", message)
            if not ok or result is not None:
                return ok
        return self._call(connection, "on_message", message)[0]

    def _call(self, connection: Connection, method: str, *args: Any) -> tuple[bool, Any]:
        handler = connection.handler
        try:
            with translation.override(handler.request.LANGUAGE_CODE):
                return True, getattr(handler, method)(*args)
        except Exception:
            logger.exception("serverpush: %s of %s raised; closing its connection", method, connection.where)
            stats["handler_errors"] += 1
            return False, None
        finally:
            connections.close_all()

    def _close(self, sid: str, namespace: str, connection: Connection, code: str, message: str) -> None:
        connection.failed = True
        self.sio.emit(protocol.ERROR, protocol.notice(code, message), to=sid, namespace=namespace)
        self.sio.disconnect(sid, namespace=namespace)


def _describe(request: HttpRequest, name: str, cls: type) -> tuple[str, tuple[str | None, str | None]]:
    """Who a connection is: a phrase for the logs, and (user pk, session fingerprint) for revocation."""
    who = identity(request)
    username = request.user.get_username() if who[0] is not None else "anonymous"
    return f"namespace {name!r} ({cls.__module__}.{cls.__qualname__}), user {username}", who


def _refused(code: str, message: str) -> socketio.exceptions.ConnectionRefusedError:
    return socketio.exceptions.ConnectionRefusedError(message, protocol.notice(code, message))
