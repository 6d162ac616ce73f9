"""The demo as a visitor finds it: every page clean and live, the outage page, the page refresh.

Screenshots of every page go to ``test-artefacts/screenshots/`` (or
``$SERVERPUSH_ARTEFACTS``), to be looked at.
"""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.conftest import ROOT, DemoServer
from tests.test_browser import assert_not_reloaded, click, new_context, open_live, shows, sign_in  # noqa: F401 - fixtures

TIMEOUT = 10_000  # ms
RESTART_TIMEOUT = 40_000  # ms: the page reconnects with backoff while the push server restarts
PAGES = ["/", "/hello/fields/", "/hello/custom/", "/hello/", "/items/", "/board/", "/watch/", "/messages/", "/handlers/", "/outage/", "/jquery/", "/login/"]
ARTEFACTS = Path(os.environ.get("SERVERPUSH_ARTEFACTS", ROOT / "test-artefacts")) / "screenshots"


def watch_problems(page: Page) -> list[str]:
    """Console errors, page errors, failed requests and error responses of ``page``, as they happen."""
    problems: list[str] = []
    page.on("console", lambda m: m.type == "error" and problems.append(f"console: {m.text}"))
    page.on("pageerror", lambda e: problems.append(f"error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"failed: {r.url} ({r.failure})"))
    page.on("response", lambda r: r.status >= 400 and problems.append(f"{r.status}: {r.url}"))
    return problems


def state_is(page: Page, state: str, timeout: int = TIMEOUT) -> None:
    expect(page.locator("html")).to_have_attribute("data-serverpush-state", state, timeout=timeout)


def test_every_page_is_live_with_no_console_error_and_no_failed_request(demo: DemoServer, new_context) -> None:
    context = new_context()
    context.set_default_timeout(TIMEOUT)
    sign_in(demo, context, "visitor")
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    for path in PAGES:
        page = context.new_page()
        page.set_viewport_size({"width": 1280, "height": 900})
        problems = watch_problems(page)
        page.goto(demo.url + path)
        state_is(page, "live")
        page.wait_for_load_state("networkidle")  # the favicon, the stylesheet, the websocket upgrade
        page.screenshot(path=ARTEFACTS / f"{path.strip('/').replace('/', '-') or 'index'}.png", full_page=True)
        assert problems == [], f"{path}: {problems}"
        # Headless Chromium asks for no favicon itself; a browser would, so the page names one that loads.
        icon = page.eval_on_selector("link[rel=icon]", "link => link.href")
        assert page.request.get(icon).status == 200, f"{path}: its icon {icon} does not load"
        assert page.locator("h1").inner_text() and page.locator(".lead").inner_text(), f"{path} says what it shows"
        if path != "/login/":
            assert page.locator(".source figcaption").count() >= 2, f"{path} shows its Python and template code"
        page.close()


def test_the_nav_fits_on_one_line_and_never_breaks_a_label(demo: DemoServer, new_context) -> None:
    page = new_context().new_page()
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(demo.url + "/")
    tops = page.eval_on_selector_all("nav a", "links => links.map(a => a.getBoundingClientRect().top)")
    assert len(set(tops)) == 1
    page.set_viewport_size({"width": 390, "height": 800})
    heights = page.eval_on_selector_all("nav a", "links => links.map(a => a.getClientRects().length)")
    assert set(heights) == {1}  # wrapped whole, one box per label


def test_the_page_refresh_page_follows_another_tabs_changes(demo: DemoServer, new_context) -> None:
    a, b = (open_live(demo, new_context(), "/board/") for _ in range(2))
    text = f"board {uuid.uuid4().hex[:6]}"
    b.fill("#item-text", "half typed")
    a.fill("#item-text", text)
    click(a, "#add")
    for page in (a, b):
        expect(page.locator(".columns .card").first.locator("li", has_text=text)).to_have_count(1, timeout=TIMEOUT)
    b.locator("li", has_text=text).locator(".toggle").click()  # to the Done column, in both tabs
    for page in (a, b):
        expect(page.locator(".columns .card").last.locator("li", has_text=text)).to_have_count(1, timeout=TIMEOUT)
    assert b.input_value("#item-text") == "half typed"
    assert_not_reloaded(a, b)


def test_an_offline_tab_replays_what_it_missed_when_it_comes_back(demo: DemoServer, new_context) -> None:
    away, other = open_live(demo, new_context(), "/outage/"), open_live(demo, new_context(), "/")
    click(away, "#go-offline")
    state_is(away, "offline")
    replayed = int(away.inner_text(".badge [data-serverpush-status=replayed]"))
    click(other, "#increment")
    shows(other.locator("#counter"), str(int(away.inner_text("#counter")) + 1))
    click(away, "#go-online")
    shows(away.locator("#counter"), other.inner_text("#counter"))
    state_is(away, "live")
    assert int(away.inner_text(".badge [data-serverpush-status=replayed]")) > replayed
    assert_not_reloaded(away)


def test_the_outage_page_stops_and_restarts_the_push_server_and_keeps_what_was_typed(demo: DemoServer, new_context) -> None:
    context: BrowserContext = new_context()
    page = open_live(demo, context, "/outage/")
    problems = watch_problems(page)
    click(page, "#stop-push")
    state_is(page, "reconnecting")
    click(page, "#increment")  # Django still works: the change waits in the database
    page.fill("#item-text", "typed during the outage")
    page.locator("h1").click()  # leave the field: a reload may come
    click(page, "#start-push")
    # The embedded log restarted empty: what the page cannot heal exactly, it reloads for.
    state_is(page, "live", RESTART_TIMEOUT)
    committed = page.evaluate("fetch('/outage/').then(r => r.text()).then(html => /id=\"counter\"[^>]*>(\\d+)</.exec(html)[1])")
    shows(page.locator("#counter"), committed)  # the click made during the outage is there
    assert page.input_value("#item-text") == "typed during the outage"
    assert page.evaluate("sessionStorage.length") == 0  # the input kept for the reload was put back and dropped
    # The push server's absence is the point: its refused connections are the only failures.
    assert [p for p in problems if "socket.io" not in p and "ERR_CONNECTION_REFUSED" not in p and "is `./manage.py runserverpush` running?" not in p] == []


def test_the_original_readmes_jquery_handlers_still_work(demo: DemoServer, new_context) -> None:
    name = f"jq-{uuid.uuid4().hex[:6]}"
    context = new_context()
    sign_in(demo, context, name)
    page = open_live(demo, context, "/jquery/")
    page.fill("#username", f"{name}-renamed")
    click(page, "#rename")
    shows(page.locator("#jq-fields"), f"Hey, {name}-renamed!")
    shows(page.locator("#jq-view"), f"Hey, {name}-renamed!")
    assert_not_reloaded(page)
