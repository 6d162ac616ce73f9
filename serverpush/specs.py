"""Validate the spec dicts an update function returns into :class:`Spec` objects.

A spec says which changes a page shows and how each is serialized::

    {'name': 'username_change', 'model': User, 'params': {'pk': request.user.pk},
     'data': {'username': 'object.username'}}

The payload comes from ``data`` (a field map; ``None`` for none), ``serializer`` (a
callable or a view) or ``template`` (a template or partial, ``'items.html#item'``).
"""
from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.template import TemplateDoesNotExist, TemplateSyntaxError
from django.utils.module_loading import import_string

from serverpush.params import Params
from serverpush.serializers import REQUEST_VARY, CallableSerializer, FieldMap, FragmentSerializer, Signal, ViewSerializer

KEYS = ("name", "model", "params", "data", "serializer", "template", "vary")
Serializer = FieldMap | CallableSerializer | ViewSerializer | FragmentSerializer | Signal


class SpecError(ImproperlyConfigured):
    """A spec returned by an update function is malformed."""


@dataclass(frozen=True, eq=False)
class Spec:
    name: str
    model: type[models.Model]
    params: Params
    data: Any
    serializer: Serializer
    vary: frozenset[str]
    source: str

    @property
    def label(self) -> str:
        return self.model._meta.label_lower

    @property
    def view(self) -> str:
        """The view (or ``SERVERPUSH_GLOBALS`` function) whose update function declared this spec."""
        return self.source.removeprefix("update function of ").partition(", spec ")[0]

    @property
    def key(self) -> str:
        """Identity of what this spec sends: pages whose specs share it share one serialization."""
        text = f"{self.name}|{self.label}|{self.params.key}|{self.serializer.key}|{self.data!r}"
        return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def parse_specs(raw: Any, source: str, module: str | None = None) -> list[Spec]:
    """Validate what the update function ``source`` returned.

    ``module`` is where a view serializer given by bare name (``'hello'``) is looked up.
    """
    return [parse_spec(item, f"{source}, spec {i}", module) for i, item in enumerate(spec_items(raw, source))]


def spec_items(raw: Any, source: str) -> list[Any]:
    """The raw specs an update function returned (None: none; one dict: that one)."""
    if raw is None:
        return []
    if isinstance(raw, dict):
        return [raw]
    if not isinstance(raw, Iterable) or isinstance(raw, (str, bytes)):
        raise SpecError(f"{source} returned {raw!r:.80}; an update function must return a list of spec dicts.")
    return list(raw)


def parse_spec(raw: Any, where: str, module: str | None = None) -> Spec:
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: {raw!r:.80} is not a dict; a spec is a dict with keys {', '.join(KEYS)}.")
    unknown = sorted(set(raw) - set(KEYS), key=str)
    if unknown:
        raise SpecError(f"{where}: unknown key {unknown[0]!r}; a spec takes {', '.join(KEYS)}.")
    name = raw.get("name")
    if not isinstance(name, str) or not name.replace("_", "").replace("-", "").isalnum():
        raise SpecError(f"{where}: key 'name' is {name!r}; it must be a word like 'reload' (letters, digits, _ or -), the JS event is serverpush_<name>.")
    where = f"{where} ({name!r})"
    model = _model(raw.get("model"), where)
    params = _params(raw.get("params", {}), model, where)
    serializer = _serializer(raw, model, where, module)
    vary = _vary(raw["vary"], where) if "vary" in raw else serializer.default_vary
    return Spec(name, model, params, raw.get("data"), serializer, vary, where)


def resolve_model(value: Any) -> type[models.Model] | None:
    """A model class, or the installed model named ``"app_label.ModelName"``; else None."""
    if isinstance(value, type) and issubclass(value, models.Model):
        return value
    if isinstance(value, str):
        try:
            return apps.get_model(value)
        except (LookupError, ValueError):
            return None
    return None


def _model(value: Any, where: str) -> type[models.Model]:
    model = resolve_model(value)
    if model is not None:
        return model
    raise SpecError(f"{where}: key 'model' is {value!r}; expected a model class or 'app_label.ModelName' of an installed app.")


def _params(value: Any, model: type[models.Model], where: str) -> Params:
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise SpecError(f"{where}: key 'params' is {value!r:.80}; expected a dict of ORM lookups such as {{'pk': 1}}.")
    try:
        return Params(model, value)
    except ValueError as exc:
        raise SpecError(f"{where}: key 'params' {value!r:.80} is not valid for {model.__name__}: {exc}") from None


def _serializer(raw: dict[str, Any], model: type[models.Model], where: str, module: str | None) -> Serializer:
    if "template" in raw:
        return _template(raw, model, where)
    serializer = raw.get("serializer")
    if serializer is None:
        data = raw.get("data")
        if data is None and "data" in raw:
            return Signal()
        if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
            raise SpecError(f"{where}: without 'serializer' or 'template', key 'data' must be a field map like {{'username': 'object.username'}}, or None for no payload, got {data!r:.80}.")
        try:
            return FieldMap(data, model)
        except TemplateSyntaxError as exc:
            raise SpecError(f"{where}: key 'data' has a path that is not a template variable: {exc}. Use dotted paths like 'object.username'.") from None
    if isinstance(serializer, str):
        return ViewSerializer(_view(serializer, where, module), model)
    if callable(serializer):
        return CallableSerializer(serializer)
    raise SpecError(f"{where}: key 'serializer' is {serializer!r:.80}; expected a callable f(request, obj, data) or a view name.")


def _template(raw: dict[str, Any], model: type[models.Model], where: str) -> FragmentSerializer:
    name = raw["template"]
    if "serializer" in raw:
        raise SpecError(f"{where}: give 'template' or 'serializer', not both.")
    if not isinstance(name, str) or not name:
        raise SpecError(f"{where}: key 'template' is {name!r:.80}; expected a template name, or a partial as 'items.html#item'.")
    try:
        return FragmentSerializer(name, model)
    except TemplateDoesNotExist:
        raise SpecError(f"{where}: key 'template' names {name!r}, which no template loader finds (for a partial: is it defined with {{% partialdef %}}, and are partials enabled?).") from None
    except TemplateSyntaxError as exc:
        raise SpecError(f"{where}: the template {name!r} of key 'template' does not compile: {exc}") from None


def _view(name: str, where: str, module: str | None) -> Any:
    view = getattr(sys.modules.get(module or ""), name, None) if "." not in name else None
    if view is None and "." in name:
        try:
            view = import_string(name)
        except ImportError:
            view = None
    if not callable(view):
        raise SpecError(f"{where}: key 'serializer' names view {name!r}, which is not a function in {module or 'any module'}; use a view of the update function's module or a dotted path.")
    return view


def _vary(value: Any, where: str) -> frozenset[str]:
    items = (value,) if isinstance(value, str) else tuple(value or ())
    unknown = set(items) - REQUEST_VARY
    if unknown:
        raise SpecError(f"{where}: key 'vary' has {sorted(unknown)[0]!r}; use 'user', 'language', both, or () when the payload is the same for everyone.")
    return frozenset(items)
