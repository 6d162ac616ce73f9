"""What a page needs to go live: its cursor, its token, the push server's URL.

``serverpush.client.context_processor`` puts them in every template context;
``{% serverpush_script %}`` writes the script tags that use them.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest
from django.utils.functional import lazy

from serverpush import conf, registry
from serverpush.log import get_log
from serverpush.entries import now_ms
from serverpush.tokens import make_token

STARTED_KEY = "serverpush.started_ms"
# The push server's path when this process serves it beside the pages (serverpush.asgi).
_same_origin: str | None = None
# Set by serverpush.middleware.ServerPushMiddleware: the log position before the view ran.
CURSOR_ATTR = "_serverpush_cursor"


def mark_request_start(*, environ: dict | None = None, scope: dict | None = None, **kwargs: Any) -> None:
    """``request_started`` receiver: note when the request began, before any view runs.

    A change committed after this instant is replayed to the page, so nothing
    committed while the view was rendering can be missed.
    """
    target = environ if environ is not None else scope
    if target is not None:
        target[STARTED_KEY] = now_ms()


def page_context(request: HttpRequest) -> dict[str, Any]:
    """The page's live-update context, computed once per request.

    The cursor and the token are lazy: a tag that makes the page live
    (``{% serverpush_watch %}``, ``{% serverpush_token %}``) may run after the
    context processor, and everything rendered after it sees the page live.
    """
    cached = getattr(request, "_serverpush_context", None)
    if cached is not None:
        return cached
    context = {
        "generated_timestamp": _lazy_live_value(request, "cursor", _cursor),
        "serverpush_token": _lazy_live_value(request, "token", make_token),
        "serverpush_url": conf.get("SERVERPUSH_URL") or _same_origin or "",
        "serverpush_port": conf.get("SERVERPUSH_PORT"),
        "serverpush_transports": ",".join(conf.get("SERVERPUSH_TRANSPORTS") or ()),
    }
    request._serverpush_context = context
    return context


def serve_same_origin(path: str) -> None:
    """Pages rendered by this process connect to their own origin at ``path`` (unless ``SERVERPUSH_URL`` says otherwise)."""
    global _same_origin
    _same_origin = path


def is_live(request: HttpRequest) -> bool:
    """Whether the page can receive anything, and so needs a token and a cursor.

    It can if its view has update functions (or ``SERVERPUSH_GLOBALS`` is set),
    if ``SERVERPUSH_MESSAGES`` is on, or if a tag called :func:`mark_live`.
    """
    if getattr(request, "_serverpush_live", False) or conf.get("SERVERPUSH_MESSAGES"):
        return True
    match = getattr(request, "resolver_match", None)
    return registry.has_updates(match.func if match is not None else None)


def mark_live(request: HttpRequest) -> None:
    """Make the page live whatever its view declares (watch subscriptions, messages)."""
    request._serverpush_live = True


def _live_value(request: HttpRequest, key: str, make: Callable[[HttpRequest], str]) -> str:
    if not is_live(request):
        return ""
    values = request.__dict__.setdefault("_serverpush_values", {})
    if key not in values:
        values[key] = make(request)
    return values[key]


_lazy_live_value = lazy(_live_value, str)


def _cursor(request: HttpRequest) -> str:
    if hasattr(request, CURSOR_ATTR):
        return getattr(request, CURSOR_ATTR)
    started = request.META.get(STARTED_KEY) or getattr(request, "scope", {}).get(STARTED_KEY)
    return get_log().cursor_at(started if started is not None else now_ms())


def context_processor(request: HttpRequest) -> dict[str, Any]:
    """Adds ``generated_timestamp`` (the page cursor) and ``serverpush_token``."""
    return page_context(request)
