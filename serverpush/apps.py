from __future__ import annotations

from django.apps import AppConfig, apps
from django.core.signals import request_started


class ServerPushConfig(AppConfig):
    name = "serverpush"
    verbose_name = "serverpush"

    def ready(self) -> None:
        from serverpush import capture, checks, deploy_checks, revocation  # noqa: F401 - checks register themselves
        from serverpush.client import mark_request_start

        capture.connect()
        if apps.is_installed("django.contrib.auth"):
            revocation.connect()
        request_started.connect(mark_request_start, dispatch_uid="serverpush.client.mark_request_start")
