"""Change capture: committed saves and deletes become entries on the notifier socket."""
from __future__ import annotations

import time

import pytest
import zmq
from django.db import transaction

import serverpush
from demo.models import Counter
from serverpush.log.notifier import parse
from serverpush.testing import capture_pushes
from tests.ports import free_port
from tests.testapp.models import Note

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def notifier(memory_log, settings):
    """A real PULL socket where the push server's notifier would be."""
    port = free_port()
    settings.SERVERPUSH_NOTIFIER_PORT = port
    socket = zmq.Context.instance().socket(zmq.PULL)
    socket.bind(f"tcp://127.0.0.1:{port}")
    received = []

    def read(count: int = 1, timeout: float = 5.0):
        deadline = time.monotonic() + timeout
        while len(received) < count and time.monotonic() < deadline:
            if socket.poll(50):
                received.extend(parse(socket.recv()).entries)
        return list(received)

    def nothing_more(after: int) -> bool:
        """Flush a marker through the same socket: if it arrives first, nothing else was sent."""
        serverpush.notify(Counter.objects.create())
        entries = read(after + 1)
        return [e.model for e in entries[after:]] == ["demo.counter"]

    read.nothing_more = nothing_more
    yield read
    socket.close(linger=0)


def test_create_update_delete_carry_op_and_snapshot(notifier):
    note = Note.objects.create(title="a", rank=1)
    note.title = "b"
    note.save()
    pk = note.pk
    note.delete()
    created, updated, deleted = notifier(3)
    assert (created.op, updated.op, deleted.op) == ("create", "update", "delete")
    assert created.model == "testapp.note" and created.pk == pk
    assert updated.fields["title"] == "b" and updated.fields["rank"] == 1
    assert deleted.pk == pk and deleted.fields["title"] == "b"
    assert isinstance(updated.fields["updated"], str)  # datetimes as JSON strings, rebuilt on the server
    assert deleted.instance().title == "b"


def test_nothing_is_sent_before_commit_and_nothing_for_a_rollback(notifier):
    with transaction.atomic():
        Note.objects.create(title="inside")
        assert notifier(1, timeout=0.3) == []
    assert [e.fields["title"] for e in notifier(1)] == ["inside"]
    with pytest.raises(ZeroDivisionError):
        with transaction.atomic():
            Note.objects.create(title="rolled back")
            1 / 0
    assert notifier.nothing_more(1)


def test_a_rolled_back_savepoint_drops_only_its_changes(notifier):
    with transaction.atomic():
        Note.objects.create(title="kept")
        try:
            with transaction.atomic():
                Note.objects.create(title="dropped")
                raise ValueError
        except ValueError:
            pass
    assert [e.fields["title"] for e in notifier(1)] == ["kept"]
    assert notifier.nothing_more(1)


def test_notify_publishes_writes_that_skip_signals(notifier):
    Note.objects.bulk_create([Note(title="x"), Note(title="y")])
    Note.objects.update(rank=9)
    serverpush.notify(Note.objects.all())
    entries = notifier(2)
    assert sorted(e.fields["title"] for e in entries) == ["x", "y"]
    assert {e.fields["rank"] for e in entries} == {9} and {e.op for e in entries} == {"update"}


def test_ping_notifier_of_the_original(notifier):
    note = Note.objects.create(title="ping")
    Note.objects.filter(pk=note.pk).update(title="pinged")
    serverpush.ping_notifier(Note, pk=note.pk)
    serverpush.ping_notifier(note)
    entries = notifier(3)
    assert [e.fields["title"] for e in entries[1:]] == ["pinged", "ping"]


def test_notify_and_ping_notifier_refuse_other_things():
    with pytest.raises(TypeError, match="ping_notifier"):
        serverpush.ping_notifier("testapp.Note")
    with pytest.raises(TypeError, match=r"notify\(\)"):
        serverpush.capture.notify([object()])


def test_excluded_models_are_not_published(settings, django_user_model):
    from django.contrib.sessions.backends.db import SessionStore

    with capture_pushes() as pushed:
        SessionStore().create()
        note = Note.objects.create(title="published")
    assert pushed.changes("sessions.session") == [] and pushed.changes(Note) == [("create", note.pk)], pushed
    settings.SERVERPUSH_MODELS = ["testapp.Note", "demo.Counter"]
    with capture_pushes() as pushed:
        user = django_user_model.objects.create(username="quiet")
        counter = Counter.objects.create()
    assert pushed.changes(django_user_model) == [] and pushed.changes(Counter) == [("create", counter.pk)], (user, pushed)


def test_saves_neither_fail_nor_wait_when_no_push_server_runs(settings, browser_client):
    settings.SERVERPUSH_NOTIFIER_PORT = free_port()  # nobody listens here
    started = time.monotonic()
    for i in range(200):
        Note.objects.create(title=f"n{i}")
    assert time.monotonic() - started < 5
    assert browser_client.get("/").status_code == 200  # the demo counter saves on every view
