"""A spec's ``params``: ORM lookups a changed object must satisfy.

Lookups on the model's own concrete fields are decided from the entry's snapshot,
without a query. Anything else (lookups across relations, custom lookups) is
decided by one ``exists()`` query per entry, shared by every page with the same
params.
"""
from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from django.core.exceptions import FieldDoesNotExist, FieldError
from django.db import models

from serverpush.entries import Entry

_STRING_OPS: dict[str, Callable[[str, str], bool]] = {
    "contains": operator.contains,
    "startswith": str.startswith,
    "endswith": str.endswith,
}
_COMPARE_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "exact": operator.eq,
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}

_SNAPSHOT_LOOKUPS = {*_COMPARE_OPS, "in", "iexact", "isnull", *_STRING_OPS, *("i" + op for op in _STRING_OPS)}


class Lookup:
    """One ``field__lookup=value`` that can be checked against a snapshot."""

    def __init__(self, field: models.Field, lookup: str, value: Any) -> None:
        self.field = field
        self.lookup = lookup
        self.value = value

    def matches(self, pk: Any, fields: dict[str, Any]) -> bool:
        raw = pk if self.field.primary_key else fields.get(self.field.attname)
        actual = None if raw is None else self.field.to_python(raw)
        if self.lookup == "isnull":
            return (actual is None) == bool(self.value)
        if actual is None:
            return False
        if self.lookup == "in":
            return actual in self.value
        if self.lookup == "iexact":
            return str(actual).casefold() == str(self.value).casefold()
        name = self.lookup.removeprefix("i")
        if name in _STRING_OPS:
            if self.lookup.startswith("i"):
                return _STRING_OPS[name](str(actual).casefold(), str(self.value).casefold())
            return _STRING_OPS[name](str(actual), str(self.value))
        try:
            return _COMPARE_OPS[self.lookup](actual, self.value)
        except TypeError:
            return False


class Params:
    def __init__(self, model: type[models.Model], lookups: dict[str, Any]) -> None:
        """Raise ``ValueError`` naming the lookup if ``lookups`` is not valid for ``model``."""
        self.model = model
        self.lookups = {key: _plain(value) for key, value in lookups.items()}
        try:
            model._default_manager.filter(**self.lookups).query  # noqa: B018 - builds, does not run
        except (FieldError, ValueError, TypeError) as exc:
            raise ValueError(str(exc)) from None
        self.key = repr(sorted(self.lookups.items(), key=lambda kv: kv[0]))
        parsed = [_snapshot_lookup(model, key, value) for key, value in self.lookups.items()]
        self.snapshot_only = all(parsed)
        self.checks = [p for p in parsed if p]

    def index_key(self) -> tuple[models.Field, Any] | None:
        """A ``(field, value)`` equality the index can look entries up by."""
        for check in self.checks:
            if check.lookup == "exact" and check.value is not None:
                return check.field, check.value
        return None

    def pinned(self) -> tuple[Any, ...] | None:
        """The pks these params pin the objects to (``pk=``, ``pk__in=``), or None if they do not.

        A page whose params pin its objects can be healed exactly: the push server
        reads those rows and sends their current state.
        """
        for check in self.checks:
            if check.field.primary_key and check.value is not None and check.lookup in ("exact", "in"):
                return check.value if check.lookup == "in" else (check.value,)
        return None

    def matches(self, entry: Entry, query_cache: dict[str, bool]) -> bool:
        if not all(check.matches(entry.pk, entry.fields) for check in self.checks):
            return False
        if self.snapshot_only:
            return True
        if entry.op == "delete":
            return True  # the row is gone; deliver rather than risk a miss
        if self.key not in query_cache:
            query_cache[self.key] = self.model._default_manager.filter(pk=entry.pk, **self.lookups).exists()
        return query_cache[self.key]


def _plain(value: Any) -> Any:
    if isinstance(value, models.Model):
        return value.pk
    if isinstance(value, (list, tuple, set, frozenset, models.QuerySet)):
        return tuple(_plain(v) for v in value)
    return value


def _snapshot_lookup(model: type[models.Model], key: str, value: Any) -> Lookup | None:
    name, _, lookup = key.partition("__")
    lookup = lookup or "exact"
    if lookup not in _SNAPSHOT_LOOKUPS:
        return None
    try:
        field = model._meta.pk if name == "pk" else model._meta.get_field(name)
    except FieldDoesNotExist:
        return None
    if not getattr(field, "concrete", False) or field.many_to_many:
        return None
    try:
        converted = _convert(field, lookup, value)
    except Exception:
        return None  # leave odd values to the database
    return Lookup(field, lookup, converted)


def _convert(field: models.Field, lookup: str, value: Any) -> Any:
    if lookup == "isnull":
        return value
    if lookup == "in":
        return tuple(field.to_python(v) for v in value)
    return field.to_python(value)
