"""How many pages one push server holds: SERVERPUSH_MAX_CONNECTIONS, past eventlet's 1,024, and its open-files limit."""
from __future__ import annotations

import resource

import pytest

from serverpush.runtime import ASYNC_MODES
from tests.conftest import render, wait_until
from tests.crowd import Crowd

PAGES = 1100  # past 1,024: eventlet's own cap, and the soft open-files limit most shells start with
CAP = 1050
FULL = f"{CAP} connections open, SERVERPUSH_MAX_CONNECTIONS"
WSGI_MODES = [mode for mode in ASYNC_MODES if mode != "asgi"]


@pytest.fixture
def crowd_of(browser_client):
    """Crowds of pages, each with the token and cookies of one rendered page."""
    crowds: list[Crowd] = []

    def make(server) -> Crowd:
        page = render(browser_client, "/t/registered/")
        crowds.append(Crowd(server.port, {"token": page.token, "cursor": page.cursor}, page.cookies))
        return crowds[-1]

    yield make
    for crowd in crowds:
        crowd.close()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("async_mode", ASYNC_MODES)
def test_the_default_holds_more_than_1024_pages_from_a_shell_limit_of_1024_files(start_push_server, crowd_of, async_mode):
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    server = start_push_server(async_mode=async_mode, open_files=(1024, hard))
    assert server.open_files_limit() > PAGES
    crowd = crowd_of(server)
    crowd.open(PAGES)
    wait_until(lambda: crowd.count("ready") == PAGES, 180, f"{PAGES} pages live; {crowd.states()}")
    assert server.stats()["connections"] == PAGES
    assert "Traceback" not in server.log()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("async_mode", WSGI_MODES)
def test_max_connections_holds_that_many_and_the_next_wait(start_push_server, crowd_of, async_mode):
    server = start_push_server(async_mode=async_mode, settings={"SERVERPUSH_MAX_CONNECTIONS": CAP})
    crowd = crowd_of(server)
    first = crowd.open(CAP)
    wait_until(lambda: crowd.count("ready") == CAP, 180, f"{CAP} pages live; {crowd.states()}")
    wait_until(lambda: FULL in server.log(), 30, "the push server's warning that it is full")
    waiting = crowd.open(PAGES - CAP)
    crowd.hang_up(first[:PAGES - CAP])
    wait_until(lambda: all(page.state == "ready" for page in waiting), 60, "the waiting pages live once others left")
    assert crowd.count("ready") == CAP


@pytest.mark.django_db(transaction=True)
def test_under_asgi_max_connections_holds_that_many_and_refuses_the_next(start_push_server, crowd_of):
    server = start_push_server(async_mode="asgi", settings={"SERVERPUSH_MAX_CONNECTIONS": CAP})
    crowd = crowd_of(server)
    crowd.open(CAP)
    wait_until(lambda: crowd.count("ready") == CAP, 180, f"{CAP} pages live; {crowd.states()}")
    refused = crowd.open(PAGES - CAP)
    wait_until(lambda: all(page.state in ("refused", "closed") for page in refused), 60, "the refusal of the pages past the limit")
    assert all(page.events[0].startswith(b"HTTP/1.1 403") for page in refused)  # how uvicorn answers a websocket closed before it was accepted
    assert crowd.count("ready") == CAP and f"{CAP} connections open, SERVERPUSH_MAX_CONNECTIONS: new ones are refused" in server.log()


@pytest.mark.django_db(transaction=True)
def test_a_hard_limit_too_low_for_max_connections_is_a_warning_with_the_fix(start_push_server):
    server = start_push_server(open_files=(1024, 2048))
    assert server.open_files_limit() == 2048
    assert "serverpush.W006" in server.log() and "LimitNOFILE" in server.log()
