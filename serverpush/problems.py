"""Errors of the developer's code run by the push server: update functions, specs, serializers.

Each is logged with the view and the spec, counted, and kept among the latest
(:data:`recent`, for the inspector). In ``DEBUG`` the page concerned also gets it
as a ``serverpush_error`` event, so it shows in the browser's console; never
otherwise, as a summary of an exception may tell more than a visitor should see.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

from django.conf import settings

from serverpush.stats import stats

KEPT = 100  # problems kept for the inspector

# The ``code`` of each kind in the ``serverpush_error`` event.
UPDATE_FUNCTION = "update_function_error"
SPEC = "spec_error"
SERIALIZER = "serializer_error"


@dataclass
class Problem:
    code: str
    view: str
    spec: str | None
    message: str
    user: str | None = None
    at: float = field(default_factory=time.time)

    def event(self) -> dict[str, Any]:
        """The ``serverpush_error`` payload."""
        return {"code": self.code, "view": self.view, "spec": self.spec, "message": self.message}


recent: deque[Problem] = deque(maxlen=KEPT)
_lock = threading.Lock()


def summary(exc: BaseException) -> str:
    """``"KeyError: 'x'"``: the exception in one line, without the traceback."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def record(code: str, view: str, spec: str | None, message: str, user: Any = None) -> Problem:
    problem = Problem(code, view, spec, message, None if user is None else str(user))
    with _lock:
        recent.append(problem)
    stats[code.replace("_error", "_errors")] += 1
    return problem


def shown_in_browser() -> bool:
    """Whether problems go to the page's console as well as to the log (``DEBUG`` only)."""
    return bool(settings.DEBUG)


def latest() -> list[dict[str, Any]]:
    with _lock:
        return [asdict(problem) for problem in recent]
