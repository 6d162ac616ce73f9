"""``runserverpush`` at startup: a port in use stops it before it announces itself; eventlet says it is deprecated."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from serverpush.runtime import ASYNC_MODES
from tests.conftest import ROOT, PushServer
from tests.ports import free_port

ANNOUNCEMENT = "serverpush: push server on"


def run_second(server: PushServer, port: int, notifier_port: int) -> subprocess.CompletedProcess:
    """Start another push server beside ``server``, as a user would by mistake, and wait for it to end."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "SERVERPUSH_PORT": str(port), "SERVERPUSH_NOTIFIER_PORT": str(notifier_port)}
    env.pop("SERVERPUSH_PATCHED", None)
    return subprocess.run([sys.executable, str(ROOT / "manage.py"), "runserverpush", "--async-mode", server.async_mode], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("async_mode", ASYNC_MODES)
def test_a_second_push_server_on_a_port_in_use_stops_before_it_announces_itself(start_push_server, memory_log, async_mode):
    server = start_push_server(async_mode=async_mode)
    for port, notifier_port, what, fix in (
        (server.port, free_port(), f"port {server.port} is already in use", "give this push server another port (--port, SERVERPUSH_PORT"),
        (free_port(), server.notifier_port, f"notifier port {server.notifier_port} is already in use", "Redis log"),
    ):
        second = run_second(server, port, notifier_port)
        assert second.returncode == 1, second
        assert ANNOUNCEMENT not in second.stdout
        assert what in second.stderr and fix in second.stderr
        assert f"(by pid {server.process.pid}: " in second.stderr and "runserverpush" in second.stderr
    assert server.process.poll() is None and server.stats()["connections"] == 0
    assert server.log().count(ANNOUNCEMENT) == 1


@pytest.mark.django_db(transaction=True)
def test_eventlet_says_it_is_deprecated(start_push_server):
    assert "Eventlet is deprecated" in start_push_server(async_mode="eventlet").log()
