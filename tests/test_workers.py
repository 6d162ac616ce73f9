"""A slow serializer holds up its own audience only, and never makes a page go stale."""
from __future__ import annotations

import pytest

from tests.conftest import render, wait_until
from tests.testapp.models import Note

pytestmark = pytest.mark.django_db(transaction=True)


def titles(tab, name):
    return [u["data"]["title"] for u in tab.updates(name)]


def test_a_blocked_serializer_does_not_hold_up_other_audiences(start_push_server, listeners, browser_client):
    server = start_push_server()
    note = Note.objects.create(title="start")
    tab = listeners().connect(server, render(browser_client, f"/t/gated/{note.pk}/"), cursor=None)
    note.title = "gate closed"
    note.save()
    tab.wait(lambda: "gate closed" in titles(tab, "prompt"), "the prompt spec while the gated one blocks")
    assert tab.live("gated") == []
    Note.objects.create(title="open the gate")
    tab.wait(lambda: titles(tab, "gated") == ["gate closed"], "the gated spec once the gate opens")


def test_a_page_joining_behind_a_slow_serializer_never_goes_stale(memory_log, start_push_server, listeners, browser_client):
    server = start_push_server()
    note = Note.objects.create(title="start")
    first = listeners().connect(server, render(browser_client, f"/t/gated/{note.pk}/"), cursor=None)
    note.title = "gate: old state"
    note.save()
    first.wait(lambda: "gate: old state" in titles(first, "prompt"))
    note.title = "new state"
    note.save()  # queued behind the blocked one, in the same group
    first.wait(lambda: "new state" in titles(first, "prompt"))
    second = listeners().connect(server, render(browser_client, f"/t/gated/{note.pk}/"))
    assert titles(second, "gated")[-1] == "new state"  # replayed, compacted to the latest state
    Note.objects.create(title="open the gate")
    first.wait(lambda: titles(first, "gated") == ["gate: old state", "new state"], "the blocked group to drain in order")
    wait_until(lambda: server.stats()["serializations"] >= 4, what="the workers to finish")
    assert titles(second, "gated")[-1] == "new state"
    assert "gate: old state" not in [u["data"]["title"] for u in second.live("gated")]


def test_a_serializer_raising_for_one_audience_leaves_the_others_served(start_push_server, listeners, user_client):
    server = start_push_server()
    note = Note.objects.create(title="for everyone")
    alice, bob = user_client("alice"), user_client("bob")
    alice_tab = listeners().connect(server, render(alice, f"/t/picky/{note.pk}/"), cursor=None)
    bob_tab = listeners().connect(server, render(bob, f"/t/picky/{note.pk}/"), cursor=None)
    note.title = "changed"
    note.save()
    alice_tab.wait(lambda: alice_tab.live("picky"))
    assert alice_tab.live("picky")[0]["data"] == {"title": "changed", "for": "alice"}
    wait_until(lambda: server.stats().get("serializer_errors", 0) == 1, what="bob's failure counted")
    assert bob_tab.live("picky") == []
    assert "serializer of update function of tests.testapp.views.picky, spec 0 ('picky') failed on testapp.note" in server.log()
    assert "for user bob" in server.log()


def test_a_page_that_leaves_while_a_change_is_still_owed_gets_it_on_resume(start_push_server, listeners, browser_client):
    server = start_push_server()
    note = Note.objects.create(title="start")
    page = render(browser_client, f"/t/gated/{note.pk}/")
    tab = listeners().connect(server, page, cursor=None)
    note.title = "gate: owed to the gated spec"
    note.save()
    tab.wait(lambda: "gate: owed to the gated spec" in titles(tab, "prompt"), "the fast spec")
    cursor = tab.updates("prompt")[-1]["cursor"]
    assert cursor != tab.updates("prompt")[-1]["id"]  # the gated spec still owes this entry
    tab.close()
    Note.objects.create(title="open the gate")
    back = listeners().connect(server, page, cursor=cursor)
    assert "gate: owed to the gated spec" in titles(back, "gated")
