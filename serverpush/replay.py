"""Replay: what a reconnecting page missed, compacted to the latest state per object."""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest

from serverpush.entries import CHANGE_OPS, Entry
from serverpush.fanout import payload
from serverpush.log.base import Log
from serverpush.messages import replay_payloads as direct_messages
from serverpush.specs import Spec

logger = logging.getLogger(__name__)


def compact(entries: list[Entry], specs: list[Spec]) -> list[tuple[Spec, Entry, str]]:
    """The latest entry per (spec, object) that matches, in log order, with the op to report.

    An object created and then updated while the page was away replays as a
    ``create``, so the page adds it rather than looking for it.
    """
    latest: dict[tuple[int, str, Any], tuple[int, Spec, Entry, str]] = {}
    for n, entry in enumerate(entries):
        if entry.op not in CHANGE_OPS:
            continue
        query_cache: dict[str, bool] = {}
        for i, spec in enumerate(specs):
            if spec.label != entry.model or not spec.params.matches(entry, query_cache):
                continue
            key = (i, entry.model, str(entry.pk))
            previous = latest.pop(key, None)
            created = entry.op == "create" or (previous is not None and previous[3] == "create")
            latest[key] = (n, spec, entry, "create" if created and entry.op != "delete" else entry.op)
    return [item[1:] for item in sorted(latest.values(), key=lambda item: item[0])]


def replay_payloads(entries: list[Entry], specs: list[Spec], request: HttpRequest) -> list[dict[str, Any]]:
    """Compacted changes and the page's direct messages, in log order."""
    found = []
    for spec, entry, op in compact(entries, specs):
        message = payload(spec, request, entry, entry.instance(), replay=True)
        if message is not None:
            message["op"] = op
            found.append((entry, message))
    found += direct_messages(entries, request)
    order = {id(entry): n for n, entry in enumerate(entries)}
    return [message for entry, message in sorted(found, key=lambda item: order[id(item[0])])]


def catch_up(log: Log, lock: Any, cursor: str | None, replay: Callable[[list[Entry]], Any], join: Callable[[str], Any]) -> str:
    """Replay what came after ``cursor``, then ``join(head)`` live delivery, with no gap between.

    The bulk of the replay runs unlocked; a last read of what arrived meanwhile,
    its replay and the join run under ``lock``, which delivery of new entries also
    holds. Returns the head the page is now current to; raises ``Gap`` or
    ``BadCursor`` from the log.
    """
    if cursor is not None:
        entries = log.read_after(cursor)
        replay(entries)
        cursor = entries[-1].position if entries else cursor
    with lock:
        if cursor is not None:
            replay(log.read_after(cursor))
        head = log.head()
        join(head)
    return head
