"""One origin under ASGI: ``uvicorn demo.asgi:application`` serves the pages and the push server on one port."""
from __future__ import annotations

import http.client
import re
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import socketio
from playwright.sync_api import BrowserContext

from serverpush.testing import InOrderClient
from tests.conftest import Uvicorn, answers, wait_until
from tests.redis_fixture import RedisServer
from tests.test_browser import assert_not_reloaded, click, new_context, open_live, shows, sign_in  # noqa: F401 - fixtures


@pytest.fixture(scope="module")
def uvicorn_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Uvicorn]:
    server = Uvicorn(tmp_path_factory.mktemp("uvicorn")).start()
    yield server
    server.stop()


def test_a_signed_in_page_and_its_push_server_share_one_origin(uvicorn_demo: Uvicorn, new_context: Callable[[], BrowserContext]) -> None:
    alice = f"alice-{uuid.uuid4().hex[:6]}"
    context = new_context()
    sign_in(uvicorn_demo, context, alice)
    a, b = open_live(uvicorn_demo, context, "/hello/fields/"), open_live(uvicorn_demo, context, "/hello/fields/")
    for page in (a, b):
        # The page's own origin, the default Socket.IO path; the session cookie (HttpOnly) went along.
        assert page.evaluate("serverpush.socket.io.uri") == uvicorn_demo.url
        assert page.evaluate("serverpush.socket.io.opts.path") == "/socket.io/"
    a.fill("#username", f"{alice}-renamed")
    click(a, "#rename")
    shows(b.locator("#greeting"), f"Hey, {alice}-renamed!")
    assert_not_reloaded(a, b)
    wait_until(lambda: b.evaluate("serverpush.socket.io.engine.transport.name") == "websocket", 10, "the websocket upgrade")
    stats = uvicorn_demo.stats()
    assert stats["connections"] >= 2 and stats.get("refused", 0) == 0
    assert not answers(f"http://127.0.0.1:{uvicorn_demo.unused_push_port}/")


def test_a_signed_in_page_whose_push_server_is_on_another_host_is_refused_for_want_of_its_cookie(tmp_path: Path, new_context: Callable[[], BrowserContext]) -> None:
    """As the README's Deployment section says: the browser sends the session cookie of localhost, not of 127.0.0.1."""
    server = Uvicorn(tmp_path)
    server.env["SERVERPUSH_URL"] = f"http://127.0.0.1:{server.port}"  # the same server, another origin
    server.start()
    try:
        context = new_context()
        context.add_init_script("document.addEventListener('serverpush_refresh', e => { window.refused = e.detail.code; e.preventDefault(); })")
        anonymous = context.new_page()
        anonymous.goto(server.url + "/hello/fields/")
        anonymous.wait_for_function("window.serverpush && serverpush.state === 'live'")  # no session to lose
        sign_in(server, context, f"carol-{uuid.uuid4().hex[:6]}")
        page = context.new_page()
        page.goto(server.url + "/hello/fields/")
        assert page.wait_for_function("window.refused").json_value() == "session_mismatch"
        assert page.evaluate("serverpush.socket.io.uri") == f"http://127.0.0.1:{server.port}"
    finally:
        server.stop()


def test_the_stats_answer_loopback_only_and_pages_are_served_beside_them(uvicorn_demo: Uvicorn) -> None:
    assert "connections" in uvicorn_demo.stats()
    with urllib.request.urlopen(f"{uvicorn_demo.url}/login/", timeout=5) as response:
        html = response.read().decode()
    assert response.status == 200 and "<form" in html
    # 127.0.0.2 reaches the port like any other client (the kernel routes it locally), but
    # is not a loopback address the stats serve: the check reads the client's real address.
    other = http.client.HTTPConnection("127.0.0.1", uvicorn_demo.port, timeout=5, source_address=("127.0.0.2", 0))
    other.request("GET", "/serverpush/stats")
    answer = other.getresponse()
    assert answer.status == 403 and b"connections" not in answer.read()
    other.close()


def test_a_second_worker_on_the_embedded_log_is_refused_with_the_way_out(uvicorn_demo: Uvicorn, tmp_path: Path) -> None:
    second = Uvicorn(tmp_path, notifier_port=uvicorn_demo.notifier_port).start(wait=False)
    try:
        assert second.process.wait(timeout=60) != 0
    finally:
        second.stop()
    log = second.log()
    assert "the embedded log (SERVERPUSH_LOG = 'memory') serves one push-server process" in log
    assert "set SERVERPUSH_LOG to a Redis URL" in log
    assert "Traceback" not in log
    assert "connections" in uvicorn_demo.stats()  # the first one is untouched


def test_asgi_processes_on_the_redis_log_serve_each_others_changes(redis_server: RedisServer, tmp_path: Path) -> None:
    """Two uvicorn processes, one database, one Redis log: a change made through either reaches the pages of both."""
    env = {"SERVERPUSH_LOG": redis_server.url}
    nodes = [Uvicorn(tmp_path, env=env).start() for _ in range(2)]
    clients: list[socketio.Client] = []
    try:
        page = urllib.request.urlopen(f"http://127.0.0.1:{nodes[0].port}/", timeout=10).read().decode()
        token = re.search(r'data-token="([^"]*)"', page).group(1)
        heard: list[list[int]] = []
        for node in nodes * 2:
            client, values = InOrderClient(reconnection=False), []
            client.on("serverpush", lambda data, values=values: data["name"] == "counter" and values.append(data["data"]["value"]))
            client.connect(f"http://127.0.0.1:{node.port}", transports=["websocket"], auth={"token": token, "cursor": None}, wait_timeout=10)
            clients.append(client)
            heard.append(values)
        wait_until(lambda: all(node.stats().get("connections") == 2 for node in nodes), 10, "two pages on each node")
        urllib.request.urlopen(f"http://127.0.0.1:{nodes[1].port}/", timeout=10).close()  # a page view bumps the counter
        wait_until(lambda: all(values for values in heard), 10, f"the change on every page: {heard}")
        assert len({values[-1] for values in heard}) == 1
    finally:
        for client in clients:
            client.disconnect()
        for node in nodes:
            node.stop()
