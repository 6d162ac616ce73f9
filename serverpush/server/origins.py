"""Which browser origins may connect to the push server.

By default the same as Django trusts: hosts in ``ALLOWED_HOSTS`` (any scheme and
port) and the patterns of ``CSRF_TRUSTED_ORIGINS``. ``SERVERPUSH_ALLOWED_ORIGINS``
replaces that with an explicit list (``["*"]`` allows every origin).
"""
from __future__ import annotations

import fnmatch
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.http.request import validate_host

from serverpush import conf

DEBUG_HOSTS = [".localhost", "127.0.0.1", "[::1]"]


def is_allowed(origin: str | None, environ: Any = None) -> bool:
    """engineio's ``cors_allowed_origins`` callable. Requests without an Origin are not from a page."""
    if not origin:
        return True
    explicit = conf.get("SERVERPUSH_ALLOWED_ORIGINS")
    if explicit is not None:
        return "*" in explicit or origin in explicit
    if any(fnmatch.fnmatchcase(origin, pattern) for pattern in settings.CSRF_TRUSTED_ORIGINS):
        return True
    host = urlsplit(origin).netloc
    allowed = settings.ALLOWED_HOSTS or (DEBUG_HOSTS if settings.DEBUG else [])
    return bool(host) and validate_host(host.rsplit(":", 1)[0] if not host.endswith("]") else host, allowed)
