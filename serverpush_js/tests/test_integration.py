"""serverpush.js against the real push server, on pages Django renders.

A real ``runserverpush`` process per test (``start_push_server``, on the embedded log), pages from
pytest-django's ``live_server``, models saved and committed in this process.
The page is opened at ``localhost``: the client derives the push server's URL
from the page's host and ``data-port``, as it does in production.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from tests.conftest import PushServer, wait_until
from tests.testapp.models import Note

pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT = 10_000  # ms, for every browser wait
RECONNECT_TIMEOUT = 30_000  # ms: Socket.IO's backoff runs while the push server restarts

# Runs before the page's scripts, and again after every reload.
RECORDER = """
sessionStorage.loads = String(Number(sessionStorage.loads || 0) + 1);
window.seen = [];
for (const type of ['serverpush_note', 'serverpush_ready', 'serverpush_refresh', 'serverpush_resynced']) {
  document.addEventListener(type, event => {
    seen.push({type, detail: event.detail, meta: event.serverpush});
    if (type === 'serverpush_refresh') {
      sessionStorage.refreshes = JSON.stringify([...JSON.parse(sessionStorage.refreshes || '[]'), event.detail]);
    }
  });
}
"""


@pytest.fixture(scope="module", autouse=True)
def orm_beside_playwright() -> Iterator[None]:
    """Playwright's sync API leaves its event loop marked running in this thread; the ORM
    calls here are still synchronous and safe, so tell Django to allow them."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield


@pytest.fixture
def push(memory_log: None, start_push_server: Callable[..., PushServer], settings: Any) -> PushServer:
    server = start_push_server()
    settings.SERVERPUSH_PORT = server.port  # the page's data-port
    return server


@pytest.fixture
def open_page(browser: Browser, live_server: Any) -> Iterator[Callable[[str], Page]]:
    contexts = []

    def open_(path: str) -> Page:
        context = browser.new_context()
        contexts.append(context)
        context.set_default_timeout(TIMEOUT)
        context.add_init_script(RECORDER)
        page = context.new_page()
        page.connects = []  # the auth of every Socket.IO CONNECT packet the page sent
        page.on("request", lambda request: page.connects.extend(_connect_auths(request)))
        page.goto(live_server.url.replace("127.0.0.1", "localhost") + path)
        wait_live(page)
        return page

    yield open_
    for context in contexts:
        context.close()


def _connect_auths(request: Any) -> list[dict[str, Any]]:
    """Socket.IO CONNECT packets ("40{...}") in an Engine.IO polling POST body."""
    if request.method != "POST" or "/socket.io/" not in request.url:
        return []
    return [json.loads(packet[2:]) for packet in (request.post_data or "").split("\x1e") if packet.startswith("40{")]


def wait_live(page: Page, timeout: int = TIMEOUT) -> None:
    page.wait_for_function("window.serverpush && serverpush.state === 'live'", timeout=timeout)


def seen(page: Page, type_: str) -> list[dict[str, Any]]:
    return page.evaluate("type => seen.filter(e => e.type === type)", type_)


def wait_seen(page: Page, type_: str, predicate: str = "true", timeout: int = TIMEOUT) -> dict[str, Any]:
    """The first recorded ``type_`` event for which the JS expression ``predicate`` (of ``e``) holds."""
    handle = page.wait_for_function(f"seen.find(e => e.type === {type_!r} && ({predicate}))", timeout=timeout)
    return handle.json_value()


def save(note: Note, title: str) -> None:
    note.title = title
    note.save()


def test_the_vendored_client_goes_live_on_the_real_push_server(push, open_page):
    note = Note.objects.create(title="first")
    page = open_page(f"/t/note/{note.pk}/")
    assert page.evaluate("serverpush.socket.io.uri") == f"http://localhost:{push.port}"
    page.wait_for_function("serverpush.socket.io.engine.transport.name === 'websocket'")
    assert push.stats()["connections"] == 1
    [ready] = seen(page, "serverpush_ready")
    assert page.evaluate("serverpush.cursor") == ready["detail"]["cursor"]


def test_a_committed_save_fires_the_event_with_its_data(push, open_page):
    note = Note.objects.create(title="before", rank=3)
    page = open_page(f"/t/note/{note.pk}/")
    save(note, "after")
    event = wait_seen(page, "serverpush_note", "e.detail.title === 'after'")
    assert event["detail"] == {"title": "after", "rank": 3}
    cursor, entry = event["meta"].pop("cursor"), event["meta"].pop("id")
    assert event["meta"] == {"op": "update", "model": "testapp.note", "pk": note.pk, "replay": False, "resync": False, "tab": None}
    assert int(cursor.split(":")[1]) <= int(entry.split(":")[1])  # never past the entry itself
    wait_until(lambda: page.evaluate("serverpush.received") >= 4)  # the page's four specs
    assert page.evaluate("serverpush.cursor") is not None


def test_a_reconnect_sends_the_latest_cursor_and_gets_what_it_missed(push, open_page):
    note = Note.objects.create(title="start")
    page = open_page(f"/t/note/{note.pk}/")
    save(note, "live")
    wait_seen(page, "serverpush_note", "e.detail.title === 'live'")
    page.evaluate("serverpush.socket.disconnect()")
    cursor = page.evaluate("serverpush.cursor")  # the last event's, whichever of the page's specs that was

    page.wait_for_function("serverpush.state === 'disconnected'")
    with push.landing():
        save(note, "while away")
    page.evaluate("serverpush.socket.connect()")
    missed = wait_seen(page, "serverpush_note", "e.detail.title === 'while away'")
    wait_live(page)

    assert missed["meta"]["replay"] is True
    assert seen(page, "serverpush_ready")[-1]["detail"]["replayed"] >= 1
    first, again = page.connects
    assert first["cursor"].startswith("t") and again == {"token": first["token"], "cursor": cursor}


def test_a_push_server_restart_heals_the_page_without_a_reload(push, open_page, start_push_server):
    note = Note.objects.create(title="epoch one")
    page = open_page(f"/t/note/{note.pk}/")
    push.stop()
    Note.objects.filter(pk=note.pk).update(title="changed while it was down")  # no signal, no entry: only a heal tells
    start_push_server(port=push.port, notifier_port=push.notifier_port)  # same ports, new epoch
    healed = wait_seen(page, "serverpush_resynced", timeout=RECONNECT_TIMEOUT)
    assert healed["detail"]["code"] == "log_restarted"
    update = wait_seen(page, "serverpush_note", "e.detail.title === 'changed while it was down'")
    assert update["meta"]["resync"] is True
    assert page.evaluate("[sessionStorage.loads, sessionStorage.refreshes, serverpush.state, serverpush.healed]") == ["1", None, "live", 1]

    save(note, "epoch two")  # and the page is live on the new server
    wait_seen(page, "serverpush_note", "e.detail.title === 'epoch two'")


def subscribe_recording(page: Page) -> None:
    """Subscribe the watch page's element; every callback call goes to ``calls`` as {op, data, meta}."""
    page.evaluate("""() => {
      window.calls = [];
      const record = op => (data, meta) => calls.push({op, data, meta});
      window.sub = serverpush.subscribe(document.getElementById('watched'),
                                        {create: record('create'), update: record('update'), delete: record('delete')});
    }""")
    page.wait_for_function("sub.state === 'live'")


def test_watch_callbacks_get_what_changed_and_whether_it_left_the_filter(push, open_page):
    shown = Note.objects.create(title="shown", rank=12)
    page = open_page("/t/watch/ranked/")  # Note.objects.filter(rank__gte=10)
    subscribe_recording(page)
    save(shown, "renamed")
    page.wait_for_function("calls.some(c => c.op === 'update')")  # before the next change: rows are read back
    shown.rank = 3
    save(shown, "out of the filter")
    page.wait_for_function("calls.some(c => c.op === 'delete')")
    update, gone = [call for call in page.evaluate("calls") if not call["meta"]["replay"]]  # (the replay may hold its create)
    assert (update["op"], update["data"]["title"], update["meta"]["left"]) == ("update", "renamed", False)
    assert (gone["op"], gone["data"], gone["meta"]["pk"], gone["meta"]["left"]) == ("delete", {"pk": shown.pk}, shown.pk, True)


def test_an_object_that_joined_live_and_left_while_away_is_deleted_on_reconnect(push, open_page):
    page = open_page("/t/watch/ranked/")
    subscribe_recording(page)
    joined = Note.objects.create(title="joined after the render", rank=14)
    page.wait_for_function(f"calls.some(c => c.meta.pk === {joined.pk} && c.op === 'create')")
    page.evaluate("serverpush.socket.disconnect()")
    page.wait_for_function("serverpush.state === 'disconnected'")
    with push.landing():
        joined.rank = 2
        save(joined, "left while the page was away")
    page.evaluate("serverpush.socket.connect()")
    page.wait_for_function(f"calls.some(c => c.meta.pk === {joined.pk} && c.op === 'delete')")
    gone = [c for c in page.evaluate("calls") if c["op"] == "delete"]
    assert [(c["meta"]["pk"], c["meta"]["left"], c["meta"]["replay"]) for c in gone] == [(joined.pk, True, True)]
