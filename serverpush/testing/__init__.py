"""Tools to test a project's live pages: capture what code publishes, run a real push server.

The pytest fixtures are in :mod:`serverpush.testing.fixtures` (``pytest_plugins``).
"""
from __future__ import annotations

from serverpush.testing.cases import PushServerMixin
from serverpush.testing.client import InOrderClient
from serverpush.testing.pushes import Pushed, RecordingLog, capture_pushes
from serverpush.testing.server import LivePage, PushServer

__all__ = ["InOrderClient", "LivePage", "PushServer", "PushServerMixin", "Pushed", "RecordingLog", "capture_pushes"]
