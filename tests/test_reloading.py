"""In DEBUG, ``runserverpush`` restarts when its code changes; ``--noreload`` and production do not."""
from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

import pytest

from tests.conftest import DemoServer, render, wait_until
from tests.testapp.models import Note

pytestmark = pytest.mark.django_db(transaction=True)

SPEC = 'def site_wide(request):\n    return [{{"name": "{name}", "model": "testapp.Note", "data": {{"title": "object.title"}}, "vary": ()}}]\n'


def children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


@pytest.fixture
def site_module(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A module of the push server's SERVERPUSH_GLOBALS, in a file the test can change."""
    name = f"site_{secrets.token_hex(4)}"
    path = tmp_path / f"{name}.py"
    path.write_text(SPEC.format(name="before"))
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])), "SERVERPUSH_TEST_GLOBALS": f"{name}.site_wide"}
    return path, env


def change(path: Path, server, name: str) -> None:
    """Rewrite the module until the push server says it reloads (its reloader may not have read the file yet)."""
    def rewritten() -> bool:
        path.write_text(SPEC.format(name=name) + f"# {time.monotonic()}\n")
        try:
            wait_until(lambda: f"{path} changed, reloading" in server.log(), 3, "the reload")
        except AssertionError:
            return False
        return True

    wait_until(rewritten, 30, f"the push server to reload after {path} changed")


def test_in_debug_a_code_change_restarts_the_push_server_with_the_new_code(start_push_server, site_module, listeners, browser_client):
    path, env = site_module
    server = start_push_server(env=env, settings={"DEBUG": True})
    first = listeners().connect(server, render(browser_client, "/t/hello-fields/"))
    Note.objects.create(title="one")
    first.wait(lambda: first.live("before"), "the update of the first code")

    change(path, server, "after")
    wait_until(lambda: server.log().count("serverpush: push server on") == 2, 30, "the restarted push server")
    wait_until(server._ready, 30, "the restarted push server to answer")
    second = listeners().connect(server, render(browser_client, "/t/hello-fields/"))
    Note.objects.create(title="two")
    second.wait(lambda: second.live("after"), "the update of the changed code")
    assert not second.live("before")

    serving = children(server.process.pid)
    assert len(serving) == 1  # the restarted child serves; the started process only restarts it
    server.stop()
    wait_until(lambda: not Path(f"/proc/{serving[0]}").exists() or "zombie" in Path(f"/proc/{serving[0]}/status").read_text().lower(), 10, "the serving child to stop with its parent")


def test_noreload_serves_in_the_process_itself(start_push_server, site_module):
    path, env = site_module
    server = start_push_server(env=env, settings={"DEBUG": True}, args=("--noreload",))
    assert children(server.process.pid) == []
    assert "reloading" not in server.log()


def test_rundemo_restarts_django_and_its_push_server_on_a_code_change(tmp_path: Path):
    # sitecustomize is imported at startup, so the reloader watches it like the demo's own modules.
    code = tmp_path / "code"
    code.mkdir()
    watched = code / "sitecustomize.py"
    watched.write_text("")
    demo = DemoServer(tmp_path, env={"PYTHONPATH": os.pathsep.join(filter(None, [str(code), os.environ.get("PYTHONPATH")]))})
    try:
        demo.start()

        def rewritten() -> bool:
            watched.write_text(f"# {time.monotonic()}\n")
            try:
                wait_until(lambda: f"{watched} changed, reloading" in demo.log(), 3, "the reload")
            except AssertionError:
                return False
            return True

        wait_until(rewritten, 30, "rundemo to reload")
        wait_until(lambda: demo.log().count("serverpush: push server on") == 2, 60, "a second push server")
        wait_until(demo._ready, 60, "the restarted demo to answer")
        demo.stop()
        wait_until(lambda: not demo.leftovers(), 10, f"everything rundemo started to exit (log: {demo.log_path})")
    finally:
        demo.close()
