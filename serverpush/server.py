"""The push server: authenticate pages, replay what they missed, stream the rest.

Written against python-socketio's portable primitives only (background tasks,
rooms, ``sleep``) so it runs under eventlet, gevent and threading alike.
"""
from __future__ import annotations

import json
import logging
import time
from typing import Any

import socketio
from django.core.serializers.json import DjangoJSONEncoder
from django.db import close_old_connections, connections
from django.http import HttpRequest
from django.utils import translation

from serverpush import conf, frames, messages, origins, problems, registry, revocation
from serverpush.current import read_back
from serverpush.entries import Entry
from serverpush.fanout import Index
from serverpush.handlers import HandlerHost
from serverpush.heal import Healer
from serverpush.health import TailWatch
from serverpush.limits import Budget
from serverpush.stats import stats
from serverpush.workers import Workers
from serverpush.handshake import rebuild_request
from serverpush.log import BadCursor, Gap, Log, Unavailable, get_log
from serverpush.replay import catch_up, replay_payloads
from serverpush.specs import Spec
from serverpush.problems import Problem
from serverpush.tokens import PageToken, TokenError, identity, read_token
from serverpush.watchers import Watchers

logger = logging.getLogger(__name__)

RETRY_SECONDS = 1.0


class _Json:
    """Payloads may hold dates, decimals and UUIDs: encode them the way Django does."""

    @staticmethod
    def dumps(obj: Any, **kwargs: Any) -> str:
        return json.dumps(obj, cls=DjangoJSONEncoder, **kwargs)

    loads = staticmethod(frames.loads)  # everything a client sends: bounded, one error class


RESERVED_EVENTS = {"connect", "disconnect", "connect_error", "*"}


class _SocketServer(socketio.Server):
    """python-socketio's server, minus its tracebacks for malformed client frames.

    A frame python-socketio cannot decode (or chokes on) is counted, logged in one
    line, and costs the sender its connection; nobody else notices. So does a
    message over the size limit, refused by the websocket layer before it is read
    (:mod:`serverpush.frames`).
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
        if not isinstance(data, list) or not data or not isinstance(data[0], str) or data[0] in RESERVED_EVENTS:
            self._malformed(eio_sid, f"event {data!r:.60} is not [name, ...args] with a name of its own")
            return
        super()._handle_event(eio_sid, namespace, id, data)

    def _malformed(self, eio_sid: str, why: str) -> None:
        frames.refuse(eio_sid, why)
        self.eio.disconnect(eio_sid)


class Refused(socketio.exceptions.ConnectionRefusedError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, {"code": code, "message": message})
        self.code = code


class PushServer:
    def __init__(self, async_mode: str = "eventlet", log: Log | None = None) -> None:
        self.async_mode = async_mode
        self.log = log or get_log()
        self.sio = _SocketServer(
            async_mode=async_mode,
            cors_allowed_origins=origins.is_allowed,
            json=_Json,
            max_http_buffer_size=conf.get("SERVERPUSH_MAX_MESSAGE_BYTES"),
        )
        self.index = Index()
        self.index.previous = self.log.previous
        self.identities: dict[str, tuple[str | None, str | None]] = {}
        self.pages: dict[str, dict[str, Any]] = {}  # what the inspector shows of each page
        self.started = time.time()
        self.budgets: dict[str, Budget] = {}
        self.sio.on("connect", self.on_connect)
        self.sio.on("disconnect", self.on_disconnect)
        self.sio.on("*", self.on_unknown_event)
        self.watchers = Watchers(self)
        self.handlers = HandlerHost(self)
        self.healer = Healer(self)
        self.tail_watch = TailWatch(self.log, conf.get("SERVERPUSH_READY_LAG"), self.sio.sleep)
        self.app = socketio.WSGIApp(self.sio)

    def start(self) -> None:
        """Start the serializer workers and tail the log; call once, before serving."""
        self.workers = Workers(self.index, self._emit_room, self.sio.start_background_task, self.sio.eio.create_queue, conf.get("SERVERPUSH_SERIALIZER_WORKERS"), self.report)
        self.log.open(self.async_mode)
        self.sio.start_background_task(self._tail)
        self.sio.start_background_task(self.tail_watch.run)

    def _tail(self) -> None:
        while True:
            try:
                self.log.serve(self.deliver, self.async_mode)
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
        for room in self.sio.rooms(sid):
            if room != sid:
                self.sio.leave_room(sid, room)

    def deliver(self, entries: list[Entry]) -> None:
        stats["log_entries"] += len(entries)
        entries = read_back(entries)
        with self.index.lock:
            self.index.route(entries, self._emit_room, self.workers.schedule)
            self.watchers.route(entries)
            self.handlers.revoke(entries)
            for entry in entries:
                if entry.op == revocation.REVOKE:
                    self._revoke(entry)
        close_old_connections()

    def _revoke(self, entry: Entry) -> None:
        for sid, (user_pk, session) in list(self.identities.items()):
            if revocation.matches(entry, user_pk, session):
                stats["revoked"] += 1
                self._close(sid, "session_revoked", "this session ended (logout, password change or deactivation); reload the page")

    def _close(self, sid: str, code: str, message: str) -> None:
        """Tell the client why, then drop it; it resyncs (refresh codes) or stops."""
        event = "serverpush_refresh" if code in REFRESH_CODES else "serverpush_error"
        if code in REFRESH_CODES:
            stats[f"refreshes.{code}"] += 1
        self.sio.emit(event, {"code": code, "message": message}, to=sid)
        self.sio.disconnect(sid)

    def _emit_room(self, room: str, message: dict[str, Any], skip: list[str] | None = None) -> None:
        self.sio.emit("serverpush", message, to=room, skip_sid=skip or None)

    def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> bool:
        try:
            token, cursor = _parse_auth(auth)
            try:
                page = read_token(token)
                self._same_log(page)
                request = rebuild_request(page, environ)
            except TokenError as exc:
                raise Refused(exc.code, exc.message) from None
            found: list[Problem] = []
            with translation.override(request.LANGUAGE_CODE):
                specs = registry.specs_for(request, request.resolver_match, found)
            limit = conf.get("SERVERPUSH_MAX_SUBSCRIPTIONS")
            if len(specs) > limit:
                raise Refused("too_many_subscriptions", f"this page declares {len(specs)} subscriptions; SERVERPUSH_MAX_SUBSCRIPTIONS allows {limit}")
            self.identities[sid] = identity(request)
            self.pages[sid] = {"path": request.path, "view": registry.view_name(request.resolver_match), "user": str(request.user) if request.user.is_authenticated else None, "since": time.time()}
            self.budgets[sid] = Budget()
            self.sio.save_session(sid, {"request": request})  # for serverpush_subscribe
            self._go_live(sid, specs, request, cursor, found)
            self.report(sid, found)
            stats["connects"] += 1
            return True
        except Refused as exc:
            stats["refused"] += 1
            stats[f"refused.{exc.code}"] += 1
            logger.info("serverpush: refused %s: %s", sid, exc.error_args)
            raise
        except Exception:
            logger.exception("serverpush: connect of %s failed", sid)
            raise Refused("server_error", "the push server could not set up this page; it logged why") from None
        finally:
            connections.close_all()

    def _same_log(self, page: PageToken) -> None:
        """Refuse a page rendered by a Django process that writes to another log than this server reads."""
        mine = self.log.identity()
        if page.log is not None and page.log != mine:
            raise TokenError("log_mismatch", (
                f"this page was rendered by a Django process that writes changes to {page.log}, but this push server "
                f"reads {mine}: give both the same SERVERPUSH_LOG, SERVERPUSH_NOTIFIER_PORT and SERVERPUSH_REDIS_STREAM"
            ))

    def report(self, to: str, found: list[Problem]) -> None:
        """In DEBUG, send the problems of the developer's code to the page's console (room or sid ``to``)."""
        if found and problems.shown_in_browser():
            for problem in found:
                self.sio.emit("serverpush_error", problem.event(), to=to)

    def _go_live(self, sid: str, specs: list[Spec], request: HttpRequest, cursor: str | None, found: list[Problem]) -> None:
        """Replay after ``cursor``, then join the rooms (under the index lock :meth:`deliver` holds)."""
        replayed = 0

        def replay(entries: list[Entry]) -> None:
            nonlocal replayed
            replayed += self._replay(sid, entries, specs, request, found)

        def join(head: str, **ready: Any) -> None:
            for room in self.index.add(sid, specs, request) + messages.rooms_for(request):
                self.sio.enter_room(sid, room)
            self.sio.emit("serverpush_ready", {"cursor": head, "replayed": replayed, **ready}, to=sid)

        try:
            catch_up(self.log, self.index.lock, cursor, replay, join)
        except Gap as gap:
            self._heal_joining(sid, specs, gap, join)
        except BadCursor as exc:
            raise Refused("bad_payload", str(exc)) from None
        except Unavailable as exc:
            raise Refused("server_error", str(exc)) from None

    def _heal_joining(self, sid: str, specs: list[Spec], gap: Gap, join: Any) -> None:
        """The log cannot cover the page's cursor: join it now and send it the current state, or have it reload."""
        if not self.healer.can_heal(specs):
            self.healer.reload(sid, gap)
            return
        with self.index.lock:
            head = self.log.head()
            join(head, healing=True)
            if not self.healer.heal_joining(sid, gap, head):
                self.drop(sid)
                self.healer.reload(sid, gap)

    def _replay(self, sid: str, entries: list[Entry], specs: list[Spec], request: HttpRequest, found: list[Problem]) -> int:
        sent = 0
        for message in replay_payloads(entries, specs, request, found):
            try:
                self.sio.emit("serverpush", message, to=sid)
                sent += 1
            except (TypeError, ValueError) as exc:
                logger.error("serverpush: replayed payload for %s %s is not JSON: %s", message["model"], message["pk"], exc)
                stats["serializer_errors"] += 1
        stats["replayed"] += sent
        return sent

    def on_disconnect(self, sid: str, *args: Any) -> None:
        with self.index.lock:
            self.index.remove(sid)
            self.watchers.remove(sid)
            self.identities.pop(sid, None)
            self.pages.pop(sid, None)
            self.budgets.pop(sid, None)

    def allow(self, sid: str) -> bool:
        """Spend one client event of ``sid``'s budget; a flooding client is disconnected."""
        budget = self.budgets.get(sid)
        if budget is None or budget.spend():
            return budget is not None
        stats["flood"] += 1
        self._close(sid, "flood", f"more than {budget.rate:g} events per second (SERVERPUSH_CLIENT_EVENTS_PER_SECOND)")
        return False

    def on_unknown_event(self, event: str, sid: str, *args: Any) -> None:
        if self.allow(sid):
            stats["unknown_events"] += 1
            self.sio.emit("serverpush_error", {"code": "unknown_event", "message": f"the push server has no event {event[:64]!r}"}, to=sid)

    def snapshot(self) -> dict[str, Any]:
        """Counters and sizes, for ``/serverpush/stats`` and the logs."""
        return {**stats, "connections": len(self.index.sids), "groups": len(self.index.groups)}


REFRESH_CODES = {"session_revoked", "log_gap", "log_restarted", "token_expired", "session_mismatch"}


def _parse_auth(auth: Any) -> tuple[str, str | None]:
    if not isinstance(auth, dict) or not isinstance(auth.get("token"), str):
        raise Refused("bad_payload", "connect with auth {token: <the page token>, cursor: <cursor or null>}")
    cursor = auth.get("cursor")
    if cursor is not None and not isinstance(cursor, str):
        raise Refused("bad_payload", f"cursor must be a string or null, got {type(cursor).__name__}")
    return auth["token"], cursor or None
