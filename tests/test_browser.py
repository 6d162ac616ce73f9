"""The demo in a real browser: ``manage.py rundemo`` as a user starts it, Chromium as a user clicks."""
from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect

from tests.conftest import DemoServer, answers, wait_until

TIMEOUT = 10_000  # ms, for every browser wait

# The event each greeting page binds, by path (one per serializer form).
GREETINGS = {"/hello/fields/": "username_change", "/hello/custom/": "greeting", "/hello/": "reload"}


@pytest.fixture
def new_context(browser: Browser) -> Iterator[Callable[[], BrowserContext]]:
    """Browser contexts (each its own cookie jar: one user); no page may throw."""
    contexts: list[BrowserContext] = []
    errors: list[str] = []

    def make() -> BrowserContext:
        context = browser.new_context()
        context.set_default_timeout(TIMEOUT)
        context.on("page", lambda page: page.on("pageerror", lambda error: errors.append(f"{page.url}: {error}")))
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()
    assert errors == []


def open_live(demo: DemoServer, context: BrowserContext, path: str) -> Page:
    """Open ``path`` and wait until its push connection is live; mark the page to detect reloads."""
    page = context.new_page()
    page.goto(demo.url + path)
    page.wait_for_function("window.serverpush && window.serverpush.state === 'live'")
    page.evaluate("window.__marker = 1")
    return page


def assert_not_reloaded(*pages: Page) -> None:
    for page in pages:
        assert page.evaluate("window.__marker") == 1, f"{page.url} reloaded instead of updating in place"


def click(page: Page, selector: str) -> None:
    """Click as a user does, in the tab in front: Chromium throttles animation frames in
    background tabs, and Playwright's click waits for two of them."""
    page.bring_to_front()
    page.click(selector)


def shows(locator: Locator, text: str) -> None:
    expect(locator).to_have_text(text, timeout=TIMEOUT)


def sign_in(demo: DemoServer, context: BrowserContext, username: str) -> None:
    page = context.new_page()
    page.goto(demo.url + "/login/")
    page.fill("#login-username", username)
    with page.expect_navigation():
        page.click("#login")
    page.close()


def test_the_counter_updates_every_open_tab(demo, new_context):
    context = new_context()
    a, b = open_live(demo, context, "/"), open_live(demo, context, "/")
    # B's page view bumped the counter after A rendered: A hears of it too.
    wait_until(lambda: a.inner_text("#counter") == b.inner_text("#counter"), TIMEOUT / 1000, "both tabs to agree")
    clicked = int(b.inner_text("#counter")) + 1
    click(a, "#increment")
    shows(b.locator("#counter"), str(clicked))
    shows(a.locator("#counter"), str(clicked))

    viewer = context.new_page()
    viewer.goto(demo.url + "/")  # a page view counts too
    viewed = int(viewer.inner_text("#counter"))
    assert viewed == clicked + 1
    shows(a.locator("#counter"), str(viewed))
    shows(b.locator("#counter"), str(viewed))
    assert_not_reloaded(a, b)


@pytest.mark.parametrize("path", GREETINGS)
def test_a_rename_reaches_every_tab_of_that_user_and_no_one_else(demo, new_context, path):
    slug = path.strip("/").replace("/", "-")
    alice, bob = f"alice-{slug}", f"bob-{slug}"
    alice_context, bob_context = new_context(), new_context()
    sign_in(demo, alice_context, alice)
    sign_in(demo, bob_context, bob)
    # The push server can only tell who is looking by this cookie, which page JS cannot read.
    assert [c["httpOnly"] for c in alice_context.cookies() if c["name"] == "sessionid"] == [True]
    a, b = open_live(demo, alice_context, path), open_live(demo, alice_context, path)
    bobs = open_live(demo, bob_context, path)
    bobs.evaluate("name => { window.received = []; document.addEventListener(name, e => received.push(e.detail)); }", f"serverpush_{GREETINGS[path]}")

    a.fill("#username", f"{alice}-renamed")
    click(a, "#rename")
    shows(b.locator("#greeting"), f"Hey, {alice}-renamed!")
    shows(a.locator("#greeting"), f"Hey, {alice}-renamed!")
    assert bobs.inner_text("#greeting").strip() == f"Hey, {bob}!"

    # Bob's own rename is logged after Alice's, so anything of hers sent to him came first.
    bobs.fill("#username", f"{bob}-renamed")
    click(bobs, "#rename")
    shows(bobs.locator("#greeting"), f"Hey, {bob}-renamed!")
    received = json.dumps(bobs.evaluate("received"))
    assert f"{bob}-renamed" in received and alice not in received
    assert_not_reloaded(a, b, bobs)


def test_list_items_added_and_deleted_in_one_tab_change_the_other(demo, new_context):
    context = new_context()
    a, b = open_live(demo, context, "/items/"), open_live(demo, context, "/items/")
    text = f"item {uuid.uuid4().hex[:8]}"
    a.fill("#item-text", text)
    click(a, "#add")
    expect(b.locator("#items li", has_text=text)).to_have_count(1, timeout=TIMEOUT)
    expect(a.locator("#items li", has_text=text)).to_have_count(1, timeout=TIMEOUT)

    b.bring_to_front()
    b.locator("#items li", has_text=text).locator(".delete").click()
    expect(a.locator("#items li", has_text=text)).to_have_count(0, timeout=TIMEOUT)
    expect(b.locator("#items li", has_text=text)).to_have_count(0, timeout=TIMEOUT)
    assert_not_reloaded(a, b)


def test_sigterm_stops_rundemo_and_its_push_server(tmp_path: Path):
    server = DemoServer(tmp_path)
    try:
        server.start()
        server.stop()
        wait_until(lambda: not server.leftovers(), 10, f"the push server to exit with rundemo (log: {server.log_path})")
        assert not answers(server.stats_url)
    finally:
        server.close()


def test_logout_in_one_tab_stops_that_sessions_other_tabs_at_once(demo: DemoServer, new_context: Callable[[], BrowserContext]) -> None:
    name = f"leaver-{uuid.uuid4().hex[:6]}"
    tabs = new_context()
    sign_in(demo, tabs, name)
    leaving, other_tab = open_live(demo, tabs, "/hello/fields/"), open_live(demo, tabs, "/hello/fields/")
    elsewhere_context = new_context()
    sign_in(demo, elsewhere_context, name)  # the same user, another session
    elsewhere = open_live(demo, elsewhere_context, "/hello/fields/")
    click(leaving, "#logout")
    # The other tab is told its session ended and reloads as the logged-out visitor it now is.
    other_tab.wait_for_url("**/login/?next=/hello/fields/", timeout=TIMEOUT)
    assert_not_reloaded(elsewhere)
    elsewhere.fill("#username", f"{name}-stays")
    click(elsewhere, "#rename")
    shows(elsewhere.locator("#greeting"), f"Hey, {name}-stays!")
