"""The ways a spec turns a changed object into a payload.

The original three (a field map, a callable, a view), a template fragment, and
none at all (a signal). Each serializer is called as ``serializer(request, obj,
data)`` and says, through ``default_vary``, which parts of the request its output
may depend on: the push server serializes once per distinct value of those parts.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import models
from django.http import HttpRequest, HttpResponse
from django.template.base import Variable, VariableDoesNotExist
from django.template.loader import get_template

REQUEST_VARY = frozenset({"user", "language"})


class FieldMap:
    """``'data': {'username': 'object.username'}``: paths resolved by Django's template rules."""

    def __init__(self, fields: dict[str, str], model: type[models.Model]) -> None:
        self.fields = fields
        self.model_name = model._meta.model_name
        self.variables = {key: Variable(path) for key, path in fields.items()}
        uses_request = any(path.split(".")[0] == "request" for path in fields.values())
        self.default_vary = REQUEST_VARY if uses_request else frozenset()
        self.key = f"fields:{sorted(fields.items())!r}"

    def __call__(self, request: HttpRequest, obj: models.Model, data: Any) -> dict[str, Any]:
        context = {"object": obj, self.model_name: obj, "request": request}
        result = {}
        for key, variable in self.variables.items():
            try:
                result[key] = variable.resolve(context)
            except VariableDoesNotExist as exc:
                raise LookupError(f"data path {self.fields[key]!r} (key {key!r}) does not resolve: {exc}") from None
        return result


class CallableSerializer:
    """``'serializer': f`` called as ``f(request, obj, data)``."""

    default_vary = REQUEST_VARY

    def __init__(self, func: Callable[[HttpRequest, models.Model, Any], Any]) -> None:
        self.func = func
        self.key = f"callable:{func.__module__}.{func.__qualname__}:{id(func)}"

    def __call__(self, request: HttpRequest, obj: models.Model, data: Any) -> Any:
        return self.func(request, obj, data)


class ViewSerializer:
    """``'serializer': 'hello'``: the view, called as ``hello(request, user=obj, data=data)``.

    The keyword is the model's name in lower case; the response body is the payload.
    """

    default_vary = REQUEST_VARY

    def __init__(self, view: Callable[..., HttpResponse], model: type[models.Model]) -> None:
        self.view = view
        self.keyword = model._meta.model_name
        self.key = f"view:{view.__module__}.{view.__qualname__}"

    def __call__(self, request: HttpRequest, obj: models.Model, data: Any) -> str:
        response = self.view(request, **{self.keyword: obj, "data": data})
        if hasattr(response, "render") and not getattr(response, "is_rendered", True):
            response.render()
        if not isinstance(response, HttpResponse):
            raise TypeError(f"view serializer {self.key[5:]} returned {type(response).__name__}, not an HttpResponse")
        return response.content.decode(response.charset)


class FragmentSerializer:
    """``'template': 'items.html#item'``: a template, or one partial of it, rendered per change.

    The context is the page's request (context processors run) plus ``object``, the
    object under its model's name, and ``data``. Rendered in the push server, with
    no CSRF cookie: keep ``{% csrf_token %}`` out of fragments.
    """

    default_vary = REQUEST_VARY

    def __init__(self, template_name: str, model: type[models.Model]) -> None:
        self.template = get_template(template_name)  # a missing template fails when the spec is read
        self.model_name = model._meta.model_name
        self.key = f"template:{template_name}"

    def __call__(self, request: HttpRequest, obj: models.Model, data: Any) -> str:
        return self.template.render({"object": obj, self.model_name: obj, "data": data}, request)


class Signal:
    """``'data': None``: no payload; the page learns which object changed, and how, from ``meta``.

    What a page refresh needs: the page fetches itself anew, whatever changed.
    """

    default_vary: frozenset[str] = frozenset()
    key = "signal"

    def __call__(self, request: HttpRequest, obj: models.Model, data: Any) -> None:
        return None
