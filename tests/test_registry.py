"""Finding a page's update functions."""
from __future__ import annotations

import logging

import pytest
from django.urls import resolve

import serverpush
from serverpush import registry
from tests.testapp import updates, views


def test_function_view_finds_its_namesake_in_the_same_module():
    assert registry.update_function(views.hello) is views.hello_update
    assert registry.update_function(views.plain) is None


def test_decorated_views_keep_their_namesake():
    from demo import views as demo_views

    assert registry.update_function(demo_views.hello) is demo_views.hello_update  # login_required-wrapped


def test_class_based_view_method_gets_url_kwargs(rf):
    update = registry.update_function(resolve("/t/note-cbv/5/").func)
    specs = update(rf.get("/t/note-cbv/5/"), pk=5)
    assert specs[0]["params"] == {"pk": 5}


def test_explicit_registration_by_decorator_and_by_call():
    assert registry.update_function(views.registered) is updates.registered_notes

    def other_update(request):
        return []

    serverpush.register("tests.testapp.views.plain", other_update)
    try:
        assert registry.update_function(views.plain) is other_update
    finally:
        registry._registered.pop("tests.testapp.views.plain")


def test_register_refuses_a_non_callable():
    with pytest.raises(TypeError, match="must be callable"):
        serverpush.register(views.plain, "not callable")


@pytest.mark.django_db
def test_specs_for_passes_url_arguments_and_adds_globals(rf, settings):
    settings.SERVERPUSH_GLOBALS = ("tests.testapp.views.site_wide",)
    specs = registry.specs_for(rf.get("/t/note/4/"), resolve("/t/note/4/"))
    assert [s.name for s in specs] == ["note", "note_for_user", "note_shared", "note_lang", "site_note"]
    assert specs[0].params.lookups == {"pk": 4}


def test_a_raising_update_function_is_logged_with_the_view_and_skipped(rf, settings, caplog):
    settings.SERVERPUSH_GLOBALS = ("tests.testapp.views.site_wide",)
    with caplog.at_level(logging.ERROR, logger="serverpush"):
        specs = registry.specs_for(rf.get("/t/broken/"), resolve("/t/broken/"))
    assert [s.name for s in specs] == ["site_note"]
    assert "update function of tests.testapp.views.broken failed for /t/broken/" in caplog.text


def test_has_updates():
    assert registry.has_updates(views.hello)
    assert not registry.has_updates(views.plain)
    assert not registry.has_updates(None)
