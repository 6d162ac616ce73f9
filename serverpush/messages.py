"""Direct messages: ``notify_all(data)``, ``notify(data, users=[...])``, ``send(name, data, users)``.

A message is a log entry (op ``message``) like a model change, so it is published
on commit and a page that reconnects replays the messages it missed. The push
server routes it through rooms every live page joins: ``m:all`` (every page) and
``m:u:<pk>`` (every tab of one signed-in user). It reaches the browser as the
``serverpush`` event with ``op`` ``"message"``, fired as ``serverpush_<name>``.
"""
from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from typing import Any

from django.db import models

from serverpush import capture
from serverpush.encoding import dumps
from serverpush.entries import MESSAGE, Entry

DEFAULT_NAME = "message"
# A message is one notifier frame (1 MiB at most); keep well below so it never gets near.
MAX_DATA_BYTES = 256 * 1024


def send(name: str, data: Any, users: Iterable[Any] | None = None, *, using: str | None = None) -> None:
    """Fire ``serverpush_<name>`` with ``data`` on the pages of ``users`` (user objects or pks).

    ``users=None`` sends to every connected page. Sent when the current transaction
    commits (at once outside one). Raises ``TypeError`` here if ``data`` cannot be JSON.
    """
    entry = message_entry(name, data, users)
    if entry.fields["to"] == []:
        return
    capture.publish_on_commit(entry, using=using)


def notify_all(data: Any) -> None:
    """Send ``data`` to every connected page, as the browser event ``serverpush_message``."""
    send(DEFAULT_NAME, data)


def notify(target: Any, *, users: Iterable[Any] | None = None, recipients: Iterable[Any] | None = None, op: str | None = None, using: str | None = None) -> None:
    """A model change or a message, depending on ``target``.

    - a model instance, a queryset, or a list of model instances: publish their
      current state as a change (for writes that skip signals); ``op`` defaults to
      ``"update"``;
    - anything else: a message (``serverpush_message``) to ``users`` (``recipients``
      is djazator's name for it), or to every page if neither is given.
    """
    if users is not None and recipients is not None:
        raise TypeError("serverpush.notify(): pass users= or recipients= (the same thing), not both")
    users = users if users is not None else recipients
    if _is_change(target, users):
        if users is not None:
            raise TypeError(f"serverpush.notify({target!r:.60}, users=...): users= is for messages; a model change reaches every page that shows the object")
        capture.notify(target, op=op or "update", using=using)
        return
    if op is not None:
        raise TypeError(f"serverpush.notify({target!r:.60}, op={op!r}): op= is for model changes, and {type(target).__name__} is not a model instance or queryset")
    send(DEFAULT_NAME, target, users, using=using)


def _is_change(target: Any, users: Any) -> bool:
    if isinstance(target, (models.Model, models.QuerySet)):
        return True
    if users is not None:
        return False
    if isinstance(target, (list, tuple)):
        return all(isinstance(item, models.Model) for item in target)  # [] : nothing changed
    return isinstance(target, Iterable) and not isinstance(target, (str, bytes, dict))


def message_entry(name: str, data: Any, users: Iterable[Any] | None) -> Entry:
    """The log entry of a message; validates everything the caller passed."""
    if not isinstance(name, str) or not name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"message name {name!r} must be a word like 'message' (letters, digits, _ or -): the browser event is serverpush_<name>")
    encoded = dumps(data)
    if len(encoded) > MAX_DATA_BYTES:
        raise ValueError(f"message {name!r} is {len(encoded)} bytes of JSON, over {MAX_DATA_BYTES}: send an id and let the page fetch the rest")
    return Entry(model="", pk=None, op=MESSAGE, fields={"name": name, "data": json.loads(encoded), "to": _recipients(users)})


def _recipients(users: Iterable[Any] | None) -> list[str] | None:
    if users is None:
        return None
    if isinstance(users, (models.Model, str, bytes)) or not isinstance(users, Iterable):
        raise TypeError(f"users={users!r:.60} must be a list of users or user pks, e.g. users=[request.user]")
    return sorted({_user_pk(user) for user in users})


def _user_pk(user: Any) -> str:
    if isinstance(user, models.Model):
        if user.pk is None:
            raise TypeError(f"user {user!r} is not saved; a message can only go to saved users")
        return str(user.pk)
    if isinstance(user, (int, str, uuid.UUID)):
        return str(user)
    raise TypeError(f"users= holds {user!r:.60} (a {type(user).__name__}); pass user objects or their pks")
