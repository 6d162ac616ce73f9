"""Serialize once per audience, not once per connection; refusals; other async modes."""
from __future__ import annotations

import pytest

from tests.conftest import render, wait_until
from tests.testapp.models import Note

pytestmark = pytest.mark.django_db(transaction=True)


def serializations(server) -> int:
    return server.stats().get("serializations", 0)


def test_one_serialization_per_audience(start_push_server, listeners, user_client):
    server = start_push_server()
    note = Note.objects.create(title="shared")
    clients = {"alice": user_client("alice"), "bob": user_client("bob")}
    clients["alice_fr"] = user_client("alice")
    clients["alice_fr"].cookies["django_language"] = "fr"
    tabs = []
    for name, client in clients.items():
        for _ in range(3):  # three tabs each
            headers = {"HTTP_ACCEPT_LANGUAGE": "fr"} if name == "alice_fr" else {}
            response_page = render_with(client, f"/t/note/{note.pk}/", headers)
            tabs.append(listeners().connect(server, response_page, cursor=None))
    before = serializations(server)
    note.title = "changed once"
    note.save()
    for tab in tabs:
        tab.wait(lambda tab=tab: len(tab.live()) == 4, "four specs delivered")
    # note (object-only field map): 1; note_shared (vary=()): 1;
    # note_lang (vary=language): en + fr = 2; note_for_user (user + language): alice/en, bob/en, alice/fr = 3.
    assert serializations(server) - before == 1 + 1 + 2 + 3
    by_user = {tab.live("note_for_user")[0]["data"]["viewer"] + "/" + tab.live("note_for_user")[0]["data"]["language"] for tab in tabs}
    assert by_user == {"alice/en", "bob/en", "alice/fr"}
    assert {tab.live("note_shared")[0]["data"]["viewer"] for tab in tabs} in ({"alice"}, {"bob"})


def render_with(client, path, headers):
    from tests.conftest import Page
    import re

    response = client.get(path, **headers)
    html = response.content.decode()
    return Page(html, re.search(r'data-token="([^"]*)"', html).group(1), re.search(r'data-cursor="([^"]*)"', html).group(1), {k: m.value for k, m in client.cookies.items()})


def test_groups_are_dropped_when_their_last_page_leaves(start_push_server, listeners, browser_client):
    server = start_push_server()
    note = Note.objects.create(title="x")
    tab = listeners().connect(server, render(browser_client, f"/t/note/{note.pk}/"))
    assert server.stats()["groups"] == 4
    tab.close()
    wait_until(lambda: server.stats()["groups"] == 0 and server.stats()["connections"] == 0, what="groups released")


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda page: {"auth": "nonsense"}, "bad_payload"),
        (lambda page: {"token": 42}, "bad_payload"),
        (lambda page: {"token": page.token, "cursor": 5}, "bad_payload"),
        (lambda page: {"token": page.token, "cursor": "not-a-cursor"}, "bad_payload"),
        (lambda page: {"token": page.token[:-3] + "xyz", "cursor": None}, "token_invalid"),
    ],
)
def test_malformed_connects_are_refused_with_a_code(push_server, user_client, mutate, code):
    import socketio

    page = render(user_client("alice"), "/t/hello-fields/")
    client = socketio.Client(reconnection=False)
    errors = []
    client.on("connect_error", errors.append)
    with pytest.raises(socketio.exceptions.ConnectionError):
        client.connect(push_server.url, auth=mutate(page), headers={"Cookie": "; ".join(f"{k}={v}" for k, v in page.cookies.items())}, wait_timeout=5)
    assert errors and errors[0]["data"]["code"] == code and errors[0]["data"]["message"]


@pytest.mark.parametrize("cookies", [{}, "bob"])
def test_a_users_page_token_needs_that_users_session(push_server, listeners, user_client, cookies):
    import socketio

    page = render(user_client("alice"), "/t/hello-fields/")
    if cookies == "bob":
        cookies = render(user_client("bob"), "/t/hello-fields/").cookies
    listener = listeners()
    with pytest.raises(socketio.exceptions.ConnectionError):
        listener.connect(push_server, page, cookies=cookies or {"unrelated": "1"})
    assert listener.error["data"]["code"] == "session_mismatch"


def test_anonymous_pages_connect_without_a_session(push_server, listeners, browser_client):
    note = Note.objects.create(title="public")
    tab = listeners().connect(push_server, render(browser_client, f"/t/note/{note.pk}/"), cookies={})
    note.title = "public news"
    note.save()
    tab.wait(lambda: tab.live("note"))


def test_a_restarted_push_server_heals_pages_that_come_back(memory_log, start_push_server, listeners, browser_client):
    server = start_push_server()
    note = Note.objects.create(title="x")
    tab = listeners().connect(server, render(browser_client, f"/t/note/{note.pk}/"))
    cursor = tab.named("serverpush_ready")[0]["cursor"]
    server.stop()
    note.title = "changed while the push server was down"
    note.save()
    server.start()
    again = listeners().connect(server, render(browser_client, f"/t/note/{note.pk}/"), cursor=cursor)
    again.wait(lambda: again.named("serverpush_resynced"), "serverpush_resynced")
    assert again.named("serverpush_ready")[0]["healing"] is True and not again.named("serverpush_refresh")
    assert [r["code"] for r in again.named("serverpush_resynced")] == ["log_restarted"]
    healed = {u["name"]: u for u in again.updates() if u.get("resync")}
    assert set(healed) == {"note", "note_for_user", "note_shared", "note_lang"}
    assert healed["note"]["data"]["title"] == "changed while the push server was down"


@pytest.mark.parametrize("async_mode", ["gevent", "threading"])
def test_other_async_modes_deliver_and_replay(start_push_server, listeners, browser_client, async_mode):
    server = start_push_server(async_mode=async_mode)
    note = Note.objects.create(title="mode")
    page = render(browser_client, f"/t/note/{note.pk}/")
    note.title = "between render and connect"
    with server.landing():  # in the push server's log before the page connects: replayed
        note.save()
    tab = listeners().connect(server, page)
    assert tab.updates("note")[-1]["data"]["title"] == "between render and connect"
    note.title = "live"
    note.save()
    tab.wait(lambda: any(u["data"]["title"] == "live" for u in tab.live("note")))
    assert f"({async_mode})" in server.log()
