"""The push server's side of direct messages: the rooms they go to, and their events.

Every live page joins ``m:all``; a signed-in one also ``m:u:<pk>``, shared by
every tab of that user. A message entry names who it is for
(:func:`serverpush.messages.send`); it goes to those rooms as a ``serverpush``
event with ``op`` ``"message"``.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest

from serverpush.entries import MESSAGE, Entry
from serverpush.stats import stats
from serverpush.tokens import user_key

logger = logging.getLogger(__name__)

BROADCAST_ROOM = "m:all"


def user_room(pk: Any) -> str:
    return f"m:u:{pk}"


def rooms_for(request: HttpRequest) -> list[str]:
    """The message rooms of a page: every page gets broadcasts, a signed-in one its user's messages."""
    user = user_key(request)
    return [BROADCAST_ROOM] if user is None else [BROADCAST_ROOM, user_room(user)]


def is_message(entry: Entry) -> bool:
    return entry.op == MESSAGE


def rooms_of(entry: Entry) -> list[str]:
    """Where ``entry`` goes; raises ``ValueError`` if it is not a well-formed message."""
    name, to = entry.fields.get("name"), entry.fields.get("to")
    if not isinstance(name, str) or not (to is None or (isinstance(to, list) and all(isinstance(pk, str) for pk in to))):
        raise ValueError(f"malformed message entry {entry.fields!r:.80}")
    return [BROADCAST_ROOM] if to is None else [user_room(pk) for pk in to]


def payload(entry: Entry, replay: bool = False) -> dict[str, Any]:
    return {"name": entry.fields["name"], "op": MESSAGE, "model": None, "pk": None, "data": entry.fields.get("data"), "id": entry.position, "cursor": entry.position, "replay": replay}


def route(entry: Entry, emit: Callable[[str, dict[str, Any]], None], cursor: str | None = None) -> None:
    """Hand the message to ``emit(room, payload)`` once per room it goes to.

    ``cursor`` is where a page may resume (see ``Index.safe_cursor``).
    """
    try:
        rooms = rooms_of(entry)
    except ValueError as exc:
        logger.warning("serverpush: dropped a message: %s", exc)
        return
    stats["messages"] += 1
    message = payload(entry)
    if cursor is not None:
        message["cursor"] = cursor
    for room in rooms:
        emit(room, message)


def replay_payloads(entries: list[Entry], request: HttpRequest) -> list[tuple[Entry, dict[str, Any]]]:
    """The messages among ``entries`` that the page of ``request`` receives, in log order."""
    mine = set(rooms_for(request))
    found = []
    for entry in entries:
        if not is_message(entry):
            continue
        try:
            if mine.intersection(rooms_of(entry)):
                found.append((entry, payload(entry, replay=True)))
        except ValueError:
            continue
    return found
