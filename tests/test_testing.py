"""serverpush.testing, as a project's tests use it: captured pushes, a real push server, the mixin, the pytest plugin."""
from __future__ import annotations

import os
import textwrap

import pytest
from django.db import transaction
from django.test import Client, TransactionTestCase

import serverpush
from serverpush.testing import PushServer, PushServerMixin, capture_pushes
from tests.conftest import ROOT
from tests.testapp.models import Note


@pytest.mark.django_db
def test_capture_pushes_records_changes_and_messages_as_they_commit():
    with capture_pushes() as pushed:
        note = Note.objects.create(title="a")
        note.title = "b"
        note.save()
        serverpush.notify_all({"hello": 1})
        with pytest.raises(RuntimeError), transaction.atomic():
            Note.objects.create(title="rolled back")
            raise RuntimeError
        pk = note.pk
        note.delete()
    assert pushed.changes(Note) == [("create", pk), ("update", pk), ("delete", pk)]
    assert pushed.changes("testapp.note") == pushed.changes(Note)
    assert [f["title"] for f in pushed.fields(Note, pk)] == ["a", "b", "b"]
    assert len(pushed.messages()) == 1 and pushed.messages()[0][1] == {"hello": 1}


@pytest.mark.django_db
def test_capture_pushes_sends_nothing_and_restores_the_log():
    from serverpush.log import get_log

    before = type(get_log())
    with capture_pushes() as pushed:
        Note.objects.create(title="kept here")
        assert type(get_log()).__name__ == "RecordingLog"
    assert len(pushed) == 1
    assert type(get_log()) is before


@pytest.mark.django_db(transaction=True)
def test_push_server_keeps_a_rendered_page_live():
    note = Note.objects.create(title="first")
    with PushServer() as server:
        page = server.open(Client(HTTP_HOST="localhost"), f"/t/note/{note.pk}/")
        note.title = "second"
        note.save()
        assert page.wait_for(name="note", where=lambda data: data["data"]["title"] == "second")
        page.close()
        assert server.stats()["connects"] >= 1
    with pytest.raises(OSError):
        server.stats()  # stopped


def test_an_in_memory_test_database_is_refused_with_the_fix(monkeypatch):
    from django.db import connections

    monkeypatch.setattr(connections["default"], "is_in_memory_db", lambda: True)
    server = PushServer()
    with pytest.raises(RuntimeError, match=r"'default' is an in-memory SQLite database.*\['TEST'\]\['NAME'\] a file name"):
        server.start()
    assert server.process is None  # refused before anything started


class MixinTests(PushServerMixin, TransactionTestCase):
    def setUp(self):
        self.client = Client(HTTP_HOST="localhost")

    def test_a_save_reaches_the_live_page(self):
        note = Note.objects.create(title="mixin")
        page = self.live_page(f"/t/note/{note.pk}/")
        note.title = "mixin, saved"
        note.save()
        page.wait_for(name="note", where=lambda data: data["data"]["title"] == "mixin, saved")


PLUGIN_TEST = textwrap.dedent('''
    import pytest
    from django.test import Client
    from tests.testapp.models import Note

    @pytest.mark.django_db(transaction=True)
    def test_live(live_page):
        note = Note.objects.create(title="plugin")
        page = live_page(f"/t/note/{note.pk}/", Client(HTTP_HOST="localhost"))
        note.title = "plugin, saved"
        note.save()
        assert page.wait_for(name="note", where=lambda data: data["data"]["title"] == "plugin, saved")
''')


def test_the_pytest_plugin_runs_a_push_server_for_a_project(pytester, monkeypatch):
    for name in ("SERVERPUSH_TEST_DB", "SERVERPUSH_PORT", "SERVERPUSH_NOTIFIER_PORT", "SERVERPUSH_PATCHED"):
        monkeypatch.delenv(name, raising=False)  # its own database and ports, not this run's
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    pytester.makepyfile(test_project=PLUGIN_TEST)
    result = pytester.runpytest_subprocess("-p", "serverpush.testing.fixtures", "-p", "no:cacheprovider", "--ds", "tests.settings", timeout=240)
    result.assert_outcomes(passed=1)
