"""Several push servers on one Redis log, and Redis trouble: no page is ever silently stale.

Real redis-server, real push-server processes (eventlet, gevent and threading), real
Socket.IO clients, and saves made while Redis is stopped, killed or restarted.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import ROOT, PushServer, wait_until
from tests.redis_fixture import RedisServer
from tests.tabs import Tab
from tests.testapp.models import Note

pytestmark = pytest.mark.django_db(transaction=True)

# A save never waits longer than SERVERPUSH_REDIS_TIMEOUT (0.25 s) plus this, on a busy machine.
SAVE_BOUND = 0.25 + 0.5


@pytest.fixture
def start_node(redis_log: RedisServer, start_push_server: Callable[..., PushServer]) -> Callable[..., PushServer]:
    """``start_node(async_mode=...)``: a push server tailing ``redis_log``."""
    return lambda async_mode="eventlet": start_push_server(env=redis_log.push_env(), async_mode=async_mode)


def titles(tab: Tab) -> dict[Any, Any]:
    return {pk: (data and data["title"]) for (name, pk), data in tab.state.items() if name == "registered"}


def note_title(tab: Tab, note: Note) -> str | None:
    data = tab.state.get(("note", note.pk))
    return data and data["title"]


def database_titles() -> dict[Any, str]:
    return dict(Note.objects.values_list("pk", "title"))


def save(note: Note, title: str) -> float:
    """Save and return how long it took."""
    started = time.monotonic()
    note.title = title
    note.save()
    return time.monotonic() - started


def consistent_or_refreshed(tab: Tab) -> bool:
    return bool(tab.refreshes) or titles(tab) == database_titles()


def test_two_nodes_each_deliver_every_change(start_node, browser_client):
    nodes = [start_node("eventlet"), start_node("gevent")]
    tabs = [Tab(browser_client, "/t/registered/").connect(node) for node in nodes for _ in range(3)]
    notes = [Note.objects.create(title="new") for _ in range(2)]
    for n in range(9):
        for note in notes:
            save(note, f"version {n}")
    for tab in tabs:
        tab.wait(lambda: titles(tab) == database_titles(), "every change on this node")
        assert not tab.refreshes
        for note in notes:  # a page that falls behind may skip versions (conflation), never go back to one
            seen = [m["data"]["title"] for m in tab.updates(replay=False) if m["pk"] == note.pk]
            assert seen[0] == "new" or seen[0].startswith("version ")
            versions = [int(title.split()[1]) for title in seen if title != "new"]
            assert versions == sorted(versions) and versions[-1] == 8, seen


def test_a_node_restarted_mid_stream_resumes_and_its_pages_replay(start_node, browser_client):
    restarted, steady = start_node("threading"), start_node("eventlet")
    notes = [Note.objects.create(title=f"note {n}") for n in range(3)]
    tab = Tab(browser_client, "/t/registered/").connect(restarted)
    other = Tab(browser_client, "/t/registered/").connect(steady)
    restarted.stop(kill=True)
    tab.disconnect()
    for n in range(10):
        save(notes[n % 3], f"while the node was down {n}")
    restarted.start()
    seen = len(tab.events)
    tab.connect(restarted)
    replayed = [data for name, data in tab.events[seen:] if name == "serverpush"]
    assert sorted(m["pk"] for m in replayed) == sorted(n.pk for n in notes)  # one message per object
    assert titles(tab) == database_titles()
    other.wait(lambda: titles(other) == database_titles(), "the steady node's live changes")
    assert restarted.stats()["redis_range_reads"] >= 1  # its window began after the page's cursor


def test_redis_killed_during_saves_leaves_no_page_silently_stale(start_node, redis_log, browser_client):
    nodes = [start_node("eventlet"), start_node("gevent")]
    notes = [Note.objects.create(title=f"note {n}") for n in range(3)]
    live = [Tab(browser_client, "/t/registered/").connect(node) for node in nodes for _ in range(2)]
    away = Tab(browser_client, "/t/registered/").connect(nodes[0])
    away.disconnect()
    durations = [save(notes[n % 3], f"before {n}") for n in range(10)]
    redis_log.kill()
    durations += [save(notes[n % 3], f"while Redis is dead {n}") for n in range(10)]
    redis_log.start()
    durations += [save(notes[n % 3], f"after {n}") for n in range(10)]
    assert max(durations) < SAVE_BOUND, durations
    for tab in live:
        tab.wait(lambda: consistent_or_refreshed(tab), "the page to be told, or to be right")
        assert [r["code"] for r in tab.refreshes] == ["log_restarted"]  # Redis came back empty: a new epoch
    away.connect(nodes[1])
    assert [r["code"] for r in away.refreshes] == ["log_restarted"]
    # Saves right after the restart were skipped (Redis had just failed) and reported
    # as lost; once that report is in, the log is whole again.
    wait_until(lambda: all(node.stats().get("lost_markers") for node in nodes), 10, "the loss report")
    fresh = Tab(browser_client, "/t/registered/").connect(nodes[1])
    save(notes[0], "once more")
    fresh.wait(lambda: titles(fresh).get(notes[0].pk) == "once more", "a change on the new epoch")
    for node in nodes:
        stats = node.stats()
        assert stats["redis_outages"] >= 1 and stats["redis_recoveries"] >= 1 and stats["log_restarts"] == 1
        assert "lost Redis" in node.log() and "is back after" in node.log()


def test_saves_while_redis_is_down_make_pages_resync_even_if_its_data_survives(start_node, redis_log, browser_client):
    node = start_node()
    note = Note.objects.create(title="start")
    live = Tab(browser_client, "/t/registered/").connect(node)
    away = Tab(browser_client, "/t/registered/").connect(node)
    away.disconnect()
    redis_log.stop(keep_data=True)  # same stream, same epoch when it returns
    assert save(note, "lost while Redis was down") < SAVE_BOUND
    redis_log.start()
    live.wait(lambda: live.refreshes, "serverpush_refresh after the loss was reported")
    assert [r["code"] for r in live.refreshes] == ["log_gap"]
    away.connect(node)
    assert [r["code"] for r in away.refreshes] == ["log_gap"]  # its replay crosses the lost marker
    assert node.stats()["lost_markers"] == 1 and node.stats().get("log_restarts", 0) == 0


def test_a_process_that_exits_while_redis_is_down_leaves_its_loss_to_be_reported(start_node, redis_log, browser_client):
    """A task worker saves while Redis is down and exits: the next process that uses the log reports the loss."""
    node = start_node()
    note = Note.objects.create(title="start")
    live = Tab(browser_client, "/t/registered/").connect(node)
    redis_log.stop(keep_data=True)
    code = f"from tests.testapp.models import Note; n = Note.objects.get(pk={note.pk}); n.title = 'saved by an exited worker'; n.save()"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "SERVERPUSH_TEST_LOG": redis_log.url}
    worker = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert worker.returncode == 0, worker.stderr
    assert "the next process using this log on this host will report them" in worker.stderr
    redis_log.start()
    assert live.refreshes == []
    browser_client.get("/t/registered/")  # a web process's next page takes the report over
    live.wait(lambda: live.refreshes, "serverpush_refresh once the report is made")
    assert [r["code"] for r in live.refreshes] == ["log_gap"]
    assert node.stats()["lost_markers"] == 1


def test_a_reconnect_storm_reads_each_range_from_redis_once(start_node, browser_client):
    node = start_node()
    notes = [Note.objects.create(title=f"note {n}") for n in range(40)]
    tabs = [Tab(browser_client, f"/t/note/{note.pk}/").connect(node) for note in notes]
    for note in notes:  # each tab's cursor ends at its own note's change: cursors spread over a range
        save(note, "seen")
    for tab, note in zip(tabs, notes):
        tab.wait(lambda: note_title(tab, note) == "seen", "the tab's own change")
    node.stop(kill=True)
    for tab in tabs:
        tab.disconnect()
    for note in notes:
        save(note, "missed")
    node.start()
    threads = [threading.Thread(target=tab.connect, args=(node,)) for tab in tabs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for tab, note in zip(tabs, notes):
        tab.wait(lambda: note_title(tab, note) == "missed", "every tab to replay its change")
    assert 1 <= node.stats()["redis_range_reads"] <= 3


def test_logout_revokes_the_sessions_pages_on_every_node(start_node, user_client, listeners):
    from tests.conftest import render

    nodes = [start_node("eventlet"), start_node("gevent")]
    alice, bob = user_client("alice"), user_client("bob")
    alice_tabs = [listeners().connect(node, render(alice, "/t/hello-fields/")) for node in nodes]
    bob_tabs = [listeners().connect(node, render(bob, "/t/hello-fields/")) for node in nodes]
    alice.get("/t/logout/")
    for tab in alice_tabs:
        tab.wait(lambda tab=tab: tab.named("serverpush_refresh"), "the revocation on this node")
        assert tab.named("serverpush_refresh")[0]["code"] == "session_revoked"
    bob.user.first_name = "still served"
    bob.user.save()
    for tab in bob_tabs:
        tab.wait(lambda tab=tab: tab.live("username_change"), "bob's update on this node")
        assert not tab.named("serverpush_refresh")
