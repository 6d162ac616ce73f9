"""Who may receive what: tokens bound to sessions, revocation, origins, the notifier."""
from __future__ import annotations

import re

import pytest
import socketio
import zmq
from django.core import signing
from django.test import Client

import serverpush
from tests.conftest import render, wait_until
from tests.testapp.models import Note

pytestmark = pytest.mark.django_db(transaction=True)


def refused_code(server, page, *, auth=None, cookies=None, headers=None) -> str:
    client = socketio.Client(reconnection=False)
    errors = []
    client.on("connect_error", errors.append)
    cookie_header = "; ".join(f"{k}={v}" for k, v in (page.cookies if cookies is None else cookies).items())
    with pytest.raises(socketio.exceptions.ConnectionError):
        client.connect(server.url, auth=auth or {"token": page.token, "cursor": None}, headers={"Cookie": cookie_header, **(headers or {})}, wait_timeout=5)
    return errors[0]["data"]["code"] if errors else "no connect_error"


def second_session(user) -> Client:
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    return client


def test_a_token_replayed_from_another_session_of_the_same_user_is_refused(push_server, user_client):
    alice = user_client("alice")
    page = render(alice, "/t/hello-fields/")
    other = render(second_session(alice.user), "/t/hello-fields/")
    assert refused_code(push_server, page, cookies=other.cookies) == "session_mismatch"


def test_a_forged_token_is_refused(push_server, user_client):
    page = render(user_client("alice"), "/t/hello-fields/")
    forged = signing.dumps({"p": "/t/hello-fields/", "u": "1", "s": None, "l": "en", "c": None}, key="guessed-key", salt="serverpush.token")
    assert refused_code(push_server, page, auth={"token": forged, "cursor": None}) == "token_invalid"


def test_an_expired_token_is_refused(start_push_server, user_client):
    server = start_push_server(settings={"SERVERPUSH_TOKEN_MAX_AGE": -1})
    page = render(user_client("alice"), "/t/hello-fields/")
    assert refused_code(server, page) == "token_expired"


def test_tokens_signed_with_a_rotated_key_still_work(start_push_server, listeners, user_client, settings):
    alice = user_client("alice")
    server = start_push_server(settings={"SECRET_KEY": "the-new-key", "SECRET_KEY_FALLBACKS": [settings.SECRET_KEY]})
    page = render(alice, "/t/hello-fields/")  # after: this process now feeds that server's notifier
    # The session itself is signed with the old key too; fallbacks verify both.
    listener = listeners().connect(server, page, cursor=None)
    assert listener.named("serverpush_ready")


def assert_revoked(*tabs) -> None:
    """Each tab was told its session was revoked, and disconnected."""
    for tab in tabs:
        tab.wait(lambda tab=tab: tab.named("serverpush_refresh"), "revocation")
        assert tab.named("serverpush_refresh")[0]["code"] == "session_revoked"
        wait_until(lambda tab=tab: not tab.client.connected, what="disconnect")


def test_logout_revokes_that_sessions_pages_at_once(push_server, listeners, user_client):
    alice = user_client("alice")
    tabs = [listeners().connect(push_server, render(alice, "/t/hello-fields/")) for _ in range(2)]
    elsewhere = listeners().connect(push_server, render(second_session(alice.user), "/t/hello-fields/"))
    alice.get("/t/logout/")
    assert_revoked(*tabs)
    alice.user.first_name = "still pushed to the other session"
    alice.user.save()
    elsewhere.wait(lambda: elsewhere.live("username_change"))
    assert not elsewhere.named("serverpush_refresh")


@pytest.mark.parametrize("change", ["password", "deactivate", "delete"])
def test_losing_access_revokes_every_session_of_the_user(push_server, listeners, user_client, change):
    alice, bob = user_client("alice"), user_client("bob")
    tabs = [listeners().connect(push_server, render(alice, "/t/hello-fields/")), listeners().connect(push_server, render(second_session(alice.user), "/t/hello-fields/"))]
    bystander = listeners().connect(push_server, render(bob, "/t/hello-fields/"))
    if change == "password":
        alice.get("/t/change-password/")
    elif change == "deactivate":
        alice.user.is_active = False
        alice.user.save()
    else:
        alice.user.delete()
    for tab in tabs:
        tab.wait(lambda tab=tab: tab.named("serverpush_refresh"), "revocation")
    bob.user.first_name = "x"
    bob.user.save()
    bystander.wait(lambda: bystander.live())
    assert not bystander.named("serverpush_refresh")


@pytest.mark.parametrize("target", ["user", "user pk", "session"])
def test_revoke_stops_a_users_pages_or_one_session(push_server, listeners, user_client, target):
    alice, bob = user_client("alice"), user_client("bob")
    first = listeners().connect(push_server, render(alice, "/t/hello-fields/"))
    second = listeners().connect(push_server, render(second_session(alice.user), "/t/hello-fields/"))
    bystander = listeners().connect(push_server, render(bob, "/t/hello-fields/"))
    if target == "session":
        serverpush.revoke(session_key=alice.session.session_key)
    else:
        serverpush.revoke(alice.user if target == "user" else alice.user.pk)
    revoked = [first] if target == "session" else [first, second]
    assert_revoked(*revoked)
    alice.user.first_name = "pushed to whoever is left"
    alice.user.save()
    bob.user.first_name = "pushed to bob"
    bob.user.save()
    bystander.wait(lambda: bystander.live("username_change"))
    if target == "session":
        second.wait(lambda: second.live("username_change"))
    assert not bystander.named("serverpush_refresh") and not (target == "session" and second.named("serverpush_refresh"))


@pytest.mark.parametrize(("args", "kwargs", "message"), [
    ((), {}, "needs a user (or its pk) or session_key"),
    ((), {"session_key": ""}, "takes a session key"),
    ((), {"session_key": 42}, "takes a session key"),
])
def test_revoke_explains_what_it_needs(args, kwargs, message):
    with pytest.raises(TypeError, match=re.escape(message)):
        serverpush.revoke(*args, **kwargs)


def test_revoke_refuses_an_object_that_is_not_a_user():
    note = Note.objects.create(title="not a user")
    with pytest.raises(TypeError, match="takes a user"):
        serverpush.revoke(note)


def test_password_hashes_never_enter_the_log(django_user_model):
    from serverpush.entries import Entry

    user = django_user_model.objects.create_user("carol", password="secret-pass-1")
    assert "password" not in Entry.of(user, "update").fields


@pytest.mark.parametrize(("origin", "allowed"), [("http://localhost:8000", True), ("https://127.0.0.1", True), ("http://evil.example", False), ("http://localhost.evil.example", False)])
def test_only_allowed_origins_may_connect(push_server, user_client, origin, allowed):
    page = render(user_client("alice"), "/t/hello-fields/")
    client = socketio.Client(reconnection=False)
    cookie = "; ".join(f"{k}={v}" for k, v in page.cookies.items())
    try:
        client.connect(push_server.url, auth={"token": page.token, "cursor": None}, headers={"Cookie": cookie, "Origin": origin}, wait_timeout=5)
        connected = True
    except socketio.exceptions.ConnectionError:
        connected = False
    finally:
        client.disconnect()
    assert connected is allowed


def test_an_explicit_origin_list_replaces_allowed_hosts(start_push_server, user_client):
    from serverpush.server.origins import is_allowed
    from django.test import override_settings

    with override_settings(SERVERPUSH_ALLOWED_ORIGINS=["https://app.example.com"]):
        assert is_allowed("https://app.example.com") and not is_allowed("http://localhost:8000")
    with override_settings(CSRF_TRUSTED_ORIGINS=["https://*.example.com"]):
        assert is_allowed("https://shop.example.com") and not is_allowed("https://example.org")


def test_a_notifier_off_loopback_needs_a_secret(tmp_path):
    from tests.conftest import PushServer

    server = PushServer(tmp_path, env={"SERVERPUSH_TEST_OVERRIDES": '{"SERVERPUSH_NOTIFIER_HOST": "0.0.0.0"}'})
    with pytest.raises(AssertionError, match="serverpush.E003"):
        server.start()


def test_notifier_messages_without_the_secret_are_dropped(memory_log, start_push_server, listeners, browser_client, settings):
    server = start_push_server(settings={"SERVERPUSH_NOTIFIER_SECRET": "s3cret"})
    note = Note.objects.create(title="x")
    tab = listeners().connect(server, render(browser_client, f"/t/note/{note.pk}/"), cursor=None)
    note.title = "unsigned"
    note.save()  # this process has no secret yet
    wait_until(lambda: server.stats().get("notifier_rejected", 0) >= 1, what="rejected message")
    settings.SERVERPUSH_NOTIFIER_SECRET = "s3cret"
    note.title = "signed"
    note.save()
    tab.wait(lambda: tab.live("note"))
    assert [u["data"]["title"] for u in tab.live("note")] == ["signed"]


@pytest.mark.parametrize("garbage", [b"not json", b'{"an": "object"}', b'[{"model": "x"}]', b'{"s": "x", "n": 1}\n[{"model": "x"}]', b"\xff\xfe", b"x" * (2 << 20)])
def test_malformed_or_oversized_notifier_messages_hurt_nobody(memory_log, start_push_server, listeners, browser_client, garbage):
    server = start_push_server()
    note = Note.objects.create(title="x")
    tab = listeners().connect(server, render(browser_client, f"/t/note/{note.pk}/"), cursor=None)
    rogue = zmq.Context.instance().socket(zmq.PUSH)
    rogue.setsockopt(zmq.LINGER, 1000)
    rogue.connect(f"tcp://127.0.0.1:{server.notifier_port}")
    rogue.send(garbage)
    rogue.close()
    if len(garbage) < 1 << 20:
        wait_until(lambda: server.stats().get("notifier_malformed", 0) >= 1, what="malformed message counted")
    note.title = "after garbage"
    note.save()
    tab.wait(lambda: tab.live("note"))
