"""Every connection to "/": who it is, its event budget, closing it with a code, revoking it."""
from __future__ import annotations

import logging
import time
from typing import Any

from django.http import HttpRequest

from serverpush import protocol, registry
from serverpush.entries import REVOKE, Entry
from serverpush.server.limits import Budget
from serverpush.stats import stats
from serverpush.tokens import identity

logger = logging.getLogger(__name__)


def revoked(entry: Entry, user_pk: str | None, session: str | None) -> bool:
    """Whether a connection of ``user_pk`` in ``session`` (a fingerprint) is revoked by ``entry``."""
    if entry.op != REVOKE:
        return False
    target = entry.fields.get("session")
    if target is not None:
        return target == session
    return entry.pk is not None and str(entry.pk) == user_pk


class Hub:
    def __init__(self, sio: Any) -> None:
        self.sio = sio
        self.identities: dict[str, tuple[str | None, str | None]] = {}
        self.budgets: dict[str, Budget] = {}
        self.pages: dict[str, dict[str, Any]] = {}  # what the inspector shows of each page

    def add(self, sid: str, request: HttpRequest) -> None:
        self.identities[sid] = identity(request)
        self.budgets[sid] = Budget()
        user = request.user if request.user.is_authenticated else None
        self.pages[sid] = {"path": request.path, "view": registry.view_name(request.resolver_match), "user": None if user is None else str(user), "since": time.time()}

    def remove(self, sid: str) -> None:
        self.identities.pop(sid, None)
        self.budgets.pop(sid, None)
        self.pages.pop(sid, None)

    def user_of(self, sid: str) -> str | None:
        return self.identities.get(sid, (None, None))[0]

    def allow(self, sid: str) -> bool:
        """Spend one client event of ``sid``'s budget; a flooding client is disconnected."""
        budget = self.budgets.get(sid)
        if budget is None or budget.spend():
            return budget is not None
        stats["flood"] += 1
        self.close(sid, "flood", f"more than {budget.rate:g} events per second (SERVERPUSH_CLIENT_EVENTS_PER_SECOND)")
        return False

    def close(self, sid: str, code: str, message: str) -> None:
        """Tell the client why, then drop it; it resyncs (refresh codes) or stops."""
        event = protocol.REFRESH if code in protocol.REFRESH_CODES else protocol.ERROR
        if code in protocol.REFRESH_CODES:
            stats[f"refreshes.{code}"] += 1
        self.sio.emit(event, protocol.notice(code, message), to=sid)
        self.sio.disconnect(sid)

    def revoke(self, entries: list[Entry]) -> None:
        """Close the connections of the sessions and users ``revoke`` entries end."""
        for entry in entries:
            if entry.op != REVOKE:
                continue
            for sid, (user_pk, session) in list(self.identities.items()):
                if revoked(entry, user_pk, session):
                    stats["revoked"] += 1
                    self.close(sid, "session_revoked", "this session ended (logout, password change or deactivation); reload the page")

    def on_unknown_event(self, event: str, sid: str, *args: Any) -> None:
        if self.allow(sid):
            stats["unknown_events"] += 1
            self.sio.emit(protocol.ERROR, protocol.notice("unknown_event", f"the push server has no event {event[:64]!r}"), to=sid)
