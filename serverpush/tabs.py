"""Which browser tab made a change, so a page refresh is not echoed back to it.

Every live page gets a tab *key* (random, secret to the page) and a tab *id*, a
signature of the key with ``SECRET_KEY``. The page sends the key with its own
requests in the ``X-Serverpush-Tab`` header; changes those requests commit carry
the id, and so do the events they become. A page ignores page-refresh events that
carry its own id: it refreshed itself after its own request.

Events show the id, never the key: a page that sees another tab's id cannot make
changes under it, so it cannot keep that tab from refreshing.
"""
from __future__ import annotations

import re
import secrets
from contextvars import ContextVar

from django.core import signing
from django.http import HttpRequest

from serverpush import conf

HEADER = "HTTP_X_SERVERPUSH_TAB"
_KEY = re.compile(r"[A-Za-z0-9_-]{16,64}")
_current: ContextVar[str | None] = ContextVar("serverpush_tab", default=None)


def new_tab() -> tuple[str, str]:
    """A fresh ``(key, id)`` for a page being rendered."""
    key = secrets.token_urlsafe(18)
    return key, tab_id(key)


def tab_id(key: str) -> str:
    return _signer().signature(key)


def tab_of(request: HttpRequest) -> str | None:
    """The id of the tab that sent ``request``, or None without a well-formed header.

    A malformed header is ignored rather than refused: it is a hint for the pages'
    refresh, and a request must not fail over it.
    """
    key = request.META.get(HEADER, "")
    return tab_id(key) if _KEY.fullmatch(key) else None


def current_tab() -> str | None:
    """The id of the tab whose request is running here (set by ``ServerPushMiddleware``)."""
    return _current.get()


def set_current_tab(tab: str | None) -> object:
    """Make ``tab`` current; returns what :func:`reset_current_tab` takes to undo it."""
    return _current.set(tab)


def reset_current_tab(token: object) -> None:
    _current.reset(token)  # type: ignore[arg-type]


@conf.derived
def _signer() -> signing.Signer:
    return signing.Signer(salt="serverpush.tab")
