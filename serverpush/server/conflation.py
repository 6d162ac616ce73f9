"""An audience that is behind gets the latest state of an object, not a backlog of stale ones.

Change entries are state-based (:mod:`serverpush.server.current` reads each row
back), so an update queued behind a later update or delete of the same object tells
the page nothing the later one does not. A group's queue of changes waiting for its
serializer drops such updates, so the serializer runs (and the room is sent to)
once per object and audience per batch, not once per change.

Creates and deletes are always delivered (a page may act on them), messages never
reach these queues, and the later entry keeps its place, so the order per object and
the order of cursors a page sees are unchanged.
"""
from __future__ import annotations

from collections import deque
from typing import Any

from serverpush.entries import Entry
from serverpush.stats import stats


def drop_superseded(pending: deque[tuple[int, Entry, Any]]) -> list[Entry]:
    """Remove from ``pending`` each update a later entry of the same object supersedes; return them."""
    later: set[tuple[str, str]] = set()
    kept: list[tuple[int, Entry, Any]] = []
    dropped: list[Entry] = []
    for item in reversed(pending):
        entry = item[1]
        key = (entry.model, str(entry.pk))
        if key in later and entry.op == "update":
            dropped.append(entry)
            continue
        later.add(key)
        kept.append(item)
    if dropped:
        pending.clear()
        pending.extend(reversed(kept))
        stats["conflated"] += len(dropped)
    return dropped
