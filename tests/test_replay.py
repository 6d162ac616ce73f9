"""Replay end to end, on both logs: what a page missed reaches it, or it is told to resync.

Each test runs on the embedded (memory) log and on a Redis log, with a real push
server and real Socket.IO clients (:class:`tests.tabs.Tab`).
"""
from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.db import connections
from django.test import Client

from tests.conftest import PushServer
from tests.tabs import Tab
from tests.testapp.models import Note

pytestmark = pytest.mark.django_db(transaction=True)
EVERY_ADAPTER = True  # replay and heal, proven under both adapters


def titles(tab: Tab, name: str = "registered") -> dict[Any, Any]:
    return {pk: (data and data["title"]) for (n, pk), data in tab.state.items() if n == name}


def witness(client: Any, server: PushServer) -> Tab:
    """A live-only tab (no replay): it proves the server went on delivering."""
    tab = Tab(client, "/t/registered/")
    tab.cursor = None
    return tab.connect(server)


def database_titles() -> dict[Any, str]:
    return dict(Note.objects.values_list("pk", "title"))


def save(note: Note, title: str) -> None:
    note.title = title
    note.save()


def test_a_change_committed_between_render_and_connect_is_delivered(start_backend, browser_client):
    backend = start_backend()
    note = Note.objects.create(title="before")
    tab = Tab(browser_client, f"/t/note/{note.pk}/")
    with backend.server.landing():
        save(note, "between render and connect")
    tab.connect(backend.server)
    assert tab.state[("note", note.pk)]["title"] == "between render and connect"
    assert tab.updates(replay=True)


def test_fifty_changes_while_away_replay_as_one_message_per_object(start_backend, browser_client):
    backend = start_backend()
    notes = [Note.objects.create(title=f"note {n}") for n in range(5)]
    pks = [n.pk for n in notes]
    tab = Tab(browser_client, "/t/registered/").connect(backend.server)
    tab.disconnect()
    with backend.server.landing(50):
        for n in range(47):
            save(notes[n % 5], f"version {n}")
        created = Note.objects.create(title="created while away")
        save(created, "created, then changed")
        deleted_pk = notes[0].pk
        notes[0].delete()
    seen = len(tab.events)
    tab.connect(backend.server)
    replayed = [data for name, data in tab.events[seen:] if name == "serverpush"]
    assert sorted(m["pk"] for m in replayed) == sorted([*pks, created.pk])
    ops = {m["pk"]: m["op"] for m in replayed}
    assert ops[deleted_pk] == "delete" and ops[created.pk] == "create"
    assert titles(tab) == {**database_titles(), deleted_pk: None}


def test_a_trimmed_log_yields_exactly_one_refresh(start_backend, browser_client):
    backend = start_backend(size=20)
    note = Note.objects.create(title="start")
    tab = Tab(browser_client, "/t/registered/").connect(backend.server)
    tab.disconnect()
    with backend.server.landing(120):
        for n in range(120):
            save(note, f"version {n}")
    seen = len(tab.events)
    tab.connect(backend.server)
    other = witness(browser_client, backend.server)
    save(note, "after the refresh")
    other.wait(lambda: titles(other).get(note.pk) == "after the refresh", "the witness's update")
    assert [name for name, _ in tab.events[seen:]] == ["serverpush_refresh"]
    assert tab.refreshes[0]["code"] == "log_gap"


def test_a_restarted_log_yields_exactly_one_refresh(start_backend, browser_client):
    backend = start_backend()
    note = Note.objects.create(title="start")
    live = Tab(browser_client, "/t/registered/").connect(backend.server)
    away = Tab(browser_client, "/t/registered/").connect(backend.server)
    away.disconnect()
    save(note, "before the restart")
    live.wait(lambda: titles(live).get(note.pk) == "before the restart")
    backend.restart_log()
    save(note, "after the restart")
    if backend.redis is None:  # the push server went away with its log: pages reconnect
        live.disconnect()
        live.connect(backend.server)
    live.wait(lambda: live.refreshes, "serverpush_refresh")
    away.connect(backend.server)
    other = witness(browser_client, backend.server)
    save(note, "witnessed")
    other.wait(lambda: titles(other).get(note.pk) == "witnessed", "the witness's update")
    for tab in (live, away):
        assert [r["code"] for r in tab.refreshes] == ["log_restarted"]
    assert titles(live).get(note.pk) == "before the restart"


# Hundreds of iterations by default (CI); SERVERPUSH_RACE_ITERATIONS=3000 for a long soak.
RACE_ITERATIONS = int(os.environ.get("SERVERPUSH_RACE_ITERATIONS", "300"))
RACE_WORKERS = 6


def title(tab: Tab, note: Note) -> str | None:
    data = tab.state.get(("note", note.pk))
    return data and data["title"]


@contextmanager
def racing_saves(pk: int, label: str) -> Iterator[None]:
    """Commit three changes to note ``pk`` from another thread while the block runs."""

    def write() -> None:
        note = Note.objects.get(pk=pk)
        for n in range(3):
            save(note, f"{label} {n}")
        connections.close_all()

    writer = threading.Thread(target=write)
    writer.start()
    try:
        yield
    finally:
        writer.join(30)


def race(server: PushServer, note: Note, rounds: int) -> None:
    """render → commit → connect → disconnect → commit → reconnect, ``rounds`` times, on one note.

    More commits race each connect, so some land while the server switches from
    replay to live. Whatever the timing, the tab must end on the database's state.
    """
    client = Client(HTTP_HOST="localhost")
    try:
        for n in range(rounds):
            tab = Tab(client, f"/t/note/{note.pk}/")
            save(note, f"{n} before connect")
            with racing_saves(note.pk, f"{n} connecting"):
                tab.connect(server, wait=n % 2 == 0)  # odd rounds leave before the replay is over
            tab.disconnect()
            save(note, f"{n} while away")
            with racing_saves(note.pk, f"{n} reconnecting"):
                tab.connect(server)
            final = Note.objects.get(pk=note.pk).title
            # Replayed, or live just after: the log may not have reached the push server yet.
            tab.wait(lambda: title(tab, note) == final, f"round {n}: the tab to reach {final!r}")
            assert not tab.refreshes, f"round {n}: refreshed {tab.refreshes}"
            tab.disconnect()
    finally:
        connections.close_all()


def test_the_render_commit_reconnect_race_never_leaves_a_page_stale(start_backend):
    backend = start_backend(async_mode="threading")  # truly parallel: the widest race windows
    notes = [Note.objects.create(title="start") for _ in range(RACE_WORKERS)]
    errors: list[BaseException] = []

    def run(note: Note) -> None:
        try:
            race(backend.server, note, RACE_ITERATIONS // RACE_WORKERS)
        except BaseException as exc:  # reported by the test, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(note,)) for note in notes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert not errors, errors[0]
