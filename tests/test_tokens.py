"""Page tokens: signed, expiring, naming path, user and session."""
from __future__ import annotations

import pytest
from django.core import signing

from serverpush.tokens import TokenError, make_token, read_token, session_fingerprint


def test_round_trip_names_the_path_user_and_language(rf, django_user_model):
    request = rf.get("/t/hello/")
    request.user = django_user_model(pk=4, username="alice")
    request.LANGUAGE_CODE = "fr"
    token = read_token(make_token(request))
    assert (token.path, token.user_pk, token.language, token.session) == ("/t/hello/", "4", "fr", None)


def test_a_tampered_token_is_invalid(rf):
    token = make_token(rf.get("/t/hello/"))
    with pytest.raises(TokenError) as info:
        read_token(token[:-2] + ("AA" if not token.endswith("AA") else "BB"))
    assert info.value.code == "token_invalid"


def test_a_token_signed_with_another_key_is_invalid(rf, settings):
    token = make_token(rf.get("/"))
    settings.SECRET_KEY = "another"
    with pytest.raises(TokenError) as info:
        read_token(token)
    assert info.value.code == "token_invalid"


def test_an_old_token_has_expired(rf, settings):
    token = make_token(rf.get("/"))
    settings.SERVERPUSH_TOKEN_MAX_AGE = -1
    with pytest.raises(TokenError) as info:
        read_token(token)
    assert info.value.code == "token_expired"


def test_the_session_key_itself_is_not_in_the_token(rf):
    request = rf.get("/")
    request.session = type("S", (), {"session_key": "secretkey123"})()
    raw = signing.loads(make_token(request), salt="serverpush.token")
    assert "secretkey123" not in repr(raw) and raw["s"] == session_fingerprint("secretkey123")
