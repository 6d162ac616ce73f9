"""Hostile clients, by hand: frames no client library would send, and the server's memory.

Shared by ``tests/test_hostile_frames.py`` and ``bench/hostile_frames.py``.
"""
from __future__ import annotations

import json
import socket
import struct
import time
import zlib
from pathlib import Path

import websocket

CHUNK = 64 * 1024
TEXT, CONTINUATION = 0x1, 0x0


def nested_event(depth: int) -> str:
    """A Socket.IO event frame whose argument is arrays nested ``depth`` deep."""
    return '42["serverpush_subscribe",' + "[" * depth + "]" * depth + "]"


def frame_header(length: int, opcode: int = TEXT, fin: bool = True) -> bytes:
    """A masked client frame header announcing ``length`` payload bytes (mask 0: payload as is)."""
    first = (0x80 if fin else 0) | opcode
    if length < 126:
        header = struct.pack("!BB", first, 0x80 | length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", first, 0x80 | 126, length)
    else:
        header = struct.pack("!BBQ", first, 0x80 | 127, length)
    return header + b"\0\0\0\0"


def deflate_bomb(inflated: int) -> bytes:
    """One compressed text frame (permessage-deflate) that inflates to ``inflated`` bytes."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = packer.compress(b"4") + b"".join(packer.compress(b"x" * CHUNK) for _ in range(inflated // CHUNK))
    body += packer.flush(zlib.Z_SYNC_FLUSH)[:-4]  # permessage-deflate leaves out the 00 00 ff ff tail
    header = bytearray(frame_header(len(body)))
    header[0] |= 0x40  # RSV1: compressed
    return bytes(header) + body


def rss_kib(pid: int) -> int:
    """Resident memory of ``pid`` now, in KiB."""
    return _status(pid, "VmRSS")


def peak_rss_kib(pid: int) -> int:
    """The highest resident memory of ``pid`` since it started or :func:`reset_peak` ran, in KiB."""
    return _status(pid, "VmHWM")


def reset_peak(pid: int) -> None:
    """Make :func:`peak_rss_kib` count from now (Linux: writing 5 to clear_refs)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def _status(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(f"no {field} in /proc/{pid}/status")


class RawEngineSocket:
    """An Engine.IO websocket opened by hand (no Socket.IO connect): nothing but the transport."""

    def __init__(self, port: int, timeout: float = 5, deflate: bool = False, source: str | None = None) -> None:
        """``source``: the loopback address to connect from (say 127.0.0.2), if not the default."""
        offer = ["Sec-WebSocket-Extensions: permessage-deflate"] if deflate else []
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0)) if source else None
        self.ws = websocket.create_connection(f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket", header=offer, timeout=timeout, socket=sock)
        #: Whether the server compresses: websocket-client reads no compressed frame, so then read raw.
        self.deflate = "permessage-deflate" in (self.ws.getheaders() or {}).get("sec-websocket-extensions", "")
        opened = self.ws.sock.recv(CHUNK) if self.deflate else self.ws.recv()
        assert self.deflate or opened.startswith("0"), f"expected the Engine.IO open packet, got {opened!r}"

    def connect(self, auth: dict[str, object]) -> RawEngineSocket:
        """Connect to Socket.IO as a page would, with ``auth``; fails unless the server accepts."""
        self.ws.send("40" + json.dumps(auth))
        answer = self.ws.recv()
        assert answer.startswith(("40", "42")), f"expected the connect (or the first event after it), got {answer!r}"
        return self

    def flood(self, frames: list[str]) -> None:
        """Send ``frames`` as text frames, until the server closes the connection."""
        try:
            for frame in frames:
                self.ws.send(frame)
        except (websocket.WebSocketException, OSError):
            pass

    def stream(self, announced: int, sent: int, fragments: bool = False) -> int:
        """Announce one ``announced``-byte message and write up to ``sent`` bytes of it.

        ``fragments`` sends it as a chain of unfinished ``CHUNK``-byte frames instead,
        none of them over the limit. Stops when the server closes the connection;
        returns the payload bytes written.
        """
        written = 0
        try:
            if not fragments:
                self.ws.sock.sendall(frame_header(announced) + b"4")
                written = 1
            while written < sent:
                if fragments:
                    self.ws.sock.sendall(frame_header(CHUNK, TEXT if not written else CONTINUATION, fin=False))
                self.ws.sock.sendall(b"x" * CHUNK)
                written += CHUNK
        except OSError:
            pass
        return written

    def send_frame(self, frame: bytes) -> int:
        """Write ``frame`` as it is (unless the server closes first); returns its size."""
        try:
            self.ws.sock.sendall(frame)
        except OSError:
            pass
        return len(frame)

    def closed(self) -> bool:
        """Whether the server has closed the connection (reads what it sent meanwhile)."""
        try:
            self.ws.sock.settimeout(0.05)
            while True:
                if not self.ws.sock.recv(CHUNK):
                    return True
        except TimeoutError:
            return False
        except OSError:
            return True

    def wait_closed(self, timeout: float) -> float:
        """Seconds until the server closed the connection; raises after ``timeout``."""
        started = time.monotonic()
        while not self.closed():
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"the server kept the connection open for {timeout}s")
        return time.monotonic() - started

