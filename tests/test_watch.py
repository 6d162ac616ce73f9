"""Watching objects from the page (django-pushy): signed watch tokens, rooms on the server."""
from __future__ import annotations

import json
import re
import uuid

import pytest
from django.contrib.sessions.models import Session
from django.db.models import Q
from django.template import TemplateSyntaxError

import serverpush
from serverpush import watch as watching
from serverpush.tokens import TokenError
from tests.conftest import Listener, render
from tests.testapp.models import Note

pytestmark = pytest.mark.django_db(transaction=True)


class Watcher:
    """A real Socket.IO client on a watch page, recording ``serverpush_watch`` events."""

    def __init__(self, listener: Listener, page, token: str) -> None:
        self.listener, self.page, self.token = listener, page, token
        listener.client.on("serverpush_watch", lambda data: listener.events.append(("serverpush_watch", data)))

    def subscribe(self, token: str | None = None, cursor: str | None = None):
        self.catch_up()
        return self.listener.client.call("serverpush_subscribe", {"token": token or self.token, "cursor": cursor}, timeout=10)

    def catch_up(self) -> None:
        """Wait until the push server has delivered what this process committed so far.

        Changes travel asynchronously: one committed just before subscribing could
        otherwise arrive just after, live. A broadcast travels the same ordered way.
        """
        mark = uuid.uuid4().hex
        serverpush.notify_all({"mark": mark})
        self.listener.wait(lambda: any(u["data"] == {"mark": mark} for u in self.listener.updates("message")), "the catch-up message")

    def events(self, pk=None) -> list[dict]:
        return [e for e in self.listener.named("serverpush_watch") if pk is None or e["pk"] == pk]

    def wait(self, predicate, what="watch events"):
        return self.listener.wait(predicate, what)


@pytest.fixture
def watcher(push_server, listeners):
    def make(client, path, server=None):
        page = render(client, path)
        token = re.search(r'data-serverpush-watch="([^"]*)"', page.html).group(1)
        listener = listeners()
        made = Watcher(listener, page, token)
        listener.connect(server or push_server, page, cursor=None)
        return made

    return make


def rename(note, title, **extra):
    note.title = title
    for key, value in extra.items():
        setattr(note, key, value)
    note.save()


# The tag and the token.

def test_the_tag_signs_what_is_watched_and_nothing_else_can_be_read_back():
    note = Note.objects.create(title="n")
    watch = watching.watch_of(note, None, "title")
    back = watching.read_watch_token(watching.make_watch_token(watch))
    assert (back.model, back.pks, back.lookups, back.fields) == (Note, (str(note.pk),), None, ("title",))
    with pytest.raises(watching.TokenError) as info:
        watching.read_watch_token(watching.make_watch_token(watch)[:-2] + "xx")
    assert info.value.code == "token_invalid"


def test_querysets_become_a_filter_when_plain_and_a_pk_list_otherwise(django_user_model):
    alice = django_user_model.objects.create(username="alice")
    notes = [Note.objects.create(title=f"n{i}", owner=alice) for i in range(3)]
    assert watching.lookups_of(Note.objects.filter(rank__gte=10, owner=alice)) == {"rank__gte": 10, "owner__exact": alice.pk}
    assert watching.lookups_of(Note.objects.all()) == {}
    for complicated in (Note.objects.filter(owner__username="alice"), Note.objects.exclude(rank=1), Note.objects.filter(Q(rank=1) | Q(rank=2)), Note.objects.all()[:2]):
        assert watching.lookups_of(complicated) is None
    watch = watching.watch_of(Note.objects.filter(owner__username="alice"), None)
    assert watch.lookups is None and set(watch.pks) == {str(n.pk) for n in notes}


def test_too_big_a_pk_list_is_refused_with_the_fix(monkeypatch):
    Note.objects.bulk_create([Note(title=str(i)) for i in range(3)])
    monkeypatch.setattr(watching, "MAX_OBJECTS", 2)
    with pytest.raises(ValueError, match="watch a narrower queryset, or the model"):
        watching.watch_of(Note.objects.exclude(rank=1), None)


def test_only_published_models_can_be_watched(settings, user_client):
    with pytest.raises(ValueError, match="SERVERPUSH_EXCLUDE_MODELS"):
        watching.watch_of(Session, None)
    settings.SERVERPUSH_MODELS = ["auth.user"]
    note = Note.objects.create(title="n")
    with pytest.raises(ValueError, match="add it to SERVERPUSH_MODELS"):
        user_client("alice").get(f"/t/watch/note/?pk={note.pk}")


def test_fields_must_be_sendable_fields(django_user_model):
    user = django_user_model.objects.create(username="alice")
    with pytest.raises(ValueError, match="'nope' is not a field"):
        watching.watch_of(Note.objects.create(title="n"), None, "title,nope")
    with pytest.raises(ValueError, match="'password' is not a field of auth.user that can be sent"):
        watching.watch_of(user, None, "username,password")


def test_a_watch_tag_after_the_script_tag_of_a_quiet_page_is_a_template_error(browser_client):
    Note.objects.create(title="n")
    with pytest.raises(TemplateSyntaxError, match="move the watch tag above the script tag"):
        browser_client.get("/t/watch-late/")


def test_the_watch_tag_makes_the_page_live(browser_client):
    note = Note.objects.create(title="n")
    page = render(browser_client, f"/t/watch/note/?pk={note.pk}")
    assert page.token and page.cursor


# End to end.

def test_a_watched_object_sends_its_updates_and_delete_and_nothing_else(watcher, browser_client):
    note, other = Note.objects.create(title="watched"), Note.objects.create(title="other")
    w = watcher(browser_client, f"/t/watch/note/?pk={note.pk}")
    ack = w.subscribe()
    assert ack["ok"] and ack["sub"].startswith("w:") and ack["events"] == []
    rename(other, "other changed")
    rename(note, "watched changed", rank=3)
    w.wait(lambda: w.events(note.pk))
    [update] = w.events()
    assert update["op"] == "update" and update["sub"] == ack["sub"] and update["model"] == "testapp.note"
    assert update["data"]["pk"] == note.pk and update["data"]["title"] == "watched changed" and update["data"]["rank"] == 3
    pk = note.pk
    note.delete()
    w.wait(lambda: len(w.events(pk)) == 2)
    assert w.events(pk)[-1]["op"] == "delete" and w.events(pk)[-1]["data"]["title"] == "watched changed"
    assert w.events(other.pk) == []


def test_a_plain_queryset_watch_gets_the_creates_that_match(watcher, browser_client):
    w = watcher(browser_client, "/t/watch/ranked/")
    assert w.subscribe()["ok"]
    low = Note.objects.create(title="low", rank=5)
    high = Note.objects.create(title="high", rank=12)
    w.wait(lambda: w.events(high.pk))
    assert [(e["op"], e["data"]["title"]) for e in w.events()] == [("create", "high")]
    assert w.events(low.pk) == []


def left(events):
    return [(e["op"], e["pk"], e.get("left", False)) for e in events]


def test_an_object_leaving_a_watched_filter_is_reported_and_no_other(watcher, browser_client):
    shown = Note.objects.create(title="shown", rank=12)
    never = Note.objects.create(title="never shown", rank=3)
    w = watcher(browser_client, "/t/watch/ranked/")  # rank >= 10
    assert w.subscribe()["ok"]
    # One step at a time: the push server sends rows as they are when it reads them,
    # so changes that follow each other closely may arrive as their final state only.
    joined = Note.objects.create(title="joined", rank=15)
    w.catch_up()
    rename(shown, "shown, now low", rank=4)
    rename(never, "never shown, still low", rank=2)
    w.catch_up()
    rename(joined, "joined, now low", rank=1)
    w.catch_up()
    rename(shown, "still low", rank=5)  # gone already: nothing more
    rename(joined, "back", rank=20)
    w.wait(lambda: w.events(joined.pk)[-1:] and w.events(joined.pk)[-1]["data"].get("title") == "back")
    assert left(w.events()) == [("create", joined.pk, False), ("delete", shown.pk, True), ("delete", joined.pk, True), ("update", joined.pk, False)]
    assert w.events(shown.pk)[0]["data"] == {"pk": shown.pk}  # the pk only: its new state is outside the filter


def test_pages_that_rendered_a_filter_at_different_times_share_its_room(watcher, browser_client):
    first_member = Note.objects.create(title="first", rank=11)
    early = watcher(browser_client, "/t/watch/ranked/")
    early_sub = early.subscribe()["sub"]
    rename(first_member, "gone", rank=0)
    early.wait(lambda: early.events(first_member.pk))
    second_member = Note.objects.create(title="second", rank=1)
    Note.objects.filter(pk=second_member.pk).update(rank=12)  # joins without a signal: only a render sees it
    late = watcher(browser_client, "/t/watch/ranked/")  # renders {second}, not {first}
    assert late.subscribe()["sub"] == early_sub
    second_member.refresh_from_db()
    rename(second_member, "gone too", rank=0)
    late.wait(lambda: late.events(second_member.pk))
    assert left(late.events(second_member.pk)) == [("delete", second_member.pk, True)]


def test_leaving_a_watched_filter_while_away_replays_as_a_delete(watcher, browser_client):
    shown = Note.objects.create(title="shown", rank=12)
    kept = Note.objects.create(title="kept", rank=13)
    w = watcher(browser_client, "/t/watch/ranked/")
    rename(shown, "left while the page was loading", rank=1)
    rename(kept, "kept, changed", rank=14)
    Note.objects.create(title="never matched", rank=0)
    ack = w.subscribe(cursor=w.page.cursor)
    # (the replay starts a little before the render, so it may cover the creates, compacted
    # with what followed, and earlier tests' changes)
    events = {e["pk"]: e for e in ack["events"] if e["pk"] in (shown.pk, kept.pk)}
    assert left([events[shown.pk]]) == [("delete", shown.pk, True)]
    assert events[kept.pk]["op"] in ("create", "update") and events[kept.pk]["data"]["title"] == "kept, changed"
    assert all(e["replay"] for e in events.values())
    rename(shown, "still out", rank=2)
    rename(kept, "fence")
    w.wait(lambda: w.events(kept.pk))
    assert w.events(shown.pk) == []  # it left once; the room knows


def test_an_object_that_joined_after_the_render_and_left_while_away_is_reported_with_its_mark(watcher, browser_client):
    w = watcher(browser_client, "/t/watch/ranked/")
    first = w.subscribe()
    joined = Note.objects.create(title="joined", rank=15)
    w.wait(lambda: w.events(joined.pk))
    [created] = w.events(joined.pk)
    assert created["shown"]
    assert w.listener.client.call("serverpush_unsubscribe", {"sub": first["sub"]}, timeout=10)["ok"]  # as a page that went away
    rename(joined, "left while away", rank=1)
    without = w.subscribe(cursor=created["cursor"])
    assert [e for e in without["events"] if e["pk"] == joined.pk] == []  # the render never showed it
    assert w.listener.client.call("serverpush_unsubscribe", {"sub": without["sub"]}, timeout=10)["ok"]
    back = w.listener.client.call("serverpush_subscribe", {"token": w.token, "cursor": created["cursor"], "shown": {str(joined.pk): created["shown"]}}, timeout=10)
    assert left([e for e in back["events"] if e["pk"] == joined.pk]) == [("delete", joined.pk, True)]


@pytest.mark.parametrize(("shown", "code"), [
    ("forged", "token_invalid"),
    ("another watch's", "token_invalid"),
    ([1, 2], "bad_payload"),
    ({str(n): "x" for n in range(1001)}, "bad_payload"),
])
def test_shown_marks_that_do_not_verify_are_refused(watcher, browser_client, shown, code):
    note = Note.objects.create(title="n", rank=11)
    w = watcher(browser_client, "/t/watch/ranked/")
    if shown == "forged":
        shown = {str(note.pk): "0" * 24}
    elif shown == "another watch's":
        shown = {str(note.pk): watching.shown_mark("w:another", note.pk)}
    ack = w.listener.client.call("serverpush_subscribe", {"token": w.token, "cursor": None, "shown": shown}, timeout=10)
    assert (ack["ok"], ack["code"]) == (False, code) and ack["message"]


def test_shown_marks_outlive_a_key_rotation_and_nothing_else(settings):
    mark = watching.shown_mark("w:room", 7)
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "a new key" + "x" * 50, [settings.SECRET_KEY]
    assert watching.verify_shown("w:room", {"7": mark}) == {"7"}
    settings.SECRET_KEY_FALLBACKS = []
    with pytest.raises(TokenError) as refused:
        watching.verify_shown("w:room", {"7": mark})
    assert refused.value.code == "token_invalid"


def test_a_queryset_across_relations_watches_the_objects_it_had(watcher, user_client, django_user_model):
    alice = django_user_model.objects.create(username="alice")
    mine = Note.objects.create(title="alice's", owner=alice)
    w = watcher(user_client("carol"), "/t/watch/alices/")
    assert w.subscribe()["ok"]
    Note.objects.create(title="a new one of alice's", owner=alice)  # a create: not covered (documented)
    rename(mine, "alice's, changed")
    w.wait(lambda: w.events(mine.pk))
    assert [(e["op"], e["data"]["title"]) for e in w.events()] == [("update", "alice's, changed")]


def test_a_model_watch_gets_every_change_of_the_model(watcher, browser_client):
    w = watcher(browser_client, "/t/watch/model/")
    assert w.subscribe()["ok"]
    note = Note.objects.create(title="new")
    w.catch_up()  # each change read back before the next: the row as each one left it
    rename(note, "renamed")
    w.catch_up()
    pk = note.pk
    note.delete()
    w.wait(lambda: len(w.events(pk)) == 3)
    assert [e["op"] for e in w.events(pk)] == ["create", "update", "delete"]


def test_unsubscribe_stops_one_page_and_not_the_others_watching_the_same(watcher, browser_client):
    note = Note.objects.create(title="shared")
    first, second = (watcher(browser_client, f"/t/watch/note/?pk={note.pk}") for _ in range(2))
    sub = first.subscribe()["sub"]
    assert second.subscribe()["sub"] == sub
    assert first.listener.client.call("serverpush_unsubscribe", {"sub": sub}, timeout=10) == {"ok": True}
    rename(note, "after")
    second.wait(lambda: second.events(note.pk))
    assert first.events() == []
    again = first.listener.client.call("serverpush_unsubscribe", {"sub": sub}, timeout=10)
    assert again["ok"] is False and again["code"] == "bad_payload"


def test_what_changed_between_render_and_subscribe_comes_in_the_ack(watcher, browser_client):
    note = Note.objects.create(title="before")
    w = watcher(browser_client, f"/t/watch/note/?pk={note.pk}")
    rename(note, "while the page was loading")
    rename(note, "twice")  # (subscribe() waits until the push server has both)
    ack = w.subscribe(cursor=w.page.cursor)
    # (compacted to the latest state; a "create" if the replay, which starts a little
    # before the render, also covers the note's creation)
    assert [(e["data"]["title"], e["replay"]) for e in ack["events"]] == [("twice", True)]
    assert ack["cursor"]


def test_a_watch_token_of_another_user_is_refused(watcher, user_client):
    note = Note.objects.create(title="n")
    alices = watcher(user_client("alice"), f"/t/watch/note/?pk={note.pk}")
    bobs = watcher(user_client("bob"), f"/t/watch/note/?pk={note.pk}")
    ack = bobs.subscribe(token=alices.token)
    assert ack["ok"] is False and ack["code"] == "session_mismatch"


def test_bad_subscribe_payloads_are_refused_with_a_code(watcher, browser_client):
    note = Note.objects.create(title="n")
    w = watcher(browser_client, f"/t/watch/note/?pk={note.pk}")
    assert w.subscribe(token=w.token[:-3] + "abc")["code"] == "token_invalid"
    assert w.listener.client.call("serverpush_subscribe", "nope", timeout=10)["code"] == "bad_payload"
    healed = w.subscribe(cursor="t1")  # before the log began: the current state instead of a replay
    assert healed["ok"] and [(e["op"], e["data"]["title"], e["resync"]) for e in healed["events"]] == [("update", "n", True)]


def test_the_password_hash_is_never_sent_and_fields_narrow_the_rest(watcher, user_client):
    alice = user_client("alice")
    full = watcher(alice, "/t/watch/me/")
    narrow = watcher(alice, "/t/watch/me/?fields=username")
    assert full.subscribe()["ok"] and narrow.subscribe()["ok"]
    alice.user.first_name = "Alice"
    alice.user.save()
    full.wait(lambda: full.events())
    narrow.wait(lambda: narrow.events())
    assert "password" not in full.events()[0]["data"] and full.events()[0]["data"]["first_name"] == "Alice"
    assert narrow.events()[0]["data"] == {"pk": alice.user.pk, "username": "alice"}


def test_the_push_servers_settings_decide_what_and_how_much_is_watched(start_push_server, listeners, user_client):
    overrides = {"SERVERPUSH_EXCLUDE_MODELS": ["testapp.note"], "SERVERPUSH_MAX_SUBSCRIPTIONS": 1}
    server = start_push_server(env={"SERVERPUSH_TEST_OVERRIDES": json.dumps(overrides)})
    alice = user_client("alice")
    note = Note.objects.create(title="n")
    page = render(alice, f"/t/watch/note/?pk={note.pk}")
    w = Watcher(listeners(), page, re.search(r'data-serverpush-watch="([^"]*)"', page.html).group(1))
    w.listener.connect(server, page, cursor=None)
    assert w.subscribe()["code"] == "not_published"
    me = re.search(r'data-serverpush-watch="([^"]*)"', render(alice, "/t/watch/me/").html).group(1)
    users = re.search(r'data-serverpush-watch="([^"]*)"', render(alice, "/t/watch/users/").html).group(1)
    assert w.subscribe(token=me)["ok"]
    assert w.subscribe(token=users)["code"] == "too_many_subscriptions"
