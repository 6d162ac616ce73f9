"""Route each entry to the pages that show it, serializing once per audience.

Connections whose specs are the same and whose audience (the parts of the request
the serializer may depend on, as ``vary`` says) is the same share a :class:`Group`
and a Socket.IO room: an entry that matches the group is serialized once, with the
group's request, and emitted to the room.
"""
from __future__ import annotations

import copy
import hashlib
import logging
import threading
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import close_old_connections, models
from django.http import HttpRequest
from django.utils import translation

from serverpush import problems
from serverpush.entries import CHANGE_OPS, MESSAGE, Entry
from serverpush.problems import Problem
from serverpush.server import messages
from serverpush.server.conflation import drop_superseded
from serverpush.specs import Spec
from serverpush.stats import stats
from serverpush.tokens import user_key

logger = logging.getLogger(__name__)

RECENT = 50  # routed entries kept for the inspector


@dataclass(eq=False)
class Group:
    """Pages sharing a spec and an audience: one serialization per change, one room.

    ``pending`` holds ``(number, entry, obj)`` in log order for the workers
    (``arrived``: some came since superseded updates were last dropped);
    ``fresh`` maps a member to the last number its replay or heal already covered.
    """

    spec: Spec
    request: HttpRequest
    room: str
    members: set[str] = field(default_factory=set)
    pending: deque[tuple[int, Entry, models.Model]] = field(default_factory=deque)
    enqueued: int = 0
    arrived: bool = False
    scheduled: bool = False
    fresh: dict[str, int] = field(default_factory=dict)


def audience(spec: Spec, request: HttpRequest) -> tuple[Any, ...]:
    return (
        user_key(request) if "user" in spec.vary else None,
        request.LANGUAGE_CODE if "language" in spec.vary else None,
    )


def room_of(spec: Spec, request: HttpRequest) -> str:
    key = f"{spec.key}|{audience(spec, request)!r}"
    return "g:" + hashlib.blake2b(key.encode(), digest_size=12).hexdigest()


def payload(spec: Spec, request: HttpRequest, entry: Entry, obj: models.Model, replay: bool = False, found: list[Problem] | None = None) -> dict[str, Any] | None:
    """The ``serverpush`` event for ``entry`` under ``spec``, or None if its serializer failed.

    A failing serializer is logged with the spec and user, appended to ``found``,
    and hurts only this audience. A delete still goes out (with ``data`` null) so
    the page can drop the object.
    """
    try:
        with translation.override(request.LANGUAGE_CODE):
            data = spec.serializer(as_of(request, obj), obj, spec.data)
    except Exception as exc:
        user = getattr(request, "user", None)
        logger.exception("serverpush: serializer of %s failed on %s %s for user %s", spec.source, entry.model, entry.pk, user)
        problem = problems.record(problems.SERIALIZER, spec.view, spec.name, f"the serializer failed on {entry.model} {entry.pk}: {problems.summary(exc)}", user)
        if found is not None:
            found.append(problem)
        if entry.op != "delete":
            return None
        data = None
    stats["serializations"] += 1
    message = {"name": spec.name, "op": entry.op, "model": entry.model, "pk": entry.pk, "data": data, "id": entry.position, "cursor": entry.position, "replay": replay}
    if entry.tab is not None:
        message["tab"] = entry.tab  # so the tab that made the change does not refresh for it again
    return message



def as_of(request: HttpRequest, obj: models.Model) -> HttpRequest:
    """``request``, with ``request.user`` replaced by ``obj`` if ``obj`` is that user, changed.

    The page's request was rebuilt when it connected; a serializer that writes
    ``request.user.username`` must see the name the change just committed.
    """
    user = getattr(request, "user", None)
    if user is None or type(obj) is not type(user) or obj.pk != user.pk:
        return request
    fresh = copy.copy(request)
    fresh.user = obj
    return fresh


class Index:
    """Groups by model, with equality params indexed so an entry only meets its candidates."""

    def __init__(self) -> None:
        self.groups: dict[str, Group] = {}
        self.sids: dict[str, list[str]] = {}
        self._scan: dict[str, set[str]] = defaultdict(set)
        self._by_value: dict[str, dict[str, tuple[models.Field, defaultdict[Any, set[str]]]]] = defaultdict(dict)
        self.lock = threading.RLock()
        # Delivered entries some group has not emitted yet, in log order, with how many
        # groups still owe them; see safe_cursor().
        self.inflight: deque[Entry] = deque()
        self.owed: dict[int, int] = {}
        self.last: str | None = None
        self.previous: Callable[[str], str] = lambda position: position
        # The latest entries and how they were routed, for the inspector.
        self.recent: deque[dict[str, Any]] = deque(maxlen=RECENT)

    def add(self, sid: str, specs: Iterable[Spec], request: HttpRequest) -> list[str]:
        """Put ``sid`` in the group of each spec; return the rooms it must join."""
        rooms = []
        for spec in specs:
            room = room_of(spec, request)
            group = self.groups.get(room)
            if group is None:
                group = self.groups[room] = Group(spec, request, room)
                self._index(spec, room)
            group.members.add(sid)
            # What is queued or being serialized was covered by this page's replay (or heal).
            group.fresh[sid] = group.enqueued
            rooms.append(room)
        self.sids[sid] = rooms
        return rooms

    def supersede(self, group: Group) -> None:
        """A heal just sent ``group``'s members the current state: what it has queued is stale, drop it."""
        for _, entry, _ in group.pending:
            self.emitted(entry)
        group.pending.clear()
        group.fresh = dict.fromkeys(group.members, group.enqueued)

    def remove(self, sid: str) -> None:
        for room in self.sids.pop(sid, ()):
            group = self.groups.get(room)
            if group is None:
                continue
            group.members.discard(sid)
            group.fresh.pop(sid, None)
            if not group.members:
                del self.groups[room]
                self._unindex(group.spec, room)

    def _index(self, spec: Spec, room: str) -> None:
        key = spec.params.index_key()
        if key is None:
            self._scan[spec.label].add(room)
            return
        f, value = key
        _, rooms = self._by_value[spec.label].setdefault(f.attname, (f, defaultdict(set)))
        rooms[value].add(room)

    def _unindex(self, spec: Spec, room: str) -> None:
        key = spec.params.index_key()
        if key is None:
            self._scan[spec.label].discard(room)
            return
        f, value = key
        rooms = self._by_value[spec.label][f.attname][1]
        rooms[value].discard(room)
        if not rooms[value]:
            del rooms[value]

    def candidates(self, entry: Entry) -> set[str]:
        found = set(self._scan.get(entry.model, ()))
        for attname, (f, rooms) in self._by_value.get(entry.model, {}).items():
            raw = entry.pk if f.primary_key else entry.fields.get(attname)
            try:
                value = f.to_python(raw)
            except Exception:
                continue
            found |= rooms.get(value, set())
        return found

    def route(self, entries: list[Entry], emit: Any, schedule: Callable[[Group], None]) -> None:
        """Queue each entry on every group it matches; ``schedule`` hands a group to the workers.

        Messages carry no serializer: they go to ``emit(room, payload)`` at once.
        """
        for entry in entries:
            self.last = entry.position
            if entry.op == MESSAGE:
                messages.route(entry, emit, self.safe_cursor())
            if entry.op not in CHANGE_OPS:
                continue
            owed = pages = 0
            stats["entries"] += 1
            query_cache: dict[str, bool] = {}
            obj: models.Model | None = None
            for room in self.candidates(entry):
                group = self.groups[room]
                try:
                    if not group.spec.params.matches(entry, query_cache):
                        continue
                    obj = obj or entry.instance()
                except Exception:
                    logger.exception("serverpush: could not match %s %s against %s", entry.model, entry.pk, group.spec.source)
                    stats["match_errors"] += 1
                    close_old_connections()
                    continue
                group.enqueued += 1
                group.pending.append((group.enqueued, entry, obj))
                group.arrived = True
                owed += 1
                pages += len(group.members)
                if not group.scheduled:
                    group.scheduled = True
                    schedule(group)
            self.recent.append({"position": entry.position, "model": entry.model, "pk": entry.pk, "op": entry.op, "committed_ms": entry.ts, "audiences": owed, "pages": pages})
            if owed:
                self.owed[id(entry)] = owed
                self.inflight.append(entry)

    def next_pending(self, group: Group) -> tuple[int, Entry, models.Model]:
        """Take ``group``'s oldest queued change, once updates that later ones supersede are dropped."""
        if group.arrived and len(group.pending) > 1:
            for entry in drop_superseded(group.pending):
                self.emitted(entry)
        group.arrived = False
        return group.pending.popleft()

    def emitted(self, entry: Entry) -> None:
        """One group has emitted (or dropped) ``entry``."""
        self.owed[id(entry)] -= 1
        while self.inflight and not self.owed[id(self.inflight[0])]:
            del self.owed[id(self.inflight.popleft())]

    def safe_cursor(self) -> str | None:
        """Where a page may resume without missing anything this node still owes anyone.

        Groups emit at their own pace, so pages see entries out of log order; a page
        that resumed from the newest entry it saw could skip one still queued. The
        cursor sent with each live event is therefore just before the oldest entry
        still owed (a resume may repeat some entries, never skip one).
        """
        return self.previous(self.inflight[0].position) if self.inflight else self.last
