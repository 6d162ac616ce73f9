"""pytest fixtures of serverpush; enable them with ``pytest_plugins = ["serverpush.testing.fixtures"]``."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from serverpush.testing.server import LivePage, PushServer


@pytest.fixture(scope="session")
def live_push_server(django_db_setup: Any) -> Iterator[PushServer]:
    """A real push server for the session, reading the test database (tests must commit: ``django_db(transaction=True)``)."""
    server = PushServer().start()
    yield server
    server.stop()


@pytest.fixture
def live_page(live_push_server: PushServer, client: Any) -> Iterator[Any]:
    """``live_page(path, client=None)``: render a page and keep it live, closed when the test ends."""
    pages: list[LivePage] = []

    def open_page(path: str, with_client: Any = None) -> LivePage:
        pages.append(live_push_server.open(with_client or client, path))
        return pages[-1]

    yield open_page
    for page in pages:
        page.close()
