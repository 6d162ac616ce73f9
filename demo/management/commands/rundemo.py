"""``./manage.py rundemo``: migrate, start the push server, serve the demo."""
from __future__ import annotations

import atexit
import os
import signal
import sys
from typing import Any, NoReturn

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from demo import pushserver
from demo.pushserver import PushProcess
from serverpush import reloading


class Command(BaseCommand):
    help = "Run the serverpush demo: Django on --port and the push server beside it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8000, help="port of the Django server (default 8000)")
        parser.add_argument("--noreload", action="store_false", dest="use_reloader", help="do not restart on code changes (the default under DEBUG)")

    def handle(self, *args: Any, **options: Any) -> None:
        # runserver only unwinds on Ctrl-C; without this, SIGTERM (a supervisor, a
        # test harness, `kill`) would end this process and orphan the push server.
        signal.signal(signal.SIGTERM, _exit_on_signal)
        # Under DEBUG the whole demo (Django and its push server) restarts when code changes.
        reloading.run(lambda: self.serve(options["port"]), options["use_reloader"] and settings.DEBUG)

    def serve(self, port: int) -> None:
        call_command("migrate", verbosity=0, interactive=False)
        # The Outage page stops and restarts it: this process serves the pages too.
        push = pushserver.current = PushProcess([sys.executable, os.path.abspath(sys.argv[0]), "runserverpush", "--noreload"], os.environ.copy())
        push.start()
        atexit.register(push.stop)  # the reloader ends this process from another thread
        try:
            url = f"http://localhost:{port}/"
            self.stdout.write(self.style.SUCCESS(f"serverpush demo: open {url} in two browser tabs (push server on port {settings.SERVERPUSH_PORT})"))
            self.stdout.flush()
            call_command("runserver", f"127.0.0.1:{port}", use_reloader=False)
        finally:
            push.stop()


def _exit_on_signal(signum: int, frame: Any) -> NoReturn:
    raise SystemExit(128 + signum)
