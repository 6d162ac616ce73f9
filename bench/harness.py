"""What the Redis benchmarks share: Django on the test project, a redis-server, push servers.

Imported by ``bench/replay.py`` and ``bench/reconnect_storm.py``; it sets up Django on
``tests.settings`` with a throwaway SQLite database, so call :func:`setup` first.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def setup(log: str) -> Path:
    """Django on the test settings, migrated; ``log`` is "memory" or "redis" (started later)."""
    tmp = Path(tempfile.mkdtemp(prefix="serverpush-bench-"))
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    os.environ["SERVERPUSH_TEST_DB"] = str(tmp / "bench.sqlite3")
    os.environ["SERVERPUSH_LOG_LEVEL"] = "WARNING"
    from tests.ports import free_port

    # Ports of its own, also when run from a test whose push server holds those of its environment.
    os.environ["SERVERPUSH_PORT"], os.environ["SERVERPUSH_NOTIFIER_PORT"] = str(free_port()), str(free_port())
    if log == "redis":
        os.environ["SERVERPUSH_TEST_LOG"] = f"redis://127.0.0.1:{free_port()}/0"
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    return tmp


def start_redis(tmp: Path) -> object:
    """The redis-server that ``SERVERPUSH_TEST_LOG`` names."""
    from tests.redis_fixture import RedisServer

    port = int(os.environ["SERVERPUSH_TEST_LOG"].rsplit(":", 1)[1].split("/")[0])
    return RedisServer(tmp, port).start()


def start_push_server(tmp: Path, async_mode: str = "eventlet") -> object:
    from tests.conftest import PushServer

    return PushServer(tmp, int(os.environ["SERVERPUSH_PORT"]), int(os.environ["SERVERPUSH_NOTIFIER_PORT"]), async_mode=async_mode).start()


def browser() -> object:
    from django.test import Client

    return Client(HTTP_HOST="localhost")
