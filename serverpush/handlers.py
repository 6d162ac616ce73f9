"""Client-to-server handlers (django-ws): a class per namespace, called in the push server.

    # settings.py
    SERVERPUSH_HANDLERS = {'default': 'your_project.ws_handlers.RandomCounter'}

    # your_project/ws_handlers.py
    class RandomCounter(WebSocketHandler):
        def on_message(self, message):
            self.send(str(random.randint(1, 100)))

The page opens ``serverpush.ws('default')``: the Socket.IO namespace ``/ws/default``
on its connection to the push server, authenticated like the page itself (page
token and session cookie). Each such connection gets its own handler instance and
its own green thread, which calls the handler one message at a time, in order,
with the ORM and ``self.request.user`` at hand. A handler that raises is logged
and only its own connection is closed (:mod:`serverpush.server.handler_host`).
"""
from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest
from django.utils.module_loading import import_string

from serverpush import conf
from serverpush.encoding import jsonable


class WebSocketHandler:
    """Override ``on_open``, ``on_message`` and ``on_close``; reply with ``self.send(data)``.

    ``self.request`` is the page's request (``self.request.user``, ``.session``,
    ``.LANGUAGE_CODE``); ``self.namespace`` the name it is configured under.
    """

    def __init__(self, request: HttpRequest, namespace: str, send: Any) -> None:
        self.request = request
        self.namespace = namespace
        self._send = send

    def on_open(self, message: Any) -> bool | None:
        """The first message. Return None and it also goes to ``on_message``; True or False, and it does not."""
        return None

    def on_message(self, message: Any) -> None:
        """Every message (the first one too, unless ``on_open`` returned True or False)."""

    def on_close(self) -> None:
        """The connection closed (the page left, the network dropped, or a handler call raised)."""

    def send(self, data: Any) -> None:
        """Send ``data`` (anything JSON can hold, as for messages) to this connection only."""
        self._send(jsonable(data))


Handler = WebSocketHandler


def handler_classes() -> dict[str, type[WebSocketHandler]]:
    """``SERVERPUSH_HANDLERS`` loaded; raises ``ImproperlyConfigured`` naming the bad entry."""
    configured = conf.get("SERVERPUSH_HANDLERS")
    if not isinstance(configured, dict):
        raise ImproperlyConfigured(f"SERVERPUSH_HANDLERS = {configured!r:.80}; it must be a dict of namespace -> dotted path, e.g. {{'default': 'myproject.ws_handlers.RandomCounter'}}")
    classes = {}
    for name, path in configured.items():
        if not isinstance(name, str) or not name.replace("_", "").replace("-", "").isalnum():
            raise ImproperlyConfigured(f"SERVERPUSH_HANDLERS has namespace {name!r}; use a word such as 'default' (letters, digits, _ or -)")
        try:
            cls = import_string(path) if isinstance(path, str) else path
        except ImportError as exc:
            raise ImproperlyConfigured(f"SERVERPUSH_HANDLERS[{name!r}] = {path!r} cannot be imported: {exc}") from None
        if not (isinstance(cls, type) and issubclass(cls, WebSocketHandler)):
            raise ImproperlyConfigured(f"SERVERPUSH_HANDLERS[{name!r}] = {path!r} is not a subclass of serverpush.handlers.WebSocketHandler")
        classes[name] = cls
    return classes
