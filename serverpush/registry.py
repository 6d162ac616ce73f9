"""Find the update functions of a page: ``<view>_update``, registrations, globals.

An update function takes the request (and the view's URL arguments) and returns
the specs of what the page shows.
"""
from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest
from django.urls import ResolverMatch
from django.utils.module_loading import import_string

from serverpush import conf
from serverpush.specs import Spec, parse_specs

logger = logging.getLogger(__name__)

UpdateFunction = Callable[..., Any]
_registered: dict[Any, UpdateFunction] = {}


def register(view: Callable[..., Any] | str, update: UpdateFunction | None = None) -> Any:
    """Declare ``update`` as the update function of ``view`` (a view or its dotted path).

    Use it as a call, ``register(hello, hello_update)``, or as a decorator::

        @serverpush.register(views.hello)
        def hello_update(request): ...
    """
    if update is None:
        return lambda func: register(view, func) or func
    if not callable(update):
        raise TypeError(f"register({view!r}, {update!r}): the update function must be callable")
    _registered[_view_id(view)] = update
    return update


def _view_id(view: Callable[..., Any] | str) -> str:
    if isinstance(view, str):
        return view
    view = getattr(view, "view_class", view)
    return f"{view.__module__}.{view.__qualname__}"


def update_function(view: Callable[..., Any]) -> UpdateFunction | None:
    """The update function of ``view``, or None if the page shows nothing live."""
    found = _registered.get(_view_id(view))
    if found is not None:
        return found
    view_class = getattr(view, "view_class", None)
    if view_class is not None:
        return _class_update(view, view_class)
    module = sys.modules.get(getattr(view, "__module__", ""))
    return getattr(module, f"{getattr(view, '__name__', '')}_update", None)


def _class_update(view: Callable[..., Any], view_class: type) -> UpdateFunction | None:
    attr = getattr(view_class, "serverpush_update", None)
    if attr is None:
        return None
    if isinstance(attr, str):
        return import_string(attr)

    def call(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        instance = view_class(**getattr(view, "view_initkwargs", {}))
        instance.setup(request, *args, **kwargs)
        return instance.serverpush_update(request, *args, **kwargs)

    call.__module__ = view_class.__module__  # where a view serializer named by a bare name is found
    return call


def global_functions() -> list[UpdateFunction]:
    return [import_string(path) for path in conf.get("SERVERPUSH_GLOBALS")]


def has_updates(view: Callable[..., Any] | None) -> bool:
    return bool(conf.get("SERVERPUSH_GLOBALS")) or (view is not None and update_function(view) is not None)


def specs_for(request: HttpRequest, match: ResolverMatch | None) -> list[Spec]:
    """Run the page's update functions and validate their specs.

    A function that raises, or returns a bad spec, is logged with the view's name
    and skipped: the page and the other functions' subscriptions carry on.
    """
    calls: list[tuple[str, UpdateFunction, tuple, dict]] = []
    if match is not None:
        update = update_function(match.func)
        if update is not None:
            calls.append((_view_id(match.func), update, match.args, match.kwargs))
    calls.extend((path, func, (), {}) for path, func in zip(conf.get("SERVERPUSH_GLOBALS"), global_functions()))
    specs: list[Spec] = []
    for source, func, args, kwargs in calls:
        try:
            specs.extend(parse_specs(func(request, *args, **kwargs), f"update function of {source}", func.__module__))
        except Exception:
            logger.exception("serverpush: the update function of %s failed for %s; its subscriptions are skipped", source, request.path)
    return specs
