"""Fixtures: real push servers on free ports, real Socket.IO clients, pages rendered by Django."""
from __future__ import annotations

import json
import os
import re
import resource
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import socketio
from django.test import Client
from playwright.sync_api import Browser, sync_playwright

from serverpush.testing import InOrderClient
from tests.ports import free_port

if TYPE_CHECKING:
    from tests.redis_fixture import RedisServer

pytest_plugins = ["tests.redis_fixture", "pytester"]

ROOT = Path(__file__).resolve().parent.parent
POLL_SECONDS = 0.01  # how often wait_until looks again; it gives up at its timeout


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll ``predicate`` until it is truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(POLL_SECONDS)


class PushServer:
    """A real ``manage.py runserverpush`` process on free ports."""

    def __init__(self, tmp: Path, port: int | None = None, notifier_port: int | None = None, async_mode: str = "eventlet", env: dict[str, str] | None = None, settings: dict[str, Any] | None = None, args: tuple[str, ...] = (), open_files: tuple[int, int] | None = None) -> None:
        self.args = args
        self.port = port or free_port()
        self.notifier_port = notifier_port or free_port()
        self.async_mode = async_mode
        self.extra_env = {**(env or {}), **({"SERVERPUSH_TEST_OVERRIDES": json.dumps(settings)} if settings else {})}
        self.log_path = tmp / f"push-{self.port}.log"
        self.open_files = open_files  # (soft, hard) RLIMIT_NOFILE it starts with, as a shell's ulimit would set
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> PushServer:
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "SERVERPUSH_PORT": str(self.port), "SERVERPUSH_NOTIFIER_PORT": str(self.notifier_port), **self.extra_env}
        env.pop("SERVERPUSH_PATCHED", None)
        self._started_at = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen([sys.executable, str(ROOT / "manage.py"), "runserverpush", "--port", str(self.port), "--async-mode", self.async_mode, *self.args], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, preexec_fn=self._limit_open_files if self.open_files else None)
        wait_until(self._ready, 30, f"push server on port {self.port} (log: {self.log_path})")
        return self

    def _limit_open_files(self) -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, self.open_files)

    def open_files_limit(self) -> int:
        """The soft RLIMIT_NOFILE the running process has now."""
        row = next(line for line in Path(f"/proc/{self.process.pid}/limits").read_text().splitlines() if line.startswith("Max open files"))
        return int(row.split()[3])

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"push server exited with {self.process.returncode}:\n{self.log()}")
        with open(self.log_path, "rb") as log:  # announced once bound: another server on the port must not pass for this one
            log.seek(self._started_at)
            if b"serverpush: push server on " not in log.read():
                return False
        try:
            urllib.request.urlopen(f"{self.url}/serverpush/health", timeout=5).close()
            return True
        except OSError:
            return False

    def stats(self) -> dict[str, int]:
        with urllib.request.urlopen(f"{self.url}/serverpush/stats", timeout=5) as response:
            return json.load(response)

    @contextmanager
    def landing(self, count: int = 1) -> Iterator[None]:
        """Wait, on leaving the block, until the push server has taken in ``count`` more log entries.

        The embedded log's notifier hop is asynchronous: a change committed just before
        a page connects may reach the push server after the page's replay, and then it
        is (rightly) delivered live. A test that means to prove the replay waits for it.
        On Redis, a node that falls behind a small stream skips what was trimmed (a hole).
        """
        before = self.stats()
        yield

        def landed() -> bool:
            now = self.stats()
            return now.get("log_entries", 0) >= before.get("log_entries", 0) + count or now.get("log_holes", 0) > before.get("log_holes", 0)

        wait_until(landed, 10, f"{count} more entries in the push server's log")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, kill: bool = False) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill() if kill else self.process.terminate()
            self.process.wait(timeout=10)


@dataclass
class Page:
    """A page rendered by Django: its HTML, token, cursor and the cookies of its session."""

    html: str
    token: str
    cursor: str
    cookies: dict[str, str]


def render(client: Client, path: str) -> Page:
    response = client.get(path)
    assert response.status_code == 200, f"GET {path} answered {response.status_code}"
    html = response.content.decode()
    token = re.search(r'data-token="([^"]*)"', html).group(1)
    cursor = re.search(r'data-cursor="([^"]*)"', html).group(1)
    return Page(html, token, cursor, {name: morsel.value for name, morsel in client.cookies.items()})


@dataclass
class Listener:
    """A real python-socketio client connected as a page would be."""

    client: socketio.Client = field(default_factory=lambda: InOrderClient(reconnection=False))
    events: list[tuple[str, Any]] = field(default_factory=list)
    error: Any = None

    def __post_init__(self) -> None:
        for name in ("serverpush", "serverpush_ready", "serverpush_refresh", "serverpush_resynced", "serverpush_error"):
            self.client.on(name, lambda data, name=name: self.events.append((name, data)))
        self.client.on("connect_error", lambda data: setattr(self, "error", data))

    def connect(self, server: PushServer, page: Page | None = None, *, token: str | None = None, cursor: str | None = "page", cookies: dict[str, str] | None = None, wait_ready: bool = True) -> Listener:
        cookies = page.cookies if cookies is None and page else cookies or {}
        auth = {"token": token if token is not None else page.token, "cursor": page.cursor if cursor == "page" else cursor}
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())} if cookies else {}
        self.client.connect(server.url, auth=auth, headers=headers, wait_timeout=10)
        if wait_ready:
            self.wait(lambda: self.named("serverpush_ready") or self.named("serverpush_refresh"), "serverpush_ready")
        return self

    def named(self, name: str) -> list[Any]:
        return [data for event, data in self.events if event == name]

    def updates(self, name: str | None = None) -> list[dict[str, Any]]:
        return [data for data in self.named("serverpush") if name is None or data["name"] == name]

    def live(self, name: str | None = None) -> list[dict[str, Any]]:
        """Updates received after going live (replayed duplicates left out)."""
        return [data for data in self.updates(name) if not data["replay"]]

    def wait(self, predicate: Callable[[], Any], what: str = "events", timeout: float = 10.0) -> Any:
        return wait_until(predicate, timeout, f"{what}; got {self.events!r}")

    def close(self) -> None:
        self.client.disconnect()


# The push server's core under each of its adapters: python-socketio's Server (under
# eventlet, the default) and AsyncServer (ASGI, under uvicorn).
ADAPTERS = ["eventlet", "asgi"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A module with ``EVERY_ADAPTER = True`` runs its backends (``start_backend``) under each adapter."""
    if "adapter" in metafunc.fixturenames and getattr(metafunc.module, "EVERY_ADAPTER", False):
        metafunc.parametrize("adapter", ADAPTERS)


@pytest.fixture
def adapter() -> str:
    """The async mode ``start_backend`` starts push servers in unless told; see pytest_generate_tests."""
    return "eventlet"


@pytest.fixture(scope="session", params=ADAPTERS)
def push_server(request: pytest.FixtureRequest, django_db_setup: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PushServer]:
    """The session's push server, on the ports tests.settings chose for this run, once per adapter."""
    server = PushServer(tmp_path_factory.mktemp(f"push-{request.param}"), int(os.environ["SERVERPUSH_PORT"]), int(os.environ["SERVERPUSH_NOTIFIER_PORT"]), async_mode=request.param)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def start_push_server(django_db_setup: None, tmp_path: Path, settings: Any) -> Iterator[Callable[..., PushServer]]:
    """Start extra push servers (``settings={...}`` overrides theirs); this process's notifier port follows the last one."""
    servers: list[PushServer] = []

    def start(**kwargs: Any) -> PushServer:
        server = PushServer(tmp_path, **kwargs).start()
        servers.append(server)
        settings.SERVERPUSH_NOTIFIER_PORT = server.notifier_port
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def memory_log(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pin a test to the embedded log even when the suite runs on Redis (``SERVERPUSH_TEST_LOG``).

    For tests of what only the embedded log has: the notifier, ``t<ms>`` cursors, a
    push-server restart that loses the ring. Push servers the test starts inherit it.
    """
    settings.SERVERPUSH_LOG = "memory"
    monkeypatch.setenv("SERVERPUSH_TEST_LOG", "memory")


@pytest.fixture
def listeners() -> Iterator[Callable[[], Listener]]:
    made: list[Listener] = []

    def make() -> Listener:
        made.append(Listener())
        return made[-1]

    yield make
    for listener in made:
        listener.close()


@pytest.fixture
def browser_client() -> Client:
    return Client(HTTP_HOST="localhost")


@pytest.fixture
def user_client(django_user_model: Any) -> Callable[[str], Client]:
    def make(username: str) -> Client:
        user, _ = django_user_model.objects.get_or_create(username=username)
        client = Client(HTTP_HOST="localhost")
        client.force_login(user)
        client.user = user
        return client

    return make


CHROMIUM = os.environ.get("SERVERPUSH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-quic"]


def launch_chromium(playwright: Any) -> Browser:
    """Headless Chromium; a missing one is an error, never a skip, so CI cannot pass without it."""
    if not Path(CHROMIUM).exists():
        raise AssertionError(f"no Chromium at {CHROMIUM}: install it (apt-get install chromium) or set SERVERPUSH_CHROMIUM")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Module scope: while Playwright's sync API is active its event loop counts as
    # running, and Django refuses ORM calls (SynchronousOnlyOperation) in this thread.
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        yield browser
        browser.close()


def answers(url: str) -> bool:
    """Whether an HTTP server answers ``url`` at all (any status)."""
    try:
        urllib.request.urlopen(url, timeout=5).close()
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
    return True


class DemoServer:
    """``manage.py rundemo`` run as a user runs it, on free ports and a throwaway database."""

    def __init__(self, tmp: Path, env: dict[str, str] | None = None) -> None:
        self.extra_env = env or {}
        self.port, self.push_port, self.notifier_port = free_port(), free_port(), free_port()
        self.db = tmp / "demo.sqlite3"
        self.log_path = tmp / "rundemo.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        # localhost, not 127.0.0.1: the push server is the same host on another port,
        # so the browser sends it the (HttpOnly) session cookie.
        return f"http://localhost:{self.port}"

    @property
    def stats_url(self) -> str:
        return f"http://127.0.0.1:{self.push_port}/serverpush/stats"

    def start(self) -> DemoServer:
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "demo.settings", "DEMO_DB": str(self.db), "SERVERPUSH_PORT": str(self.push_port), "SERVERPUSH_NOTIFIER_PORT": str(self.notifier_port), **self.extra_env}
        env.pop("SERVERPUSH_PATCHED", None)
        with open(self.log_path, "ab") as log:
            # Its own process group, so that close() can always clean up what rundemo started.
            self.process = subprocess.Popen([sys.executable, "manage.py", "rundemo", "--port", str(self.port)], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_until(self._ready, 60, f"the demo on port {self.port} and its push server on {self.push_port} (log: {self.log_path})")
        return self

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"rundemo exited with {self.process.returncode}:\n{self.log()}")
        return answers(f"http://127.0.0.1:{self.port}/login/") and answers(self.stats_url)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        """SIGTERM rundemo, as a supervisor would, and wait for it to exit."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=20)

    def leftovers(self) -> bool:
        """Whether anything rundemo started (its process group) is still running."""
        try:
            os.killpg(self.process.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def close(self) -> None:
        if self.process is None:
            return
        try:
            self.stop()
        finally:
            if self.leftovers():
                os.killpg(self.process.pid, signal.SIGKILL)


class Uvicorn:
    """``uvicorn demo.asgi:application``, as the README starts it, on a free port and a throwaway database."""

    def __init__(self, tmp: Path, notifier_port: int | None = None, env: dict[str, str] | None = None) -> None:
        self.port, self.notifier_port = free_port(), notifier_port or free_port()
        self.unused_push_port = free_port()  # SERVERPUSH_PORT: nothing may connect there
        self.env = {**os.environ, "DJANGO_SETTINGS_MODULE": "demo.settings", "DEMO_DB": str(tmp / "demo.sqlite3"), "SERVERPUSH_PORT": str(self.unused_push_port), "SERVERPUSH_NOTIFIER_PORT": str(self.notifier_port), **(env or {})}
        self.env.pop("SERVERPUSH_PATCHED", None)
        self.log_path = tmp / f"uvicorn-{self.port}.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}"

    def start(self, wait: bool = True) -> Uvicorn:
        subprocess.run([sys.executable, "manage.py", "migrate", "--verbosity", "0"], cwd=ROOT, env=self.env, check=True, timeout=120)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "uvicorn", "demo.asgi:application", "--host", "127.0.0.1", "--port", str(self.port)], cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        if wait:
            wait_until(self._ready, 60, f"uvicorn on port {self.port} (log: {self.log_path})")
        return self

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"uvicorn exited with {self.process.returncode}:\n{self.log()}")
        return answers(f"http://127.0.0.1:{self.port}/login/")

    def stats(self) -> dict[str, int]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/serverpush/stats", timeout=5) as response:
            return json.load(response)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)

    close = stop


@dataclass
class Backend:
    """A push server on one kind of log, and how to lose that log."""

    name: str
    server: PushServer
    redis: RedisServer | None

    def restart_log(self) -> None:
        """Memory: the push server restarts (its ring is gone). Redis: it restarts empty."""
        if self.redis is None:
            self.server.stop()
            self.server.start()
        else:
            self.redis.restart()


@pytest.fixture(params=["memory", "redis"])
def start_backend(request: pytest.FixtureRequest, start_push_server: Callable[..., PushServer], settings: Any, adapter: str) -> Callable[..., Backend]:
    """``start(size=None, async_mode=adapter)``: a push server on the parametrized log, keeping about ``size`` entries."""

    def start(size: int | None = None, async_mode: str = adapter) -> Backend:
        if request.param == "memory":
            request.getfixturevalue("memory_log")  # even when the suite runs on Redis
            overrides = {"SERVERPUSH_MEMORY_LOG_SIZE": size} if size else None
            return Backend("memory", start_push_server(settings=overrides, async_mode=async_mode), None)
        redis = request.getfixturevalue("redis_log")
        overrides = {}
        if size:
            settings.SERVERPUSH_REDIS_MAXLEN = overrides["SERVERPUSH_REDIS_MAXLEN"] = size
            redis.client().config_set("stream-node-max-entries", 4)  # so that '~' trimming bites at this size
        return Backend("redis", start_push_server(env=redis.push_env(**overrides), async_mode=async_mode), redis)

    return start


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    """``manage.py rundemo``, once for every browser test of the demo."""
    server = DemoServer(tmp_path_factory.mktemp("demo"))
    try:
        yield server.start()
    finally:
        server.close()
