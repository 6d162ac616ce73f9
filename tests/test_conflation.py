"""An audience that is behind gets the latest state of each object, once; messages are never conflated."""
from __future__ import annotations

from collections import deque

import pytest

import serverpush
from serverpush.entries import Entry
from serverpush.server.conflation import drop_superseded
from tests.conftest import render, wait_until
from tests.testapp.models import Note

pytestmark = pytest.mark.django_db(transaction=True)


def titles(tab, name):
    return [u["data"]["title"] for u in tab.updates(name)]


def change(pk, op, title):
    return Entry("testapp.note", pk, op, {"title": title}, 0.0, f"p:{title}")


def test_updates_a_later_entry_of_the_same_object_supersedes_are_dropped_the_rest_keep_their_order():
    pending = deque((n, change(pk, op, title), None) for n, (pk, op, title) in enumerate([
        (1, "create", "a0"), (1, "update", "a1"), (2, "update", "b1"), (1, "update", "a2"),
        (2, "update", "b2"), (3, "update", "c1"), (2, "delete", "b3"), (1, "update", "a3"),
    ]))
    dropped = drop_superseded(pending)
    assert [e.fields["title"] for e in dropped] == ["b2", "a2", "b1", "a1"]
    assert [entry.fields["title"] for _, entry, _ in pending] == ["a0", "c1", "b3", "a3"]


def test_an_audience_behind_gets_the_latest_state_serialized_once_not_a_backlog(start_push_server, listeners, browser_client):
    server = start_push_server()
    note = Note.objects.create(title="start")
    tab = listeners().connect(server, render(browser_client, f"/t/gated/{note.pk}/"), cursor=None)
    for title in ["gate: closed", "v1", "v2", "v3", "v4", "v5"]:  # the gated audience is stuck on the first
        note.title = title
        note.save()
        tab.wait(lambda title=title: title in titles(tab, "prompt"), f"{title!r} queued behind the gate")
    assert tab.live("gated") == []
    before = server.stats()
    Note.objects.create(title="open the gate")
    tab.wait(lambda: titles(tab, "gated")[-1:] == ["v5"], "the latest state once the gate opens")
    wait_until(lambda: server.stats()["serializations"] - before["serializations"] >= 2, what="the serializations counted")
    assert titles(tab, "gated") == ["gate: closed", "v5"]
    after = server.stats()
    assert after["serializations"] - before["serializations"] == 2  # the blocked one, then one for v1..v5
    assert after["conflated"] - before.get("conflated", 0) == 4
    assert [u["id"] for u in tab.updates("gated")] == sorted(u["id"] for u in tab.updates("gated"))


def test_messages_are_never_conflated_and_keep_their_order(start_push_server, listeners, browser_client):
    server = start_push_server()
    tab = listeners().connect(server, render(browser_client, "/t/inbox/"), cursor=None)
    for i in range(30):
        serverpush.notify_all({"mark": "same", "n": i})
    tab.wait(lambda: len(tab.updates("message")) >= 30, "every message")
    assert [u["data"]["n"] for u in tab.updates("message")] == list(range(30))
