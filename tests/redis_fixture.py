"""A real ``redis-server`` on a free port, per test, that tests can stop, kill, pause and restart."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.conftest import wait_until
from tests.ports import free_port

REDIS_SERVER = os.environ.get("SERVERPUSH_REDIS_SERVER") or shutil.which("redis-server") or "/usr/bin/redis-server"


class RedisServer:
    """One redis-server process without persistence (``SHUTDOWN SAVE`` still writes a dump)."""

    def __init__(self, tmp: Path, port: int | None = None, args: tuple[str, ...] = ()) -> None:
        self.args = args
        self.port = port or free_port()
        self.dir = tmp / f"redis-{self.port}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        if not Path(REDIS_SERVER).exists():
            raise AssertionError(f"no redis-server at {REDIS_SERVER}: install Redis >= 7 or set SERVERPUSH_REDIS_SERVER")
        args = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(self.dir), "--loglevel", "warning", *self.args]
        with open(self.dir / "redis.log", "ab") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        wait_until(self._ready, 10, f"redis-server on port {self.port}")
        return self

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"redis-server exited with {self.process.returncode}: {(self.dir / 'redis.log').read_text()}")
        try:
            return self.client().ping()
        except redis.RedisError:
            return False

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, decode_responses=True, socket_timeout=5, retry=Retry(NoBackoff(), 0))

    def stop(self, keep_data: bool = False) -> None:
        """Shut down cleanly; with ``keep_data`` the next start loads the same data."""
        (self.dir / "dump.rdb").unlink(missing_ok=True)
        try:
            self.client().shutdown(save=keep_data, nosave=not keep_data)
        except redis.ConnectionError:
            pass
        self.process.wait(timeout=10)

    def kill(self) -> None:
        """Die at once, losing everything (no persistence)."""
        (self.dir / "dump.rdb").unlink(missing_ok=True)
        self.process.kill()
        self.process.wait(timeout=10)

    def pause(self) -> None:
        """Stop answering without closing connections: a hung or very slow Redis."""
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def restart(self, keep_data: bool = False) -> RedisServer:
        self.stop(keep_data)
        return self.start()

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.resume()
            self.process.kill()
            self.process.wait(timeout=10)

    def push_env(self, **settings: Any) -> dict[str, str]:
        """Environment for a push server on this Redis, with extra settings."""
        return {"SERVERPUSH_TEST_LOG": self.url, "SERVERPUSH_TEST_OVERRIDES": json.dumps(settings)}

    def commands(self) -> dict[str, int]:
        """Calls per command so far (``INFO commandstats``; a script's own calls count too)."""
        stats = self.client().info("commandstats")
        return {name.removeprefix("cmdstat_"): value["calls"] for name, value in stats.items() if name not in {"cmdstat_info", "cmdstat_hello"}}


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path).start()
    yield server
    server.close()


@pytest.fixture
def redis_log(redis_server: RedisServer, settings: Any) -> RedisServer:
    """This test process appends to, and reads cursors from, ``redis_server``'s log."""
    settings.SERVERPUSH_LOG = redis_server.url
    settings.SERVERPUSH_CURSOR_MAX_AGE = 0  # every position() reads Redis; tests of the cached cursor set it
    return redis_server


class SentinelServer:
    """``redis-server --sentinel`` watching one master, as ``mymaster``; fails over in about a second."""

    SERVICE = "mymaster"

    def __init__(self, tmp: Path, master: RedisServer) -> None:
        self.port = free_port()
        self.dir = tmp / f"sentinel-{self.port}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.master = master
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.port}/{self.SERVICE}/0"

    def start(self) -> SentinelServer:
        conf = self.dir / "sentinel.conf"  # Sentinel rewrites its config file: one of its own
        conf.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {self.dir}\n"
            f"sentinel monitor {self.SERVICE} 127.0.0.1 {self.master.port} 1\n"
            f"sentinel down-after-milliseconds {self.SERVICE} 1000\nsentinel failover-timeout {self.SERVICE} 5000\n"
        )
        with open(self.dir / "sentinel.log", "ab") as log:
            self.process = subprocess.Popen([REDIS_SERVER, str(conf), "--sentinel"], stdout=log, stderr=subprocess.STDOUT)
        wait_until(lambda: self.master_port() == self.master.port, 10, f"sentinel on port {self.port} to know the master")
        return self

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, decode_responses=True, socket_timeout=5, retry=Retry(NoBackoff(), 0))

    def master_port(self) -> int | None:
        if self.process.poll() is not None:
            raise AssertionError(f"sentinel exited with {self.process.returncode}: {(self.dir / 'sentinel.log').read_text()}")
        try:
            found = self.client().execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.SERVICE)
        except redis.RedisError:
            return None
        return int(found[1]) if found else None

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
