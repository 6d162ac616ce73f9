"""Replay: what a reconnecting page missed, compacted to the latest state per object."""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest

from serverpush.entries import CHANGE_OPS, Entry
from serverpush.log.base import Log
from serverpush.problems import Problem
from serverpush.server.current import read_back
from serverpush.server.fanout import payload
from serverpush.server.messages import replay_payloads as direct_messages
from serverpush.specs import Spec

logger = logging.getLogger(__name__)


# The op compact() reports for an object that left a filter the page shows it under.
LEFT = "left"


def compact(entries: list[Entry], specs: list[Spec], shown: list[set[str] | None] | None = None) -> list[tuple[Spec, Entry, str]]:
    """The latest entry per (spec, object) that matches, in log order, with the op to report.

    An object created and then updated while the page was away replays as a
    ``create``, so the page adds it rather than looking for it. ``shown`` (one
    set per spec, or None) holds the pks a page shows under that spec's filter;
    they are kept current, and an object that left them reports :data:`LEFT`.
    """
    latest: dict[tuple[int, str, Any], tuple[int, Spec, Entry, str]] = {}
    for n, entry in enumerate(entries):
        if entry.op not in CHANGE_OPS:
            continue
        query_cache: dict[str, bool] = {}
        for i, spec in enumerate(specs):
            if spec.label != entry.model:
                continue
            key = (i, entry.model, str(entry.pk))
            matched = spec.params.matches(entry, query_cache)
            members = shown[i] if shown is not None else None
            if members is not None and follow(members, entry, matched):
                latest.pop(key, None)
                latest[key] = (n, spec, entry, LEFT)
            if not matched:
                continue
            previous = latest.pop(key, None)
            created = entry.op == "create" or (previous is not None and previous[3] == "create")
            latest[key] = (n, spec, entry, "create" if created and entry.op != "delete" else entry.op)
    return [item[1:] for item in sorted(latest.values(), key=lambda item: item[0])]


def follow(members: set[str], entry: Entry, matched: bool) -> bool:
    """Keep ``members`` (the pks a page shows under a filter) current; True if ``entry`` took one out."""
    pk = str(entry.pk)
    if matched:
        (members.discard if entry.op == "delete" else members.add)(pk)
        return False
    if pk in members:
        members.discard(pk)
        return True
    return False


def replay_payloads(entries: list[Entry], specs: list[Spec], request: HttpRequest, problems: list[Problem] | None = None) -> list[dict[str, Any]]:
    """Compacted changes, as the database holds them, and the page's direct messages, in log order.

    Serializers that fail are appended to ``problems``.
    """
    entries = read_back(entries)
    found = []
    for spec, entry, op in compact(entries, specs):
        message = payload(spec, request, entry, entry.instance(), replay=True, found=problems)
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
