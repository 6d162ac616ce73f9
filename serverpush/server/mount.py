"""The push server in an ASGI application: Socket.IO on a path, the rest to the app it wraps.

One process serves the pages and their live updates on the same origin (host and
port), so the session cookie, CSRF origins and CSP ``connect-src 'self'`` need
nothing more. The push server starts with the ASGI server's lifespan (or, for a
server that sends none, with the first Socket.IO request); a start that fails ends
the lifespan with the reason, and the ASGI server says it.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from serverpush import conf
from serverpush.log.memory import MemoryLog
from serverpush.server import monitoring
from serverpush.server.node import PushServer

logger = logging.getLogger(__name__)

ASGIApp = Callable[[dict[str, Any], Callable[[], Awaitable[dict[str, Any]]], Callable[[dict[str, Any]], Awaitable[None]]], Awaitable[None]]


class Mount:
    """``app`` (Django's ASGI application, or None for the push server alone) with the push server at ``path``."""

    def __init__(self, app: ASGIApp | None, server: PushServer | None = None, path: str | None = None) -> None:
        self.app = app
        self.server = server or PushServer("asgi")
        self.path = path or conf.socketio_path()
        self._lock: asyncio.Lock | None = None
        self._started = False

    async def __call__(self, scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind in ("http", "websocket") and (scope["path"].rstrip("/") + "/").startswith(self.path):
            await self.start()
            await self.server.sio.asio.handle_request(scope, receive, send)
        elif kind == "http" and (found := monitoring.answer(self.server, scope["path"], (scope.get("client") or ("",))[0])) is not None:
            status, content_type, body = found
            await _respond(send, int(status.split()[0]), body, content_type.encode())
        elif self.app is not None:
            await self.app(scope, receive, send)
        elif kind == "http":
            await _respond(send, 404, b"Not Found", b"text/plain")

    async def start(self) -> None:
        """Start the push server in this process, once; the event loop stays free while it opens the log."""
        if self._started:
            return
        self._lock = self._lock or asyncio.Lock()
        async with self._lock:
            if self._started:
                return
            loop = asyncio.get_running_loop()
            self.server.sio.bind(loop)
            try:
                await loop.run_in_executor(None, self.server.start)
            except Exception as exc:
                raise _explained(self.server, exc) from exc
            self._started = True
            logger.info("serverpush: push server at %s (asgi, %s log)", self.path, type(self.server.log).__name__)

    async def _lifespan(self, receive: Callable, send: Callable) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.start()
                except Exception as exc:
                    logger.error("serverpush: %s", exc)
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


def _explained(server: PushServer, exc: Exception) -> Exception:
    if not isinstance(server.log, MemoryLog):
        return exc
    return ImproperlyConfigured(
        f"the embedded log (SERVERPUSH_LOG = 'memory') serves one push-server process, and this one could not open it: {exc}. "
        f"Is another ASGI worker or push server already on SERVERPUSH_NOTIFIER_PORT ({conf.get('SERVERPUSH_NOTIFIER_PORT')})? "
        "Run a single worker, or set SERVERPUSH_LOG to a Redis URL to run several (docs/redis.md)."
    )


async def _respond(send: Callable, status: int, body: bytes, content_type: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
