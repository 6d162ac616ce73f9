"""The log entry: one committed change, as it travels from Django to the push server.

An entry is plain JSON: ``{"model", "pk", "op", "fields", "ts"}`` where ``fields``
is a snapshot of the object's concrete fields as the transaction wrote them, and
``ts`` the time its transaction committed. The push server treats a change as
"this object changed" and sends the row as the database holds it then
(:mod:`serverpush.server.current`); the snapshot matches and serializes a delete.
``"tab"`` is added when a page's own request made the change (:mod:`serverpush.tabs`).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from serverpush import conf
from serverpush.tabs import current_tab

CHANGE_OPS = ("create", "update", "delete")
# ``message``: a direct message (serverpush.messages), model "" and fields {name, data, to}.
MESSAGE = "message"
# ``revoke``: a session or user lost access (serverpush.revocation); never sent to pages.
REVOKE = "revoke"
OPS = (*CHANGE_OPS, MESSAGE, REVOKE)
_JSON_NATIVE = (str, int, float, bool, type(None), dict, list)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def clock_skew_ms() -> int:
    """How far the clocks of Django hosts and push servers may disagree (``SERVERPUSH_CLOCK_SKEW``).

    Time-derived cursors replay from this much earlier: a duplicate is harmless, a miss is not.
    """
    return int(conf.get("SERVERPUSH_CLOCK_SKEW") * 1000)


@dataclass
class Entry:
    model: str
    pk: Any
    op: str
    fields: dict[str, Any]
    ts: int = field(default_factory=lambda: now_ms())
    position: str | None = None
    tab: str | None = None  # the id of the tab whose request made the change, if it said
    # In the push server: the change as the database held it when it was read back
    # (serverpush.server.current), and the row it was read from.
    current: Entry | None = field(default=None, repr=False, compare=False)
    row: models.Model | None = field(default=None, repr=False, compare=False)

    @classmethod
    def of(cls, obj: models.Model, op: str) -> Entry:
        """Snapshot ``obj`` as a change of kind ``op``, made by the current request's tab."""
        return cls(model=obj._meta.label_lower, pk=_json_value(obj._meta.pk, obj), op=op, fields=snapshot(obj), tab=current_tab())

    def instance(self) -> models.Model:
        """The object: the row it was read from, or rebuilt from the snapshot."""
        if self.row is not None:
            return self.row
        return rebuild(apps.get_model(self.model), self.pk, self.fields)

    def to_json(self) -> dict[str, Any]:
        data = {"model": self.model, "pk": self.pk, "op": self.op, "fields": self.fields, "ts": self.ts}
        if self.tab is not None:
            data["tab"] = self.tab
        return data


def snapshot(obj: models.Model) -> dict[str, Any]:
    """The object's concrete fields as JSON-ready values, keyed by attribute name.

    Fields named in ``SERVERPUSH_PRIVATE_FIELDS`` (the password hash, by default)
    never enter the log.
    """
    private = private_fields()
    label = obj._meta.label_lower
    return {f.attname: _json_value(f, obj) for f in obj._meta.concrete_fields if not f.primary_key and f"{label}.{f.name}" not in private}


@conf.derived
def private_fields() -> frozenset[str]:
    configured = conf.get("SERVERPUSH_PRIVATE_FIELDS")
    if configured is None:
        return frozenset({f"{settings.AUTH_USER_MODEL.lower()}.password"})
    return frozenset(path.lower() for path in configured)


def rebuild(model: type[models.Model], pk: Any, fields: dict[str, Any]) -> models.Model:
    values = [
        f.to_python(pk) if f.primary_key else f.to_python(fields[f.attname]) if f.attname in fields else f.get_default()
        for f in model._meta.concrete_fields
    ]
    obj = model(*values)  # positional: the fast path of Model.__init__, as from_db uses
    obj._state.adding = False
    obj._state.db = "default"
    return obj


def _json_value(f: models.Field, obj: models.Model) -> Any:
    value = f.value_from_object(obj)
    if isinstance(value, _JSON_NATIVE):
        return value
    return f.value_to_string(obj)


def encode(entries: list[Entry]) -> bytes:
    return json.dumps([e.to_json() for e in entries], cls=DjangoJSONEncoder, separators=(",", ":")).encode()


def decode(payload: bytes | str) -> list[Entry]:
    """Parse a batch of entries, raising ``ValueError`` with the reason if it is malformed."""
    items = json.loads(payload)
    if not isinstance(items, list):
        raise ValueError(f"expected a JSON list of entries, got {type(items).__name__}")
    return [_entry(item) for item in items]


def _entry(item: Any) -> Entry:
    if not isinstance(item, dict):
        raise ValueError(f"expected an entry object, got {item!r:.80}")
    try:
        entry = Entry(model=item["model"], pk=item["pk"], op=item["op"], fields=item["fields"], ts=item["ts"], tab=item.get("tab"))
    except (KeyError, TypeError) as exc:
        raise ValueError(f"entry {item!r:.80} lacks key {exc}") from None
    if entry.op not in OPS or not isinstance(entry.fields, dict) or not isinstance(entry.model, str) or not isinstance(entry.tab, (str, type(None))):
        raise ValueError(f"malformed entry {item!r:.80}")
    return entry
