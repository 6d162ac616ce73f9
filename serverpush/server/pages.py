"""A page connects: token -> request -> update functions -> catch-up -> rooms."""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import socketio
from django.db import connections
from django.http import HttpRequest
from django.utils import translation

from serverpush import conf, problems, protocol, registry
from serverpush.entries import Entry
from serverpush.log import BadCursor, Gap, Log, Unavailable
from serverpush.problems import Problem
from serverpush.server import messages
from serverpush.server.fanout import Index
from serverpush.server.handshake import rebuild_request
from serverpush.server.heal import Healer
from serverpush.server.hub import Hub
from serverpush.server.replay import catch_up, replay_payloads
from serverpush.specs import Spec
from serverpush.stats import stats
from serverpush.tokens import PageToken, TokenError, read_token

logger = logging.getLogger(__name__)


class Refused(socketio.exceptions.ConnectionRefusedError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, protocol.notice(code, message))
        self.code = code


class Pages:
    """Sets up each page's connection to "/", under the lock that delivery holds."""

    def __init__(self, sio: Any, log: Log, index: Index, hub: Hub, healer: Healer, drop: Callable[[str], None]) -> None:
        self.sio = sio
        self.log = log
        self.index = index
        self.hub = hub
        self.healer = healer
        self.drop = drop

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
            self.hub.add(sid, request)
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
                self.sio.emit(protocol.ERROR, problem.event(), to=to)

    def _go_live(self, sid: str, specs: list[Spec], request: HttpRequest, cursor: str | None, found: list[Problem]) -> None:
        """Replay after ``cursor``, then join the rooms (under the index lock delivery holds)."""
        replayed = 0

        def replay(entries: list[Entry]) -> None:
            nonlocal replayed
            replayed += self._replay(sid, entries, specs, request, found)

        def join(head: str, **ready: Any) -> None:
            for room in self.index.add(sid, specs, request) + messages.rooms_for(request):
                self.sio.enter_room(sid, room)
            self.sio.emit(protocol.READY, {"cursor": head, "replayed": replayed, **ready}, to=sid)

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
                self.sio.emit(protocol.UPDATE, message, to=sid)
                sent += 1
            except (TypeError, ValueError) as exc:
                logger.error("serverpush: replayed payload for %s %s is not JSON: %s", message["model"], message["pk"], exc)
                stats["serializer_errors"] += 1
        stats["replayed"] += sent
        return sent


def _parse_auth(auth: Any) -> tuple[str, str | None]:
    if not isinstance(auth, dict) or not isinstance(auth.get("token"), str):
        raise Refused("bad_payload", "connect with auth {token: <the page token>, cursor: <cursor or null>}")
    cursor = auth.get("cursor")
    if cursor is not None and not isinstance(cursor, str):
        raise Refused("bad_payload", f"cursor must be a string or null, got {type(cursor).__name__}")
    return auth["token"], cursor or None
