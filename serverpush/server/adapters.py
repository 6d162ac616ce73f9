"""The push server's core, driven by python-socketio's ``Server``.

The core (:class:`serverpush.server.node.PushServer` and its parts) is plain
synchronous code written against python-socketio's portable primitives
(handlers, rooms, ``emit``, background tasks, ``sleep``), so it runs under
eventlet, gevent and threading alike.
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
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
            self._malformed(eio_sid, f"{type(exc).__name__}: {exc}")

    def _handle_event(self, eio_sid: str, namespace: str | None, id: Any, data: Any) -> None:
        # A client must not reach the connect/disconnect handlers by naming an event after them.
        if not isinstance(data, list) or not data or not isinstance(data[0], str) or data[0] in protocol.RESERVED_EVENTS:
            self._malformed(eio_sid, f"event {data!r:.60} is not [name, ...args] with a name of its own")
            return
        super()._handle_event(eio_sid, namespace, id, data)

    def _malformed(self, eio_sid: str, why: str) -> None:
        frames.refuse(eio_sid, why)
        self.eio.disconnect(eio_sid)


def sync_server(async_mode: str) -> SocketServer:
    """The python-socketio ``Server`` for eventlet, gevent or threading."""
    return SocketServer(async_mode=async_mode, **options())
