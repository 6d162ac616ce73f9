"""Django's ASGI application with the push server on the same origin.

    # myproject/asgi.py
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "myproject.settings")

    from serverpush.asgi import get_asgi_application

    application = get_asgi_application()

Then ``uvicorn myproject.asgi:application`` serves the pages and, at ``/socket.io/``
on the same host and port, the push server; pages connect to their own origin.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from django.core.asgi import get_asgi_application as django_asgi_application

from serverpush import client

__all__ = ["get_asgi_application", "wrap"]


ASGIApp = Callable[[dict[str, Any], Callable[..., Awaitable[Any]], Callable[..., Awaitable[Any]]], Awaitable[None]]


def wrap(app: ASGIApp) -> ASGIApp:
    """``app`` (a Django ASGI application) with the push server mounted on its origin."""
    from serverpush.server.mount import Mount  # after Django is set up: the push server reads settings

    mount = Mount(app)
    client.serve_same_origin(mount.path)
    return mount


def get_asgi_application() -> ASGIApp:
    """Django's ASGI application (``django.core.asgi.get_asgi_application()``) with the push server on its origin."""
    return wrap(django_asgi_application())
