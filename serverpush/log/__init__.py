"""The log of committed changes, and the backend the settings select."""
from __future__ import annotations

from functools import cache

from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from serverpush import conf
from serverpush.log.base import BadCursor, Gap, Log, Unavailable

__all__ = ["BadCursor", "Gap", "Log", "Unavailable", "get_log", "log_class"]

REDIS_SCHEMES = ("redis://", "rediss://", "unix://", "redis+sentinel://")


@cache
def get_log() -> Log:
    """The process-wide log backend named by ``SERVERPUSH_LOG``."""
    url = conf.get("SERVERPUSH_LOG")
    if url == "memory":
        from serverpush.log.memory import MemoryLog

        return MemoryLog()
    if isinstance(url, str) and url.startswith(REDIS_SCHEMES):
        from serverpush.log.redis import RedisLog

        return RedisLog(url)
    backend = log_class(url)
    if backend is None:
        raise ImproperlyConfigured(f"SERVERPUSH_LOG = {url!r} is not a known log; use 'memory', a Redis URL such as 'redis://127.0.0.1:6379/0', or the dotted path of a Log subclass.")
    return backend()


def log_class(path: object) -> type[Log] | None:
    """The :class:`Log` subclass ``path`` names (``"serverpush.testing.RecordingLog"``), or None."""
    if not isinstance(path, str) or "." not in path or "://" in path:
        return None
    try:
        found = import_string(path)
    except ImportError:
        return None
    return found if isinstance(found, type) and issubclass(found, Log) else None


@receiver(setting_changed)
def _reset(*, setting: str, **kwargs: object) -> None:
    if setting.startswith("SERVERPUSH_") and get_log.cache_info().currsize:
        get_log().close()
        get_log.cache_clear()
