"""The push server sends rows as the database holds them, not the snapshots in the log.

Two transactions that change one row commit in one order, but their entries may
reach the log in the other (each is published after its own commit). A page that
applied snapshots in log order would end on the older value. So the push server
treats a change entry as "this object changed" and reads the committed row back
before anyone sees it: one query per model per batch of entries, shared by every
page and audience. A row that no longer exists is a delete (its entry's snapshot
still matches and serializes it); an entry is read back once and the result kept
(``entry.current``) for the replays that meet it later.

Why that is enough: an entry is appended after its commit, and read back after it
was appended, so the read sees every commit whose entry is at or before it in the
log. A commit the read missed has its entry later in the log, and is sent later.
The reads go to ``SERVERPUSH_DATABASE`` (by default the database Django's routers
write the model to): a replica that lags behind breaks that reasoning.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from django.apps import apps
from django.db import DatabaseError, models, router

from serverpush import conf
from serverpush.entries import CHANGE_OPS, Entry, snapshot
from serverpush.stats import stats

logger = logging.getLogger(__name__)


def read_back(entries: Iterable[Entry]) -> list[Entry]:
    """The current state of each entry (itself, for messages and revocations), in order.

    Change entries not read back yet are, in one query per model.
    """
    entries = list(entries)
    todo: dict[str, list[Entry]] = defaultdict(list)
    for entry in entries:
        if entry.op in CHANGE_OPS and entry.current is None:
            todo[entry.model].append(entry)
    for label, changes in todo.items():
        _read(label, changes)
    return [entry.current or entry for entry in entries]


def _read(label: str, changes: list[Entry]) -> None:
    try:
        found = rows(apps.get_model(label), {e.pk for e in changes})
    except (LookupError, DatabaseError, ValueError, TypeError) as exc:
        # The snapshot is the best there is; it is right unless a concurrent commit overtook it.
        logger.error("serverpush: could not read back %d %s row(s) (%s); sending them as logged", len(changes), label, exc)
        stats["readback_errors"] += 1
        for entry in changes:
            entry.current = entry
        return
    stats["readback_queries"] += 1
    for entry in changes:
        entry.current = _current(entry, found.get(str(entry.pk)))


def _current(entry: Entry, row: models.Model | None) -> Entry:
    if row is None:  # gone: a delete, matched and serialized from the snapshot it had
        return Entry(entry.model, entry.pk, "delete", entry.fields, entry.ts, entry.position, tab=entry.tab)
    op = "update" if entry.op == "delete" else entry.op  # deleted, then made again under the same pk
    return Entry(entry.model, entry.pk, op, snapshot(row), entry.ts, entry.position, tab=entry.tab, row=row)


def rows(model: type[models.Model], pks: Iterable[Any]) -> dict[str, models.Model]:
    """The committed rows of ``pks`` that exist, by ``str(pk)``, in one query."""
    return {str(row.pk): row for row in model._base_manager.using(database_for(model)).filter(pk__in=list(pks))}


def database_for(model: type[models.Model]) -> str:
    """Where rows are read back: ``SERVERPUSH_DATABASE``, or where the routers write ``model``."""
    return conf.get("SERVERPUSH_DATABASE") or router.db_for_write(model)
