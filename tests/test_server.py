"""The push server end to end: real server process, real Socket.IO clients, real commits."""
from __future__ import annotations

import pytest
import socketio
from django.contrib.auth import get_user_model

from tests.conftest import render, wait_until
from tests.testapp.models import Note

pytestmark = pytest.mark.django_db(transaction=True)
User = get_user_model()


def rename(user, name):
    user.username = name
    user.save()


def test_field_map_form_as_in_the_original_readme(push_server, listeners, user_client):
    with push_server.landing(2):  # the user's creation and sign-in (last_login) land before the page connects: replayed, not live
        alice = user_client("alice")
    listener = listeners().connect(push_server, render(alice, "/t/hello-fields/"))
    rename(alice.user, "alicia")
    listener.wait(lambda: listener.live("username_change"))
    [update] = listener.live("username_change")
    assert update["data"] == {"username": "alicia"}
    assert update["op"] == "update" and update["model"] == "auth.user" and update["pk"] == alice.user.pk


@pytest.mark.parametrize("path", ["/t/hello-custom/", "/t/hello/"], ids=["custom serializer", "view serializer called with the model keyword"])
def test_serializer_forms_as_in_the_original_readme(push_server, listeners, user_client, path):
    alice = user_client("alice")
    listener = listeners().connect(push_server, render(alice, path))
    rename(alice.user, "alicia")
    listener.wait(lambda: listener.live("reload"))
    assert listener.live("reload")[0]["data"] == "Hey, alicia!"


def test_a_user_never_receives_another_users_page_updates(push_server, listeners, user_client):
    alice, bob = user_client("alice"), user_client("bob")
    alice_tab = listeners().connect(push_server, render(alice, "/t/hello-fields/"))
    bob_tab = listeners().connect(push_server, render(bob, "/t/hello-fields/"))
    rename(bob.user, "robert")
    bob_tab.wait(lambda: bob_tab.live())
    rename(alice.user, "alicia")
    alice_tab.wait(lambda: alice_tab.live())
    assert {u["data"]["username"] for u in bob_tab.updates()} <= {"bob", "robert"}
    assert {u["data"]["username"] for u in alice_tab.updates()} <= {"alice", "alicia"}
    assert [u["data"]["username"] for u in bob_tab.live()] == ["robert"]
    assert [u["data"]["username"] for u in alice_tab.live()] == ["alicia"]


def test_url_arguments_reach_the_update_function(push_server, listeners, browser_client):
    mine, other = Note.objects.create(title="mine"), Note.objects.create(title="other")
    listener = listeners().connect(push_server, render(browser_client, f"/t/note/{mine.pk}/"))
    other.title = "other changed"
    other.save()
    mine.title = "mine changed"
    mine.save()
    listener.wait(lambda: listener.live("note"))
    assert [u["data"]["title"] for u in listener.live("note")] == ["mine changed"]
    assert all(u["pk"] == mine.pk for u in listener.updates("note"))


def test_class_based_view_method(push_server, listeners, browser_client):
    note = Note.objects.create(title="cbv")
    listener = listeners().connect(push_server, render(browser_client, f"/t/note-cbv/{note.pk}/"))
    note.title = "cbv changed"
    note.save()
    listener.wait(lambda: listener.live("note_cbv"))
    assert listener.live("note_cbv")[0]["data"] == {"title": "cbv changed"}


def test_explicitly_registered_update_function(push_server, listeners, browser_client):
    listener = listeners().connect(push_server, render(browser_client, "/t/registered/"))
    Note.objects.create(title="registered one")
    listener.wait(lambda: listener.live("registered"))
    assert listener.live("registered")[0]["op"] == "create"


def test_deletes_reach_the_pages_that_showed_the_object(push_server, listeners, browser_client):
    with push_server.landing():  # the create is replayed, not delivered live after the connect
        note = Note.objects.create(title="doomed")
    listener = listeners().connect(push_server, render(browser_client, f"/t/note/{note.pk}/"))
    pk = note.pk
    note.delete()
    listener.wait(lambda: listener.live("note"))
    [update] = listener.live("note")
    assert update["op"] == "delete" and update["pk"] == pk and update["data"]["title"] == "doomed"


def test_a_change_committed_between_render_and_connect_is_replayed(push_server, listeners, browser_client):
    note = Note.objects.create(title="before")
    page = render(browser_client, f"/t/note/{note.pk}/")
    with push_server.landing():
        note.title = "while the page was loading"
        note.save()
    listener = listeners().connect(push_server, page)
    update = listener.updates("note")[-1]
    assert update["replay"] is True and update["data"]["title"] == "while the page was loading"
    assert listener.named("serverpush_ready")[0]["replayed"] >= 1


def test_a_broken_update_function_never_breaks_the_page(push_server, listeners, browser_client):
    response = browser_client.get("/t/broken/")
    assert response.status_code == 200
    listener = listeners().connect(push_server, render(browser_client, "/t/broken/"))
    assert listener.named("serverpush_ready")
    assert "the update function of tests.testapp.views.broken failed" in push_server.log()


def test_a_bad_spec_is_logged_with_view_spec_and_key(push_server, listeners, browser_client):
    listeners().connect(push_server, render(browser_client, "/t/bad-spec/"))
    wait_until(lambda: "key 'model' is 'testapp.Nope'" in push_server.log(), what="the spec error in the log")
    assert "update function of tests.testapp.views.bad_spec, spec 0 ('oops')" in push_server.log()


def test_a_raising_or_non_json_serializer_hurts_only_its_own_spec(push_server, listeners, browser_client):
    note = Note.objects.create(title="fragile")
    listener = listeners().connect(push_server, render(browser_client, f"/t/bad-serializer/{note.pk}/"))
    before = push_server.stats().get("serializer_errors", 0)
    note.title = "still fine"
    note.save()
    listener.wait(lambda: listener.live("fine"))
    assert {u["name"] for u in listener.live()} == {"fine"}
    wait_until(lambda: push_server.stats().get("serializer_errors", 0) >= before + 2, what="two serializer errors counted")
    assert "serializer broken on purpose" in push_server.log()


def test_a_rolled_back_save_is_never_pushed(push_server, listeners, browser_client):
    from django.db import transaction

    note = Note.objects.create(title="stable")
    listener = listeners().connect(push_server, render(browser_client, f"/t/note/{note.pk}/"))
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            note.title = "rolled back"
            note.save()
            raise RuntimeError("abort")
    note.title = "committed"
    note.save()
    listener.wait(lambda: listener.live("note"))
    assert [u["data"]["title"] for u in listener.updates("note")][-1:] == ["committed"]
    assert "rolled back" not in [u["data"]["title"] for u in listener.updates("note")]


def test_params_across_a_relation_are_decided_by_the_database(push_server, listeners, user_client, django_user_model):
    alice = user_client("alice").user
    bob = django_user_model.objects.create(username="bob")
    listener = listeners().connect(push_server, render(user_client("carol"), "/t/titled/apple/"))
    Note.objects.create(title="Apple by bob", owner=bob)
    Note.objects.create(title="pear by alice", owner=alice)
    Note.objects.create(title="green apple by alice", owner=alice)
    listener.wait(lambda: listener.live("titled"))
    assert [u["data"]["title"] for u in listener.updates("titled")] == ["green apple by alice"]


def test_per_user_list_with_request_paths(push_server, listeners, user_client):
    alice, bob = user_client("alice"), user_client("bob")
    listener = listeners().connect(push_server, render(alice, "/t/my-notes/"))
    Note.objects.create(title="bob's", owner=bob.user)
    Note.objects.create(title="alice's", owner=alice.user)
    listener.wait(lambda: listener.live("my_note"))
    assert [u["data"] for u in listener.updates("my_note")] == [{"title": "alice's", "owner": "alice"}]


def test_site_wide_globals_go_on_every_page(start_push_server, listeners, browser_client, settings):
    server = start_push_server(env={"SERVERPUSH_TEST_GLOBALS": "tests.testapp.views.site_wide"})
    settings.SERVERPUSH_GLOBALS = ("tests.testapp.views.site_wide",)
    listener = listeners().connect(server, render(browser_client, "/t/broken/"))
    Note.objects.create(title="elsewhere")
    Note.objects.create(title="site news")
    listener.wait(lambda: listener.live("site_note"))
    assert [u["data"]["title"] for u in listener.updates("site_note")] == ["site news"]


def test_pages_without_updates_get_no_token(browser_client):
    page = render(browser_client, "/t/plain/")
    assert page.token == "" and page.cursor == ""


@pytest.mark.parametrize("async_mode", ["eventlet", "asgi"])
def test_a_push_server_behind_a_path_route_answers_on_the_path_pages_connect_to(start_push_server, user_client, settings, async_mode):
    """``SERVERPUSH_URL`` a path: pages connect to their own origin there, and the push server answers there."""
    path = "/live/socket.io/"
    settings.SERVERPUSH_URL = path
    server = start_push_server(settings={"SERVERPUSH_URL": path}, async_mode=async_mode)
    alice = user_client("alice")
    page = render(alice, "/t/hello-fields/")
    assert f'data-url="{path}"' in page.html
    client = socketio.Client(reconnection=False)
    ready = []
    client.on("serverpush_ready", ready.append)
    cookie = "; ".join(f"{k}={v}" for k, v in page.cookies.items())
    try:
        client.connect(server.url, socketio_path=path, auth={"token": page.token, "cursor": page.cursor}, headers={"Cookie": cookie}, wait_timeout=10)
        wait_until(lambda: ready, what="serverpush_ready on the path")
    finally:
        client.disconnect()
    with pytest.raises(socketio.exceptions.ConnectionError):
        socketio.Client(reconnection=False).connect(server.url, auth={"token": page.token, "cursor": None}, wait_timeout=5)  # not on /socket.io/
