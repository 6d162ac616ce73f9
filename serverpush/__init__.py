"""serverpush: keep server-rendered Django pages live."""
from __future__ import annotations

from serverpush.capture import ping_notifier
from serverpush.messages import notify, notify_all, send
from serverpush.registry import register
from serverpush.revocation import revoke

__all__ = ["notify", "notify_all", "ping_notifier", "register", "revoke", "send"]
__version__ = "0.1.0"
