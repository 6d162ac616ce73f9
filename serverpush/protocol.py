"""The wire protocol between the push server and its clients, in one place.

Every event name, payload shape and error code the push server and
``serverpush.js`` exchange is defined here, used by the Python side, and
described for other clients in ``docs/protocol.md``. ``tests/test_layout.py``
checks that the browser client's lists of codes agree with this module.
"""
from __future__ import annotations

from typing import Any, Literal, TypedDict

# Socket.IO path the push server answers on, and its handlers' namespaces.
PATH = "/socket.io/"
HANDLER_NAMESPACE_PREFIX = "/ws/"

# Server -> client, on the default namespace "/".
UPDATE = "serverpush"  # one change or direct message (Update)
READY = "serverpush_ready"  # replay is over, the connection is live (Ready)
RESYNCED = "serverpush_resynced"  # a heal is complete (Resynced)
REFRESH = "serverpush_refresh"  # the page must reload (Notice, plus jitter_ms)
ERROR = "serverpush_error"  # one client event was refused (Notice); in DEBUG, the page's code failed (Problem)
WATCH = "serverpush_watch"  # one change of a watched object (WatchEvent)

# Client -> server, on "/", acknowledged (SubscribeAck).
SUBSCRIBE = "serverpush_subscribe"
UNSUBSCRIBE = "serverpush_unsubscribe"

# Both ways on a handler namespace (/ws/<name>): the data a handler receives or sends.
HANDLER_MESSAGE = "message"

# Names a client event may not take: they would reach the server's own handlers.
RESERVED_EVENTS = frozenset({"connect", "disconnect", "connect_error", "*"})

# Every code the server sends (connect_error data, serverpush_refresh,
# serverpush_error, acknowledgements), with what it means.
CODES: dict[str, str] = {
    "bad_payload": "what the client sent is not the shape this protocol asks for",
    "token_invalid": "a page or watch token (or shown mark) does not verify",
    "token_expired": "the page or watch token is older than SERVERPUSH_TOKEN_MAX_AGE",
    "session_mismatch": "the session cookie is not the session or user the page was rendered for",
    "session_revoked": "the session ended while the page was open (logout, password change, deactivation)",
    "not_published": "a watched model's changes are not published",
    "too_many_subscriptions": "more subscriptions than SERVERPUSH_MAX_SUBSCRIPTIONS",
    "server_error": "the push server failed and logged why",
    "flood": "more client events than SERVERPUSH_CLIENT_EVENTS_PER_SECOND",
    "unknown_event": "the client sent an event the server does not have",
    "log_gap": "entries after the cursor are gone from the log",
    "log_restarted": "the cursor belongs to an earlier run of the log",
    "handler_error": "a handler raised; its namespace connection is closed",
    "overloaded": "too many messages are waiting for a handler",
    "log_mismatch": "the page was rendered by a Django process that writes to another log than this push server reads",
    # In DEBUG only, serverpush_error with the view and spec: the developer's code failed for this page.
    "update_function_error": "the page's update function raised",
    "spec_error": "one spec of the page is malformed and skipped",
    "serializer_error": "a serializer raised on a change",
}

# Codes after which only a fresh page helps: sent as serverpush_refresh, and in
# connect_error or a subscribe acknowledgement they make the client reload.
REFRESH_CODES = frozenset({"session_revoked", "log_gap", "log_restarted", "token_expired", "session_mismatch"})
# Refusals of a page's connect after which reconnecting cannot help.
FATAL_CONNECT_CODES = frozenset({"bad_payload", "token_invalid", "too_many_subscriptions", "log_mismatch"})


class Auth(TypedDict):
    """The ``auth`` payload of a connect to "/" (a handler namespace takes ``token`` only)."""

    token: str
    cursor: str | None


class Notice(TypedDict):
    """``connect_error`` data, ``serverpush_error`` and ``serverpush_refresh`` (which adds ``jitter_ms``)."""

    code: str
    message: str


class Problem(TypedDict):
    """``serverpush_error`` in DEBUG: an update function, spec or serializer failed (:mod:`serverpush.problems`)."""

    code: str
    view: str
    spec: str | None
    message: str


class Update(TypedDict, total=False):
    """``serverpush``: one change for one subscription, or a direct message (``op`` ``message``)."""

    name: str
    op: Literal["create", "update", "delete", "message"]
    model: str | None
    pk: Any
    data: Any
    id: str | None
    cursor: str | None
    replay: bool
    resync: bool  # sent by a heal
    tab: str  # the id of the tab whose request made the change


class Ready(TypedDict, total=False):
    cursor: str
    replayed: int
    healing: bool


class Resynced(TypedDict):
    code: str
    cursor: str
    healed: int


class WatchEvent(TypedDict, total=False):
    """``serverpush_watch``: a change of what a watch token names."""

    sub: str
    op: Literal["create", "update", "delete"]
    model: str
    pk: Any
    data: dict[str, Any]
    cursor: str | None
    replay: bool
    left: bool  # the object left a watched filter
    shown: str  # mark of an object a filter watch shows
    resync: bool


class SubscribeAck(TypedDict, total=False):
    """The acknowledgement of ``serverpush_subscribe``: ``ok`` with events, or a code."""

    ok: bool
    sub: str
    cursor: str
    events: list[WatchEvent]
    code: str
    message: str


def notice(code: str, message: str) -> Notice:
    """The ``{code, message}`` payload of a refusal or error; ``code`` must be one of :data:`CODES`."""
    if code not in CODES:
        raise ValueError(f"{code!r} is not a serverpush protocol code; add it to serverpush.protocol.CODES")
    return {"code": code, "message": message}
