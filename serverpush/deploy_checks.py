"""Checks of ``manage.py check --deploy``: a Redis log that can lose entries silently.

They ask Redis itself (one short connection), which ordinary checks never do.
"""
from __future__ import annotations

from typing import Any

from django.core.checks import Warning, register

from serverpush import conf
from serverpush.log import REDIS_SCHEMES

TIMEOUT = 2.0


@register(deploy=True)
def check_redis(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    url = conf.get("SERVERPUSH_LOG")
    if not isinstance(url, str) or not url.startswith(REDIS_SCHEMES):
        return []
    import redis

    from serverpush.log.stream import connect

    try:
        client = connect(url, TIMEOUT, TIMEOUT)
        policy = client.config_get("maxmemory-policy").get("maxmemory-policy")
        persistence = client.config_get("appendonly").get("appendonly") == "yes" or bool(client.config_get("save").get("save"))
    except redis.ResponseError:
        return []  # managed Redis often forbids CONFIG: nothing to tell
    except redis.RedisError as exc:
        return [Warning(f"Could not reach the Redis of SERVERPUSH_LOG to check its configuration: {exc}", hint="Run `manage.py check --deploy` where Redis is reachable.", id="serverpush.W013")]
    problems = []
    if policy != "noeviction":
        problems.append(Warning(
            f"Redis evicts keys under memory pressure (maxmemory-policy {policy!r}): it may drop the log's stream or its epoch, and every page resyncs.",
            hint="Set maxmemory-policy noeviction on the Redis of SERVERPUSH_LOG (docs/deployment.md); the stream is bounded by SERVERPUSH_REDIS_MAXLEN.",
            id="serverpush.W011",
        ))
    if not persistence:
        problems.append(Warning(
            "Redis keeps the log in memory only (no AOF, no RDB snapshots): a Redis restart loses it, and every open page resyncs at once.",
            hint="Turn on appendonly yes (or RDB snapshots) on the Redis of SERVERPUSH_LOG (docs/deployment.md).",
            id="serverpush.W012",
        ))
    return problems
