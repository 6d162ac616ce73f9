"""Serializer workers: a slow serializer holds up its own audience, not everyone's.

Each group keeps its pending entries in log order; a bounded pool of workers
drains groups one at a time each, so a group never runs on two workers at once and
a serializer that blocks (a slow query, a slow API) ties up one worker, not the
push server. A group that is behind serializes the latest state of each object once,
not every change it missed (:mod:`serverpush.server.conflation`).
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.db import close_old_connections

from serverpush.entries import now_ms
from serverpush.problems import Problem
from serverpush.server.fanout import Group, Index, payload
from serverpush.server.health import latency
from serverpush.stats import stats

logger = logging.getLogger(__name__)


class Workers:
    def __init__(self, index: Index, emit: Callable[..., None], start: Callable[..., Any], create_queue: Callable[[], Any], size: int, report: Callable[[str, list[Problem]], None] | None = None) -> None:
        self.index = index
        self.emit = emit
        self.report = report or (lambda room, found: None)
        self.ready = create_queue()
        for _ in range(size):
            start(self._work)

    def schedule(self, group: Group) -> None:
        self.ready.put(group)

    def _work(self) -> None:
        while True:
            group = self.ready.get()
            try:
                self._drain(group)
            except Exception:
                logger.exception("serverpush: a serializer worker failed on %s", group.spec.source)
            finally:
                close_old_connections()

    def _drain(self, group: Group) -> None:
        while True:
            with self.index.lock:
                if not group.pending:
                    group.scheduled = False
                    return
                number, entry, obj = self.index.next_pending(group)
            message = None
            found: list[Problem] = []
            try:
                message = payload(group.spec, group.request, entry, obj, found=found)
            finally:
                with self.index.lock:  # members who joined after this entry already had it replayed
                    skip = [sid for sid, seen in group.fresh.items() if seen >= number]
                    group.fresh = {sid: seen for sid, seen in group.fresh.items() if seen > number}
                    self.index.emitted(entry)
                    if message is not None:
                        message["cursor"] = self.index.safe_cursor()
                        self._send(group, message, skip)
                        latency.observe((now_ms() - entry.ts) / 1000)
            if found:
                self.report(group.room, found)

    def _send(self, group: Group, message: dict[str, Any], skip: list[str]) -> None:
        try:
            self.emit(group.room, message, skip)
        except (TypeError, ValueError) as exc:
            logger.error("serverpush: payload of %s for %s %s is not JSON: %s", group.spec.source, message["model"], message["pk"], exc)
            stats["serializer_errors"] += 1
