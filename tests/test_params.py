"""Params: lookups decided from the snapshot, or by one query when they need the database."""
from __future__ import annotations

import datetime

import pytest
from django.contrib.auth import get_user_model

from serverpush.entries import Entry
from serverpush.params import Params
from tests.testapp.models import Note

User = get_user_model()


def entry(**fields) -> Entry:
    note = Note(pk=fields.pop("pk", 7), title="Hello World", rank=5, owner_id=fields.pop("owner_id", 3), updated=datetime.datetime(2026, 1, 2, tzinfo=datetime.timezone.utc))
    for name, value in fields.items():
        setattr(note, name, value)
    return Entry.of(note, "update")


@pytest.mark.parametrize(
    ("lookups", "expected"),
    [
        ({"pk": 7}, True),
        ({"pk": "7"}, True),
        ({"id": 8}, False),
        ({"title": "Hello World"}, True),
        ({"title__iexact": "hello world"}, True),
        ({"title__contains": "World"}, True),
        ({"title__contains": "world"}, False),
        ({"title__icontains": "world"}, True),
        ({"title__startswith": "Hell"}, True),
        ({"title__iendswith": "WORLD"}, True),
        ({"rank__gt": 4, "rank__lte": 5}, True),
        ({"rank__lt": 5}, False),
        ({"rank__in": [1, 5]}, True),
        ({"rank__in": [1, 2]}, False),
        ({"owner": 3}, True),
        ({"owner_id": 4}, False),
        ({"owner__isnull": False}, True),
        ({"updated__gte": datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)}, True),
    ],
)
@pytest.mark.django_db
def test_snapshot_lookups_need_no_query(lookups, expected, django_assert_num_queries):
    params = Params(Note, lookups)
    assert params.snapshot_only
    with django_assert_num_queries(0):
        assert params.matches(entry(), {}) is expected


def test_a_model_instance_as_value_compares_by_pk():
    assert Params(Note, {"owner": User(pk=3)}).matches(entry(), {})


def test_an_equality_is_offered_to_the_index():
    field, value = Params(Note, {"rank__gt": 1, "pk": "7"}).index_key()
    assert field.attname == "id" and value == 7
    assert Params(Note, {"rank__gt": 1}).index_key() is None


@pytest.mark.django_db
def test_lookups_across_relations_query_once_per_entry(django_assert_num_queries):
    owner = User.objects.create(username="alice")
    note = Note.objects.create(title="x", owner=owner)
    params = Params(Note, {"owner__username": "alice"})
    assert not params.snapshot_only
    cache: dict[str, bool] = {}
    with django_assert_num_queries(1):
        assert params.matches(Entry.of(note, "update"), cache)
        assert params.matches(Entry.of(note, "update"), cache)
    assert not Params(Note, {"owner__username": "bob"}).matches(Entry.of(note, "update"), {})


def test_a_delete_with_database_only_lookups_is_delivered():
    assert Params(Note, {"owner__username": "anyone"}).matches(Entry.of(Note(pk=1, title="t"), "delete"), {})


def test_invalid_lookups_are_refused():
    with pytest.raises(ValueError):
        Params(Note, {"colour": 1})
    with pytest.raises(ValueError):
        Params(Note, {"title__nosuchlookup": 1})
