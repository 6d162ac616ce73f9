"""Spec validation: every mistake names the view, the spec, the key and the fix."""
from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from serverpush.serializers import CallableSerializer, FieldMap, ViewSerializer
from serverpush.specs import SpecError, parse_specs
from tests.testapp import views
from tests.testapp.models import Note

User = get_user_model()
SOURCE = "update function of app.views.hello"


def parse(*specs, module="tests.testapp.views"):
    return parse_specs(list(specs), SOURCE, module)


def error_of(spec) -> str:
    with pytest.raises(SpecError) as info:
        parse(spec)
    return str(info.value)


def test_the_three_forms_of_the_original_readme():
    fields, custom, view = parse(
        {'name': 'username_change', 'model': User, 'params': {'pk': 1}, 'data': {'username': 'object.username'}},
        {'name': 'reload', 'model': User, 'params': {'pk': 1}, 'serializer': views.hello_update_serializer},
        {'name': 'reload', 'model': User, 'params': {'pk': 1}, 'serializer': 'hello'},
    )
    assert isinstance(fields.serializer, FieldMap)
    assert isinstance(custom.serializer, CallableSerializer)
    assert isinstance(view.serializer, ViewSerializer) and view.serializer.view is views.hello
    assert view.serializer.keyword == "user"


def test_model_by_label_and_dotted_view_path():
    [spec] = parse({"name": "n", "model": "testapp.Note", "serializer": "tests.testapp.views.hello"})
    assert spec.model is Note and spec.serializer.view is views.hello


def test_a_single_dict_and_none_are_accepted():
    assert len(parse_specs({"name": "n", "model": Note, "data": {"t": "object.title"}}, SOURCE)) == 1
    assert parse_specs(None, SOURCE) == []


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("not a dict", "is not a dict"),
        ({"name": "n", "model": Note, "data": {}, "colour": 1}, "unknown key 'colour'"),
        ({"model": Note, "data": {}}, "key 'name' is None"),
        ({"name": "has space", "model": Note, "data": {}}, "key 'name' is 'has space'"),
        ({"name": "n", "model": "nope.Model", "data": {}}, "key 'model' is 'nope.Model'; expected a model class"),
        ({"name": "n", "model": dict, "data": {}}, "key 'model' is <class 'dict'>"),
        ({"name": "n", "model": Note, "params": {"colour": 1}, "data": {}}, "key 'params' {'colour': 1} is not valid for Note"),
        ({"name": "n", "model": Note, "params": ["pk"], "data": {}}, "key 'params' is ['pk']"),
        ({"name": "n", "model": Note}, "without 'serializer' or 'template', key 'data' must be a field map"),
        ({"name": "n", "model": Note, "data": {"t": 3}}, "key 'data' must be a field map"),
        ({"name": "n", "model": Note, "serializer": 42}, "key 'serializer' is 42"),
        ({"name": "n", "model": Note, "serializer": "no_such_view"}, "key 'serializer' names view 'no_such_view'"),
        ({"name": "n", "model": Note, "serializer": "hello", "vary": ["colour"]}, "key 'vary' has 'colour'"),
    ],
)
def test_malformed_specs_name_view_spec_and_key(spec, expected):
    message = error_of(spec)
    assert message.startswith(f"{SOURCE}, spec 0")
    assert expected in message


def test_the_error_names_the_spec_by_position_and_name():
    with pytest.raises(SpecError, match=r"spec 1 \('second'\): key 'model'"):
        parse({"name": "first", "model": Note, "data": {"t": "object.title"}}, {"name": "second", "model": "x.Y", "data": {}})


def test_a_non_list_return_value_is_explained():
    with pytest.raises(SpecError, match="must return a list of spec dicts"):
        parse_specs("reload", SOURCE)


def test_vary_defaults_follow_what_the_serializer_can_see():
    object_only, with_request, custom, shared, by_language = parse(
        {"name": "a", "model": Note, "data": {"t": "object.title"}},
        {"name": "b", "model": Note, "data": {"u": "request.user.username"}},
        {"name": "c", "model": Note, "serializer": views.explode},
        {"name": "d", "model": Note, "serializer": views.explode, "vary": ()},
        {"name": "e", "model": Note, "serializer": views.explode, "vary": "language"},
    )
    assert object_only.vary == frozenset()
    assert with_request.vary == custom.vary == {"user", "language"}
    assert shared.vary == frozenset() and by_language.vary == {"language"}


def test_field_maps_resolve_with_template_rules_never_eval(rf):
    note = Note(pk=3, title="hi", rank=2)
    [spec] = parse({"name": "n", "model": Note, "data": {"t": "object.title", "upper": "object.title.upper", "alias": "note.rank", "first": "object.title.0", "path": "request.path"}})
    request = rf.get("/where/")
    assert spec.serializer(request, note, None) == {"t": "hi", "upper": "HI", "alias": 2, "first": "h", "path": "/where/"}
    with pytest.raises(SpecError, match="key 'data' has a path that is not a template variable"):
        parse({"name": "n", "model": Note, "data": {"x": "__import__('os').getcwd()"}})


def test_a_missing_path_names_the_path(rf):
    [spec] = parse({"name": "n", "model": Note, "data": {"x": "object.nothing_here"}})
    with pytest.raises(LookupError, match="data path 'object.nothing_here'"):
        spec.serializer(rf.get("/"), Note(title="t"), None)


def test_same_declarations_share_a_key_and_different_ones_do_not():
    a, b, c = parse(
        {"name": "n", "model": Note, "params": {"pk": 1}, "data": {"t": "object.title"}},
        {"name": "n", "model": Note, "params": {"pk": 1}, "data": {"t": "object.title"}},
        {"name": "n", "model": Note, "params": {"pk": 2}, "data": {"t": "object.title"}},
    )
    assert a.key == b.key != c.key
