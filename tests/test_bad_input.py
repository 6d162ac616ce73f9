"""Bad client input: refused with a documented code, and nobody else notices."""
from __future__ import annotations

import json

import pytest
import socketio
import websocket
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st

from tests.conftest import Listener, render, wait_until
from tests.testapp.models import Note

pytestmark = pytest.mark.django_db(transaction=True)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
# A CONNECT frame's payload is JSON that starts the frame unambiguously (object, array, string);
# frames that are garbage outright are the business of the frame fuzz below.
auth_payloads = st.one_of(
    st.dictionaries(st.text(max_size=10), json_values, max_size=4),
    st.lists(json_values, max_size=3),
    st.text(max_size=40),
    st.fixed_dictionaries({"token": st.text(max_size=200) | json_values, "cursor": st.text(max_size=40) | json_values}),
    st.fixed_dictionaries({"token": st.just("PAGE"), "cursor": st.text(max_size=40) | json_values}),
)


class RawSocket:
    """Speaks Engine.IO / Socket.IO frames by hand, so it can send what no client library would."""

    def __init__(self, server, auth, cookie=""):
        self.ws = websocket.create_connection(f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket", header=[f"Cookie: {cookie}"], timeout=5)
        assert self.ws.recv().startswith("0")  # engine.io open
        self.ws.send("40" + json.dumps(auth))

    def send(self, frame: str) -> None:
        self.ws.send(frame)

    def close(self) -> None:
        self.ws.close()


@pytest.fixture
def healthy(push_server, listeners, browser_client):
    """A well-behaved page; after the abuse, it must still receive its change."""
    note = Note.objects.create(title="healthy")
    tab = listeners().connect(push_server, render(browser_client, f"/t/note/{note.pk}/"), cursor=None)

    def still_served() -> None:
        note.title = f"still served {note.rank}"
        note.rank += 1
        note.save()
        tab.wait(lambda: any(u["data"]["title"] == note.title for u in tab.live("note")), "the healthy page's update")

    return still_served


@hypothesis_settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(auth=auth_payloads)
def test_fuzzed_connect_payloads_are_refused_cleanly(push_server, browser_client, auth):
    if isinstance(auth, dict) and auth.get("token") == "PAGE":
        auth = dict(auth, token=render(browser_client, "/t/hello-fields/").token)
    raw = RawSocket(push_server, auth)
    try:
        answer = raw.ws.recv()
    finally:
        raw.close()
    if answer.startswith("44"):
        body = json.loads(answer[2:])
        assert body["data"]["code"] in {"bad_payload", "token_invalid", "token_expired", "session_mismatch"}
    else:
        assert answer.startswith(("40", "42")), answer  # only a valid token with a usable cursor connects


frames = st.one_of(
    st.text(max_size=80),
    st.builds(lambda name, args: "42" + json.dumps([name, *args]), st.text(max_size=20), st.lists(json_values, max_size=3)),
    st.builds(lambda body: "42" + body, st.text(max_size=60)),
    st.sampled_from(["4", "41", "43", "45", "46", "2", "3", "6", "42[", '42["connect"]', '42["disconnect"]', "40{", "1"]),
    st.builds(lambda name, args: "42" + json.dumps([name, *args]), st.sampled_from(["connect", "disconnect", "connect_error", "*"]), st.lists(json_values, max_size=3)),
)


@hypothesis_settings(max_examples=1500, deadline=None, suppress_health_check=list(HealthCheck))
@given(batch=st.lists(frames, min_size=1, max_size=5))
def test_fuzzed_client_frames_never_hurt_the_server(fuzz_target, batch):
    raw = RawSocket(fuzz_target, {"token": fuzz_target.token, "cursor": None}, fuzz_target.cookie)
    try:
        for frame in batch:
            raw.send(frame)
    except (websocket.WebSocketException, OSError):
        pass  # the server may close on garbage: that is its right
    finally:
        raw.close()


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory, django_db_setup, django_db_blocker):
    from django.test import Client

    from tests.conftest import PushServer

    server = PushServer(tmp_path_factory.mktemp("fuzz"), settings={"SERVERPUSH_CLIENT_EVENTS_PER_SECOND": 100000}).start()
    with django_db_blocker.unblock():
        page = render(Client(HTTP_HOST="localhost"), "/t/hello-fields/")
    server.token, server.cookie = page.token, ""
    yield server
    server.stop()


def test_the_fuzzed_server_still_serves(fuzz_target, listeners, browser_client):
    note = Note.objects.create(title="after fuzz")
    from django.test import override_settings

    with override_settings(SERVERPUSH_NOTIFIER_PORT=fuzz_target.notifier_port):
        tab = listeners().connect(fuzz_target, render(browser_client, f"/t/note/{note.pk}/"), cursor=None)
        note.title = "served after fuzz"
        note.save()
        tab.wait(lambda: tab.live("note"))
    assert "Traceback" not in fuzz_target.log()


def test_events_named_after_reserved_handlers_cost_the_connection(push_server, browser_client, healthy):
    page = render(browser_client, "/t/hello-fields/")
    before = push_server.stats().get("malformed_frames", 0)
    raw = RawSocket(push_server, {"token": page.token, "cursor": None})
    assert raw.ws.recv().startswith(("40", "42"))
    raw.send('42["connect", {"HTTP_COOKIE": "sessionid=someone-else"}, {"token": "x"}]')
    with pytest.raises((websocket.WebSocketException, OSError)):
        while True:
            raw.ws.recv()
    assert push_server.stats()["malformed_frames"] == before + 1
    assert "missing 1 required positional argument" not in push_server.log()
    healthy()


def test_unknown_events_get_an_error_and_floods_are_cut_off(push_server, listeners, browser_client, healthy):
    tab = listeners()
    errors = []
    tab.client.on("serverpush_error", errors.append)
    tab.connect(push_server, render(browser_client, "/t/hello-fields/"), cursor=None)
    tab.client.emit("no_such_event", {"x": 1})
    wait_until(lambda: errors, what="unknown_event error")
    assert errors[0]["code"] == "unknown_event"
    for _ in range(200):
        if not tab.client.connected:
            break
        tab.client.emit("no_such_event", {})
    wait_until(lambda: not tab.client.connected, what="the flooding client to be disconnected")
    assert any(e["code"] == "flood" for e in errors)
    healthy()


def test_too_many_subscriptions_are_refused(start_push_server, browser_client):
    server = start_push_server(settings={"SERVERPUSH_MAX_SUBSCRIPTIONS": 2})
    note = Note.objects.create(title="many")
    listener = Listener()
    with pytest.raises(socketio.exceptions.ConnectionError):
        listener.connect(server, render(browser_client, f"/t/note/{note.pk}/"), cursor=None)
    assert listener.error["data"]["code"] == "too_many_subscriptions"
    assert "SERVERPUSH_MAX_SUBSCRIPTIONS allows 2" in listener.error["data"]["message"]


def test_an_oversized_connect_payload_is_dropped(push_server, healthy):
    raw = RawSocket(push_server, {"token": "x" * (200 * 1024), "cursor": None})
    with pytest.raises((websocket.WebSocketException, ConnectionError)):
        while True:
            raw.ws.recv()
    healthy()
