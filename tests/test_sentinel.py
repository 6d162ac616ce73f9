"""The Redis log through Redis Sentinel (``redis+sentinel://``), across a failover; Redis Cluster refused."""
from __future__ import annotations

import pytest

from tests.conftest import render, wait_until
from tests.ports import free_port
from tests.redis_fixture import RedisServer, SentinelServer
from tests.testapp.models import Note

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sentinel(redis_server, tmp_path):
    sentinel = SentinelServer(tmp_path, redis_server).start()
    yield sentinel
    sentinel.close()


@pytest.fixture
def replica(redis_server, tmp_path):
    replica = RedisServer(tmp_path, args=("--replicaof", "127.0.0.1", str(redis_server.port))).start()
    yield replica
    replica.close()


def test_pages_stay_live_through_sentinel_and_a_failover(redis_server, replica, sentinel, settings, start_push_server, listeners, browser_client):
    settings.SERVERPUSH_LOG = sentinel.url
    server = start_push_server(env={"SERVERPUSH_TEST_LOG": sentinel.url})
    note = Note.objects.create(title="via sentinel")
    listener = listeners().connect(server, render(browser_client, f"/t/note/{note.pk}/"))
    assert redis_server.client().xlen("serverpush:log") >= 2  # the epoch and the change, on the master

    note.title = "before the failover"
    note.save()
    listener.wait(lambda: any(u["data"]["title"] == "before the failover" for u in listener.live("note")), "a change through the master")

    wait_until(lambda: replica.client().info("replication").get("master_link_status") == "up", 10, "the replica in sync")
    wait_until(lambda: sentinel.client().execute_command("SENTINEL", "REPLICAS", SentinelServer.SERVICE), 15, "sentinel to know the replica")
    sentinel.client().execute_command("SENTINEL", "FAILOVER", SentinelServer.SERVICE)
    wait_until(lambda: sentinel.master_port() == replica.port, 20, "the replica promoted")

    def saved_after_failover() -> bool:
        note.title = "after the failover"
        note.save()  # a write that meets the demoted master fails; Django's request never does, the change is reported lost
        return replica.client().xlen("serverpush:log") > 0 and any(
            "after the failover" in str(fields) for _, fields in replica.client().xrevrange("serverpush:log", count=3)
        )

    wait_until(saved_after_failover, 20, "a change written to the new master")
    listener.wait(
        lambda: any(u["data"]["title"] == "after the failover" for u in listener.live("note")) or listener.named("serverpush_refresh") or listener.named("serverpush_resynced"),
        "the change, or a resync, after the failover", timeout=30,
    )


def test_redis_cluster_is_refused_with_a_clear_error(tmp_path, settings, caplog):
    node = RedisServer(tmp_path, args=("--cluster-enabled", "yes", "--cluster-port", str(free_port()), "--cluster-config-file", str(tmp_path / "nodes.conf"))).start()
    try:
        node.client().execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
        settings.SERVERPUSH_LOG = node.url
        with caplog.at_level("WARNING", logger="serverpush"):
            Note.objects.create(title="never written")  # the request goes on; the log says why
        assert "Redis Cluster is not supported by the Redis log" in caplog.text
        assert "redis+sentinel://" in caplog.text
    finally:
        node.close()
