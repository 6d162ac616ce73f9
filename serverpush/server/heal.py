"""Heal instead of reload: send a page the current state of what it shows.

When the log cannot cover what a page may have missed (it was trimmed, restarted,
or lost entries), replaying is impossible. A page whose every subscription names
its objects exactly is healed in place: the push server reads those rows and sends
their current state (``resync: true``; a row that is gone is a delete), then
``serverpush_resynced``. The page stays live. Exact means:

- a spec whose ``params`` pin its objects by pk (``{'pk': 1}``, ``{'pk__in': [...]}``);
- a watched object or list of objects, or a watched filter whose shown objects are
  known (those that left it are sent leaving).

Any other page (a spec that filters on other fields, a watch of a whole model)
cannot know which objects it lacks or holds too many of: it is told to reload,
after a random delay of up to ``SERVERPUSH_RESYNC_JITTER`` seconds, so that a
restart does not reload every page in the same second.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from django.db.models import Model
from django.http import HttpRequest

from serverpush import conf, protocol
from serverpush.entries import Entry
from serverpush.log import Gap, Log
from serverpush.server.current import rows
from serverpush.server.fanout import Group, Index, payload
from serverpush.server.watchers import Watchers
from serverpush.specs import Spec
from serverpush.stats import stats

logger = logging.getLogger(__name__)


def spec_events(spec: Spec, request: HttpRequest, cursor: str, found: dict[str, Model] | None = None) -> list[dict[str, Any]]:
    """The current state of the objects a healable ``spec`` shows, as resync events.

    ``found``: rows already read (by ``str(pk)``) that include every pk the spec pins.
    """
    if found is None:
        found = rows(spec.model, spec.params.pinned())
        stats["heal_queries"] += 1
    events = []
    for pk in spec.params.pinned():
        row = found.get(str(pk))
        if row is None:
            events.append({"name": spec.name, "op": "delete", "model": spec.label, "pk": pk, "data": None})
            continue
        entry = Entry.of(row, "update")
        entry.row = row
        if not spec.params.matches(entry, {}):
            continue  # it exists but the page does not show it: as live, nothing is sent
        message = payload(spec, request, entry, row)
        if message is not None:
            events.append(message)
    return [{**event, "id": None, "cursor": cursor, "replay": False, "resync": True} for event in events]


class Healer:
    """Heals the pages of one push server, or tells them to reload when it cannot."""

    def __init__(self, sio: Any, log: Log, index: Index, watchers: Watchers, drop: Callable[[str], None]) -> None:
        self.sio = sio
        self.log = log
        self.index = index
        self.watchers = watchers
        self.drop = drop  # stops sending to a page that is to reload
        # The resync events of each group for one log head: pages healing together
        # (a reconnect storm after a restart) share one read and one serialization.
        # Sound while the head stays put: any change committed after the read has
        # its entry after that head, and is delivered live.
        self._cache: tuple[str | None, dict[str, list[dict[str, Any]]]] = (None, {})

    def can_heal(self, specs: list[Spec]) -> bool:
        return all(spec.params.pinned() is not None for spec in specs)

    def heal_all(self, gap: Gap) -> None:
        """Every live page may have missed entries: heal those that can be, reload the rest.

        Call with the index lock held: delivery waits, so nothing overtakes the heal.
        """
        index, watchers = self.index, self.watchers
        head = self.log.head()
        found = self._current_rows(index.groups.values())
        groups = {room: self._group_events(group, head, found.get(group.spec.model)) for room, group in index.groups.items()}
        watches = {room: watchers.heal_events(room, head) for room in list(watchers.watches)}
        reloading = [sid for sid, rooms in index.sids.items() if any(groups[r] is None for r in rooms) or any(watches[r] is None for r in watchers.by_sid.get(sid, ()))]
        for sid in reloading:
            self.drop(sid)
            self.reload(sid, gap)
        sent = dict.fromkeys(index.sids, 0)
        for room, group in index.groups.items():
            index.supersede(group)
            self._send(protocol.UPDATE, groups[room], room, group.members, sent)
        for room, members in watchers.members.items():
            self._send(protocol.WATCH, watches[room], room, members, sent)
        for sid, count in sent.items():
            self.resynced(sid, gap, head, count)
        logger.warning("serverpush: %s; healed %d page(s), told %d to reload", gap.message, len(sent), len(reloading))

    def _send(self, event: str, events: list[dict[str, Any]], room: str, members: set[str], sent: dict[str, int]) -> None:
        for message in events:
            self.sio.emit(event, message, to=room)
        for sid in members:
            sent[sid] = sent.get(sid, 0) + len(events)

    def heal_joining(self, sid: str, gap: Gap, head: str) -> bool:
        """A page that connected with a cursor the log cannot cover, joined at ``head``: send it the current state.

        False if it cannot be healed (it is then to reload). Call with the index lock held.
        """
        index = self.index
        groups = [self._group_events(index.groups[room], head) for room in index.sids.get(sid, ())]
        if any(events is None for events in groups):
            return False
        count = 0
        for events in groups:
            for message in events:
                self.sio.emit(protocol.UPDATE, message, to=sid)
            count += len(events)
        self.resynced(sid, gap, head, count)
        return True

    def _current_rows(self, groups: Iterable[Group]) -> dict[type[Model], dict[str, Model]]:
        """The rows that healable groups pin, in one query per model: a heal of every page costs a few queries, not one per group."""
        wanted: defaultdict[type[Model], set[Any]] = defaultdict(set)
        for group in groups:
            pinned = group.spec.params.pinned()
            if pinned is not None:
                wanted[group.spec.model].update(pinned)
        found = {}
        for model, pks in wanted.items():
            try:
                found[model] = rows(model, pks)
                stats["heal_queries"] += 1
            except Exception:  # each group then reads its own rows, and reloads if that fails too
                logger.exception("serverpush: could not read the current %s rows to heal pages", model._meta.label)
                stats["heal_errors"] += 1
        return found

    def _group_events(self, group: Group, head: str, found: dict[str, Model] | None = None) -> list[dict[str, Any]] | None:
        """The group's resync events at ``head``, or None if its spec cannot be healed."""
        if group.spec.params.pinned() is None:
            return None
        cached_head, by_room = self._cache
        if cached_head != head:
            by_room = {}
            self._cache = (head, by_room)
        if group.room not in by_room:
            try:
                by_room[group.room] = spec_events(group.spec, group.request, head, found)
            except Exception:
                logger.exception("serverpush: could not read the current state of %s to heal its pages; they reload", group.spec.source)
                stats["heal_errors"] += 1
                by_room[group.room] = None
        return by_room[group.room]

    def resynced(self, sid: str, gap: Gap, cursor: str, count: int) -> None:
        stats["healed"] += 1
        stats["heal_events"] += count
        self.sio.emit(protocol.RESYNCED, {"code": gap.code, "cursor": cursor, "healed": count}, to=sid)

    def reload(self, sid: str, gap: Gap) -> None:
        """``serverpush_refresh``: the page reloads within the jitter window."""
        stats["refreshes"] += 1
        stats[f"refreshes.{gap.code}"] += 1
        jitter_ms = int(conf.get("SERVERPUSH_RESYNC_JITTER") * 1000)
        self.sio.emit(protocol.REFRESH, {"code": gap.code, "message": gap.message, "jitter_ms": jitter_ms}, to=sid)
