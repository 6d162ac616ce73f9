"""Rebuild the page's request from a connect handshake: token, session cookie, language."""
from __future__ import annotations

from importlib import import_module
from typing import Any
from urllib.parse import urlsplit

from django.apps import apps
from django.conf import settings
from django.http import HttpRequest
from django.http.cookie import parse_cookie
from django.urls import Resolver404, resolve

from serverpush.tokens import PageToken, TokenError, session_fingerprint

_META_KEYS = ("REMOTE_ADDR", "HTTP_USER_AGENT", "HTTP_ACCEPT_LANGUAGE", "HTTP_COOKIE", "HTTP_ORIGIN")


def rebuild_request(token: PageToken, environ: dict[str, Any]) -> HttpRequest:
    """The request the page was rendered for, with its user taken from the session cookie.

    Raises :class:`TokenError` (``session_mismatch``) when the cookie is not the
    session the page was rendered in.
    """
    request = HttpRequest()
    request.method = "GET"
    request.path = request.path_info = token.path
    request.META = {key: environ[key] for key in _META_KEYS if key in environ}
    _set_host(request, environ.get("HTTP_ORIGIN"))
    request.COOKIES = parse_cookie(environ.get("HTTP_COOKIE", ""))
    request.LANGUAGE_CODE = token.language or settings.LANGUAGE_CODE
    if token.urlconf:
        request.urlconf = token.urlconf
    session_key = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
    if apps.is_installed("django.contrib.sessions"):
        request.session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    if token.session is not None and session_fingerprint(session_key) != token.session:
        raise TokenError("session_mismatch", "the session cookie is not the session this page was rendered in; reload the page")
    if apps.is_installed("django.contrib.auth") and hasattr(request, "session"):
        from django.contrib.auth import get_user

        request.user = get_user(request)
        if token.user_pk is not None and str(request.user.pk) != token.user_pk:
            raise TokenError("session_mismatch", "the session's user is not the user this page was rendered for; reload the page")
    elif token.user_pk is not None:
        raise TokenError("session_mismatch", "this page was rendered for a user, but no session carries one")
    try:
        request.resolver_match = resolve(token.path, getattr(request, "urlconf", None))
    except Resolver404:
        request.resolver_match = None
    return request


def _set_host(request: HttpRequest, origin: str | None) -> None:
    """Make ``request.get_host()`` the page's host (the handshake's Host is the push server's)."""
    parts = urlsplit(origin or "")
    if parts.hostname:
        request.META["HTTP_HOST"] = parts.netloc
        request.META["SERVER_PORT"] = str(parts.port or (443 if parts.scheme == "https" else 80))
