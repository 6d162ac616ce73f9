"""The push server's core, driven by python-socketio's ``Server``.

The core (:class:`serverpush.server.node.PushServer` and its parts) is plain
synchronous code written against python-socketio's ``Server``: handlers (``on``),
``emit``, ``send``, rooms, ``disconnect``, background tasks, queues and ``sleep``.
So it runs as it is under eventlet, gevent and threading, and under ASGI through
:class:`serverpush.server.asgi.Bridge`, which offers the same calls on an ``AsyncServer``.
"""
from __future__ import annotations

import json
from typing import Any

import socketio
from django.core.serializers.json import DjangoJSONEncoder

from serverpush import conf, protocol
from serverpush.server import frames, origins


class Json:
    """Payloads may hold dates, decimals and UUIDs: encode them the way Django does."""

    @staticmethod
    def dumps(obj: Any, **kwargs: Any) -> str:
        return json.dumps(obj, cls=DjangoJSONEncoder, **kwargs)

    loads = staticmethod(frames.loads)  # everything a client sends: bounded, one error class


# What python-socketio raises on a frame it cannot make sense of.
MALFORMED = (ValueError, TypeError, KeyError, IndexError, AttributeError)


def is_event(data: Any) -> bool:
    """Whether a client's event is ``[name, ...args]``; a name of the server's own would reach its connect/disconnect handlers."""
    return isinstance(data, list) and bool(data) and isinstance(data[0], str) and data[0] not in protocol.RESERVED_EVENTS


def nonblocking(handler: Any) -> Any:
    """Mark an event handler that only does bookkeeping (no Django code, no I/O).

    Under ASGI it runs on the event loop, so one client's events reach it in the
    order they arrived; every other handler runs in the thread pool.
    """
    handler.nonblocking = True
    return handler


def options() -> dict[str, Any]:
    """What every adapter's python-socketio server is configured with."""
    return {"cors_allowed_origins": origins.is_allowed, "json": Json, "max_http_buffer_size": conf.get("SERVERPUSH_MAX_MESSAGE_BYTES")}


class SocketServer(socketio.Server):
    """python-socketio's server, minus its tracebacks for malformed client frames.

    A frame python-socketio cannot decode (or chokes on) is counted, logged in one
    line, and costs the sender its connection; nobody else notices. So does a
    message over the size limit, refused by the websocket layer before it is read
    (:mod:`serverpush.server.frames`).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        frames.bound_websockets(self.eio)

    def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        if eio_sid not in self.eio.sockets:  # already disconnected, by a malformed frame it sent before this one
            return
        try:
            super()._handle_eio_message(eio_sid, data)
        except MALFORMED as exc:
            self._malformed(eio_sid, f"{type(exc).__name__}: {exc}")

    def _handle_event(self, eio_sid: str, namespace: str | None, id: Any, data: Any) -> None:
        if not is_event(data):
            self._malformed(eio_sid, f"event {data!r:.60} is not [name, ...args] with a name of its own")
            return
        super()._handle_event(eio_sid, namespace, id, data)

    def _malformed(self, eio_sid: str, why: str) -> None:
        frames.refuse(eio_sid, why)
        self.eio.disconnect(eio_sid)

    def leave_all(self, sid: str) -> None:
        """Take ``sid`` out of every room but its own."""
        for room in self.rooms(sid):
            if room != sid:
                self.leave_room(sid, room)

    def create_queue(self) -> Any:
        return self.eio.create_queue()

    def submit(self, target: Any, *args: Any) -> None:
        """Run a short task soon (under ASGI: in the bounded thread pool)."""
        self.start_background_task(target, *args)


def sync_server(async_mode: str) -> SocketServer:
    """The python-socketio ``Server`` for eventlet, gevent or threading."""
    return SocketServer(async_mode=async_mode, **options())
