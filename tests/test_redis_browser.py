"""serverpush.js on the Redis log, in a real browser: it resumes from the last event it applied."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser

from tests.testapp.models import Note

pytestmark = pytest.mark.django_db(transaction=True)

RECORD = """() => {
  window.got = [];
  document.addEventListener('serverpush_registered', e => got.push([e.detail.title, e.serverpush.replay, e.serverpush.op]));
}"""


@pytest.fixture(autouse=True, scope="module")
def orm_beside_playwright() -> Iterator[None]:
    """Playwright's sync API leaves an event loop marked running in this thread; these ORM calls are sync all the same.

    Module-scoped, so that it also covers the database flush after each test.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield


def save(note: Note, title: str) -> None:
    note.title = title
    note.save()


def test_the_browser_resumes_after_its_push_server_restarts(browser: Browser, live_server: Any, redis_log, start_push_server, settings):
    server = start_push_server(env=redis_log.push_env())
    settings.SERVERPUSH_URL = server.url.replace("127.0.0.1", "localhost")  # same host as the page: its cookies go along
    note = Note.objects.create(title="start")
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(live_server.url.replace("127.0.0.1", "localhost") + "/t/registered/")
        page.wait_for_function("window.serverpush && serverpush.state === 'live'")
        page.evaluate(RECORD)
        save(note, "live")
        page.wait_for_function("got.length === 1")
        server.stop(kill=True)
        for n in range(5):
            save(note, f"missed {n}")
        Note.objects.create(title="created while away")
        server.start()  # same port: socket.io's own reconnection finds it, with the last cursor
        page.wait_for_function("serverpush.state === 'live' && got.length >= 3", timeout=30_000)
        assert page.evaluate("got") == [["live", False, "update"], ["missed 4", True, "update"], ["created while away", True, "create"]]
        assert page.evaluate("serverpush.refreshed") is None
    finally:
        context.close()
