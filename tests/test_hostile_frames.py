"""Hostile frames in every async mode: nested too deep to decode, or too large to buffer.

Each attack must cost the attacker its connection and nothing else: counted in
``malformed_frames``, one log line and no traceback, the server's memory flat, and a
well-behaved page still served.
"""
from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.test import Client

from serverpush.server import frames
from serverpush.runtime import ASYNC_MODES
from tests.conftest import PushServer, render, wait_until
from tests.hostile import RawEngineSocket, deflate_bomb, nested_event, peak_rss_kib, reset_peak, rss_kib
from tests.testapp.models import Note

pytestmark = pytest.mark.django_db(transaction=True)

MIB = 1024 * 1024
CLOSE_TIMEOUT = 10  # a bound for a hung server, not a measure: it closes at once
# Under ASGI the app closes the websocket at once (a close frame); uvicorn then waits up
# to 10 s for the client's reply before it drops the TCP connection, which a hostile
# client never sends.
ASGI_CLOSE_HANDSHAKE = 10


@pytest.fixture(scope="module", params=ASYNC_MODES)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, django_db_setup: None) -> Iterator[PushServer]:
    push = PushServer(tmp_path_factory.mktemp(request.param), async_mode=request.param).start()
    yield push
    push.stop()


def close_timeout(server: PushServer) -> float:
    return CLOSE_TIMEOUT + (ASGI_CLOSE_HANDSHAKE if server.async_mode == "asgi" else 0)


@pytest.fixture
def healthy(server: PushServer, listeners: Callable, browser_client: Client, settings: Any) -> Callable[[], None]:
    """A well-behaved page; after the attack it must still receive its change."""
    settings.SERVERPUSH_NOTIFIER_PORT = server.notifier_port
    note = Note.objects.create(title="healthy")
    tab = listeners().connect(server, render(browser_client, f"/t/note/{note.pk}/"), cursor=None)

    def still_served() -> None:
        note.title = f"still served in {server.async_mode}"
        note.save()
        tab.wait(lambda: any(u["data"]["title"] == note.title for u in tab.live("note")), "the healthy page's update")

    return still_served


def test_deeply_nested_frames_cost_only_their_connection(server: PushServer, browser_client: Client, healthy: Callable[[], None]) -> None:
    token = render(browser_client, "/t/hello-fields/").token
    log_start, before = len(server.log()), server.stats().get("malformed_frames", 0)
    # Past the decoder's recursion limit (6 KB each, as a flood), decodable but past the depth
    # bound, and one frame before any Socket.IO connect (the transport alone).
    floods = [[nested_event(3000)] * 50] * 3 + [[nested_event(40)], [nested_event(3000)]]
    attackers = [RawEngineSocket(server.port).connect({"token": token, "cursor": None}) for _ in floods[:-1]] + [RawEngineSocket(server.port)]
    for attacker, flood in zip(attackers, floods):
        attacker.flood(flood)
    for attacker in attackers:
        attacker.wait_closed(close_timeout(server))
    wait_until(lambda: server.stats().get("malformed_frames", 0) >= before + len(attackers), what="every attacker counted")
    log = server.log()[log_start:]
    assert "Traceback" not in log
    refusals = [line for line in log.splitlines() if "malformed frame from" in line]
    assert len(refusals) >= len(attackers)
    assert any("RecursionError" in line for line in refusals)
    assert any("SERVERPUSH_MAX_MESSAGE_DEPTH" in line for line in refusals)
    healthy()


@pytest.mark.parametrize("fragments", [False, True], ids=["one-frame", "unfinished-frames"])
def test_an_oversized_message_is_refused_before_it_is_read(server: PushServer, healthy: Callable[[], None], fragments: bool) -> None:
    pid = server.process.pid
    log_start, before, rss_before = len(server.log()), server.stats().get("malformed_frames", 0), rss_kib(pid)
    reset_peak(pid)
    attacker = RawEngineSocket(server.port)  # no Socket.IO connect needed: the transport alone
    attacker.stream(announced=300 * MIB, sent=64 * MIB, fragments=fragments)
    attacker.wait_closed(close_timeout(server))
    growth = peak_rss_kib(pid) - rss_before
    assert growth < 16 * 1024, f"the {server.async_mode} server grew by {growth} KiB at its peak reading a message it should refuse"
    wait_until(lambda: server.stats().get("malformed_frames", 0) == before + 1, what="the refusal counted")
    said = [line for line in server.log()[log_start:].splitlines() if "/serverpush/stats" not in line]
    assert len(said) == 1 and "malformed frame from" in said[0], f"expected one line about the refusal, got {said}"
    healthy()


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return deflate_bomb(60 * MIB)  # 58 KB compressed: under the limit, so only inflating it tells


def test_a_compressed_message_is_refused_as_it_inflates(server: PushServer, healthy: Callable[[], None], bomb: bytes) -> None:
    pid = server.process.pid
    before, rss_before = server.stats().get("malformed_frames", 0), rss_kib(pid)
    reset_peak(pid)
    attacker = RawEngineSocket(server.port, deflate=True)
    attacker.send_frame(bomb)
    attacker.wait_closed(close_timeout(server))
    growth = peak_rss_kib(pid) - rss_before
    assert growth < 16 * 1024, f"the {server.async_mode} server grew by {growth} KiB at its peak inflating a message it should refuse"
    if attacker.deflate:  # eventlet and simple-websocket offer compression
        wait_until(lambda: server.stats().get("malformed_frames", 0) == before + 1, what="the refusal counted")
    else:  # gevent-websocket does not: a compressed frame is a protocol error
        assert server.async_mode == "gevent"
    healthy()


def test_a_refusal_names_the_clients_real_address(server: PushServer) -> None:
    log_start = len(server.log())
    attacker = RawEngineSocket(server.port, source="127.0.0.2")  # loopback, but not 127.0.0.1
    attacker.stream(2 * MIB, 2 * MIB)
    attacker.wait_closed(close_timeout(server))
    refusal = wait_until(lambda: [line for line in server.log()[log_start:].splitlines() if "malformed frame from" in line], what="the refusal logged")
    assert "malformed frame from 127.0.0.2:" in refusal[0]


def test_the_pre_rfc_websocket_protocol_is_not_spoken(server: PushServer) -> None:
    # Its frames end with a byte instead of announcing a length: nothing to refuse early.
    with socket.create_connection(("127.0.0.1", server.port), timeout=CLOSE_TIMEOUT) as legacy:
        legacy.sendall(b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\nOrigin: http://localhost\r\n\r\n")
        answer = legacy.recv(4096)
    assert answer and not answer.startswith(b"HTTP/1.1 101"), answer


@pytest.mark.parametrize("text", ["[" * 3000 + "]" * 3000, "[" * 33 + "]" * 33, '{"a": ' * 40 + "1" + "}" * 40, "{", '"\\ud800', "1e999999999x", b"\xff"])
def test_undecodable_json_is_one_error_class(text: str | bytes) -> None:
    with pytest.raises(frames.Undecodable):
        frames.loads(text)


def test_json_nested_within_the_bound_decodes() -> None:
    deepest = "[" * 32 + "]" * 32
    assert frames.loads(deepest) == json.loads(deepest)
    assert frames.loads('{"token": "t", "shown": [["note", 1]]}') == {"token": "t", "shown": [["note", 1]]}
