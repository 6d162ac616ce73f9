"""live.js against the real push server, on pages Django renders (see test_integration.py).

A list rendered from a template partial (one rendering per change for everyone) and
a list of a watched filter stay equal to the database through creates, updates,
deletes, objects leaving the filter, and a reconnect; a page that refreshes itself
does so once for many changes, and never for the changes its own requests made.
"""
from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from serverpush_js.tests.test_integration import open_page, orm_beside_playwright, push, save, wait_live  # noqa: F401 - fixtures
from tests.conftest import wait_until
from tests.testapp.models import Note

pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT = 10_000  # ms


def shown(page: Page, selector: str) -> list[tuple[str, str]]:
    """(key, title) of each item of the list ``selector``, in page order."""
    return [tuple(row) for row in page.eval_on_selector_all(f"{selector} > li", "lis => lis.map(li => [li.dataset.serverpushKey, li.querySelector('.title').textContent])")]


def expect_lists(page: Page) -> None:
    """Both lists come to show what the database holds (the watched one: notes ranked 10 or more)."""
    notes = [(str(n.pk), n.title) for n in Note.objects.order_by("pk")]
    ranked = sorted((str(n.pk), n.title) for n in Note.objects.filter(rank__gte=10))
    try:
        wait_until(lambda: shown(page, "#notes") == notes and sorted(shown(page, "#ranked")) == ranked, TIMEOUT / 1000, "the lists")
    except AssertionError:
        assert (shown(page, "#notes"), sorted(shown(page, "#ranked"))) == (notes, ranked)
        raise


def test_lists_stay_equal_to_the_database_live_and_through_a_reconnect(push, open_page):
    kept = Note.objects.create(title="kept", rank=12)
    doomed = Note.objects.create(title="doomed", rank=1)
    page = open_page("/t/live/notes/")
    page.wait_for_function("serverpush.subscriptions.length === 1 && serverpush.subscriptions[0].state === 'live'")
    assert shown(page, "#notes") == [(str(kept.pk), "kept"), (str(doomed.pk), "doomed")]

    fresh = Note.objects.create(title="fresh", rank=15)  # create: both lists
    save(kept, "kept, renamed")  # update: morphed in both
    doomed.delete()  # delete
    expect_lists(page)
    kept.rank = 2
    save(kept, "kept, out of the ranking")  # leaves the watched filter: meta.left
    expect_lists(page)
    assert page.inner_text(f"#notes [data-serverpush-key='{fresh.pk}'] .rank") == "15"  # the server's partial, not a copy

    page.evaluate("serverpush.socket.disconnect()")
    page.wait_for_function("serverpush.state === 'disconnected'")
    expect(page.locator("html")).to_have_attribute("data-serverpush-state", "offline")  # its own code disconnected it
    with push.landing(4):
        late = Note.objects.create(title="made while away", rank=20)
        save(fresh, "fresh, renamed while away")
        kept.delete()
        late.rank = 3
        save(late, "made and left while away")
    page.evaluate("serverpush.socket.connect()")
    wait_live(page)
    expect_lists(page)
    assert page.evaluate("sessionStorage.loads") == "1"  # all of it without a reload
    expect(page.locator("html")).to_have_attribute("data-serverpush-state", "live")


def board_fetches(page: Page) -> list[str]:
    """Every background GET of the board page (its refreshes) is recorded in ``page.refetches``."""
    return page.refetches


def open_board(open_page: Any) -> Page:
    page = open_page("/t/live/board/")
    page.refetches = []
    page.on("request", lambda r: r.resource_type == "fetch" and r.method == "GET" and "/t/live/board/" in r.url and page.refetches.append(r.url))
    return page


def test_a_page_refresh_is_one_fetch_for_many_changes_and_never_echoed_to_its_tab(push, open_page):
    mine, other = open_board(open_page), open_board(open_page)
    # A request this tab makes with its own code (its tab header, no form binding):
    # the other tab refreshes for it, this one does not.
    mine.evaluate("""fetch('/t/live/add/', {method: 'POST', headers: {'X-Serverpush-Tab': serverpush.tab.key},
                                            body: new URLSearchParams({title: 'from my own script'})})""")
    expect(other.locator("#titles li")).to_have_text(["from my own script"], timeout=TIMEOUT)
    assert board_fetches(other) and board_fetches(mine) == []
    # A burst of changes by someone else: one refresh each (two at most, if one lands mid-fetch).
    before = len(board_fetches(other))
    Note.objects.bulk_create([Note(title=f"bulk {i}") for i in range(20)])
    for i, note in enumerate(Note.objects.filter(title__startswith="bulk")):
        note.rank = i
        note.save()
    for page in (mine, other):
        expect(page.locator("#count")).to_have_text("21 notes", timeout=TIMEOUT)
    assert 1 <= len(board_fetches(mine)) <= 2 and 1 <= len(board_fetches(other)) - before <= 2

    # The form binding: the tab that submits refreshes itself at once, the echo not again.
    other.fill("#title", "typing in the other tab")
    before = {id(p): len(board_fetches(p)) for p in (mine, other)}
    mine.fill("#title", "from the form")
    mine.click("#send")
    for page in (mine, other):
        expect(page.locator("#titles li").last).to_have_text("from the form", timeout=TIMEOUT)
    expect(mine.locator("#title")).to_have_value("")
    assert other.input_value("#title") == "typing in the other tab" and other.evaluate("document.activeElement.id") == "title"
    assert [p.evaluate("sessionStorage.loads") for p in (mine, other)] == ["1", "1"]
    assert len(board_fetches(mine)) - before[id(mine)] >= 1 and len(board_fetches(other)) - before[id(other)] >= 1
