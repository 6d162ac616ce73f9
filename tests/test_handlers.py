"""Client-to-server handlers (django-ws) running in a real push server, driven by real Socket.IO clients."""
from __future__ import annotations

import uuid
from typing import Any

import pytest
import socketio
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured

import serverpush
from serverpush.handlers import handler_classes
from serverpush.testing import InOrderClient
from tests.conftest import Page, PushServer, render, wait_until
from tests.testapp.models import Note

pytestmark = pytest.mark.django_db(transaction=True)


class WsClient:
    """A page's Socket.IO client, connected to the handler namespace ``/ws/<name>`` (and maybe ``/``)."""

    def __init__(self, name: str) -> None:
        self.ns = f"/ws/{name}"
        self.client = InOrderClient(reconnection=False)
        self.replies: list[Any] = []
        self.errors: list[dict] = []
        self.broadcasts: list[Any] = []
        self.closed = False
        self.client.on("message", self.replies.append, namespace=self.ns)
        self.client.on("serverpush_error", self.errors.append, namespace=self.ns)
        self.client.on("disconnect", lambda *args: setattr(self, "closed", True), namespace=self.ns)
        self.client.on("serverpush", lambda data: self.broadcasts.append(data["data"]))

    def connect(self, server: PushServer, page: Page, *, token: str | None = None, cookies: dict | None = None, main: bool = False) -> WsClient:
        cookies = page.cookies if cookies is None else cookies
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())} if cookies else {}
        namespaces = ["/", self.ns] if main else [self.ns]
        self.client.connect(server.url, auth={"token": token or page.token, "cursor": None}, headers=headers, namespaces=namespaces, wait_timeout=10)
        return self

    def send(self, data: Any) -> None:
        self.client.send(data, namespace=self.ns)

    def ask(self, data: Any, what: str = "a reply") -> Any:
        count = len(self.replies)
        self.send(data)
        wait_until(lambda: len(self.replies) > count, what=f"{what}; errors {self.errors}")
        return self.replies[count]

    def close(self) -> None:
        self.client.disconnect()


@pytest.fixture
def ws_clients():
    made: list[WsClient] = []

    def make(name: str) -> WsClient:
        made.append(WsClient(name))
        return made[-1]

    yield make
    for client in made:
        client.close()


def test_the_random_counter_of_the_django_ws_readme(push_server, ws_clients, browser_client):
    ws = ws_clients("default").connect(push_server, render(browser_client, "/t/inbox/"))
    ws.send("First msg")
    wait_until(lambda: ws.replies, what="the first random number")
    for _ in range(3):
        ws.ask("again")
    assert len(ws.replies) == 4
    assert all(isinstance(r, str) and 1 <= int(r) <= 100 for r in ws.replies)


def test_on_open_gets_the_first_message_and_returning_a_value_keeps_it_from_on_message(push_server, ws_clients, browser_client):
    ws = ws_clients("opener").connect(push_server, render(browser_client, "/t/inbox/"))
    assert ws.ask("hello") == "opened:hello"
    assert ws.ask("again") == "message:again"
    assert ws.replies == ["opened:hello", "message:again"]


@pytest.mark.parametrize("async_mode", ["eventlet", "gevent", "threading"])
def test_handlers_have_the_orm_and_request_user(async_mode, push_server, start_push_server, ws_clients, user_client):
    server = push_server if async_mode == "eventlet" else start_push_server(async_mode=async_mode)
    Note.objects.create(title="one")
    Note.objects.create(title="two")
    alice = user_client("alice")
    ws = ws_clients("whoami").connect(server, render(alice, "/t/inbox/"))
    assert ws.ask({"question": "who?"}) == {"user": "alice", "notes": 2, "echo": {"question": "who?"}, "namespace": "whoami"}
    ws.close()
    wait_until(lambda: Note.objects.filter(title="closed by alice").exists(), what="on_close writing to the database")


def test_anonymous_pages_have_an_anonymous_request_user(push_server, ws_clients, browser_client):
    ws = ws_clients("whoami").connect(push_server, render(browser_client, "/t/inbox/"))
    assert ws.ask("hi")["user"] is None


def test_messages_reach_the_handler_one_at_a_time_in_order(push_server, ws_clients, browser_client):
    ws = ws_clients("broken").connect(push_server, render(browser_client, "/t/inbox/"))
    for n in range(15):
        ws.send(f"m{n}")
    wait_until(lambda: len(ws.replies) == 15, what="15 echoes")
    assert ws.replies == [f"m{n}" for n in range(15)]


def test_a_raising_handler_closes_only_its_own_connection(push_server, ws_clients, user_client):
    alice, bob = user_client("alice"), user_client("bob")
    failing = ws_clients("broken").connect(push_server, render(alice, "/t/inbox/"), main=True)
    other = ws_clients("broken").connect(push_server, render(bob, "/t/inbox/"))
    assert failing.ask("fine") == "fine"
    failing.send("boom")
    wait_until(lambda: failing.closed, what="the failing handler's connection to close")
    assert failing.errors[0]["code"] == "handler_error"
    assert other.ask("still here") == "still here"
    mark = uuid.uuid4().hex
    serverpush.notify_all({"mark": mark})  # the page's own connection lives on
    wait_until(lambda: {"mark": mark} in failing.broadcasts, what="a broadcast on the page connection")
    log = push_server.log()
    assert "on_message of namespace 'broken' (tests.testapp.ws_handlers.Broken), user alice raised" in log
    assert "handler broken on purpose" in log


def test_handler_connections_are_authenticated_like_pages(push_server, ws_clients, user_client, browser_client):
    with pytest.raises(socketio.exceptions.ConnectionError):
        ws_clients("whoami").connect(push_server, render(browser_client, "/t/inbox/"), token="not-a-token")
    alices_page = render(user_client("alice"), "/t/inbox/")
    bobs_cookies = render(user_client("bob"), "/t/inbox/").cookies
    with pytest.raises(socketio.exceptions.ConnectionError):
        ws_clients("whoami").connect(push_server, alices_page, cookies=bobs_cookies)
    with pytest.raises(socketio.exceptions.ConnectionError):
        ws_clients("nosuchnamespace").connect(push_server, render(browser_client, "/t/inbox/"))


def test_a_flooding_client_is_closed(push_server, ws_clients, browser_client):
    ws = ws_clients("broken").connect(push_server, render(browser_client, "/t/inbox/"))
    for n in range(60):
        if ws.closed:
            break
        ws.send(n)
    wait_until(lambda: ws.closed, what="the flooding connection to close")
    assert ws.errors[0]["code"] == "flood"


def test_logging_out_closes_the_handler_connections_of_that_session(push_server, ws_clients, user_client):
    alice = user_client("alice")
    ws = ws_clients("whoami").connect(push_server, render(alice, "/t/inbox/"))
    assert ws.ask("hi")["user"] == "alice"
    alice.get("/t/logout/")
    wait_until(lambda: ws.closed, what="the revoked handler connection to close")
    assert ws.errors[0]["code"] == "session_revoked"


def test_bad_handler_settings_are_reported_by_a_system_check(settings):
    settings.SERVERPUSH_HANDLERS = {"default": "tests.testapp.ws_handlers.Nope"}
    with pytest.raises(ImproperlyConfigured, match="cannot be imported"):
        handler_classes()
    assert [e.id for e in run_checks() if e.id.startswith("serverpush.E020")] == ["serverpush.E020"]
    settings.SERVERPUSH_HANDLERS = {"default": "tests.testapp.models.Note"}
    with pytest.raises(ImproperlyConfigured, match="not a subclass of serverpush.handlers.WebSocketHandler"):
        handler_classes()
    settings.SERVERPUSH_HANDLERS = {"two words": "tests.testapp.ws_handlers.RandomCounter"}
    with pytest.raises(ImproperlyConfigured, match="use a word"):
        handler_classes()
