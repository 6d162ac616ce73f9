"""Health, readiness and metrics of a real push server; a deaf tail is detected, counted and restarted."""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest
import socketio
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import render, wait_until
from tests.proxy import RedisProxy
from tests.testapp.models import Note

pytestmark = pytest.mark.django_db(transaction=True)


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def ready(server) -> tuple[int, dict[str, Any]]:
    status, body = get(f"{server.url}/serverpush/ready")
    return status, json.loads(body)


def metrics(server) -> dict[str, Any]:
    status, body = get(f"{server.url}/serverpush/metrics")
    assert status == 200, body
    return {family.name: family for family in text_string_to_metric_families(body)}


def sample(families: dict[str, Any], name: str, **labels: str) -> float:
    for family in families.values():
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return 0.0


def test_health_and_readiness_on_the_embedded_log(push_server):
    assert get(f"{push_server.url}/serverpush/health") == (200, '{"status": "ok"}')
    wait_until(lambda: ready(push_server)[0] == 200, what="a ready push server")
    assert ready(push_server)[1]["ready"] is True


def test_metrics_scrape_in_the_prometheus_text_format(push_server, listeners, browser_client):
    note = Note.objects.create(title="measured")
    listener = listeners().connect(push_server, render(browser_client, f"/t/note/{note.pk}/"))
    refused = socketio.Client(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        refused.connect(push_server.url, auth={"token": "forged", "cursor": None}, wait_timeout=10)
    note.title = "measured again"
    note.save()
    listener.wait(lambda: listener.live("note"), "the live update")

    families = wait_until(lambda: (m := metrics(push_server)) and sample(m, "serverpush_delivery_latency_seconds_count") >= 1 and m, what="a delivery measured")
    assert sample(families, "serverpush_pages_live") >= 1
    assert sample(families, "serverpush_connections") >= 1
    assert sample(families, "serverpush_serializations_total") >= 1
    assert sample(families, "serverpush_entries_total") >= 1
    assert sample(families, "serverpush_refused_total", code="token_invalid") >= 1
    assert sample(families, "serverpush_ready") == 1
    assert families["serverpush_delivery_latency_seconds"].type == "histogram"
    assert sample(families, "serverpush_delivery_latency_seconds_bucket", le="+Inf") == sample(families, "serverpush_delivery_latency_seconds_count")
    for name in ("serverpush_replayed", "serverpush_healed", "serverpush_refreshes", "serverpush_serializer_errors", "serverpush_tail_lag_seconds"):
        assert name in families


def test_who_may_read_stats_and_metrics_is_a_setting(start_push_server):
    server = start_push_server(settings={"SERVERPUSH_METRICS_ALLOWED": ["192.0.2.0/24"]})
    assert get(f"{server.url}/serverpush/metrics")[0] == 403
    assert get(f"{server.url}/serverpush/stats")[0] == 403
    assert get(f"{server.url}/serverpush/health")[0] == 200
    wait_until(lambda: ready(server) == (200, {"ready": True}), what="readiness without its details")


@pytest.fixture
def proxy(redis_server):
    proxy = RedisProxy(redis_server.port)
    yield proxy
    proxy.close()


@pytest.mark.parametrize("async_mode", ["eventlet", "threading"])
def test_a_deaf_tail_turns_not_ready_is_counted_logged_and_restarted(async_mode, redis_log, proxy, start_push_server, listeners, browser_client):
    server = start_push_server(env={"SERVERPUSH_TEST_LOG": proxy.url, "SERVERPUSH_TEST_OVERRIDES": json.dumps({"SERVERPUSH_READY_LAG": 0.5})}, async_mode=async_mode)
    wait_until(lambda: ready(server)[0] == 200, 20, "the push server tailing Redis through the proxy")
    note = Note.objects.create(title="before")
    listener = listeners().connect(server, render(browser_client, f"/t/note/{note.pk}/"))
    wait_until(lambda: proxy.deafen() >= 1, what="the tail's connection through the proxy")

    note.title = "while deaf"
    note.save()  # Django writes to Redis directly; the tail never hears of it
    status, body = wait_until(lambda: (r := ready(server))[0] == 503 and r, 10, "readiness to turn false")
    assert "has not read for" in body["reason"]
    wait_until(lambda: "the tail stopped hearing the log" in server.log(), 10, "the deaf tail in the log")
    listener.wait(lambda: any(u["data"]["title"] == "while deaf" for u in listener.live("note")), "the change, once the tail is restarted", timeout=20)
    wait_until(lambda: ready(server)[0] == 200, 20, "ready again")
    assert server.stats()["tail_deaf"] >= 1
    # The restart healed it, well before the read's own timeout (BLOCK_MS + TIMEOUT) would have.
    assert "lost Redis" not in server.log()
    assert sample(metrics(server), "serverpush_tail_deaf_total") >= 1
