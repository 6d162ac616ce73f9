"""A real push server for a project's own tests, and pages connected to it as a browser would be."""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import connections
from django.test import Client, override_settings

from serverpush import conf, processes
START_TIMEOUT = 60.0
SETTINGS_ENV = "SERVERPUSH_TESTING_SETTINGS"  # JSON of the push server's own settings, read by __main__


class PushServer:
    """``runserverpush`` in its own process, on free ports, reading this test run's database.

    While it runs, this process's settings point at it (``SERVERPUSH_PORT``,
    ``SERVERPUSH_NOTIFIER_PORT``, ``SERVERPUSH_URL``), so pages rendered by the test
    client connect to it and saves reach it. Its database is this process's (test)
    database: use tests that commit (``TransactionTestCase``,
    ``django_db(transaction=True)``), and a database file, not an in-memory one.
    """

    def __init__(self, *, settings: dict[str, Any] | None = None, async_mode: str | None = None) -> None:
        self.overrides = dict(settings or {})
        self.async_mode = async_mode or conf.get("SERVERPUSH_ASYNC_MODE")
        self.port = self.notifier_port = 0
        self.process: subprocess.Popen | None = None
        self.output = tempfile.TemporaryFile()
        self._settings: override_settings | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> PushServer:
        databases = _test_databases()
        self.port, self.notifier_port = _free_port(), _free_port()
        overrides = {"SERVERPUSH_PORT": self.port, "SERVERPUSH_NOTIFIER_PORT": self.notifier_port, "DATABASES": databases, "DEBUG": settings.DEBUG, **self.overrides}
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": settings.SETTINGS_MODULE, SETTINGS_ENV: json.dumps(overrides), "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        for name in ("SERVERPUSH_PATCHED", "RUN_MAIN"):
            env.pop(name, None)
        command = [sys.executable, "-m", "serverpush.testing", "runserverpush", "--noreload", "--port", str(self.port), "--async-mode", self.async_mode]
        self.process = subprocess.Popen(command, env=env, stdout=self.output, stderr=subprocess.STDOUT)
        self._settings = override_settings(SERVERPUSH_PORT=self.port, SERVERPUSH_NOTIFIER_PORT=self.notifier_port, SERVERPUSH_URL=self.url)
        self._settings.enable()
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"the push server exited with {self.process.returncode}:\n{self.log()}")
            try:
                self.stats()
                return
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"the push server did not answer on {self.url} within {START_TIMEOUT:g}s:\n{self.log()}") from None
                time.sleep(0.05)

    def stats(self) -> dict[str, int]:
        """The push server's counters (``/serverpush/stats``)."""
        with urllib.request.urlopen(f"{self.url}/serverpush/stats", timeout=5) as response:
            return json.load(response)

    def log(self) -> str:
        """What the push server printed and logged so far."""
        self.output.seek(0)
        return self.output.read().decode(errors="replace")

    def open(self, client: Client, path: str) -> LivePage:
        """Render ``path`` with ``client`` and connect to this server as the page's browser would."""
        return LivePage(self, client, path)

    def stop(self) -> None:
        if self._settings is not None:
            self._settings.disable()
            self._settings = None
        if self.process is not None and self.process.poll() is None:
            processes.stop(self.process)

    def __enter__(self) -> PushServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class LivePage:
    """A page rendered by the test client and kept live by a real Socket.IO client."""

    def __init__(self, server: PushServer, client: Client, path: str, timeout: float = 10.0) -> None:
        from serverpush.testing.client import InOrderClient  # python-socketio[client]

        response = client.get(path)
        if response.status_code != 200:
            raise AssertionError(f"GET {path} answered {response.status_code}")
        html = response.content.decode()
        token = re.search(r'data-token="([^"]*)"', html)
        cursor = re.search(r'data-cursor="([^"]*)"', html)
        if token is None or not token.group(1):
            raise AssertionError(f"{path} is not a live page: it has no {{% serverpush_script %}} with a page token")
        self.html = html
        self.events: list[tuple[str, Any]] = []
        self.socket = InOrderClient(reconnection=False)
        for name in ("serverpush", "serverpush_ready", "serverpush_refresh", "serverpush_resynced", "serverpush_error"):
            self.socket.on(name, lambda data, name=name: self.events.append((name, data)))
        cookies = "; ".join(f"{name}={morsel.value}" for name, morsel in client.cookies.items())
        self.socket.connect(server.url, auth={"token": token.group(1), "cursor": cursor.group(1) if cursor else None}, headers={"Cookie": cookies} if cookies else {}, wait_timeout=timeout)
        self.wait_for("serverpush_ready", timeout)

    def received(self, event: str = "serverpush") -> list[Any]:
        return [data for name, data in self.events if name == event]

    def updates(self, name: str | None = None) -> list[dict[str, Any]]:
        """The ``serverpush`` events received, of spec ``name`` if given."""
        return [data for data in self.received() if name is None or data["name"] == name]

    def wait_for(self, event: str = "serverpush", timeout: float = 10.0, name: str | None = None, where: Callable[[Any], bool] | None = None) -> Any:
        """The first ``event`` received (of spec ``name``, for which ``where(data)`` holds, if given); waits up to ``timeout`` seconds.

        A page replays what changed since it was rendered (``data["replay"]`` true) before live changes arrive.
        """
        deadline = time.monotonic() + timeout
        while True:
            found = [data for data in self.received(event) if (name is None or data.get("name") == name) and (where is None or where(data))]
            if found:
                return found[0]
            if time.monotonic() > deadline:
                raise AssertionError(f"no {event}{f' {name!r}' if name else ''} within {timeout:g}s; received {self.events!r}")
            time.sleep(0.01)

    def close(self) -> None:
        self.socket.disconnect()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _test_databases() -> dict[str, Any]:
    """This process's databases as the tests see them (test names), for the push server to read."""
    databases = {}
    for alias in settings.DATABASES:
        connection = connections[alias]
        if getattr(connection, "is_in_memory_db", lambda: False)():
            raise RuntimeError(
                f"database {alias!r} is an in-memory SQLite database, which the push server, in its own process, cannot read: "
                f"give DATABASES[{alias!r}]['TEST']['NAME'] a file name."
            )
        databases[alias] = {**settings.DATABASES[alias], "NAME": connection.settings_dict["NAME"]}
    return databases
