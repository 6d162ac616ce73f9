"""Run the push server's app: WSGI under eventlet, gevent or threading, or ASGI under uvicorn."""
from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

ASYNC_MODES = ("eventlet", "gevent", "threading", "asgi")


# Pages that connect at once (a restart's reconnect storm) queue here while the server
# accepts; the kernel caps it at net.core.somaxconn.
BACKLOG = 4096
FULL_WARNING_SECONDS = 60.0
TCP_LISTEN = "0A"  # the state column of /proc/net/tcp

PATCHED_ENV = "SERVERPUSH_PATCHED"
# Run by a fresh interpreter: patch first, then the original command line.
_BOOTSTRAP = """
import os, runpy, sys
mode = os.environ["SERVERPUSH_PATCHED"]
if mode == "eventlet":
    import eventlet
    eventlet.monkey_patch()
else:
    from gevent import monkey
    monkey.patch_all()
sys.argv = sys.argv[1:]
sys.path[0] = os.environ.pop("SERVERPUSH_PATH0")
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def ensure_patched(async_mode: str) -> None:
    """Make blocking I/O cooperative before Django creates its per-thread state.

    Django's connections and translations live in thread-locals created when
    Django is imported; green threads only get their own if the patching came
    first. So unless this process already started patched, re-execute the same
    command line in a fresh interpreter that patches before anything else
    (same PID: ``exec``, not a child).
    """
    if async_mode in ("threading", "asgi") or os.environ.get(PATCHED_ENV) == async_mode:
        return
    os.environ[PATCHED_ENV] = async_mode
    os.environ["SERVERPUSH_PATH0"] = sys.path[0]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-c", _BOOTSTRAP, *sys.argv])


def listen(host: str, port: int, shared: bool = False) -> socket.socket:
    """Bind the push server's port now, so that a port in use stops it before it announces itself.

    eventlet's own ``listen`` sets SO_REUSEPORT, with which a second push server would
    bind the same port and take half of the new connections. Only the workers of one
    ``runserverpush --workers N`` share a port (``shared``), on purpose.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart need not wait for TIME_WAIT
    if shared:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(BACKLOG)
    return sock


def holder(port: int) -> str:
    """Who listens on ``port``, as " (by pid N: command line)", if this user may know; else ""."""
    inodes = _listening(port)
    for pid in filter(str.isdigit, os.listdir("/proc") if inodes else ()):
        try:
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") in inodes for fd in os.listdir(f"/proc/{pid}/fd")):
                with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                    command = cmdline.read().decode(errors="replace").replace("\0", " ").replace(f"-c {_BOOTSTRAP} ", "")
                return f" (by pid {pid}: {command.strip()[:200]})"
        except OSError:  # gone meanwhile, or another user's
            continue
    return ""


def _listening(port: int) -> set[str]:
    """The ``socket:[inode]`` links of the sockets listening on ``port`` (Linux's /proc)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as rows:
                next(rows)
                inodes.update(f"socket:[{f[9]}]" for f in map(str.split, rows) if f[3] == TCP_LISTEN and int(f[1].rsplit(":", 1)[1], 16) == port)
        except OSError:
            continue
    return inodes


def serve(app: Callable, sock: socket.socket, async_mode: str, max_connections: int, max_message_bytes: int = 0) -> None:
    """Serve ``app`` forever on the listening ``sock``, at most ``max_connections`` connections at once."""
    if async_mode == "asgi":
        import uvicorn

        # uvicorn refuses a websocket message over ws_max_size from its header, before reading it.
        config = uvicorn.Config(_bounded_asgi(app, max_connections), ws="websockets-sansio", ws_max_size=max_message_bytes or 16 * 1024 * 1024, lifespan="on", log_level="warning", access_log=False, backlog=BACKLOG)
        uvicorn.Server(config).run(sockets=[sock])
    elif async_mode == "eventlet":
        import eventlet.wsgi

        eventlet.wsgi.server(sock, app, log_output=False, custom_pool=_eventlet_pool(max_connections), protocol=_eventlet_protocol())
    elif async_mode == "gevent":
        from gevent import pywsgi
        from geventwebsocket.handler import WebSocketHandler

        class Handler(WebSocketHandler):
            def __init__(self, sock: Any, address: Any, server: Any) -> None:
                super().__init__(sock, address, server, rfile=sock.makefile("rb", HTTP_BUFFER_BYTES))

        pywsgi.WSGIServer(sock, app, handler_class=Handler, log=None, spawn=_gevent_pool(max_connections)).serve_forever()
    elif async_mode == "threading":
        _threaded_server(app, sock, max_connections).serve_forever()
    else:
        raise ValueError(f"async mode {async_mode!r} is not one of {', '.join(ASYNC_MODES)}")


class _FullWarning:
    """Log, at most once a minute, that every connection slot is taken."""

    def __init__(self, limit: int, then: str = "wait") -> None:
        self.limit, self.then = limit, then
        self.last = -FULL_WARNING_SECONDS

    def __call__(self) -> None:
        now = time.monotonic()
        if now - self.last >= FULL_WARNING_SECONDS:
            self.last = now
            logger.warning(
                "serverpush: %d connections open, SERVERPUSH_MAX_CONNECTIONS: new ones %s until one closes. "
                "Raise the setting (and the open-files limit with it) if this server should hold more.", self.limit, self.then,
            )


def _bounded_asgi(app: Callable, limit: int) -> Callable:
    """``app`` serving at most ``limit`` requests and websockets at once; past it, refused at once.

    uvicorn's own limit_concurrency lets websocket upgrades through. An ASGI server
    cannot leave a connection waiting unread as the others do, so one past the limit is
    refused: a websocket with close code 1013 (try again later), a request with 503;
    the page's client retries.
    """
    warn = _FullWarning(limit, "are refused")
    taken = 0

    async def bounded(scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        nonlocal taken
        if scope["type"] not in ("http", "websocket"):
            return await app(scope, receive, send)
        if taken >= limit:
            warn()
            if scope["type"] == "websocket":
                return await send({"type": "websocket.close", "code": 1013})
            await send({"type": "http.response.start", "status": 503, "headers": [(b"retry-after", b"1")]})
            return await send({"type": "http.response.body", "body": b""})
        taken += 1
        try:
            return await app(scope, receive, send)
        finally:
            taken -= 1

    return bounded


def _eventlet_pool(limit: int) -> Any:
    import eventlet

    warn = _FullWarning(limit)

    class Pool(eventlet.GreenPool):
        def spawn(self, *args: Any, **kwargs: Any) -> Any:
            thread = super().spawn(*args, **kwargs)
            if not self.free():
                warn()
            return thread

    return Pool(limit)


# What a connection's HTTP reader (and, under eventlet, writer) buffers: every page
# holds them as long as it is open (8 KiB, and eventlet's 16 KiB writer that a
# websocket never uses), and the push server's HTTP requests and answers are small.
HTTP_BUFFER_BYTES = 1024


def _eventlet_protocol() -> type:
    import eventlet.wsgi

    class Protocol(eventlet.wsgi.HttpProtocol):
        rbufsize = wbufsize = HTTP_BUFFER_BYTES

    return Protocol


def _gevent_pool(limit: int) -> Any:
    from gevent.pool import Pool

    warn = _FullWarning(limit)

    class WarningPool(Pool):
        def spawn(self, *args: Any, **kwargs: Any) -> Any:
            greenlet = super().spawn(*args, **kwargs)
            if self.full():
                warn()
            return greenlet

    return WarningPool(limit)


def _threaded_server(app: Callable, sock: socket.socket, limit: int) -> Any:
    """Werkzeug's threaded server, which starts a thread per connection without bound, bounded."""
    from werkzeug.serving import ThreadedWSGIServer

    warn = _FullWarning(limit)

    class BoundedServer(ThreadedWSGIServer):
        room = threading.Condition()
        taken = 0

        def process_request(self, request: Any, client_address: Any) -> None:
            with self.room:  # the connections behind this one wait in the listen backlog
                self.room.wait_for(lambda: self.taken < limit)
                self.taken += 1
                if self.taken == limit:
                    warn()
            try:
                super().process_request(request, client_address)
            except BaseException:
                self.release()
                raise

        def process_request_thread(self, request: Any, client_address: Any) -> None:
            try:
                super().process_request_thread(request, client_address)
            finally:
                self.release()

        def release(self) -> None:
            with self.room:
                self.taken -= 1
                self.room.notify()

    host, port = sock.getsockname()[:2]
    return BoundedServer(host, port, app, _closing_handler(), fd=sock.fileno())


def _closing_handler() -> type:
    """Werkzeug's request handler, closing a connection whose request ended as dropped.

    simple-websocket ends every websocket that way, also one it refused for a message
    over the limit while the client was still sending it: without this, Werkzeug would
    read the rest of that message as the next HTTP request, and log it.
    """
    from werkzeug.serving import WSGIRequestHandler

    class ClosingHandler(WSGIRequestHandler):
        def connection_dropped(self, error: BaseException, environ: dict[str, Any] | None = None) -> None:
            self.close_connection = True

    return ClosingHandler
