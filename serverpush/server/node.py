"""The push server: owns the hub of connections, tails the log, hands entries on by op.

The core is synchronous code written against python-socketio's ``Server``, driven
as it is under eventlet, gevent and threading (:mod:`serverpush.server.adapters`)
and through a bridge to ``AsyncServer`` under ASGI (:mod:`serverpush.server.asgi`).
"""
from __future__ import annotations

import logging
import time
from typing import Any

import socketio
from django.db import close_old_connections

from serverpush import conf, protocol
from serverpush.entries import Entry
from serverpush.log import Gap, Log, get_log
from serverpush.server.adapters import sync_server
from serverpush.server.asgi import async_server
from serverpush.server.current import read_back
from serverpush.server.fanout import Index
from serverpush.server.handler_host import HandlerHost
from serverpush.server.heal import Healer
from serverpush.server.health import TailWatch
from serverpush.server.hub import Hub
from serverpush.server.pages import Pages
from serverpush.server.watchers import Watchers
from serverpush.server.workers import Workers
from serverpush.stats import stats

logger = logging.getLogger(__name__)

RETRY_SECONDS = 1.0


class PushServer:
    def __init__(self, async_mode: str = "eventlet", log: Log | None = None) -> None:
        self.async_mode = async_mode
        # Under ASGI the core runs in threads, so the log blocks as under threading.
        self.core_mode = "threading" if async_mode == "asgi" else async_mode
        self.log = log or get_log()
        self.sio = async_server() if async_mode == "asgi" else sync_server(async_mode)
        self.index = Index()
        self.index.previous = self.log.previous
        self.hub = Hub(self.sio)
        self.watchers = Watchers(self.sio, self.log, self.index, self.hub)
        self.handlers = HandlerHost(self.sio)
        self.healer = Healer(self.sio, self.log, self.index, self.watchers, self.drop)
        self.pages = Pages(self.sio, self.log, self.index, self.hub, self.healer, self.drop)
        self.sio.on("connect", self.pages.on_connect)
        self.sio.on("disconnect", self.on_disconnect)
        self.sio.on("*", self.hub.on_unknown_event)
        self.tail_watch = TailWatch(self.log, conf.get("SERVERPUSH_READY_LAG"), self.sio.sleep)
        self.started = time.time()

    def wsgi_app(self) -> socketio.WSGIApp:
        """The WSGI application of a push server under eventlet, gevent or threading."""
        return socketio.WSGIApp(self.sio, socketio_path=conf.socketio_path().strip("/"))

    def start(self) -> None:
        """Open the log, start the serializer workers and tail the log; call once, before serving.

        Under ASGI, call it in a thread while the event loop runs, after ``self.sio.bind(loop)``.
        """
        self.log.open(self.core_mode)
        self.workers = Workers(self.index, self._emit_room, self.sio.start_background_task, self.sio.create_queue, conf.get("SERVERPUSH_SERIALIZER_WORKERS"), self.pages.report)
        self.sio.start_background_task(self._tail)
        self.sio.start_background_task(self.tail_watch.run)

    def _tail(self) -> None:
        while True:
            try:
                self.log.serve(self.deliver, self.core_mode)
            except Gap as gap:
                self.resync_all(gap)
                continue
            except Exception:
                logger.exception("serverpush: the log stopped delivering; retrying in %ss", RETRY_SECONDS)
                stats["log_errors"] += 1
            self.sio.sleep(RETRY_SECONDS)

    def resync_all(self, gap: Gap) -> None:
        """The log lost entries that live pages may not have had: heal them, or have them reload.

        Under the index lock, so a page going live meanwhile either is healed here
        or meets the gap in its own replay.
        """
        with self.index.lock:
            self.healer.heal_all(gap)

    def drop(self, sid: str) -> None:
        """Stop sending anything to ``sid`` (it is to reload; call with the index lock held).

        The connection stays open (the page closes it): a page may still be inside
        its connect handler, and disconnecting it there would leave a half-made connection.
        """
        self.index.remove(sid)
        self.watchers.remove(sid)
        self.sio.leave_all(sid)

    def deliver(self, entries: list[Entry]) -> None:
        stats["log_entries"] += len(entries)
        entries = read_back(entries)
        with self.index.lock:
            self.index.route(entries, self._emit_room, self.workers.schedule)
            self.watchers.route(entries)
            self.handlers.revoke(entries)
            self.hub.revoke(entries)
        close_old_connections()

    def _emit_room(self, room: str, message: dict[str, Any], skip: list[str] | None = None) -> None:
        self.sio.emit(protocol.UPDATE, message, to=room, skip_sid=skip or None)

    def on_disconnect(self, sid: str, *args: Any) -> None:
        with self.index.lock:
            self.index.remove(sid)
            self.watchers.remove(sid)
            self.hub.remove(sid)

    def snapshot(self) -> dict[str, Any]:
        """Counters and sizes, for ``/serverpush/stats`` and the logs."""
        return {**stats, "connections": len(self.index.sids), "groups": len(self.index.groups)}
