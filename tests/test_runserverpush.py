"""``./manage.py runserverpush``: options and defaults."""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT


def test_help_lists_address_port_and_async_mode():
    out = subprocess.run([sys.executable, str(ROOT / "manage.py"), "runserverpush", "--help"], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    for option in ("--address", "--port", "--async-mode", "{eventlet,gevent,threading,asgi}"):
        assert option in out


def test_an_unknown_async_mode_is_refused():
    result = subprocess.run([sys.executable, str(ROOT / "manage.py"), "runserverpush", "--async-mode", "asyncio"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode != 0 and "invalid choice: 'asyncio'" in result.stderr


def test_default_ports_are_those_of_the_original(settings):
    from serverpush import conf

    del settings.SERVERPUSH_PORT, settings.SERVERPUSH_NOTIFIER_PORT
    assert (conf.get("SERVERPUSH_PORT"), conf.get("SERVERPUSH_NOTIFIER_PORT")) == (8013, 8014)


@pytest.mark.django_db(transaction=True)
def test_the_port_option_and_setting_are_used(start_push_server):
    server = start_push_server()
    assert server.stats()["connections"] == 0
    assert f"push server on http://127.0.0.1:{server.port}/ (eventlet)" in server.log()
