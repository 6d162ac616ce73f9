"""Watching objects from the page (django-pushy's ``subscribe``): signed watch tokens.

``{% serverpush_watch obj %}`` signs *what* the page watches: one object, the
objects of a queryset, or every object of a model. The browser sends the token back
(``serverpush.subscribe(token, {create, update, delete})``); the push server checks
it, puts the connection in the watch's room and sends each matching change there.
The client never names a model or a pk itself.

What a queryset becomes:

- a filter of plain lookups on the model's own fields (``filter(list=l, done=False)``,
  ``all()``): the filter itself, so creates that match reach the page too, and the
  pks it holds when the page renders (``shown``, at most ``MAX_OBJECTS``), so an
  object the page shows that stops matching is reported as leaving (a ``delete``
  with ``left: true``);
- anything else (lookups across relations, ``Q(...) | Q(...)``, ``exclude()``,
  slices): the pks it holds when the page renders (at most ``MAX_OBJECTS``), so
  updates and deletes of those objects, but no creates.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from django.apps import apps
from django.core import signing
from django.db import models
from django.db.models.expressions import Col
from django.db.models.lookups import Lookup
from django.db.models.sql.where import AND
from django.http import HttpRequest

from serverpush import conf
from serverpush.capture import is_published
from serverpush.encoding import jsonable
from serverpush.entries import Entry, private_fields
from serverpush.params import Params
from serverpush.specs import resolve_model
from serverpush.tokens import TokenError, user_key

MAX_OBJECTS = 1000


@dataclass(frozen=True)
class Watch:
    """What one watch token names; ``room`` is shared by every page watching the same thing."""

    model: type[models.Model]
    pks: tuple[str, ...] | None
    lookups: dict[str, Any] | None
    fields: tuple[str, ...] | None
    user_pk: str | None
    # A filter's objects when the page rendered, if they are to be reported leaving it.
    shown: tuple[str, ...] | None = None

    @property
    def label(self) -> str:
        return self.model._meta.label_lower

    @cached_property
    def params(self) -> Params:
        """The change filter, in the form :func:`serverpush.server.replay.compact` expects of a spec."""
        return Params(self.model, {"pk__in": self.pks} if self.pks is not None else self.lookups or {})

    @property
    def room(self) -> str:
        key = f"{self.label}|{self.pks!r}|{sorted((self.lookups or {}).items())!r}|{self.fields!r}"  # not shown: see Watchers._add
        return "w:" + hashlib.blake2b(key.encode(), digest_size=12).hexdigest()

    def data(self, entry: Entry) -> dict[str, Any]:
        """What watchers receive: the pk and the snapshot's fields (``fields`` only, if given)."""
        fields = entry.fields if self.fields is None else {k: v for k, v in entry.fields.items() if k in self.fields}
        return {"pk": entry.pk, **fields}


def watch_of(target: Any, request: HttpRequest | None, fields: str | list[str] | tuple[str, ...] | None = None) -> Watch:
    """The watch of an object, a queryset, or a model (class or ``"app_label.Model"``)."""
    pks: tuple[str, ...] | None = None
    lookups: dict[str, Any] | None = None
    shown: tuple[str, ...] | None = None
    if isinstance(target, models.Model):
        model, pks = target._meta.model, (str(target.pk),)
    elif isinstance(target, models.QuerySet):
        model, lookups = target.model, lookups_of(target)
        pks = None if lookups is not None else _pks(target)
        shown = _shown(target) if lookups else None  # without lookups nothing can leave
    else:
        model, lookups = _model(target), {}
    if not is_published(model):
        raise ValueError(f"cannot watch {model._meta.label_lower!r}: its changes are not published; add it to SERVERPUSH_MODELS or take it out of SERVERPUSH_EXCLUDE_MODELS")
    return Watch(model, pks, lookups, _fields(model, fields), user_key(request), shown)


def _model(target: Any) -> type[models.Model]:
    model = resolve_model(target)
    if model is not None:
        return model
    raise TypeError(f"cannot watch {target!r:.60}: pass a model instance, a queryset, a model class or 'app_label.ModelName'")


def _pks(queryset: models.QuerySet) -> tuple[str, ...]:
    pks = [str(pk) for pk in queryset.values_list("pk", flat=True)[: MAX_OBJECTS + 1]]
    if len(pks) > MAX_OBJECTS:
        raise ValueError(f"cannot watch {queryset.model._meta.label_lower} queryset of more than {MAX_OBJECTS} objects whose filter is not plain field lookups; watch a narrower queryset, or the model")
    return tuple(pks)


def _shown(queryset: models.QuerySet) -> tuple[str, ...] | None:
    """The pks a filtered queryset holds (from its cache if the page already evaluated it); None past MAX_OBJECTS."""
    cache = queryset._result_cache
    if cache is not None and all(isinstance(obj, models.Model) for obj in cache):
        pks = [str(obj.pk) for obj in cache[: MAX_OBJECTS + 1]]
    else:
        pks = [str(pk) for pk in queryset.values_list("pk", flat=True)[: MAX_OBJECTS + 1]]
    return tuple(pks) if len(pks) <= MAX_OBJECTS else None


def _fields(model: type[models.Model], fields: Any) -> tuple[str, ...] | None:
    if fields is None:
        return None
    names = [name.strip() for name in fields.split(",")] if isinstance(fields, str) else list(fields)
    concrete = {f.name: f for f in model._meta.concrete_fields} | {f.attname: f for f in model._meta.concrete_fields}
    private = private_fields()
    chosen = set()
    for name in names:
        f = concrete.get(name)
        if f is None or f"{model._meta.label_lower}.{f.name}" in private:
            raise ValueError(f"fields={fields!r}: {name!r} is not a field of {model._meta.label_lower} that can be sent; name its concrete, non-private fields")
        chosen.add(f.attname)
    return tuple(sorted(chosen))


def lookups_of(queryset: models.QuerySet) -> dict[str, Any] | None:
    """The queryset's filter as plain ``field__lookup`` values, or None if it is not that simple."""
    query = queryset.query
    if query.is_sliced or query.distinct or query.combinator or query.where.negated or query.where.connector != AND:
        return None
    lookups: dict[str, Any] = {}
    for child in query.where.children:
        if not isinstance(child, Lookup) or not isinstance(child.lhs, Col) or child.lhs.alias != query.base_table:
            return None
        key = f"{child.lhs.target.name}__{child.lookup_name}"
        if key in lookups or hasattr(child.rhs, "resolve_expression"):
            return None
        lookups[key] = child.rhs
    try:
        lookups = jsonable(lookups)
        Params(queryset.model, lookups)
    except (TypeError, ValueError):
        return None
    return lookups


def make_watch_token(watch: Watch) -> str:
    payload = {"m": watch.label, "k": watch.pks, "f": watch.lookups, "o": watch.fields, "u": watch.user_pk, "s": watch.shown}
    return signing.dumps(payload, salt=_salt(), compress=True)


def read_watch_token(token: Any) -> Watch:
    """Verify ``token``; raise :class:`TokenError` (``token_invalid``, ``token_expired``, ``not_published``)."""
    if not isinstance(token, str):
        raise TokenError("bad_payload", "subscribe with {token: <a watch token>, cursor: <cursor or null>}")
    try:
        payload = signing.loads(token, salt=_salt(), max_age=conf.get("SERVERPUSH_TOKEN_MAX_AGE"))
    except signing.SignatureExpired:
        raise TokenError("token_expired", "the watch token has expired; reload the page for a new one") from None
    except signing.BadSignature:
        raise TokenError("token_invalid", "the watch token does not verify; it was altered or signed with another SECRET_KEY") from None
    try:
        model = apps.get_model(payload["m"])
        watch = Watch(model, _tuple(payload["k"]), payload["f"], _tuple(payload["o"]), payload["u"], _tuple(payload.get("s")))
        watch.params  # noqa: B018 - validates the lookups
    except (KeyError, LookupError, TypeError, ValueError):
        raise TokenError("token_invalid", "the watch token verifies but names no model this site has") from None
    if not is_published(model):
        raise TokenError("not_published", f"changes of {watch.label!r} are not published (SERVERPUSH_MODELS / SERVERPUSH_EXCLUDE_MODELS)")
    return watch


def shown_mark(room: str, pk: Any) -> str:
    """The server's word that the pages of ``room`` were sent object ``pk`` as matching.

    A page sends its marks back when it subscribes again, so that an object that
    joined the filter after the page rendered is still reported if it left meanwhile.
    Signed like the tokens (``django.core.signing``, so key fallbacks verify too).
    """
    return _shown_signer().signature(f"{room}|{pk}")


def verify_shown(room: str, marks: Any) -> set[str]:
    """The pks of ``marks`` (``{pk: mark}`` from a page) that this server vouched for; TokenError otherwise."""
    if not isinstance(marks, dict) or len(marks) > MAX_OBJECTS:
        raise TokenError("bad_payload", f"shown must be an object of at most {MAX_OBJECTS} pk: mark pairs from serverpush_watch events")
    signer = _shown_signer()
    for pk, mark in marks.items():
        try:
            signer.unsign(f"{room}|{pk}{signer.sep}{mark}")
        except signing.BadSignature:
            raise TokenError("token_invalid", f"the shown mark of {pk!r:.40} does not verify; it was altered or made for another watch") from None
    return {str(pk) for pk in marks}


def _shown_signer() -> signing.Signer:
    return signing.Signer(salt=_salt() + ".shown")


def _tuple(value: list[str] | None) -> tuple[str, ...] | None:
    return None if value is None else tuple(value)


def _salt() -> str:
    return conf.get("SERVERPUSH_TOKEN_SALT") + ".watch"
