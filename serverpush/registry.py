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

from serverpush import conf, problems
from serverpush.problems import Problem
from serverpush.specs import Spec, SpecError, parse_spec, spec_items

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


def view_name(match: ResolverMatch | None) -> str | None:
    """The dotted name of the view ``match`` resolved to, as problems and the inspector name it."""
    return _view_id(match.func) if match is not None else None


def global_functions() -> list[UpdateFunction]:
    return [import_string(path) for path in conf.get("SERVERPUSH_GLOBALS")]


def has_updates(view: Callable[..., Any] | None) -> bool:
    return bool(conf.get("SERVERPUSH_GLOBALS")) or (view is not None and update_function(view) is not None)


def specs_for(request: HttpRequest, match: ResolverMatch | None, found: list[Problem] | None = None) -> list[Spec]:
    """Run the page's update functions and validate their specs.

    A function that raises is logged with the view's name and skipped; a bad spec
    is logged and skipped alone: the page and its other subscriptions carry on.
    Each problem is also appended to ``found``, for the page's console in DEBUG.
    """
    calls: list[tuple[str, UpdateFunction, tuple, dict]] = []
    if match is not None:
        update = update_function(match.func)
        if update is not None:
            calls.append((_view_id(match.func), update, match.args, match.kwargs))
    calls.extend((path, func, (), {}) for path, func in zip(conf.get("SERVERPUSH_GLOBALS"), global_functions()))
    specs: list[Spec] = []
    for source, func, args, kwargs in calls:
        specs.extend(_run(request, source, func, args, kwargs, found if found is not None else []))
    return specs


def _run(request: HttpRequest, source: str, func: UpdateFunction, args: tuple, kwargs: dict, found: list[Problem]) -> list[Spec]:
    user = getattr(request, "user", None)
    where = f"update function of {source}"
    try:
        items = spec_items(func(request, *args, **kwargs), where)
    except Exception as exc:
        logger.exception("serverpush: the %s failed for %s; its subscriptions are skipped", where, request.path)
        found.append(problems.record(problems.UPDATE_FUNCTION, source, None, problems.summary(exc), user))
        return []
    specs = []
    for i, item in enumerate(items):
        try:
            specs.append(parse_spec(item, f"{where}, spec {i}", func.__module__))
        except Exception as exc:
            message = str(exc) if isinstance(exc, SpecError) else f"{where}, spec {i}: {problems.summary(exc)}"
            logger.error("serverpush: %s This spec is skipped for %s; the page's other subscriptions stay live.", message, request.path, exc_info=not isinstance(exc, SpecError))
            name = item.get("name") if isinstance(item, dict) else None
            found.append(problems.record(problems.SPEC, source, name if isinstance(name, str) else f"spec {i}", message, user))
    return specs
