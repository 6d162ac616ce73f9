"""The baseline of bench/throughput.py: plain python-socketio, no serverpush.

    python bench/raw_socketio_server.py --port P --zmq-port Z [--async-mode eventlet|gevent] [--max-connections N]

Every client that connects joins one room. A ZeroMQ PULL socket takes batches of
entries shaped like serverpush's notifier messages (a JSON list of
``{model, pk, op, fields, ts}``); each entry becomes one ``serverpush`` event,
shaped like serverpush's payload, emitted to the room at once. ``GET /stats``
answers ``{"connections", "entries", "emitted"}``. Like ``runserverpush``, it serves up
to ``--max-connections`` at once (eventlet's own default is 1,024) and raises its
open-files limit to match.
"""
from __future__ import annotations

import argparse

ARGS = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ARGS.add_argument("--port", type=int, required=True)
ARGS.add_argument("--zmq-port", type=int, required=True)
ARGS.add_argument("--async-mode", choices=("eventlet", "gevent"), default="eventlet")
ARGS.add_argument("--max-connections", type=int, default=15_000)
OPTIONS = ARGS.parse_args()

# Patch before anything else is imported, as runserverpush does.
if OPTIONS.async_mode == "eventlet":
    import warnings

    warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
    import eventlet

    eventlet.monkey_patch()
else:
    from gevent import monkey

    monkey.patch_all()

import json  # noqa: E402
import resource  # noqa: E402
from collections import Counter  # noqa: E402
from typing import Any  # noqa: E402

import socketio  # noqa: E402
import zmq  # noqa: E402

ROOM = "bench"
EPOCH = "0badcafe"
counts: Counter[str] = Counter()
sio = socketio.Server(async_mode=OPTIONS.async_mode)


@sio.on("connect")
def on_connect(sid: str, environ: dict[str, Any], auth: Any = None) -> bool:
    sio.enter_room(sid, ROOM)
    counts["connections"] += 1
    return True


@sio.on("disconnect")
def on_disconnect(sid: str, *args: Any) -> None:
    counts["connections"] -= 1


def payload(entry: dict[str, Any], position: int) -> dict[str, Any]:
    """What serverpush sends for the ``registered`` spec: a field map of the title."""
    return {"name": "registered", "op": entry["op"], "model": entry["model"], "pk": entry["pk"],
            "data": {"title": entry["fields"]["title"]}, "cursor": f"{EPOCH}:{position}", "replay": False}


def green_zmq() -> Any:
    if OPTIONS.async_mode == "eventlet":
        from eventlet.green import zmq as green
    else:
        import zmq.green as green
    return green


def pull_and_emit() -> None:
    """One emit per entry received, as fast as the socket delivers them."""
    socket = green_zmq().Context().socket(zmq.PULL)
    socket.setsockopt(zmq.RCVHWM, 10_000)
    socket.bind(f"tcp://127.0.0.1:{OPTIONS.zmq_port}")
    while True:
        for entry in json.loads(socket.recv()):
            counts["entries"] += 1
            sio.emit("serverpush", payload(entry, counts["entries"]), to=ROOM)
            counts["emitted"] += 1


def with_stats(app: Any) -> Any:
    def wsgi(environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO") == "/stats":
            body = json.dumps(counts).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        return app(environ, start_response)

    return wsgi


def serve(app: Any) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, OPTIONS.max_connections + 256)), hard))
    if OPTIONS.async_mode == "eventlet":
        import eventlet.wsgi

        listener = eventlet.listen(("127.0.0.1", OPTIONS.port), backlog=4096)
        eventlet.wsgi.server(listener, app, log_output=False, max_size=OPTIONS.max_connections)
    else:
        from gevent import pywsgi
        from geventwebsocket.handler import WebSocketHandler

        server = pywsgi.WSGIServer(("127.0.0.1", OPTIONS.port), app, handler_class=WebSocketHandler, log=None, backlog=4096, spawn=OPTIONS.max_connections)
        server.serve_forever()


if __name__ == "__main__":
    sio.start_background_task(pull_and_emit)
    print(f"raw python-socketio server on port {OPTIONS.port} ({OPTIONS.async_mode}); zmq PULL on {OPTIONS.zmq_port}", flush=True)
    serve(with_stats(socketio.WSGIApp(sio)))
