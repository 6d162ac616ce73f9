"""The push server's side of watching: ``serverpush_subscribe`` / ``serverpush_unsubscribe``.

Connections watching the same thing (the same token contents) share a room;
each change is matched once per room and sent to it as ``serverpush_watch``.
A subscribe carries the cursor the page's knowledge of the object dates from; what
it missed since comes back in the acknowledgement, and the connection joins the
room with no gap between the two (the same two-phase replay as a page's connect).

A room watching a filter keeps the pks it has shown (those the page rendered, then
those sent as matching); a change that takes one of them out of the filter is sent
as a ``delete`` with ``left: true`` and only the pk, live and in replay. Events that
show an object carry a ``shown`` mark (an HMAC) that the page sends back when it
subscribes again, so an object that joined after the render counts as shown too.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from django.db import connections

from serverpush import conf, protocol
from serverpush.entries import CHANGE_OPS, Entry
from serverpush.log import BadCursor, Gap, Log, Unavailable
from serverpush.server.current import database_for, read_back, rows
from serverpush.server.fanout import Index
from serverpush.server.hub import Hub
from serverpush.server.replay import LEFT, catch_up, compact, follow
from serverpush.stats import stats
from serverpush.tokens import TokenError
from serverpush.watch import MAX_OBJECTS, Watch, read_watch_token, shown_mark, verify_shown

logger = logging.getLogger(__name__)


class Watchers:
    def __init__(self, sio: Any, log: Log, index: Index, hub: Hub) -> None:
        self.sio = sio
        self.log = log
        self.index = index
        self.hub = hub
        self.watches: dict[str, Watch] = {}
        self.shown: dict[str, set[str]] = {}  # per room watching a filter: the pks its pages show
        self.members: dict[str, set[str]] = defaultdict(set)
        self.by_sid: dict[str, set[str]] = defaultdict(set)
        self._by_pk: dict[tuple[str, str], set[str]] = defaultdict(set)
        self._scan: dict[str, set[str]] = defaultdict(set)
        self.sio.on(protocol.SUBSCRIBE, self.on_subscribe)
        self.sio.on(protocol.UNSUBSCRIBE, self.on_unsubscribe)

    def on_subscribe(self, sid: str, data: Any = None) -> dict[str, Any]:
        """Verify the watch token, replay after its cursor, join; the return value is the ack."""
        if not self.hub.allow(sid):
            return _refusal("flood", "too many events; this connection is being closed")
        try:
            watch, cursor, shown = self._check(sid, data)
            events, head = self._join(sid, watch, cursor, shown)
        except TokenError as exc:
            stats["watch_refused"] += 1
            return _refusal(exc.code, exc.message)
        except Gap as gap:
            return _refusal(gap.code, gap.message)
        except BadCursor as exc:
            return _refusal("bad_payload", str(exc))
        except Unavailable as exc:
            return _refusal("server_error", str(exc))
        except Exception:
            logger.exception("serverpush: subscribe of %s failed", sid)
            return _refusal("server_error", "the push server could not set up this watch; it logged why")
        finally:
            connections.close_all()
        stats["watches"] += 1
        return {"ok": True, "sub": watch.room, "cursor": head, "events": events}

    def _check(self, sid: str, data: Any) -> tuple[Watch, str | None, set[str] | None]:
        """The watch, cursor and shown pks of a subscribe, if this connection may have them."""
        token, cursor, marks = _parse(data)
        watch = read_watch_token(token)
        if watch.user_pk != self.hub.user_of(sid):
            raise TokenError("session_mismatch", "this watch token was issued to another user; reload the page")
        limit = conf.get("SERVERPUSH_MAX_SUBSCRIPTIONS")
        if len(self.by_sid.get(sid, ())) >= limit:
            raise TokenError("too_many_subscriptions", f"this page already watches {limit} things; SERVERPUSH_MAX_SUBSCRIPTIONS allows {limit}")
        if watch.shown is None:
            return watch, cursor, None
        return watch, cursor, set(watch.shown) | (verify_shown(watch.room, marks) if marks is not None else set())

    def _join(self, sid: str, watch: Watch, cursor: str | None, shown: set[str] | None) -> tuple[list[dict[str, Any]], str]:
        """What the page missed since ``cursor`` (sent in the ack), then the room.

        If the log cannot cover ``cursor``, the current state of what is watched
        instead (``resync: true``), when it can be known exactly.
        """
        events: list[dict[str, Any]] = []

        def join(head: str) -> None:
            self._add(sid, watch, shown)
            self.sio.enter_room(sid, watch.room)

        try:
            return events, catch_up(self.log, self.index.lock, cursor, lambda entries: events.extend(_replay(watch, entries, shown)), join)
        except Gap:
            with self.index.lock:
                head = self.log.head()
                healed = heal_events(watch, shown, head)
                if healed is None:
                    raise
                join(head)
            stats["watch_heals"] += 1
            return healed, head

    def heal_events(self, room: str, head: str) -> list[dict[str, Any]] | None:
        """The current state of what ``room`` watches (None if it cannot be known); call with the index lock held."""
        return heal_events(self.watches[room], self.shown.get(room), head)

    def on_unsubscribe(self, sid: str, data: Any = None) -> dict[str, Any]:
        if not self.hub.allow(sid):
            return _refusal("flood", "too many events; this connection is being closed")
        room = data.get("sub") if isinstance(data, dict) else None
        with self.index.lock:
            if room not in self.by_sid.get(sid, ()):
                return _refusal("bad_payload", f"unsubscribe with {{sub: <the sub of a subscribe ack>}}, got {data!r:.80}")
            self.sio.leave_room(sid, room)
            self.by_sid[sid].discard(room)
            self._leave(sid, room)
        return {"ok": True}

    def _add(self, sid: str, watch: Watch, shown: set[str] | None) -> None:
        room = watch.room
        if room not in self.watches:
            self.watches[room] = watch
            for key in self._keys(watch):
                self._index_of(key).add(room)
        if shown is not None:  # what this page shows counts for the room (a leave too many is harmless)
            self.shown.setdefault(room, set()).update(shown)
        self.members[room].add(sid)
        self.by_sid[sid].add(room)

    def _leave(self, sid: str, room: str) -> None:
        self.members[room].discard(sid)
        if self.members[room]:
            return
        del self.members[room]
        self.shown.pop(room, None)
        watch = self.watches.pop(room)
        for key in self._keys(watch):
            self._index_of(key).discard(room)

    def _keys(self, watch: Watch) -> list[Any]:
        if watch.pks is None:
            return [watch.label]
        return [(watch.label, pk) for pk in watch.pks]

    def _index_of(self, key: Any) -> set[str]:
        return self._by_pk[key] if isinstance(key, tuple) else self._scan[key]

    def remove(self, sid: str) -> None:
        """Forget a disconnected connection (call with the index lock held)."""
        for room in self.by_sid.pop(sid, ()):
            self._leave(sid, room)

    def route(self, entries: list[Entry]) -> None:
        """Send each change to the rooms watching it (call with the index lock held)."""
        for entry in entries:
            if entry.op not in CHANGE_OPS:
                continue
            query_cache: dict[str, bool] = {}
            rooms = self._scan.get(entry.model, set()) | self._by_pk.get((entry.model, str(entry.pk)), set())
            for room in rooms:
                watch = self.watches[room]
                shown = self.shown.get(room)
                try:
                    matched = watch.params.matches(entry, query_cache)
                    if matched:
                        self.sio.emit(protocol.WATCH, _payload(watch, entry, mark=shown is not None), to=room)
                    if shown is not None and follow(shown, entry, matched):
                        self.sio.emit(protocol.WATCH, _left(watch, entry), to=room)
                except Exception:
                    logger.exception("serverpush: could not send %s %s to the watchers of %s", entry.model, entry.pk, room)
                    stats["match_errors"] += 1


def _replay(watch: Watch, entries: list[Entry], shown: set[str] | None) -> list[dict[str, Any]]:
    """The latest change of each watched object among ``entries``, in log order.

    With ``shown`` (a filter's pks the page shows, updated here): an object of it
    that left the filter replays as having left. (One that came and went while the
    page was away may be reported leaving too: a delete of an object the page does
    not have, as for one created and deleted meanwhile.)
    """
    found = compact(read_back(entries), [watch], [shown] if shown is not None else None)
    return [_left(watch, entry, replay=True) if op == LEFT else {**_payload(watch, entry, replay=True, mark=shown is not None), "op": op} for _, entry, op in found]


def heal_events(watch: Watch, shown: set[str] | None, cursor: str) -> list[dict[str, Any]] | None:
    """Resync events for everything ``watch`` shows: the watched objects, or a filter's current members.

    ``shown`` (the pks a page shows under a filter) is brought up to date; those no
    longer in the filter are sent leaving. None when it cannot be known exactly: a
    watch of a whole model, or a filter whose shown objects are unknown or too many.
    """
    if watch.pks is not None:
        found = rows(watch.model, watch.pks)
        events = [_payload(watch, _present(found[pk])) if pk in found else _gone(watch, pk) for pk in watch.pks]
    elif shown is not None:
        members = list(watch.model._base_manager.using(database_for(watch.model)).filter(**watch.lookups)[: MAX_OBJECTS + 1])
        if len(members) > MAX_OBJECTS:
            return None
        now = {str(row.pk) for row in members}
        events = [_payload(watch, _present(row), mark=True) for row in members]
        events += [_left(watch, Entry(watch.label, _pk(watch, pk), "delete", {})) for pk in sorted(shown - now)]
        shown.clear()
        shown.update(now)
    else:
        return None
    return [{**event, "cursor": cursor, "resync": True} for event in events]


def _present(row: Any) -> Entry:
    entry = Entry.of(row, "update")
    entry.row = row
    return entry


def _gone(watch: Watch, pk: str) -> dict[str, Any]:
    pk = _pk(watch, pk)
    return {"sub": watch.room, "op": "delete", "model": watch.label, "pk": pk, "data": {"pk": pk}, "replay": False}


def _pk(watch: Watch, pk: str) -> Any:
    """A pk kept as text, as the model's pk field gives it (events carry ``5``, not ``"5"``)."""
    return watch.model._meta.pk.to_python(pk)


def _payload(watch: Watch, entry: Entry, replay: bool = False, mark: bool = False) -> dict[str, Any]:
    """A change for the watchers; ``mark``: a filter watch's object it shows, with its ``shown`` mark."""
    message = {"sub": watch.room, "op": entry.op, "model": entry.model, "pk": entry.pk, "data": watch.data(entry), "cursor": entry.position, "replay": replay}
    if mark and entry.op != "delete":
        message["shown"] = shown_mark(watch.room, entry.pk)
    return message


def _left(watch: Watch, entry: Entry, replay: bool = False) -> dict[str, Any]:
    """``entry`` took a shown object out of the watched filter: a delete, with the pk only."""
    return {"sub": watch.room, "op": "delete", "left": True, "model": entry.model, "pk": entry.pk, "data": {"pk": entry.pk}, "cursor": entry.position, "replay": replay}


def _parse(data: Any) -> tuple[Any, str | None, Any]:
    if not isinstance(data, dict):
        raise TokenError("bad_payload", "subscribe with {token: <a watch token>, cursor: <cursor or null>}")
    cursor = data.get("cursor")
    if cursor is not None and not isinstance(cursor, str):
        raise TokenError("bad_payload", f"cursor must be a string or null, got {type(cursor).__name__}")
    return data.get("token"), cursor or None, data.get("shown")


def _refusal(code: str, message: str) -> dict[str, Any]:
    return {"ok": False, "code": code, "message": message}
