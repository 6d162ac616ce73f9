"""``runserverpush --workers N``: several push-server processes on one port and one Redis log.

Real supervisor and worker processes, real redis-server, real Socket.IO clients.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT, PushServer, wait_until
from tests.ports import free_port
from tests.tabs import Tab
from tests.testapp.models import Note

pytestmark = pytest.mark.django_db(transaction=True)

WEBSOCKET_ONLY = {"SERVERPUSH_TRANSPORTS": ["websocket"]}
TABS = 16  # spread by the kernel over two workers: all on one has odds of 2 in 65,536


def children(pid: int) -> set[int]:
    return {int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}


def nodes(server: PushServer, tries: int = 60) -> dict[str, int]:
    """Pages per node id, from ``/serverpush/inspect`` asked on new connections (each lands on some worker)."""
    seen: dict[str, int] = {}
    for _ in range(tries):
        with urllib.request.urlopen(f"{server.url}/serverpush/inspect", timeout=5) as response:
            found = json.load(response)
        seen[found["node"]["id"]] = len(found["pages"])
    return seen


def worker_pids(server: PushServer) -> set[int]:
    return {int(node.rsplit(":", 1)[1]) for node in nodes(server)}


@pytest.fixture
def start_workers(redis_log, start_push_server):
    def start(count: int = 2, async_mode: str = "eventlet") -> PushServer:
        server = start_push_server(env=redis_log.push_env(**WEBSOCKET_ONLY), async_mode=async_mode, args=("--workers", str(count)))
        wait_until(lambda: len(children(server.process.pid)) == count and worker_pids(server) == children(server.process.pid), 30, f"{count} workers answering")
        return server

    return start


@pytest.mark.parametrize("async_mode", ["eventlet", "asgi"])
def test_workers_share_the_port_and_every_page_gets_every_change(start_workers, browser_client, async_mode):
    server = start_workers(2, async_mode)
    tabs = [Tab(browser_client, "/t/registered/").connect(server) for _ in range(TABS)]
    pages = nodes(server)
    assert len(pages) == 2 and sum(pages.values()) == TABS and min(pages.values()) > 0, pages
    notes = [Note.objects.create(title="new") for _ in range(3)]
    for n in range(5):
        for note in notes:
            note.title = f"version {n}"
            note.save()
    database = dict(Note.objects.values_list("pk", "title"))
    for tab in tabs:
        tab.wait(lambda: {pk: data["title"] for (_, pk), data in tab.state.items()} == database, "every change on its worker")
        assert not tab.refreshes


def test_a_worker_that_dies_is_started_again(start_workers):
    server = start_workers(2)
    victim = min(children(server.process.pid))
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: len(children(server.process.pid)) == 2 and victim not in children(server.process.pid), 30, "a new worker")
    wait_until(lambda: worker_pids(server) == children(server.process.pid), 30, "the new worker answering")
    assert "exited with -9; starting it again" in server.log()


def test_stopping_the_supervisor_stops_every_worker(start_workers):
    server = start_workers(2)
    workers = children(server.process.pid)
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=20) == 0
    for pid in workers:
        wait_until(lambda: not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0], 10, f"worker {pid} gone")


def run_workers(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", **env}
    env.pop("SERVERPUSH_PATCHED", None)
    return subprocess.run([sys.executable, str(ROOT / "manage.py"), "runserverpush", *args], env=env, capture_output=True, text=True, cwd=ROOT, timeout=60)


def test_workers_on_the_embedded_log_are_refused():
    result = run_workers({}, "--workers", "2", "--port", str(free_port()))
    assert result.returncode != 0
    assert "--workers 2 needs a log that several push servers can tail" in result.stderr and "SERVERPUSH_LOG to a Redis URL" in result.stderr


def test_workers_with_long_polling_pages_are_refused(redis_log):
    result = run_workers(redis_log.push_env(), "--workers", "2", "--port", str(free_port()))
    assert result.returncode != 0
    assert "--workers 2 needs SERVERPUSH_TRANSPORTS = ['websocket']" in result.stderr


def test_no_workers_is_refused():
    result = run_workers({}, "--workers", "0", "--port", str(free_port()))
    assert result.returncode != 0 and "--workers 0 is not a number of processes" in result.stderr


def test_workers_on_a_port_in_use_are_refused_before_any_starts(redis_log, start_push_server):
    holder = start_push_server()
    result = run_workers(redis_log.push_env(**WEBSOCKET_ONLY), "--workers", "2", "--port", str(holder.port))
    assert result.returncode != 0 and f"port {holder.port} is already in use" in result.stderr
    assert "push server on" not in result.stdout
