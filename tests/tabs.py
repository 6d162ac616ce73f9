"""A browser tab as serverpush.js runs it, for replay tests.

A :class:`Tab` renders a page, connects with the page's cursor, applies every
``serverpush`` event to its own copy of the page's state, and reconnects with the
cursor of the last event it applied, exactly as the browser client does.
"""
from __future__ import annotations

import threading
from typing import Any

import socketio
from django.test import Client

from serverpush.testing import InOrderClient
from tests.conftest import PushServer, render, wait_until


class Tab:
    def __init__(self, client: Client, path: str) -> None:
        self.page = render(client, path)
        self.cursor: str | None = self.page.cursor
        self.state: dict[tuple[str, Any], Any] = {}
        self.events: list[tuple[str, Any]] = []
        self.refreshes: list[dict[str, Any]] = []
        self.heals: list[dict[str, Any]] = []
        self.live = False
        self.healing = False
        self.error: Any = None
        self._sio: socketio.Client | None = None
        self._lock = threading.Lock()

    def connect(self, server: PushServer, wait: bool = True) -> Tab:
        sio = InOrderClient(reconnection=False)
        self._sio = sio
        self.live = False
        for name, apply in (("serverpush", self._apply), ("serverpush_ready", self._ready), ("serverpush_refresh", self._refresh), ("serverpush_resynced", self._resynced)):
            sio.on(name, lambda data, sio=sio, name=name, apply=apply: self._on(sio, name, data, apply))
        sio.on("connect_error", lambda data: setattr(self, "error", data))
        cookies = "; ".join(f"{k}={v}" for k, v in self.page.cookies.items())
        sio.connect(server.url, auth={"token": self.page.token, "cursor": self.cursor}, headers={"Cookie": cookies} if cookies else {}, transports=["websocket"], wait_timeout=10)
        if wait:
            self.wait(lambda: (self.live and not self.healing) or self.refreshes, "serverpush_ready")
        return self

    def _on(self, sio: socketio.Client, name: str, data: Any, apply: Any) -> None:
        with self._lock:
            if sio is self._sio:  # a closed connection's late events are not applied
                self.events.append((name, data))
                apply(data)

    def _apply(self, msg: dict[str, Any]) -> None:
        self.state[(msg["name"], msg["pk"])] = None if msg["op"] == "delete" else msg["data"]
        if not msg.get("resync"):  # a heal moves the cursor once whole, at serverpush_resynced
            self.cursor = msg["cursor"]

    def _ready(self, msg: dict[str, Any]) -> None:
        if not msg.get("healing"):
            self.cursor = msg["cursor"]
        self.live = True
        self.healing = bool(msg.get("healing"))  # the current state is on its way

    def _refresh(self, msg: dict[str, Any]) -> None:
        self.refreshes.append(msg)

    def _resynced(self, msg: dict[str, Any]) -> None:
        self.heals.append(msg)
        self.healing = False
        self.cursor = msg["cursor"]

    def disconnect(self) -> None:
        """Leave as a closing tab does: at once (the socket closes in the background)."""
        with self._lock:
            sio, self._sio = self._sio, None
            self.live = False
        if sio is not None:
            threading.Thread(target=sio.disconnect, daemon=True).start()

    def updates(self, replay: bool | None = None) -> list[dict[str, Any]]:
        return [data for name, data in self.events if name == "serverpush" and (replay is None or data["replay"] is replay)]

    def wait(self, predicate: Any, what: str = "events", timeout: float = 15.0) -> Any:
        try:
            return wait_until(predicate, timeout, what)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the tab got {self.events[-5:]!r}, error {self.error!r}") from None
