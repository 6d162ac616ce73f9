"""Tabs for bench/chaos.py: real Socket.IO clients that behave like serverpush.js.

A :class:`Tab` renders its page with Django (the notes it shows come with the page,
as in a real page), connects with the page's cursor to a push-server node, applies
every ``serverpush`` event (a heal's included), resumes from the cursor of the last
event after a disconnect (jittered backoff, as Socket.IO's client), and on
``serverpush_refresh`` reloads after a random delay below the server's ``jitter_ms``:
a fresh render, a fresh state, a fresh cursor.
"""
from __future__ import annotations

import heapq
import json
import random
import re
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import socketio

from serverpush.testing.client import InOrderClient

RETRY_MIN, RETRY_MAX = 0.5, 10.0  # serverpush.js and Socket.IO's client: 500 ms doubling to 10 s, ±50 %


def stamp(title: str | None) -> int:
    """The write time a title carries (``<ms>:<writer>:<n>``); 0 for the initial titles."""
    head = (title or "").split(":", 1)[0]
    return int(head) if head.isdigit() else 0


class Scheduler:
    """Runs callables at given times on a pool of threads (connects block, and there are many)."""

    def __init__(self, threads: int = 16) -> None:  # more connecting at once only overflow a node's accept queue
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._cond = threading.Condition()
        self._n = 0
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="chaos-tab")
        self._stopped = False
        threading.Thread(target=self._run, name="chaos-scheduler", daemon=True).start()

    def at(self, delay: float, job: Callable[[], None]) -> None:
        with self._cond:
            self._n += 1
            heapq.heappush(self._heap, (time.monotonic() + delay, self._n, job))
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and (not self._heap or self._heap[0][0] > time.monotonic()):
                    self._cond.wait(self._heap[0][0] - time.monotonic() if self._heap else None)
                if self._stopped:
                    return
                _, _, job = heapq.heappop(self._heap)
            self._pool.submit(job)

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()
        self._pool.shutdown(wait=False, cancel_futures=True)


class Tab:
    def __init__(self, number: int, path: str, nodes: Callable[[], list[str]], scheduler: Scheduler, rng: random.Random) -> None:
        self.number = number
        self.path = path
        self.nodes = nodes
        self.scheduler = scheduler
        self.rng = rng
        self.lock = threading.Lock()
        self.sio: socketio.Client | None = None
        self.state: dict[str, str | None] = {}
        self.cursor: str | None = None
        self.token = ""
        self.live = False  # ready (or healed), connected, not told to reload
        self.refreshed = False  # told to reload; the reload is pending
        self.closed = False
        self.retries = 0
        self.reloads = self.heals = self.events = self.out_of_order = self.refused = 0
        self.codes: dict[str, int] = {}
        self.history: list[str] = []  # what happened to the connection, for the report of a stale tab

    # -- the page ---------------------------------------------------------------

    def open(self) -> None:
        """Render the page (again, on a reload) and connect."""
        from django.db import connections
        from django.test import Client

        try:
            response = Client(HTTP_HOST="localhost").get(self.path)
        finally:
            connections.close_all()
        html = response.content.decode()
        with self.lock:
            self.token = re.search(r'data-token="([^"]*)"', html).group(1)
            self.cursor = re.search(r'data-cursor="([^"]*)"', html).group(1)
            self.state = json.loads(re.search(r'<script id="shown" type="application/json">(.*?)</script>', html, re.S).group(1))
            self.refreshed = False
            self.retries = 0
        self.connect()

    def connect(self) -> None:
        with self.lock:
            if self.closed or self.refreshed:
                return
            sio = self.sio = InOrderClient(reconnection=False)  # as a browser: events in arrival order
            auth = {"token": self.token, "cursor": self.cursor}
        for name, handler in (("serverpush", self._push), ("serverpush_ready", self._ready), ("serverpush_resynced", self._resynced), ("serverpush_refresh", self._refresh)):
            sio.on(name, lambda data, sio=sio, handler=handler: self._on(sio, handler, data))
        sio.on("disconnect", lambda *args, sio=sio: self._disconnected(sio, *args))
        sio.on("connect_error", lambda data, sio=sio: self._on(sio, self._connect_error, data))
        self._note(f"connect {auth['cursor']}")
        try:
            sio.connect(self.rng.choice(self.nodes()), auth=auth, transports=["websocket"], wait_timeout=20)  # socket.io-client's own timeout
        except Exception:
            self._disconnected(sio)
            return
        if sio.eio.state != "connected":
            # python-socketio's client fires no disconnect when the transport drops between
            # the server's connect answer and connect() returning: the browser's client would.
            self._disconnected(sio, "transport error while connecting")

    def _on(self, sio: socketio.Client, handler: Callable[[Any], None], data: Any) -> None:
        with self.lock:
            if sio is self.sio:  # a closed connection's late events are not applied
                handler(data or {})

    def _note(self, what: str) -> None:
        self.history = self.history[-11:] + [f"{time.time() % 1000:.1f} {what}"]

    def _push(self, msg: dict[str, Any]) -> None:
        self.events += 1
        if msg.get("resync"):
            self._note(f"resync {msg['pk']}")
        pk = str(msg["pk"])
        if msg["op"] == "delete":
            self.state[pk] = None
        else:
            title = msg["data"]["title"]
            if stamp(title) < stamp(self.state.get(pk)):
                self.out_of_order += 1
            self.state[pk] = title
        if not msg.get("resync"):  # as serverpush.js: a heal moves the cursor only once whole
            self.cursor = msg["cursor"]

    def _ready(self, msg: dict[str, Any]) -> None:
        self._note(f"ready {msg}")
        if not msg.get("healing"):
            self.cursor = msg["cursor"]
        self.live = True
        self.retries = 0

    def _resynced(self, msg: dict[str, Any]) -> None:
        self.heals += 1
        self._note(f"resynced {msg}")
        self.cursor = msg.get("cursor", self.cursor)
        self.live = True

    def _refresh(self, msg: dict[str, Any]) -> None:
        if self.refreshed:
            return  # at most once per page load
        self.refreshed = True
        self.live = False
        self._note(f"refresh {msg.get('code')}")
        self.codes[msg.get("code", "?")] = self.codes.get(msg.get("code", "?"), 0) + 1
        self._close_socket()
        delay = self.rng.random() * msg.get("jitter_ms", 0) / 1000
        self.scheduler.at(delay, self._reload)

    def _reload(self) -> None:
        with self.lock:
            if self.closed:
                return
            self.reloads += 1
        self.open()

    def _connect_error(self, data: dict[str, Any]) -> None:
        code = data.get("code") if isinstance(data, dict) else None
        if code in ("token_expired", "session_mismatch"):
            self._refresh({"code": code})
        elif code in ("bad_payload", "token_invalid", "too_many_subscriptions"):
            self.refused += 1
            self.closed = True
        # anything else: the disconnect that follows retries

    def _disconnected(self, sio: socketio.Client, reason: Any = "connect failed") -> None:
        with self.lock:
            if sio is not self.sio or self.closed or self.refreshed:
                return
            self.live = False
            self.sio = None
            self._note(f"disconnected: {reason}")
            base = min(RETRY_MAX, RETRY_MIN * 2 ** self.retries)
            delay = min(RETRY_MAX, base * (0.5 + self.rng.random()))
            self.retries += 1
        threading.Thread(target=sio.disconnect, daemon=True).start()
        self.scheduler.at(delay, self.connect)

    def _close_socket(self) -> None:
        sio, self.sio = self.sio, None
        if sio is not None:
            threading.Thread(target=sio.disconnect, daemon=True).start()

    def drop(self) -> None:
        """The network drops this tab's connection: it resumes from its cursor."""
        with self.lock:
            sio = self.sio
        if sio is not None:
            try:
                sio.eio.ws.sock.shutdown(2)  # abrupt, as a lost network: no close frame
            except Exception:
                pass

    def close(self) -> None:
        with self.lock:
            self.closed = True
            self.live = False
            self._close_socket()

    # -- what it shows ------------------------------------------------------------

    def stale(self, db: dict[str, str]) -> list[str]:
        """The pks this tab shows otherwise than the database holds them."""
        with self.lock:
            keys = set(self.state) | (set(db) if self.path.endswith("shown-all/") else set())
            return [pk for pk in keys if self.state.get(pk) != db.get(pk)]


def database() -> dict[str, str]:
    """Every note's title, by pk, as committed now."""
    from django.db import connections

    from tests.testapp.models import Note

    try:
        return {str(pk): title for pk, title in Note.objects.values_list("pk", "title")}
    finally:
        connections.close_all()


class Worker:
    """A process of tabs driven by bench/chaos.py: one JSON command a line on stdin, one JSON answer on stdout.

    Tabs are spread over several such processes: one Python process cannot keep a
    thousand Socket.IO clients (threads) answering their pings in time.
    """

    def __init__(self, spec: dict[str, Any]) -> None:
        self.scheduler = Scheduler()
        nodes = spec["nodes"]
        self.tabs = [Tab(n, path, lambda: nodes, self.scheduler, random.Random(f"{spec['seed']}:tab:{n}")) for n, path in spec["tabs"]]
        self.late_ms = spec["late"] * 1000
        self.late: set[tuple[int, str, str]] = set()
        self.checking = threading.Event()
        for n, tab in enumerate(self.tabs):
            self.scheduler.at(n * 0.01, tab.open)
        threading.Thread(target=self.check_lateness, daemon=True).start()

    def check_lateness(self) -> None:
        """A live tab that shows a value the database replaced more than ``late`` seconds ago is late."""
        while not self.checking.wait(0.5):
            db = database()
            now = time.time() * 1000
            for tab in self.tabs:
                if tab.live:
                    self.late.update((tab.number, pk, db[pk]) for pk in tab.stale(db) if db.get(pk) is not None and now - stamp(db[pk]) > self.late_ms)

    def status(self) -> dict[str, Any]:
        states: dict[str, int] = {}
        for tab in self.tabs:
            state = "live" if tab.live else "reloading" if tab.refreshed else "connected" if tab.sio else "waiting"
            states[state] = states.get(state, 0) + 1
        return states

    def drop(self, numbers: list[int]) -> None:
        for tab in self.tabs:
            if tab.number in numbers:
                tab.drop()

    def stale(self) -> int:
        db = database()
        return sum(bool(tab.stale(db)) for tab in self.tabs)

    def report(self) -> dict[str, Any]:
        db = database()
        stale = [tab for tab in self.tabs if tab.stale(db)]
        totals = {key: sum(getattr(tab, key) for tab in self.tabs) for key in ("reloads", "heals", "out_of_order", "events")}
        examples = [{"tab": tab.number, "path": tab.path, "live": tab.live, "cursor": tab.cursor, "heals": tab.heals, "reloads": tab.reloads,
                     "wrong": {pk: [tab.state.get(pk), db.get(pk)] for pk in tab.stale(db)[:3]}, "history": tab.history} for tab in stale[:5]]
        return {**totals, "stale_at_end": len(stale), "stale_silent": sum(tab.live for tab in stale), "stale_examples": examples,
                "late_over_5s": len(self.late), "tabs_late": len({n for n, _, _ in self.late})}

    def serve(self) -> None:
        for line in sys.stdin:
            command = json.loads(line)
            name = command.pop("cmd")
            if name == "close":
                break
            if name == "stop_checking":
                self.checking.set()
            answer = getattr(self, name)(**command) if name != "stop_checking" else None
            print(json.dumps({"answer": answer}), flush=True)
        for tab in self.tabs:
            tab.close()
        self.scheduler.stop()


def main() -> None:
    """``chaos_tabs.py``: a worker process; its first line on stdin says which tabs, nodes and seed."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import django

    django.setup()
    Worker(json.loads(sys.stdin.readline())).serve()


if __name__ == "__main__":
    main()
