"""Many real Socket.IO pages in one thread: websocket connections driven by one selector.

A python-socketio client takes threads of its own; thousands of them would measure
the test process, not the push server. These speak the same wire protocol (a
websocket upgrade, Engine.IO 4, Socket.IO 5's connect with the page's token) with
a socket each, and answer the server's pings, so they stay live as long as needed.
"""
from __future__ import annotations

import base64
import json
import os
import resource
import selectors
import socket
import struct
import threading
from collections import Counter
from typing import Any

TEXT, CLOSE, PING, PONG = 0x1, 0x8, 0x9, 0xA


class Page:
    """One connection: ``state`` goes waiting → upgraded → open → connected → ready (or refreshed, refused, closed)."""

    def __init__(self, crowd: Crowd, sock: socket.socket) -> None:
        self.crowd, self.sock = crowd, sock
        self.state = "waiting"
        self.inbox = b""
        self.events: list[Any] = []

    def readable(self) -> None:
        try:
            data = self.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.events.append(("closed by the server", self.state))
            self.close()
            return
        self.inbox += data
        if self.state == "waiting":
            head, sep, rest = self.inbox.partition(b"\r\n\r\n")
            if not sep:
                return
            if not head.startswith(b"HTTP/1.1 101"):
                self.events.append(head[:200])
                self.state = "refused"
                return
            self.state, self.inbox = "upgraded", rest
        while (frame := self._frame()) is not None:
            self._received(*frame)

    def _frame(self) -> tuple[int, bytes] | None:
        if len(self.inbox) < 2:
            return None
        opcode, length, start = self.inbox[0] & 0x0F, self.inbox[1] & 0x7F, 2
        if length == 126:
            if len(self.inbox) < 4:
                return None
            length, start = struct.unpack("!H", self.inbox[2:4])[0], 4
        elif length == 127:
            if len(self.inbox) < 10:
                return None
            length, start = struct.unpack("!Q", self.inbox[2:10])[0], 10
        if len(self.inbox) < start + length:
            return None
        payload, self.inbox = self.inbox[start:start + length], self.inbox[start + length:]
        return opcode, payload

    def _received(self, opcode: int, payload: bytes) -> None:
        if opcode == PING:
            self.send(payload, PONG)
        elif opcode == CLOSE:
            self.events.append(("close frame", self.state))
            self.close()
        elif opcode == TEXT:
            self._packet(payload.decode())

    def _packet(self, packet: str) -> None:
        if packet.startswith("0"):  # Engine.IO open: connect the default namespace as a page does
            self.state = "open"
            self.send(("40" + json.dumps(self.crowd.auth)).encode())
        elif packet == "2":
            self.send(b"3")
        elif packet.startswith("40"):  # may come after the connect handler's own events
            if self.state == "open":
                self.state = "connected"
        elif packet.startswith("44"):
            self.state = "refused"
            self.events.append(json.loads(packet[2:]))
        elif packet.startswith("42"):
            name, *args = json.loads(packet[2:])
            self.events.append((name, args))
            if name == "serverpush_ready":
                self.state = "ready"
            elif name == "serverpush_refresh":
                self.state = "refreshed"

    def send(self, payload: bytes, opcode: int = TEXT) -> None:
        mask = os.urandom(4)
        length = len(payload)
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | length) if length < 126 else struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
        masked = (int.from_bytes(payload, "big") ^ int.from_bytes((mask * (length // 4 + 1))[:length], "big")).to_bytes(length, "big")
        try:
            self.sock.sendall(head + mask + masked)
        except OSError:
            self.close()

    def close(self) -> None:
        if self.state != "closed":
            self.state = "closed"
            self.crowd.forget(self)


class Crowd:
    """``count`` pages connected to the push server on ``port`` with one page's token and cookies."""

    def __init__(self, port: int, auth: dict[str, Any], cookies: dict[str, str] | None = None) -> None:
        self.port, self.auth = port, auth
        self.cookie = "; ".join(f"{k}={v}" for k, v in (cookies or {}).items())
        self.pages: list[Page] = []
        self.selector = selectors.DefaultSelector()
        self.running = True
        self.thread = threading.Thread(target=self._pump, name="crowd", daemon=True)
        self.thread.start()

    def open(self, count: int) -> list[Page]:
        """Connect ``count`` more pages (their handshakes go on in the background)."""
        raise_open_files_limit(len(self.pages) + count + 256)
        made = []
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
            key = base64.b64encode(os.urandom(16)).decode()
            request = (
                f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                + (f"Cookie: {self.cookie}\r\n" if self.cookie else "") + "\r\n"
            )
            sock.sendall(request.encode())
            sock.setblocking(False)
            page = Page(self, sock)
            self.selector.register(sock, selectors.EVENT_READ, page)
            self.pages.append(page)
            made.append(page)
        return made

    def count(self, state: str) -> int:
        return sum(page.state == state for page in list(self.pages))

    def states(self) -> dict[str, int]:
        """How many pages are in each state, for failure messages."""
        return dict(Counter(page.state for page in list(self.pages)))

    def hang_up(self, pages: list[Page]) -> None:
        """Close these pages' connections (the pump thread sees them end, and forgets them)."""
        for page in pages:
            page.sock.shutdown(socket.SHUT_RDWR)

    def forget(self, page: Page) -> None:
        self.selector.unregister(page.sock)
        page.sock.close()

    def _pump(self) -> None:
        while self.running:
            for key, _ in self.selector.select(timeout=0.05):
                key.data.readable()

    def close(self) -> None:
        self.running = False
        self.thread.join(timeout=10)
        for page in self.pages:
            if page.state != "closed":
                page.sock.close()
        self.selector.close()


def raise_open_files_limit(wanted: int) -> None:
    """This process holds a socket per page: let it, within its hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted if hard == resource.RLIM_INFINITY else min(wanted, hard), hard))
