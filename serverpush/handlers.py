"""Client-to-server handlers (django-ws): a class per namespace, called in the push server.

    # settings.py
    SERVERPUSH_HANDLERS = {'default': 'your_project.ws_handlers.RandomCounter'}

    # your_project/ws_handlers.py
    class RandomCounter(WebSocketHandler):
        def on_message(self, message):
            self.send(str(random.randint(1, 100)))

The page opens ``serverpush.ws('default')``: the Socket.IO namespace ``/ws/default``
on its connection to the push server, authenticated like the page itself (page
token and session cookie). Each such connection gets its own handler instance and
its own green thread, which calls the handler one message at a time, in order,
with the ORM and ``self.request.user`` at hand. A handler that raises is logged
and only its own connection is closed.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import socketio
from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from django.http import HttpRequest
from django.utils import translation
from django.utils.module_loading import import_string

from serverpush import conf, revocation
from serverpush.encoding import jsonable
from serverpush.entries import Entry
from serverpush.handshake import rebuild_request
from serverpush.limits import Budget
from serverpush.stats import stats
from serverpush.tokens import TokenError, identity, read_token

if TYPE_CHECKING:
    from serverpush.server import PushServer

logger = logging.getLogger(__name__)

NAMESPACE_PREFIX = "/ws/"
# Messages a connection may have waiting for its handler before it is closed as overloaded.
QUEUE_LIMIT = 100
_CLOSE = object()


class WebSocketHandler:
    """Override ``on_open``, ``on_message`` and ``on_close``; reply with ``self.send(data)``.

    ``self.request`` is the page's request (``self.request.user``, ``.session``,
    ``.LANGUAGE_CODE``); ``self.namespace`` the name it is configured under.
    """

    def __init__(self, request: HttpRequest, namespace: str, send: Any) -> None:
        self.request = request
        self.namespace = namespace
        self._send = send

    def on_open(self, message: Any) -> bool | None:
        """The first message. Return None and it also goes to ``on_message``; True or False, and it does not."""
        return None

    def on_message(self, message: Any) -> None:
        """Every message (the first one too, unless ``on_open`` returned True or False)."""

    def on_close(self) -> None:
        """The connection closed (the page left, the network dropped, or a handler call raised)."""

    def send(self, data: Any) -> None:
        """Send ``data`` (anything JSON can hold, as for messages) to this connection only."""
        self._send(jsonable(data))


Handler = WebSocketHandler


def handler_classes() -> dict[str, type[WebSocketHandler]]:
    """``SERVERPUSH_HANDLERS`` loaded; raises ``ImproperlyConfigured`` naming the bad entry."""
    configured = conf.get("SERVERPUSH_HANDLERS")
    if not isinstance(configured, dict):
        raise ImproperlyConfigured(f"SERVERPUSH_HANDLERS = {configured!r:.80}; it must be a dict of namespace -> dotted path, e.g. {{'default': 'myproject.ws_handlers.RandomCounter'}}")
    classes = {}
    for name, path in configured.items():
        if not isinstance(name, str) or not name.replace("_", "").replace("-", "").isalnum():
            raise ImproperlyConfigured(f"SERVERPUSH_HANDLERS has namespace {name!r}; use a word such as 'default' (letters, digits, _ or -)")
        try:
            cls = import_string(path) if isinstance(path, str) else path
        except ImportError as exc:
            raise ImproperlyConfigured(f"SERVERPUSH_HANDLERS[{name!r}] = {path!r} cannot be imported: {exc}") from None
        if not (isinstance(cls, type) and issubclass(cls, WebSocketHandler)):
            raise ImproperlyConfigured(f"SERVERPUSH_HANDLERS[{name!r}] = {path!r} is not a subclass of serverpush.handlers.WebSocketHandler")
        classes[name] = cls
    return classes


@dataclass(eq=False)
class Connection:
    handler: WebSocketHandler
    queue: Any
    where: str
    identity: tuple[str | None, str | None]
    budget: Budget = field(default_factory=Budget)
    opened: bool = False
    failed: bool = False


class HandlerHost:
    """Runs the handlers of every ``SERVERPUSH_HANDLERS`` namespace in the push server."""

    def __init__(self, server: PushServer) -> None:
        self.sio = server.sio
        self.connections: dict[str, Connection] = {}
        for name, cls in handler_classes().items():
            namespace = NAMESPACE_PREFIX + name
            self.sio.on("connect", partial(self.on_connect, name, cls), namespace=namespace)
            self.sio.on("message", partial(self.on_message, namespace), namespace=namespace)
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
        connection = self.connections[sid] = Connection(handler, self.sio.eio.create_queue(), *_describe(request, name, cls))
        self.sio.start_background_task(self._run, sid, namespace, connection)
        stats["handler_connects"] += 1
        return True

    def on_message(self, namespace: str, sid: str, data: Any = None) -> None:
        connection = self.connections.get(sid)
        if connection is None or connection.failed:
            return
        if not connection.budget.spend():
            self._close(sid, namespace, connection, "flood", f"more than {connection.budget.rate:g} messages per second (SERVERPUSH_CLIENT_EVENTS_PER_SECOND)")
        elif connection.queue.qsize() >= QUEUE_LIMIT:
            self._close(sid, namespace, connection, "overloaded", f"{QUEUE_LIMIT} messages are waiting for the handler; send fewer")
        else:
            connection.queue.put(data)

    def on_disconnect(self, sid: str, *args: Any) -> None:
        connection = self.connections.pop(sid, None)
        if connection is not None:
            connection.queue.put(_CLOSE)

    def revoke(self, entries: list[Entry]) -> None:
        """Close the handler connections of sessions and users a ``revoke`` entry ends."""
        for entry in entries:
            if entry.op != revocation.REVOKE:
                continue
            for sid, connection in list(self.connections.items()):
                if revocation.matches(entry, *connection.identity):
                    namespace = NAMESPACE_PREFIX + connection.handler.namespace
                    self._close(sid, namespace, connection, "session_revoked", "this session ended; reload the page")

    def _run(self, sid: str, namespace: str, connection: Connection) -> None:
        """The connection's green thread: one handler call at a time, in arrival order."""
        while True:
            message = connection.queue.get()
            if message is _CLOSE:
                self._call(connection, "on_close")
                return
            if not connection.failed and not self._dispatch(connection, message):
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
        self.sio.emit("serverpush_error", {"code": code, "message": message}, to=sid, namespace=namespace)
        self.sio.disconnect(sid, namespace=namespace)


def _describe(request: HttpRequest, name: str, cls: type) -> tuple[str, tuple[str | None, str | None]]:
    """Who a connection is: a phrase for the logs, and (user pk, session fingerprint) for revocation."""
    who = identity(request)
    username = request.user.get_username() if who[0] is not None else "anonymous"
    return f"namespace {name!r} ({cls.__module__}.{cls.__qualname__}), user {username}", who


def _refused(code: str, message: str) -> socketio.exceptions.ConnectionRefusedError:
    return socketio.exceptions.ConnectionRefusedError(message, {"code": code, "message": message})
