"""System checks for configuration mistakes, each with a stable id and a hint."""
from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Warning, register
from django.utils.module_loading import import_string

from serverpush import conf, fdlimit
from serverpush.log import REDIS_SCHEMES, log_class
from serverpush.log.notifier import is_loopback

CONTEXT_PROCESSOR = "serverpush.client.context_processor"
MIDDLEWARE = "serverpush.middleware.ServerPushMiddleware"
REQUEST_PROCESSOR = "django.template.context_processors.request"
ASYNC_MODES = ("eventlet", "gevent", "threading", "asgi")


@register()
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    problems: list[Any] = []
    for check in (_templates, _globals, _notifier, _tokenizer, _origins, _async_mode, _log, _ports, _max_connections, _handlers, _session_cookie):
        problems.extend(check())
    return problems


def _templates() -> list[Any]:
    processors = [p for t in settings.TEMPLATES for p in t.get("OPTIONS", {}).get("context_processors", [])]
    problems = []
    if CONTEXT_PROCESSOR not in processors:
        problems.append(Warning(
            "serverpush's context processor is not installed: templates get no generated_timestamp or page token.",
            hint=f"Add {CONTEXT_PROCESSOR!r} to TEMPLATES[0]['OPTIONS']['context_processors'].",
            id="serverpush.W001",
        ))
    if REQUEST_PROCESSOR not in processors:
        problems.append(Warning(
            "{% serverpush_script %} needs the request in the template context.",
            hint=f"Add {REQUEST_PROCESSOR!r} to TEMPLATES[0]['OPTIONS']['context_processors'].",
            id="serverpush.W003",
        ))
    return problems


def _globals() -> list[Any]:
    problems = []
    hint = "Use the dotted path of a function f(request) that returns a list of specs."
    for path in conf.get("SERVERPUSH_GLOBALS"):
        try:
            func = import_string(path)
        except ImportError as exc:
            problems.append(Error(f"SERVERPUSH_GLOBALS names {path!r}, which cannot be imported: {exc}", hint=hint, id="serverpush.E001"))
            continue
        if not callable(func):
            problems.append(Error(f"SERVERPUSH_GLOBALS names {path!r}, which is not callable.", hint=hint, id="serverpush.E002"))
    return problems


def _notifier() -> list[Any]:
    host = conf.get("SERVERPUSH_NOTIFIER_HOST")
    if is_loopback(host) or conf.get("SERVERPUSH_NOTIFIER_SECRET"):
        return []
    return [Error(
        f"SERVERPUSH_NOTIFIER_HOST = {host!r} is not a loopback address and SERVERPUSH_NOTIFIER_SECRET is not set: anyone who reaches the port could push to every page.",
        hint="Set SERVERPUSH_NOTIFIER_SECRET to a long random string (the same in every Django process and push server), or keep the notifier on 127.0.0.1.",
        id="serverpush.E003",
    )]


def _tokenizer() -> list[Any]:
    path = conf.get("SERVERPUSH_TOKENIZER")
    try:
        tokenizer = import_string(path)
    except ImportError as exc:
        return [Error(f"SERVERPUSH_TOKENIZER = {path!r} cannot be imported: {exc}", hint="Use the dotted path of a class with dumps(payload) and loads(token, max_age).", id="serverpush.E004")]
    if not all(callable(getattr(tokenizer, name, None)) for name in ("dumps", "loads")):
        return [Error(f"SERVERPUSH_TOKENIZER = {path!r} lacks dumps() or loads().", hint="A tokenizer class has dumps(payload) -> str and loads(token, max_age) -> dict, raising serverpush.tokens.TokenError.", id="serverpush.E004")]
    return []


def _origins() -> list[Any]:
    if "*" in (conf.get("SERVERPUSH_ALLOWED_ORIGINS") or ()):
        return [Warning(
            "SERVERPUSH_ALLOWED_ORIGINS allows every origin: any site can open connections to the push server with your users' cookies.",
            hint="List the origins your pages are served from, or leave the setting None to follow ALLOWED_HOSTS and CSRF_TRUSTED_ORIGINS.",
            id="serverpush.W002",
        )]
    return []


def _async_mode() -> list[Any]:
    mode = conf.get("SERVERPUSH_ASYNC_MODE")
    if mode in ASYNC_MODES:
        return []
    return [Error(f"SERVERPUSH_ASYNC_MODE = {mode!r} is not supported.", hint=f"Use one of {', '.join(ASYNC_MODES)}.", id="serverpush.E005")]


def _log() -> list[Any]:
    url = conf.get("SERVERPUSH_LOG")
    if url == "memory" or log_class(url) is not None:
        return []
    if not isinstance(url, str) or not url.startswith(REDIS_SCHEMES):
        return [Error(f"SERVERPUSH_LOG = {url!r} is not a known log.", hint="Use 'memory' (the default), a Redis URL such as 'redis://127.0.0.1:6379/0', or the dotted path of a serverpush.log.Log subclass.", id="serverpush.E006")]
    try:
        import redis  # noqa: F401
    except ImportError:
        return [Error("SERVERPUSH_LOG names Redis but the 'redis' package is not installed.", hint="pip install 'redis>=5'.", id="serverpush.E007")]
    if MIDDLEWARE not in settings.MIDDLEWARE:
        return [Warning(
            "SERVERPUSH_LOG is Redis but serverpush's middleware is not installed: page cursors are derived from the clock, not read from the log.",
            hint=f"Add {MIDDLEWARE!r} to MIDDLEWARE: one Redis round trip per live page gives it an exact log position (docs/redis.md).",
            id="serverpush.W004",
        )]
    return []


def _ports() -> list[Any]:
    if conf.get("SERVERPUSH_PORT") != conf.get("SERVERPUSH_NOTIFIER_PORT"):
        return []
    return [Error("SERVERPUSH_PORT and SERVERPUSH_NOTIFIER_PORT are the same port.", hint="Give the notifier its own port (8014 by default).", id="serverpush.E008")]


def _max_connections() -> list[Any]:
    limit = conf.get("SERVERPUSH_MAX_CONNECTIONS")
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        return [Error(
            f"SERVERPUSH_MAX_CONNECTIONS = {limit!r} is not a positive whole number.",
            hint="Set it to the connections one push server should hold at once (each live page holds one), e.g. 15000, the default.",
            id="serverpush.E009",
        )]
    reachable = fdlimit.reachable()
    if reachable is not None and reachable < fdlimit.needed():
        return [Warning(
            f"SERVERPUSH_MAX_CONNECTIONS = {limit!r} needs about {fdlimit.needed()} open files, but this process may open at most {reachable} (its hard RLIMIT_NOFILE): "
            f"a push server run this way fails to accept connections past about {max(reachable - fdlimit.HEADROOM, 0)}.",
            hint=fdlimit.FIX,
            id="serverpush.W006",
        )]
    return []


def _handlers() -> list[Any]:
    from django.core.exceptions import ImproperlyConfigured

    from serverpush.handlers import handler_classes

    try:
        handler_classes()
    except ImproperlyConfigured as exc:
        return [Error(str(exc), hint="SERVERPUSH_HANDLERS maps a namespace to the dotted path of a serverpush.handlers.WebSocketHandler subclass, e.g. {'default': 'myproject.ws_handlers.RandomCounter'}.", id="serverpush.E020")]
    return []


def _session_cookie() -> list[Any]:
    """A push server on another host than the site never gets the session cookie, unless its domain covers both."""
    url = conf.get("SERVERPUSH_URL")
    host = urlsplit(url).hostname if isinstance(url, str) and "//" in url else None
    if not host:
        return []
    domain = settings.SESSION_COOKIE_DOMAIN
    if domain is None:
        if host in settings.ALLOWED_HOSTS:
            return []  # the site's own host: the cookie reaches any port of it
        reason = "which is not in ALLOWED_HOSTS, and SESSION_COOKIE_DOMAIN is None: the session cookie only goes back to the site's own host"
    else:
        bare = domain.lstrip(".").lower()
        if host == bare or host.endswith("." + bare):
            return []
        reason = f"which SESSION_COOKIE_DOMAIN = {domain!r} does not cover"
    return [Warning(
        f"SERVERPUSH_URL = {url!r} is on host {host!r}, {reason}. The push server never gets the session "
        "cookie, so it refuses signed-in users' pages (session_mismatch), which then reload.",
        hint=(f"Serve the push server on the site's own origin behind the same proxy (docs/deployment.md), "
              f"or set SESSION_COOKIE_DOMAIN to a parent domain of both hosts, e.g. '.{host.partition('.')[2] or host}'."),
        id="serverpush.W010",
    )]
