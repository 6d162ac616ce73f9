"""Each system check, triggered by the mistake it describes."""
from __future__ import annotations

import sys

import pytest
from django.core.checks import run_checks
from django.test import override_settings

from tests.settings import TEMPLATES


def ids() -> set[str]:
    return {message.id for message in run_checks() if message.id.startswith("serverpush.")}


def templates_without(processor: str) -> list[dict]:
    options = dict(TEMPLATES[0]["OPTIONS"], context_processors=[p for p in TEMPLATES[0]["OPTIONS"]["context_processors"] if p != processor])
    return [dict(TEMPLATES[0], OPTIONS=options)]


def test_the_test_settings_are_clean():
    assert ids() == set()


@pytest.mark.parametrize(
    ("overrides", "check_id"),
    [
        ({"TEMPLATES": templates_without("serverpush.client.context_processor")}, "serverpush.W001"),
        ({"TEMPLATES": templates_without("django.template.context_processors.request")}, "serverpush.W003"),
        ({"SERVERPUSH_GLOBALS": ("no.such.module.func",)}, "serverpush.E001"),
        ({"SERVERPUSH_GLOBALS": ("tests.settings.SECRET_KEY",)}, "serverpush.E002"),
        ({"SERVERPUSH_NOTIFIER_HOST": "0.0.0.0"}, "serverpush.E003"),
        ({"SERVERPUSH_TOKENIZER": "no.such.Tokenizer"}, "serverpush.E004"),
        ({"SERVERPUSH_TOKENIZER": "serverpush.tokens.PageToken"}, "serverpush.E004"),
        ({"SERVERPUSH_ALLOWED_ORIGINS": ["*"]}, "serverpush.W002"),
        ({"SERVERPUSH_ASYNC_MODE": "asyncio"}, "serverpush.E005"),
        ({"SERVERPUSH_LOG": "kafka://somewhere"}, "serverpush.E006"),
        ({"SERVERPUSH_NOTIFIER_PORT": 9000, "SERVERPUSH_PORT": 9000}, "serverpush.E008"),
        ({"SERVERPUSH_URL": "https://push.example.com"}, "serverpush.W010"),
        ({"SERVERPUSH_URL": "https://push.example.com", "SESSION_COOKIE_DOMAIN": "www.example.com"}, "serverpush.W010"),
        ({"SERVERPUSH_MAX_CONNECTIONS": 0}, "serverpush.E009"),
        ({"SERVERPUSH_MAX_CONNECTIONS": "15000"}, "serverpush.E009"),
        ({"SERVERPUSH_MAX_CONNECTIONS": True}, "serverpush.E009"),
        ({"SERVERPUSH_MAX_CONNECTIONS": 10**9}, "serverpush.W006"),
    ],
)
def test_each_mistake_has_its_check(overrides, check_id):
    with override_settings(**overrides):
        found = [m for m in run_checks() if m.id == check_id]
    assert found and found[0].hint


def test_a_notifier_off_loopback_with_a_secret_is_fine():
    with override_settings(SERVERPUSH_NOTIFIER_HOST="0.0.0.0", SERVERPUSH_NOTIFIER_SECRET="s3cret"):
        assert "serverpush.E003" not in ids()


def test_redis_without_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "redis", None)  # how Python spells "not installed"
    with override_settings(SERVERPUSH_LOG="redis://127.0.0.1:6379/0"):
        assert "serverpush.E007" in ids()


@pytest.mark.parametrize("overrides", [
    {"SERVERPUSH_URL": "https://push.example.com", "SESSION_COOKIE_DOMAIN": ".example.com"},
    {"SERVERPUSH_URL": "http://localhost:8013"},  # the site's own host, another port
    {"SERVERPUSH_URL": "https://example.com", "SESSION_COOKIE_DOMAIN": "example.com"},
])
def test_a_push_server_the_session_cookie_reaches_is_fine(overrides):
    with override_settings(**overrides):
        assert "serverpush.W010" not in ids()


def test_the_session_cookie_check_names_the_fix():
    with override_settings(SERVERPUSH_URL="https://push.example.com"):
        found = next(m for m in run_checks() if m.id == "serverpush.W010")
    assert "'push.example.com'" in found.msg and "SESSION_COOKIE_DOMAIN" in found.msg
    assert "'.example.com'" in found.hint and "docs/deployment.md" in found.hint


def deploy_ids() -> set[str]:
    return {message.id for message in run_checks(include_deployment_checks=True) if message.id.startswith("serverpush.")}


def test_deploy_checks_warn_of_a_redis_that_evicts_or_forgets(redis_server):
    client = redis_server.client()  # the fixture's Redis: no persistence, and we set an evicting policy
    client.config_set("maxmemory-policy", "allkeys-lru")
    with override_settings(SERVERPUSH_LOG=redis_server.url):
        assert {"serverpush.W011", "serverpush.W012"} <= deploy_ids()
        client.config_set("maxmemory-policy", "noeviction")
        client.config_set("appendonly", "yes")
        assert not {"serverpush.W011", "serverpush.W012"} & deploy_ids()
    assert not {"serverpush.W011", "serverpush.W012", "serverpush.W013"} & deploy_ids()  # the embedded log: nothing to ask


def test_deploy_checks_say_when_redis_cannot_be_asked():
    from tests.ports import free_port

    with override_settings(SERVERPUSH_LOG=f"redis://127.0.0.1:{free_port()}/0"):
        assert "serverpush.W013" in deploy_ids()
