"""Run the push server's app: WSGI under eventlet, gevent or threading, or ASGI under uvicorn."""
from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

ASYNC_MODES = ("eventlet", "gevent", "threading", "asgi")


PATCHED_ENV = "SERVERPUSH_PATCHED"
# Run by a fresh interpreter: patch first, then the original command line.
_BOOTSTRAP = """
import os, runpy, sys, warnings
mode = os.environ["SERVERPUSH_PATCHED"]
if mode == "eventlet":
    warnings.filterwarnings("ignore", message="\\s*Eventlet is deprecated")
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


def serve(app: Callable, host: str, port: int, async_mode: str, max_message_bytes: int = 0) -> None:
    """Serve ``app`` forever on ``host:port``."""
    if async_mode == "asgi":
        import uvicorn

        # uvicorn refuses a websocket message over ws_max_size from its header, before reading it.
        uvicorn.run(app, host=host, port=port, ws="websockets-sansio", ws_max_size=max_message_bytes or 16 * 1024 * 1024, lifespan="on", log_level="warning", access_log=False)
    elif async_mode == "eventlet":
        import eventlet
        import eventlet.wsgi

        eventlet.wsgi.server(eventlet.listen((host, port)), app, log_output=False)
    elif async_mode == "gevent":
        from gevent import pywsgi
        from geventwebsocket.handler import WebSocketHandler

        pywsgi.WSGIServer((host, port), app, handler_class=WebSocketHandler, log=None).serve_forever()
    elif async_mode == "threading":
        from werkzeug.serving import make_server

        make_server(host, port, app, threaded=True, request_handler=_closing_handler()).serve_forever()
    else:
        raise ValueError(f"async mode {async_mode!r} is not one of {', '.join(ASYNC_MODES)}")


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
