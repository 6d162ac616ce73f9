"""Every setting serverpush reads, with its default, in one place.

Read settings through :func:`get`; the cache is cleared when Django's
``setting_changed`` fires, so ``override_settings`` works in tests.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any, TypeVar

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

DEFAULTS: dict[str, Any] = {
    # Port and bind address of the push server (``runserverpush``).
    "SERVERPUSH_PORT": 8013,
    "SERVERPUSH_HOST": "127.0.0.1",
    # Where Django processes send changes to the push server (embedded log).
    "SERVERPUSH_NOTIFIER_PORT": 8014,
    "SERVERPUSH_NOTIFIER_HOST": "127.0.0.1",
    # Dotted paths of ``f(request)`` whose specs go on every page.
    "SERVERPUSH_GLOBALS": (),
    # Where the browser finds the push server: None, the page's host on SERVERPUSH_PORT
    # (or, when serverpush.asgi serves the page, its own origin); a URL such as
    # "https://push.example.com"; or a path such as "/socket.io/": the page's own
    # origin, with the push server behind a path route (the Socket.IO path it serves).
    "SERVERPUSH_URL": None,
    # Socket.IO transports the browser uses, in order: None for Socket.IO's own
    # (long-polling, then an upgrade to websocket); ["websocket"] where several push
    # servers or ASGI workers answer one address without sticky sessions.
    "SERVERPUSH_TRANSPORTS": None,
    # ``eventlet`` (default), ``gevent``, ``threading``, or ``asgi`` (uvicorn).
    "SERVERPUSH_ASYNC_MODE": "eventlet",
    # Seconds a page token stays valid for (re)connecting.
    "SERVERPUSH_TOKEN_MAX_AGE": 24 * 3600,
    "SERVERPUSH_TOKEN_SALT": "serverpush.token",
    # The log of changes: "memory" (embedded, the default) or a Redis URL such as
    # "redis://127.0.0.1:6379/0" (also rediss://, unix://); see docs/redis.md.
    "SERVERPUSH_LOG": "memory",
    # How many entries the embedded log keeps for replay.
    "SERVERPUSH_MEMORY_LOG_SIZE": 10_000,
    # Embedded log: frames a Django process queues while the push server is slow or
    # away (and the push server buffers); past that they are dropped, reported, and
    # the pages that may have missed them heal or resync.
    "SERVERPUSH_NOTIFIER_QUEUE": 10_000,
    # When a page cannot be healed after a gap in the log, it reloads after a random
    # delay of up to this many seconds, so a restart does not reload every page at once.
    "SERVERPUSH_RESYNC_JITTER": 10.0,
    # Seconds the clocks of Django hosts, push servers and Redis may disagree by:
    # time-derived cursors replay from this much earlier.
    "SERVERPUSH_CLOCK_SKEW": 2.0,
    # Redis log: the stream's key; its epoch and last id live in "<key>:meta".
    "SERVERPUSH_REDIS_STREAM": "serverpush:log",
    # Redis log: entries kept for replay (about: Redis trims whole nodes), and their
    # maximum age in seconds (0: no age limit). A page away for longer resyncs.
    "SERVERPUSH_REDIS_MAXLEN": 10_000,
    "SERVERPUSH_REDIS_MAX_AGE": 3600,
    # Redis log: seconds a Django process waits for Redis (connecting, then each
    # reply) before giving up. A request never waits longer than this once: after a
    # failure, Redis is skipped for a second (see docs/redis.md, "When Redis is down").
    "SERVERPUSH_REDIS_TIMEOUT": 0.25,
    # Redis log: seconds a Django process reuses a page cursor it read, instead of a
    # round trip per live page (0: read it for every page). An older cursor is never
    # unsafe, it replays a little more; but one from before the stream was replaced
    # makes the page resync. See docs/redis.md, "Cursors are log positions".
    "SERVERPUSH_CURSOR_MAX_AGE": 0,
    # Redis log: where a Django process that exits before Redis answers again leaves
    # the report of the changes it could not write, for the next process on this host
    # to make. None: "<temp dir>/serverpush-<uid>". Only this user may use it.
    "SERVERPUSH_REDIS_SPOOL_DIR": None,
    # The database alias the push server reads changed rows back from, so that pages
    # get the committed state whatever order changes reach the log in; None: where
    # Django's routers write each model. Never a replica that may lag behind.
    "SERVERPUSH_DATABASE": None,
    # Models whose changes are published: None for all but SERVERPUSH_EXCLUDE_MODELS.
    "SERVERPUSH_MODELS": None,
    "SERVERPUSH_EXCLUDE_MODELS": (
        "admin.logentry",
        "auth.permission",
        "contenttypes.contenttype",
        "sessions.session",
        "migrations.migration",
    ),
    # Direct messages (serverpush.notify_all / notify / send) reach pages that are
    # live anyway (update functions, {% serverpush_watch %}, {% serverpush_token %}).
    # True: every page with the context processor connects, to receive them.
    "SERVERPUSH_MESSAGES": False,
    # Client-to-server handlers (django-ws): namespace -> dotted path of a
    # serverpush.handlers.WebSocketHandler subclass, e.g. {"default": "app.ws.Echo"}.
    "SERVERPUSH_HANDLERS": {},
    # "app_label.model.field" paths never put in the log; None: the user model's password.
    "SERVERPUSH_PRIVATE_FIELDS": None,
    # Browser origins the push server accepts; None: ALLOWED_HOSTS and CSRF_TRUSTED_ORIGINS.
    "SERVERPUSH_ALLOWED_ORIGINS": None,
    # Per-connection limits: subscriptions a page may hold, bytes of one client
    # message (the connect payload included; refused before it is read, see
    # docs/security.md), how deep lists and objects may nest in one, client events
    # per second.
    "SERVERPUSH_MAX_SUBSCRIPTIONS": 200,
    "SERVERPUSH_MAX_MESSAGE_BYTES": 64 * 1024,
    "SERVERPUSH_MAX_MESSAGE_DEPTH": 32,
    "SERVERPUSH_CLIENT_EVENTS_PER_SECOND": 10,
    # Connections the push server serves at once (each live page holds one); more wait
    # until one closes. ``runserverpush`` raises its open-files limit to match.
    "SERVERPUSH_MAX_CONNECTIONS": 15_000,
    # Serializers running at once; a slow one holds up its own audience only.
    "SERVERPUSH_SERIALIZER_WORKERS": 16,
    # Under ASGI: threads that run connects, subscribes and handler calls (sync Django
    # code: update functions, session loading, handlers), never on the event loop.
    "SERVERPUSH_ASGI_THREADS": 16,
    # Seconds the log may hold an entry this push server has not read before it
    # reports not ready (/serverpush/ready) and restarts its tail.
    "SERVERPUSH_READY_LAG": 5.0,
    # Who may read /serverpush/stats and /serverpush/metrics: addresses or networks.
    "SERVERPUSH_METRICS_ALLOWED": ("127.0.0.1", "::1"),
    # Base URLs of the push servers the staff inspector shows, as this Django process
    # reaches them; None: the one runserverpush runs with these settings.
    "SERVERPUSH_NODES": None,
    # Dotted path of the class that signs and reads page tokens.
    "SERVERPUSH_TOKENIZER": "serverpush.tokens.SignedTokenizer",
    # Shared secret authenticating notifier messages; required off loopback.
    "SERVERPUSH_NOTIFIER_SECRET": None,
}


@cache
def get(name: str) -> Any:
    """Return the setting ``name``, or its serverpush default."""
    if name not in DEFAULTS:
        raise KeyError(f"{name!r} is not a serverpush setting; known: {', '.join(DEFAULTS)}")
    return getattr(settings, name, DEFAULTS[name])


def socketio_path() -> str:
    """The path the push server answers on: ``SERVERPUSH_URL`` if that is a path, else ``/socket.io/``."""
    url = get("SERVERPUSH_URL")
    path = url if isinstance(url, str) and url.startswith("/") else "/socket.io/"
    return path.rstrip("/") + "/"


T = TypeVar("T")
_derived: list[Any] = []


def derived(func: Callable[[], T]) -> Callable[[], T]:
    """Cache a value computed from settings (read on hot paths), cleared with them."""
    cached = cache(func)
    _derived.append(cached)
    return cached


@receiver(setting_changed)
def _clear_cache(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith("SERVERPUSH_"):
        get.cache_clear()
    for cached in _derived:  # they may read Django's own settings too (AUTH_USER_MODEL)
        cached.cache_clear()
