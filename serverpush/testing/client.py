"""A python-socketio client that handles events in the order they arrived, as a browser does."""
from __future__ import annotations

from typing import Any

import engineio
import socketio


class _InOrderEngineIO(engineio.Client):
    """Dispatches each message in the read loop, not in a new thread per message.

    python-engineio's client hands every message to a thread of its own, so two
    events that arrive together may be handled in the other order
    (python-socketio#382): a test would then see an older value applied after a
    newer one that the server sent in the right order.
    """

    def _trigger_event(self, event: str, *args: Any, **kwargs: Any) -> Any:
        kwargs["run_async"] = False
        return super()._trigger_event(event, *args, **kwargs)


class InOrderClient(socketio.Client):
    """``socketio.Client`` whose handlers run one at a time, in arrival order; keep them short."""

    def _engineio_client_class(self) -> type[engineio.Client]:
        return _InOrderEngineIO
