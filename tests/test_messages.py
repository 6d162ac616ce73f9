"""Direct messages (djazator, pushnote): notify_all, notify(data, users=...), send(name, data, users)."""
from __future__ import annotations

import datetime
import decimal
import json
import uuid

import pytest
from django.db import transaction
from django.utils.translation import gettext_lazy

import serverpush
from serverpush import messages
from serverpush.encoding import dumps
from serverpush.entries import Entry, decode, encode
from tests.conftest import render, wait_until
from tests.testapp.models import Note

pytestmark = pytest.mark.django_db(transaction=True)


def marked(listener, mark, name="message"):
    """The messages ``listener`` received whose data carries ``mark``."""
    return [u for u in listener.updates(name) if isinstance(u["data"], dict) and u["data"].get("mark") == mark]


def tab(listeners, push_server, client, path="/t/inbox/", cursor=None):
    """A page open in a browser tab of ``client``'s session, connected live (no replay unless a cursor is given)."""
    return listeners().connect(push_server, render(client, path), cursor=cursor)


# Encoding at the call site.

def test_datetimes_serialize_as_iso_8601():
    moment = datetime.datetime(2024, 5, 17, 13, 45, 30, tzinfo=datetime.timezone.utc)
    assert json.loads(dumps({"at": moment, "day": moment.date()})) == {"at": "2024-05-17T13:45:30Z", "day": "2024-05-17"}


def test_decimals_uuids_lazy_strings_and_model_instances_serialize_without_converting():
    note = Note.objects.create(title="n")
    ident = uuid.UUID("12345678-1234-5678-1234-567812345678")
    data = {"price": decimal.Decimal("10.50"), "id": ident, "label": gettext_lazy("Hello"), "note": note}
    assert json.loads(dumps(data)) == {"price": "10.50", "id": str(ident), "label": "Hello", "note": note.pk}


@pytest.mark.parametrize("call", [
    lambda data: serverpush.notify_all(data),
    lambda data: serverpush.notify(data),
    lambda data: serverpush.send("news", data, users=[1]),
])
def test_anything_else_is_a_type_error_at_the_call_site(call):
    class Opaque:
        pass

    with pytest.raises(TypeError) as info:
        call({"thing": Opaque()})
    assert "Opaque" in str(info.value) and "convert it to a str, number" in str(info.value)


def test_unsaved_instances_and_nan_are_refused_with_the_fix():
    with pytest.raises(TypeError, match="save it first"):
        serverpush.notify_all({"note": Note(title="unsaved")})
    with pytest.raises(ValueError):
        serverpush.notify_all({"x": float("nan")})


def test_message_names_and_recipients_are_validated():
    with pytest.raises(ValueError, match="serverpush_<name>"):
        serverpush.send("no spaces", {})
    with pytest.raises(TypeError, match="list of users"):
        serverpush.send("news", {}, users="alice")
    with pytest.raises(TypeError, match="user objects or their pks"):
        serverpush.send("news", {}, users=[object()])
    with pytest.raises(ValueError, match="send an id"):
        serverpush.notify_all("x" * (messages.MAX_DATA_BYTES + 1))


# One notify(): model changes or messages, depending on the first argument.

def test_notify_with_models_is_still_a_change_notification(settings):
    note = Note.objects.create(title="n")
    for target in (note, Note.objects.all(), [note]):
        assert messages._is_change(target, None)
    with pytest.raises(TypeError, match="users= is for messages"):
        serverpush.notify(note, users=[1])


def test_notify_with_data_is_a_message_and_checks_its_keywords():
    assert not messages._is_change({"msg": "hi"}, None)
    assert not messages._is_change(["a", "b"], None)
    assert not messages._is_change([], [1])
    with pytest.raises(TypeError, match="op= is for model changes"):
        serverpush.notify({"msg": "hi"}, op="update")
    with pytest.raises(TypeError, match="not both"):
        serverpush.notify({"msg": "hi"}, users=[1], recipients=[2])


def test_message_entries_survive_the_wire_format_and_change_entries_are_unchanged():
    entry = messages.message_entry("news", {"at": datetime.date(2024, 1, 2)}, [3, "4"])
    [back] = decode(encode([entry]))
    assert (back.op, back.model, back.pk, back.fields) == ("message", "", None, {"name": "news", "data": {"at": "2024-01-02"}, "to": ["3", "4"]})
    note = Note.objects.create(title="n")
    [change] = decode(encode([Entry.of(note, "update")]))
    assert change.op == "update" and change.fields["title"] == "n"


# End to end: real push server, real Socket.IO clients.

def test_notify_all_reaches_every_connected_page_signed_in_or_not(push_server, listeners, user_client, browser_client):
    pages = [tab(listeners, push_server, user_client("alice")), tab(listeners, push_server, browser_client), tab(listeners, push_server, user_client("bob"), "/t/hello-fields/")]
    serverpush.notify_all({"msg": "Hi all!", "mark": "all-1"})
    for page in pages:
        page.wait(lambda page=page: marked(page, "all-1"))
    [update] = marked(pages[0], "all-1")
    assert update["op"] == "message" and update["model"] is None and update["data"]["msg"] == "Hi all!"


def test_a_users_message_reaches_every_tab_of_that_user_and_nobody_else(push_server, listeners, user_client, browser_client):
    clients = {name: user_client(name) for name in ("alice", "bob", "carol")}
    tabs = {name: [tab(listeners, push_server, client) for _ in range(3)] for name, client in clients.items()}
    tabs["anonymous"] = [tab(listeners, push_server, browser_client) for _ in range(2)]
    serverpush.notify({"msg": "Hi, alice!", "mark": "to-alice"}, users=[clients["alice"].user])
    serverpush.notify({"msg": "Hi, bob and carol!", "mark": "to-bc"}, recipients=[clients["bob"].user, clients["carol"].user.pk])
    serverpush.notify_all({"mark": "fence"})  # everything sent before it has arrived once it has
    everyone = [page for pages in tabs.values() for page in pages]
    for page in everyone:
        page.wait(lambda page=page: marked(page, "fence"))
    got = {name: [(len(marked(p, "to-alice")), len(marked(p, "to-bc"))) for p in pages] for name, pages in tabs.items()}
    assert got == {"alice": [(1, 0)] * 3, "bob": [(0, 1)] * 3, "carol": [(0, 1)] * 3, "anonymous": [(0, 0)] * 2}


def test_send_fires_the_named_event(push_server, listeners, user_client):
    alice = user_client("alice")
    page = tab(listeners, push_server, alice)
    serverpush.send("alert", {"level": "warn", "mark": "named"}, users=[alice.user])
    page.wait(lambda: marked(page, "named", "alert"))
    assert marked(page, "named", "message") == []


def test_a_message_sent_while_the_page_was_away_is_replayed_once(push_server, listeners, user_client):
    alice = user_client("alice")
    page = render(alice, "/t/inbox/")
    with push_server.landing():
        serverpush.notify({"mark": "while-loading"}, users=[alice.user])  # between render and connect
    first = listeners().connect(push_server, page)
    [replayed] = marked(first, "while-loading")
    assert replayed["replay"] is True
    cursor = first.named("serverpush_ready")[0]["cursor"]
    first.close()
    with push_server.landing(2):
        serverpush.notify({"mark": "while-away"}, users=[alice.user])
        serverpush.notify_all({"mark": "while-away-all"})
    back = listeners().connect(push_server, page, cursor=cursor)
    assert [u["data"]["mark"] for u in back.updates() if u["replay"]] == ["while-away", "while-away-all"]
    assert marked(back, "while-loading") == []


def test_replayed_messages_and_changes_keep_log_order(push_server, listeners, user_client):
    alice = user_client("alice")
    page = render(alice, "/t/my-notes/")
    with push_server.landing(3):
        Note.objects.create(title="first", owner=alice.user)
        serverpush.notify({"mark": "between"}, users=[alice.user])
        Note.objects.create(title="second", owner=alice.user)
    listener = listeners().connect(push_server, page)
    order = [u["data"].get("mark") or u["data"].get("title") for u in listener.updates() if u["replay"]]
    # (the replay starts a little before the page's render, so earlier tests' messages may come too)
    assert [item for item in order if item in {"first", "between", "second"}] == ["first", "between", "second"]


def test_a_message_of_a_rolled_back_transaction_is_never_sent(push_server, listeners, user_client):
    page = tab(listeners, push_server, user_client("alice"))
    with pytest.raises(RuntimeError), transaction.atomic():
        serverpush.notify_all({"mark": "rolled-back"})
        raise RuntimeError("abort")
    serverpush.notify_all({"mark": "committed"})
    page.wait(lambda: marked(page, "committed"))
    assert marked(page, "rolled-back") == []


def test_the_token_tag_makes_a_page_live_and_renders_a_js_string(browser_client):
    page = render(browser_client, "/t/inbox/")
    assert page.token and page.cursor
    assert f"var token = {json.dumps(page.token)};" in page.html


def test_pages_connect_for_messages_only_when_asked(push_server, listeners, browser_client, settings):
    assert render(browser_client, "/t/quiet/").token == ""
    settings.SERVERPUSH_MESSAGES = True
    quiet = render(browser_client, "/t/quiet/")
    assert quiet.token and quiet.cursor
    page = listeners().connect(push_server, quiet, cursor=None)
    serverpush.notify_all({"mark": "anywhere"})
    page.wait(lambda: marked(page, "anywhere"))
    wait_until(lambda: push_server.stats().get("messages", 0) >= 1, what="the message counted")
