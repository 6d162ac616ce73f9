"""The push server's HTTP endpoints for operators: health, readiness, stats, Prometheus metrics.

- ``/serverpush/health``: liveness, 200 while the process serves.
- ``/serverpush/ready``: 200 when the log is reachable and the tail keeps up with
  it, else 503 (:mod:`serverpush.server.health`); the reason only to allowed clients.
- ``/serverpush/stats``: every counter, JSON.
- ``/serverpush/metrics``: the Prometheus text format (``pip install "django-serverpush[metrics]"``).
- ``/serverpush/inspect``: pages, subscriptions, recent entries and problems, JSON, for
  the staff inspector (``serverpush.inspector``).

Stats, metrics, the inspector's data and the reason of readiness go only to the addresses of
``SERVERPUSH_METRICS_ALLOWED`` (loopback by default).
"""
from __future__ import annotations

import ipaddress
import json
import os
import socket
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from serverpush import conf, problems
from serverpush.server.health import latency
from serverpush.stats import stats

if TYPE_CHECKING:
    from serverpush.server.node import PushServer

PREFIX = "/serverpush/"
JSON = "application/json"
Answer = tuple[str, str, bytes]  # status line, content type, body

# Counters of serverpush.stats exported under their own names; the rest go to serverpush_events_total{event}.
COUNTERS = {
    "log_entries": "entries taken from the log",
    "entries": "entries routed to pages",
    "serializations": "payloads serialized (once per audience)",
    "replayed": "messages replayed to reconnecting pages",
    "healed": "pages sent the current state after a gap",
    "serializer_errors": "serializers that raised or returned what is not JSON",
    "update_function_errors": "update functions that raised",
    "spec_errors": "specs skipped as malformed",
    "tail_deaf": "times the tail was found not hearing the log, and restarted",
}
LABELLED = {"refused": "connections refused, by code", "refreshes": "pages told to reload, by code"}


def allowed(remote_addr: str | None) -> bool:
    """Whether ``remote_addr`` may read stats and metrics (``SERVERPUSH_METRICS_ALLOWED``)."""
    try:
        address = ipaddress.ip_address(remote_addr or "")
    except ValueError:
        return False
    address = getattr(address, "ipv4_mapped", None) or address
    return any(address in network for network in _networks())


@conf.derived
def _networks() -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(n, strict=False) for n in conf.get("SERVERPUSH_METRICS_ALLOWED"))


def answer(server: PushServer, path: str, remote_addr: str | None) -> Answer | None:
    """The response to ``path`` if it is one of these endpoints, else None (the Socket.IO app's)."""
    if not path.startswith(PREFIX):
        return None
    name = path[len(PREFIX):]
    if name == "health":
        return "200 OK", JSON, b'{"status": "ok"}'
    if name == "ready":
        state = server.tail_watch.state
        body = {"ready": state.ready, "reason": state.reason, "lag_seconds": round(state.lag_seconds, 3)} if allowed(remote_addr) else {"ready": state.ready}
        return ("200 OK" if state.ready else "503 Service Unavailable"), JSON, json.dumps(body).encode()
    if name in ("stats", "metrics", "inspect") and not allowed(remote_addr):
        return "403 Forbidden", "text/plain", b"not allowed from this address (SERVERPUSH_METRICS_ALLOWED)\n"
    if name == "stats":
        return "200 OK", JSON, json.dumps(server.snapshot()).encode()
    if name == "metrics":
        return metrics(server)
    if name == "inspect":
        return "200 OK", JSON, json.dumps(inspect(server), default=str).encode()
    return None


def inspect(server: PushServer) -> dict[str, Any]:
    """This node, its pages and their subscriptions, recent entries and their routing, problems: for the inspector."""
    with server.index.lock:
        pages = [{**server.hub.pages.get(sid, {}), "sid": sid, "specs": [_spec(server.index.groups[room]) for room in rooms if room in server.index.groups]} for sid, rooms in server.index.sids.items()]
        entries = list(server.index.recent)
    state = server.tail_watch.state
    node = {
        "id": f"{socket.gethostname()}:{os.getpid()}", "async_mode": server.async_mode, "log": server.log.identity(),
        "ready": state.ready, "reason": state.reason, "lag_seconds": round(state.lag_seconds, 3), "started": server.started,
    }
    return {"node": node, "pages": pages, "entries": entries[::-1], "problems": problems.latest()[::-1], "stats": server.snapshot()}


def _spec(group: Any) -> dict[str, Any]:
    spec = group.spec
    return {
        "name": spec.name, "model": spec.label, "params": {k: repr(v) for k, v in spec.params.lookups.items()},
        "serializer": type(spec.serializer).__name__, "vary": sorted(spec.vary), "audience": group.room, "audience_pages": len(group.members),
    }


def metrics(server: PushServer) -> Answer:
    try:
        from prometheus_client import CollectorRegistry, generate_latest
        from prometheus_client.exposition import CONTENT_TYPE_LATEST
    except ImportError:
        return "501 Not Implemented", "text/plain", b'metrics need prometheus-client: pip install "django-serverpush[metrics]"\n'
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(server))
    return "200 OK", CONTENT_TYPE_LATEST, generate_latest(registry)


class _Collector:
    def __init__(self, server: PushServer) -> None:
        self.server = server

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

        server, counts = self.server, dict(stats)
        yield GaugeMetricFamily("serverpush_connections", "pages connected to this node", value=len(server.hub.identities))
        yield GaugeMetricFamily("serverpush_pages_live", "pages subscribed and receiving changes", value=len(server.index.sids))
        yield GaugeMetricFamily("serverpush_audiences", "groups of pages sharing one serialization", value=len(server.index.groups))
        state = server.tail_watch.state
        yield GaugeMetricFamily("serverpush_ready", "1 when the log is reachable and the tail keeps up", value=int(state.ready))
        yield GaugeMetricFamily("serverpush_tail_lag_seconds", "how long the log has held an entry this node has not read", value=state.lag_seconds)
        for key, help_text in COUNTERS.items():
            yield CounterMetricFamily(f"serverpush_{key}", help_text, value=counts.get(key, 0))
        for key, help_text in LABELLED.items():
            family = CounterMetricFamily(f"serverpush_{key}", help_text, labels=["code"])
            for name, value in counts.items():
                if name.startswith(f"{key}."):
                    family.add_metric([name.partition(".")[2]], value)
            yield family
        others = CounterMetricFamily("serverpush_events", "every other counter of /serverpush/stats", labels=["event"])
        for name, value in sorted(counts.items()):
            if name not in COUNTERS and name.partition(".")[0] not in LABELLED:
                others.add_metric([name], value)
        yield others
        buckets, total = latency.cumulative()
        yield HistogramMetricFamily("serverpush_delivery_latency_seconds", "from a change's commit to its emission to live pages", buckets=buckets, sum_value=total)


def with_monitoring(app: Callable, server: PushServer) -> Callable:
    """The WSGI ``app`` with the endpoints above in front of it."""

    def wsgi(environ: dict[str, Any], start_response: Callable) -> Any:
        found = answer(server, environ.get("PATH_INFO", ""), environ.get("REMOTE_ADDR"))
        if found is None:
            return app(environ, start_response)
        status, content_type, body = found
        start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body))), ("Cache-Control", "no-store")])
        return [body]

    return wsgi
