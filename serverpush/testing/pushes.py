"""``capture_pushes()``: what a block of code publishes, recorded instead of sent."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connections, models
from django.test import TestCase, override_settings

from serverpush.entries import CHANGE_OPS, MESSAGE, Entry
from serverpush.log import Log, get_log


class RecordingLog(Log):
    """A log that keeps what is appended to it and sends nothing (``SERVERPUSH_LOG = "serverpush.testing.RecordingLog"``)."""

    def __init__(self) -> None:
        self.entries: list[Entry] = []

    def append(self, entries: list[Entry]) -> None:
        self.entries.extend(entries)

    def cursor_at(self, started_ms: int) -> str:
        return f"t{started_ms}"


class Pushed:
    """What was published inside :func:`capture_pushes`, in commit order."""

    def __init__(self) -> None:
        self.entries: list[Entry] = []

    def changes(self, model: type[models.Model] | str | None = None) -> list[tuple[str, Any]]:
        """``[(op, pk), ...]`` of the model changes published, of ``model`` (a class or ``"app_label.model"``) if given."""
        label = model if isinstance(model, str) or model is None else model._meta.label_lower
        return [(e.op, e.pk) for e in self.entries if e.op in CHANGE_OPS and (label is None or e.model == label.lower())]

    def fields(self, model: type[models.Model] | str, pk: Any) -> list[dict[str, Any]]:
        """The snapshots published for one object, oldest first."""
        label = model if isinstance(model, str) else model._meta.label_lower
        return [e.fields for e in self.entries if e.op in CHANGE_OPS and e.model == label.lower() and str(e.pk) == str(pk)]

    def messages(self) -> list[tuple[str, Any]]:
        """``[(name, data), ...]`` of the direct messages sent (``serverpush.send``, ``notify_all``)."""
        return [(e.fields["name"], e.fields["data"]) for e in self.entries if e.op == MESSAGE]

    def __len__(self) -> int:
        return len(self.entries)

    def __repr__(self) -> str:
        return f"<Pushed {[(e.op, e.model, e.pk) for e in self.entries]!r}>"


@contextmanager
def capture_pushes(using: str | None = None) -> Iterator[Pushed]:
    """Record what the block publishes, as the push server would receive it; nothing is sent.

    Changes are published when their transaction commits. Inside a test that wraps
    each test in a transaction (``TestCase``, pytest-django's ``db``), the commit
    callbacks registered in the block run when it ends, as if it had committed.
    A transaction rolled back inside the block publishes nothing.
    """
    pushed = Pushed()
    aliases = [using] if using else list(connections)
    with override_settings(SERVERPUSH_LOG=f"{RecordingLog.__module__}.{RecordingLog.__qualname__}"):
        pushed.entries = get_log().entries  # filled as transactions commit
        with _committing(aliases):
            yield pushed


@contextmanager
def _committing(aliases: list[str]) -> Iterator[None]:
    if not aliases:
        yield
        return
    with TestCase.captureOnCommitCallbacks(using=aliases[0], execute=True):
        with _committing(aliases[1:]):
            yield
