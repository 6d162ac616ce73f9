"""The specs behind live.js: template fragments, signals, and the tab that made a change."""
from __future__ import annotations

import re

import pytest
from django.test import RequestFactory

from serverpush.entries import Entry, decode, encode
from serverpush.server.fanout import payload
from serverpush.serializers import FragmentSerializer, Signal
from serverpush.specs import SpecError, parse_specs
from serverpush.tabs import HEADER, new_tab, tab_id, tab_of
from tests.conftest import render
from tests.testapp.models import Note

SOURCE = "update function of tests.testapp.feature_views.live_notes"


def parse(spec: dict) -> list:
    return parse_specs([spec], SOURCE, "tests.testapp.feature_views")


def error_of(spec: dict) -> str:
    with pytest.raises(SpecError) as info:
        parse(spec)
    return str(info.value)


@pytest.mark.django_db
def test_a_template_partial_renders_the_object_under_its_model_name_with_the_request(django_user_model):
    [spec] = parse({"name": "note_item", "model": Note, "template": "testapp/live_notes.html#note"})
    assert isinstance(spec.serializer, FragmentSerializer) and spec.vary == {"user", "language"}
    request = RequestFactory().get("/t/live/notes/")
    request.user = django_user_model(username="viewer")
    html = spec.serializer(request, Note(pk=7, title="seven", rank=3), None)
    assert re.fullmatch(r'<li data-serverpush-key="7"><span class="title">seven</span> <span class="rank">3</span> <span class="viewer">viewer</span></li>', html)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"name": "n", "model": Note, "template": "testapp/nowhere.html"}, "key 'template' names 'testapp/nowhere.html', which no template loader finds"),
        ({"name": "n", "model": Note, "template": "testapp/live_notes.html#nothing"}, "'testapp/live_notes.html#nothing'"),
        ({"name": "n", "model": Note, "template": ""}, "key 'template' is ''; expected a template name"),
        ({"name": "n", "model": Note, "template": "testapp/live_notes.html#note", "serializer": "hello"}, "give 'template' or 'serializer', not both"),
    ],
)
def test_a_bad_template_spec_says_what_to_do(spec, expected):
    message = error_of(spec)
    assert message.startswith(f"{SOURCE}, spec 0 ('n'): ") and expected in message


def test_data_none_is_a_signal_that_everyone_shares():
    [spec] = parse({"name": "notes", "model": Note, "data": None})
    assert isinstance(spec.serializer, Signal) and spec.vary == frozenset()
    assert spec.serializer(None, Note(pk=1), None) is None


def test_a_tab_id_is_the_signature_of_its_key_and_a_bad_header_is_ignored(rf):
    key, tab = new_tab()
    assert tab == tab_id(key) and key not in tab
    assert tab_of(rf.get("/", **{HEADER: key})) == tab
    for bad in ("", "short", "x" * 65, "spaces are not allowed here", key + "!"):
        assert tab_of(rf.get("/", **{HEADER: bad})) is None


@pytest.mark.django_db(transaction=True)
def test_changes_a_request_makes_carry_its_tab_to_the_event(start_push_server, listeners, browser_client):
    server = start_push_server()
    board = listeners().connect(server, render(browser_client, "/t/live/board/"), cursor=None)
    key, tab = new_tab()
    with server.landing(3):
        browser_client.post("/t/live/add/", {"title": ["from a tab", "and another"]}, headers={"X-Serverpush-Tab": key})
        browser_client.post("/t/live/add/", {"title": "from no tab"}, headers={"X-Serverpush-Tab": "not a key"})
    board.wait(lambda: len(board.live("notes")) == 3, "three changes")
    assert [(event["data"], event.get("tab")) for event in board.live("notes")] == [(None, tab), (None, tab), (None, None)]


def test_the_tab_survives_the_log_encoding_and_is_left_out_without_one(rf):
    request = rf.get("/")
    request.LANGUAGE_CODE = "en"
    tabbed = Entry(model="testapp.note", pk=1, op="update", fields={"title": "t"}, tab="the-id")
    untabbed = Entry(model="testapp.note", pk=2, op="update", fields={"title": "u"})
    assert [e.tab for e in decode(encode([tabbed, untabbed]))] == ["the-id", None]
    assert "tab" not in encode([untabbed]).decode()
    [spec] = parse({"name": "notes", "model": Note, "data": None})
    assert payload(spec, request, tabbed, tabbed.instance())["tab"] == "the-id"
    assert "tab" not in payload(spec, request, untabbed, untabbed.instance())


def test_an_entry_with_a_tab_that_is_not_text_is_malformed():
    with pytest.raises(ValueError, match="malformed entry"):
        decode(b'[{"model": "testapp.note", "pk": 1, "op": "update", "fields": {}, "ts": 1, "tab": 5}]')


@pytest.mark.django_db
def test_the_script_tag_gives_a_live_page_its_tab_and_a_dead_page_none(browser_client):
    html = browser_client.get("/t/live/board/").content.decode()
    tag = re.search(r'<script src="/static/serverpush/live.js"[^>]*>', html).group(0)
    key, tab = re.search(r'data-tab-key="([^"]+)" data-tab-id="([^"]+)"', tag).groups()
    assert tab_id(key) == tab
    again = re.search(r'data-tab-key="([^"]+)"', browser_client.get("/t/live/board/").content.decode()).group(1)
    assert again != key  # one per rendered page
    quiet = browser_client.get("/t/plain/").content.decode()
    assert 'data-tab-key=""' in quiet or "live.js" not in quiet


@pytest.mark.django_db(transaction=True)
def test_a_fragment_shared_by_every_page_is_rendered_once_per_change(start_push_server, listeners, user_client):
    server = start_push_server()
    tabs = [listeners().connect(server, render(user_client(name), "/t/live/notes/"), cursor=None) for name in ("ann", "ben", "ann")]
    before = server.stats().get("serializations", 0)
    with server.landing():
        Note.objects.create(title="for everyone")
    for tab in tabs:
        tab.wait(lambda tab=tab: tab.live("note_item"), "the item")
    assert server.stats()["serializations"] - before == 1  # vary=(): one rendering for all three pages
    [html] = {tab.live("note_item")[0]["data"] for tab in tabs}
    assert '<span class="title">for everyone</span>' in html
