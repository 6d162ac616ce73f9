"""The demo's pages for the originals' features, in a real browser: above all the
watched-object page (django-pushy), then the bidirectional (django-ws) and message
(djazator, pushnote) pages. ``manage.py rundemo`` runs as a user starts it."""
from __future__ import annotations

from playwright.sync_api import Locator, Page, expect

from tests.test_browser import assert_not_reloaded, click, new_context, open_live, shows, sign_in  # noqa: F401 - fixtures

SUBSCRIBED = "window.serverpush.subscriptions.length === 2 && window.serverpush.subscriptions.every(function (s) { return s.state === 'live'; })"


def contains(locator: Locator, text: str) -> None:
    expect(locator).to_contain_text(text, timeout=10_000)


def items(page: Page) -> list[str]:
    return page.locator("#items li .text").all_inner_texts()


def test_the_watched_object_page_follows_creates_updates_and_objects_leaving_the_filter(demo, new_context):
    first, second = (open_live(demo, new_context(), "/watch/") for _ in range(2))
    for page in (first, second):
        page.wait_for_function(SUBSCRIBED)  # live.js subscribed both watched elements itself
    start = int(first.inner_text("#watch-counter"))
    click(first, "#increment")
    for page in (first, second):
        shows(page.locator("#watch-counter"), str(start + 1))

    second.fill("#item-text", "watched milk")
    click(second, "#add")
    for page in (first, second):
        shows(page.locator("#items li .text").last, "watched milk")
    # Ticked done, it leaves the filter (items not done): a delete with meta.left.
    first.bring_to_front()
    first.locator("#items li", has_text="watched milk").locator(".toggle").click()
    for page in (first, second):
        expect(page.locator("#items li", has_text="watched milk")).to_have_count(0, timeout=10_000)
    assert_not_reloaded(first, second)


def test_a_watching_page_that_was_away_gets_what_it_missed(demo, new_context):
    away, other = (open_live(demo, new_context(), "/watch/") for _ in range(2))
    for page in (away, other):
        page.wait_for_function(SUBSCRIBED)
    away.evaluate("serverpush.socket.disconnect()")
    away.wait_for_function("window.serverpush.state === 'disconnected'")
    other.fill("#item-text", "added while away")
    click(other, "#add")
    shows(other.locator("#items li .text").last, "added while away")
    away.evaluate("serverpush.socket.connect()")
    shows(away.locator("#items li .text").last, "added while away")
    assert_not_reloaded(away, other)


def test_the_handlers_page_talks_to_the_random_counter_and_shout(demo, new_context):
    context = new_context()
    sign_in(demo, context, "hana")
    page = open_live(demo, context, "/handlers/")
    page.wait_for_function("/^\\d+$/.test(document.getElementById('ws-output').textContent)")
    assert 1 <= int(page.inner_text("#ws-output")) <= 100
    shows(page.locator("#shouts li").first, "(connected as hana)")
    page.fill("#shout-text", "hello there")
    click(page, "#shout")
    shows(page.locator("#shouts li").last, "hana: HELLO THERE")


def test_the_messages_page_sends_to_everyone_or_to_one_users_tabs(demo, new_context):
    ivy, jon = new_context(), new_context()
    sign_in(demo, ivy, "ivy")
    sign_in(demo, jon, "jon")
    ivy_tabs = [open_live(demo, ivy, "/messages/"), open_live(demo, ivy, "/")]
    ivy_tabs[1].evaluate("window.got = []; document.addEventListener('serverpush_message', function (e) { window.got.push(e.detail); })")
    jon_tab = open_live(demo, jon, "/messages/")
    jon_tab.reload()  # its user list now has ivy
    jon_tab.wait_for_function("window.serverpush.state === 'live'")
    jon_tab.select_option("#send-user", "ivy")
    jon_tab.fill("#send-text", "for ivy only")
    click(jon_tab, "#send")
    contains(ivy_tabs[0].locator("#inbox li").last, "jon: for ivy only")
    ivy_tabs[1].wait_for_function("window.got.length === 1 && window.got[0].text === 'for ivy only'")  # any page of hers
    jon_tab.fill("#broadcast-text", "for all")
    click(jon_tab, "#broadcast")
    contains(jon_tab.locator("#inbox li").last, "jon: for all")
    contains(ivy_tabs[0].locator("#inbox li").last, "jon: for all")
    assert [t for t in jon_tab.locator("#inbox li").all_inner_texts() if "for ivy only" in t] == []
