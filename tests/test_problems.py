"""Errors where the developer looks: a bad spec alone is dropped, DEBUG sends problems to the page, a foreign log is refused."""
from __future__ import annotations

import logging

import pytest
import socketio
from django.urls import resolve

from serverpush import problems, registry
from tests.conftest import render, wait_until
from tests.ports import free_port
from tests.testapp.models import Note

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_bad_spec_drops_only_itself(rf, caplog):
    found: list[problems.Problem] = []
    with caplog.at_level(logging.ERROR, logger="serverpush"):
        specs = registry.specs_for(rf.get("/t/bad-spec/"), resolve("/t/bad-spec/"), found)
    assert [s.name for s in specs] == ["fine"]
    assert [(p.code, p.view, p.spec) for p in found] == [("spec_error", "tests.testapp.views.bad_spec", "oops")]
    assert "key 'model' is 'testapp.Nope'" in found[0].message
    assert "the page's other subscriptions stay live" in caplog.text
    assert problems.latest()[-1]["spec"] == "oops"  # kept for the inspector


def test_the_good_spec_beside_a_bad_one_stays_live(push_server, listeners, browser_client):
    listener = listeners().connect(push_server, render(browser_client, "/t/bad-spec/"))
    Note.objects.create(title="arrives")
    listener.wait(lambda: listener.live("fine"), "the good spec's update")
    assert listener.live("fine")[0]["data"] == {"title": "arrives"}
    assert listener.named("serverpush_error") == []  # DEBUG is off: the page is never told


@pytest.fixture
def debug_server(start_push_server):
    return start_push_server(settings={"DEBUG": True})


def test_in_debug_a_bad_spec_and_a_broken_update_function_reach_the_page(debug_server, listeners, browser_client):
    bad = listeners().connect(debug_server, render(browser_client, "/t/bad-spec/"))
    bad.wait(lambda: bad.named("serverpush_error"), "the spec error")
    error = bad.named("serverpush_error")[0]
    assert (error["code"], error["view"], error["spec"]) == ("spec_error", "tests.testapp.views.bad_spec", "oops")
    assert "expected a model class or 'app_label.ModelName'" in error["message"]

    broken = listeners().connect(debug_server, render(browser_client, "/t/broken/"))
    broken.wait(lambda: broken.named("serverpush_error"), "the update function's error")
    assert broken.named("serverpush_error")[0] == {
        "code": "update_function_error", "view": "tests.testapp.views.broken", "spec": None,
        "message": "RuntimeError: this update function is broken on purpose",
    }


def test_in_debug_a_serializer_error_reaches_the_pages_of_its_spec(debug_server, listeners, browser_client):
    note = Note.objects.create(title="fragile")
    listener = listeners().connect(debug_server, render(browser_client, f"/t/bad-serializer/{note.pk}/"))
    note.title = "still fine"
    note.save()
    listener.wait(lambda: listener.named("serverpush_error") and listener.live("fine"), "the serializer error and the good update")
    error = listener.named("serverpush_error")[0]
    assert (error["code"], error["view"], error["spec"]) == ("serializer_error", "tests.testapp.views.bad_serializer", "boom")
    assert error["message"] == f"the serializer failed on testapp.note {note.pk}: ValueError: serializer broken on purpose"


def test_a_page_of_another_log_is_refused_with_a_code_that_says_so(start_push_server, settings, browser_client):
    server = start_push_server()
    settings.SERVERPUSH_NOTIFIER_PORT = other = free_port()  # this Django process now feeds another notifier
    page = render(browser_client, "/t/hello-fields/")
    client = socketio.Client(reconnection=False)
    errors: list = []
    client.on("connect_error", errors.append)
    with pytest.raises(socketio.exceptions.ConnectionError):
        client.connect(server.url, auth={"token": page.token, "cursor": page.cursor}, headers={"Cookie": f"sessionid={page.cookies.get('sessionid', '')}"}, wait_timeout=10)
    code, message = errors[0]["data"]["code"], errors[0]["data"]["message"]
    assert code == "log_mismatch"
    assert f"notifier port {other}" in message and f"notifier port {server.notifier_port}" in message
    wait_until(lambda: "log_mismatch" in server.log(), what="the refusal in the push server's log")
