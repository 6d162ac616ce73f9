"""The push server's core under ASGI: python-socketio's ``AsyncServer``, driven through a bridge.

The core is synchronous Django code (update functions, serializers, handlers,
session loading). Under ASGI it never runs on the event loop: every Socket.IO
event handler runs in a bounded thread pool (``SERVERPUSH_ASGI_THREADS``), the
serializer workers and the log's tail in threads of their own. What the core
asks of the server (emit, rooms, disconnect) is handed to the event loop in the
order it was asked, so a page's replay still comes before its ``serverpush_ready``
and a notice before the disconnect that follows it.
"""
from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import engineio
import socketio

from serverpush import conf, protocol
from serverpush.server import frames
from serverpush.server.adapters import MALFORMED, is_event, options

logger = logging.getLogger(__name__)


class AsyncSocketServer(socketio.AsyncServer):
    """python-socketio's ``AsyncServer`` with the same guards as :class:`~serverpush.server.adapters.SocketServer`."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(async_mode="asgi", **kwargs)
        frames.bound_websockets(self.eio)
        _real_client_address(self.eio)

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        if eio_sid not in self.eio.sockets:  # already disconnected, by a malformed frame it sent before this one
            return
        try:
            await super()._handle_eio_message(eio_sid, data)
        except MALFORMED as exc:
            await self._malformed(eio_sid, f"{type(exc).__name__}: {exc}")

    async def _handle_event(self, eio_sid: str, namespace: str | None, id: Any, data: Any) -> None:
        if not is_event(data):
            await self._malformed(eio_sid, f"event {data!r:.60} is not [name, ...args] with a name of its own")
            return
        await super()._handle_event(eio_sid, namespace, id, data)

    async def _malformed(self, eio_sid: str, why: str) -> None:
        frames.refuse(eio_sid, why)
        socket = self.eio.sockets.get(eio_sid)
        await self.eio.disconnect(eio_sid)
        if socket is not None:
            # engineio's async socket leaves the websocket open until its next ping times
            # out; as under Server, its writer is woken to close it now.
            socket.queue.put_nowait(None)


def _real_client_address(eio: engineio.AsyncServer) -> None:
    """engineio's ASGI driver says every client is 127.0.0.1: give the core the address from the scope."""
    translate = eio._async["translate_request"]

    async def translate_request(scope: dict[str, Any], receive: Callable, send: Callable) -> dict[str, Any]:
        environ = await translate(scope, receive, send)
        client = scope.get("client")
        if environ and client:
            environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = str(client[0]), str(client[1])
        return environ

    eio._async = {**eio._async, "translate_request": translate_request}


class Bridge:
    """The calls the core makes on python-socketio's ``Server``, made on an ``AsyncServer`` from threads.

    Handlers the core registers run in the thread pool; emits are encoded in the
    calling thread (a payload JSON cannot hold raises there, as under ``Server``)
    and sent, like every other request, by a task the event loop starts in the
    order the requests were made.
    """

    def __init__(self, asio: AsyncSocketServer, threads: int) -> None:
        self.asio = asio
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="serverpush")
        self.loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def on(self, event: str, handler: Callable[..., Any], namespace: str | None = None) -> None:
        if getattr(handler, "nonblocking", False):
            self.asio.on(event, handler, namespace=namespace)
            return

        async def in_pool(*args: Any) -> Any:
            return await asyncio.get_running_loop().run_in_executor(self.pool, handler, *args)

        self.asio.on(event, in_pool, namespace=namespace)

    def emit(self, event: str, data: Any, to: str | None = None, skip_sid: Any = None, namespace: str | None = None) -> None:
        namespace = namespace or "/"
        encoded = self.asio.packet_class(socketio.packet.EVENT, namespace=namespace, data=[event, data]).encode()
        packets = [engineio.packet.Packet(engineio.packet.MESSAGE, part) for part in (encoded if isinstance(encoded, list) else [encoded])]
        skip = skip_sid if isinstance(skip_sid, list) else [skip_sid]
        self._soon(self._send, namespace, to, skip, packets)

    def send(self, data: Any, to: str | None = None, namespace: str | None = None) -> None:
        self.emit(protocol.HANDLER_MESSAGE, data, to=to, namespace=namespace)

    def enter_room(self, sid: str, room: str, namespace: str | None = None) -> None:
        self._soon(self._rooms, self.asio.manager.basic_enter_room, sid, namespace or "/", room)

    def leave_room(self, sid: str, room: str, namespace: str | None = None) -> None:
        self._soon(self._rooms, self.asio.manager.basic_leave_room, sid, namespace or "/", room)

    def leave_all(self, sid: str) -> None:
        self._soon(self._leave_all, sid)

    def disconnect(self, sid: str, namespace: str | None = None) -> None:
        self._soon(self.asio.disconnect, sid, namespace)

    def start_background_task(self, target: Callable[..., Any], *args: Any) -> threading.Thread:
        thread = threading.Thread(target=target, args=args, daemon=True, name=f"serverpush-{getattr(target, '__name__', 'task')}")
        thread.start()
        return thread

    def submit(self, target: Callable[..., Any], *args: Any) -> None:
        """Run a short task in the bounded thread pool."""
        self.pool.submit(target, *args).add_done_callback(_report)

    @staticmethod
    def sleep(seconds: float) -> None:
        time.sleep(seconds)

    @staticmethod
    def create_queue() -> queue.Queue:
        return queue.Queue()

    def _soon(self, request: Callable[..., Any], *args: Any) -> None:
        if self.loop is None:
            raise RuntimeError("the ASGI push server is not started: call PushServer.start() from the event loop first")
        self.loop.call_soon_threadsafe(self._start, request, args)

    def _start(self, request: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.loop.create_task(request(*args)).add_done_callback(_report)

    async def _send(self, namespace: str, room: str | None, skip: list[Any], packets: list[engineio.packet.Packet]) -> None:
        if namespace not in self.asio.manager.rooms:
            return
        for sid, eio_sid in self.asio.manager.get_participants(namespace, room):
            if sid not in skip:
                for packet in packets:
                    await self.asio._send_eio_packet(eio_sid, packet)

    async def _rooms(self, change: Callable[[str, str, str], None], sid: str, namespace: str, room: str) -> None:
        if sid in self.asio.manager.rooms.get(namespace, {}).get(None, ()):  # it may have left while the request waited
            change(sid, namespace, room)

    async def _leave_all(self, sid: str) -> None:
        for room in self.asio.manager.get_rooms(sid, "/"):
            if room != sid:
                self.asio.manager.basic_leave_room(sid, "/", room)


def _report(task: asyncio.Future | Future) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("serverpush: a task of the ASGI push server failed", exc_info=task.exception())


def async_server() -> Bridge:
    """The core's server under ASGI: a bridge to an ``AsyncServer``."""
    return Bridge(AsyncSocketServer(**options()), conf.get("SERVERPUSH_ASGI_THREADS"))
