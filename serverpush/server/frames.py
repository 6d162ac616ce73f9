"""Client frames the push server refuses before they cost it anything.

Two guards stand between a client and the push server's memory and stack:

- :func:`loads` decodes every JSON text a client sends. Whatever the decoder does
  with it (invalid, ``RecursionError``, any other exception) becomes one
  :class:`Undecodable`, a ``ValueError`` as Engine.IO and Socket.IO expect from a
  decoder, and values nested deeper than ``SERVERPUSH_MAX_MESSAGE_DEPTH`` are refused
  too, so no handler ever walks a structure deep enough to exhaust the stack.
- :func:`bound_websockets` gives the websocket layer of each async mode the limit
  ``SERVERPUSH_MAX_MESSAGE_BYTES`` in a form it enforces *before* buffering a
  message: a 300 MB frame is refused from its header, a chain of small unfinished
  frames when their total passes the limit.

Either way the frame is counted in ``malformed_frames``, logged in one line, and
costs the sender its connection.
"""
from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
from collections.abc import Callable
from typing import Any

import engineio

from serverpush import conf
from serverpush.stats import stats

logger = logging.getLogger(__name__)


class Undecodable(ValueError):
    """A client's JSON text that the push server will not take."""


def loads(text: str | bytes) -> Any:
    """Decode a client's JSON ``text``; raise :class:`Undecodable` for anything else."""
    try:
        value = json.loads(text)
    except Exception as exc:  # RecursionError is a RuntimeError: every class must end here
        raise Undecodable(f"{type(exc).__name__}: {str(exc):.120}") from None
    limit = conf.get("SERVERPUSH_MAX_MESSAGE_DEPTH")
    if _deeper_than(value, limit):
        raise Undecodable(f"nested deeper than {limit} levels (SERVERPUSH_MAX_MESSAGE_DEPTH)")
    return value


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether lists and dicts in ``value`` nest deeper than ``limit``; iterative, as the stack is the point."""
    pending = [(value, 1)] if isinstance(value, (dict, list)) else []
    while pending:
        item, depth = pending.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        pending.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def refuse(who: str, why: str) -> None:
    """Count and log, in one line, a frame from ``who`` that costs it the connection (the caller closes it)."""
    stats["malformed_frames"] += 1
    logger.info("serverpush: malformed frame from %s (%s); disconnecting it", who, why)


def _peer(environ: dict[str, Any]) -> str:
    return f"{environ.get('REMOTE_ADDR', '?')}:{environ.get('REMOTE_PORT', '?')}"


def _too_big(size: int, limit: int) -> str:
    return f"a message of at least {size} bytes; SERVERPUSH_MAX_MESSAGE_BYTES allows {limit}"


def bound_websockets(eio: engineio.Server) -> None:
    """Make ``eio``'s websocket transport refuse a message over its ``max_http_buffer_size`` unread."""
    bound = {"eventlet": _eventlet, "gevent": _gevent, "threading": _simple_websocket, "asgi": _asgi}.get(eio.async_mode)
    if bound is None:
        raise ValueError(f"no websocket message bound for async mode {eio.async_mode!r}")
    eio._async = {**eio._async, "websocket": bound(eio._async["websocket"])}  # this server's, not the driver module's


def _eventlet(base: type) -> type:
    """eventlet refuses a frame over ``max_frame_length`` from its header; bound the message too."""
    from eventlet.websocket import FailedConnectionError

    def bound(ws: Any, limit: int) -> Any:
        recv_frame, close = ws._recv_frame, ws.close

        def bounded_recv_frame(message: Any = None) -> Any:
            message = recv_frame(message=message)
            size = sum(map(len, message.data))
            if size > limit:  # unfinished frames, each under the frame limit, adding up
                raise FailedConnectionError(1009, _too_big(size, limit))
            return message

        def reporting_close(close_data: tuple[int, str] | None = None) -> None:
            if close_data and close_data[0] == 1009:  # a refusal above, or eventlet's own
                refuse(_peer(ws.environ), close_data[1])
            close(close_data=close_data)

        ws._recv_frame, ws.close = bounded_recv_frame, reporting_close
        return ws

    class BoundedWebSocket(base):
        def __init__(self, handler: Callable, server: engineio.Server) -> None:
            limit = int(server.max_http_buffer_size)
            super().__init__(lambda ws: handler(bound(ws, limit)), server)
            # The pre-RFC protocol (hixie) frames a message by an end byte, with no length
            # to check: eventlet would buffer one until that byte came. Browsers never use it.
            self.support_legacy_versions = False

    return BoundedWebSocket


def _gevent(base: type) -> type:
    """gevent-websocket reads a frame's whole payload at once: refuse it from the length in its header."""
    from geventwebsocket.exceptions import WebSocketError

    class BoundedWebSocket(base):
        def __init__(self, handler: Callable, server: engineio.Server) -> None:
            super().__init__(handler, server)
            self.limit = self.left = int(server.max_http_buffer_size)
            self.refused = 0

        def __call__(self, environ: dict[str, Any], start_response: Callable) -> Any:
            ws = environ.get("wsgi.websocket")
            if ws is not None:  # the engineio driver explains a missing one
                ws.raw_read = self._bounded(ws.raw_read)  # what reads payloads (headers go through ws.stream)
            return super().__call__(environ, start_response)

        def _bounded(self, read: Callable[[int], bytes]) -> Callable[[int], bytes]:
            def bounded_read(size: int) -> bytes:
                if size > self.left:
                    self.refused = self.limit - self.left + size
                    raise WebSocketError(_too_big(self.refused, self.limit))  # receive() closes on it
                self.left -= size
                return read(size)

            return bounded_read

        def wait(self) -> Any:
            self.left = self.limit  # per message
            message = super().wait()  # gevent-websocket closes the connection on the error above
            if self.refused:
                refuse(_peer(self.environ), _too_big(self.refused, self.limit))
            return message

    return BoundedWebSocket


def _simple_websocket(base: type) -> type:
    """simple-websocket counts a message's bytes as they arrive: give it the limit.

    It counts a compressed message (permessage-deflate) as it inflates, one read at
    a time: reads of 1 KiB inflate to 1 MB at most before the count can stop them.
    """

    class BoundedWebSocket(base):
        def __init__(self, handler: Callable, server: engineio.Server) -> None:
            limit = int(server.max_http_buffer_size)
            super().__init__(handler, server, max_message_size=limit, receive_bytes=1024, thread_class=_WakingReader)

        def wait(self) -> Any:
            message = super().wait()
            if message is None and self.ws.incoming_message_len > self.ws.max_message_size:
                refuse(_peer(self.ws.environ), _too_big(self.ws.incoming_message_len, self.ws.max_message_size))
            return message

        def close(self) -> None:
            super().close()
            # Gone at once, as in the other modes: a client that never answers the close
            # frame (or is still sending) would hold this request's thread and the reader.
            with contextlib.suppress(OSError):
                self.ws.sock.shutdown(socket.SHUT_RDWR)

    return BoundedWebSocket


def _asgi(base: type) -> type:
    """Under ASGI the ASGI server reads websocket messages, and bounds them.

    ``runserverpush --async-mode asgi`` has uvicorn refuse a message over the limit
    from its header (``ws_max_size``), before reading it; that refusal reaches the
    app as a disconnect with code 1009. Behind an ASGI server left at its own limit
    (uvicorn's is 16 MiB), a message over this one is refused once received.
    """

    class BoundedWebSocket(base):
        def __init__(self, handler: Callable, server: engineio.AsyncServer) -> None:
            super().__init__(handler, server)
            self.limit = int(server.max_http_buffer_size)
            self.peer = "?"

        async def __call__(self, environ: dict[str, Any]) -> Any:
            self.peer = _peer(environ)
            return await super().__call__(environ)

        async def wait(self) -> Any:
            event = await self.asgi_receive()
            if event["type"] == "websocket.disconnect" and event.get("code") == 1009:
                refuse(self.peer, f"a message over the ASGI server's limit; SERVERPUSH_MAX_MESSAGE_BYTES allows {self.limit}")
                raise OSError("message too big")
            if event["type"] != "websocket.receive":
                raise OSError(f"websocket {event['type']}")
            message = event.get("bytes") if event.get("bytes") is not None else event.get("text")
            if message is None:
                raise OSError("an empty websocket message")
            size = len(message) if isinstance(message, bytes) else len(message.encode())
            if size > self.limit:
                refuse(self.peer, _too_big(size, self.limit))
                with contextlib.suppress(Exception):
                    await self.asgi_send({"type": "websocket.close", "code": 1009})
                raise OSError("message too big")
            return message

    return BoundedWebSocket


class _WakingReader(threading.Thread):
    """simple-websocket's reader thread, waking ``receive()`` once more as it ends.

    Refusing a message over ``max_message_size``, simple-websocket (1.1) wakes the
    waiting ``receive()`` before it marks the connection closed: woken that early,
    ``receive()`` would wait again, forever.
    """

    def __init__(self, target: Callable[[], None]) -> None:
        super().__init__(target=target)
        self.websocket = target.__self__  # the reader is a method of the websocket

    def run(self) -> None:
        try:
            super().run()
        finally:
            self.websocket.event.set()
