"""``serverpush.middleware.ServerPushMiddleware``: take the page cursor before the view runs.

Every change committed after the cursor is replayed to the page, so the cursor
must be read before the view reads the database. With the Redis log this is at
most one round trip per live page (none for pages without subscriptions, none while
a position this process read is fresh: ``SERVERPUSH_CURSOR_MAX_AGE``) and gives an
exact log position. Pages that only a template tag makes live, and every page
without the middleware, get a time-derived cursor (see docs/redis.md).

It also notes which tab sent the request (``X-Serverpush-Tab``, see
:mod:`serverpush.tabs`), so the changes the request makes are not echoed to it as
page refreshes.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse

from serverpush.client import CURSOR_ATTR, is_live
from serverpush.log import get_log
from serverpush.tabs import reset_current_tab, set_current_tab, tab_of


class ServerPushMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = set_current_tab(tab_of(request))
        try:
            return self.get_response(request)
        finally:
            reset_current_tab(token)

    def process_view(self, request: HttpRequest, view_func: Callable[..., Any], view_args: Any, view_kwargs: Any) -> None:
        if is_live(request):
            setattr(request, CURSOR_ATTR, get_log().position())
