"""``./manage.py runserverpush``: the push server."""
from __future__ import annotations

import errno
import logging
import sys
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from serverpush import conf, fdlimit, processes, reloading
from serverpush.log import get_log
from serverpush.runtime import ASYNC_MODES, ensure_patched, holder, listen, serve

NOTIFIER_FIX = (
    "Another push server on the embedded log holds it, and one embedded log serves one push server: stop that one, "
    "give this one its own SERVERPUSH_NOTIFIER_PORT (the same in the Django processes that send to it), "
    "or run several push servers on the Redis log (SERVERPUSH_LOG, see docs/redis.md)."
)
PORT_FIX = "Stop it, or give this push server another port (--port, SERVERPUSH_PORT; the pages follow SERVERPUSH_PORT or SERVERPUSH_URL)."


class Command(BaseCommand):
    help = "Run the serverpush push server (Socket.IO) that keeps pages live."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--address", default=None, help="address to bind (default: SERVERPUSH_HOST, 127.0.0.1)")
        parser.add_argument("--port", type=int, default=None, help="port to serve on (default: SERVERPUSH_PORT, 8013)")
        parser.add_argument("--async-mode", choices=ASYNC_MODES, default=None, help="concurrency library (default: SERVERPUSH_ASYNC_MODE, eventlet)")
        parser.add_argument("--noreload", action="store_false", dest="use_reloader", help="do not restart on code changes (the default under DEBUG)")
        parser.add_argument("--workers", type=int, default=1, help="processes sharing the port, one per core (Redis log and websocket transport; default 1)")

    def handle(self, *args: Any, **options: Any) -> None:
        workers = options["workers"]
        if workers < 1:
            raise CommandError(f"--workers {workers} is not a number of processes: give 1 or more.")
        if workers > 1 and processes.worker() is None:
            sys.exit(self.supervise(workers, options))
        reload = options["use_reloader"] and settings.DEBUG and workers == 1
        if reload and not reloading.is_child():
            sys.exit(reloading.supervise())  # before patching: this process only restarts the one that serves
        async_mode = options["async_mode"] or conf.get("SERVERPUSH_ASYNC_MODE")
        ensure_patched(async_mode)
        reloading.run(lambda: self.serve(async_mode, options), reload)

    def serve(self, async_mode: str, options: dict[str, Any]) -> None:
        self.check(display_num_errors=False)  # a bad SERVERPUSH_MAX_CONNECTIONS stops here, before the limit is raised for it
        fdlimit.raise_soft_limit()
        from serverpush.server.monitoring import with_monitoring  # after patching: their locks must be green
        from serverpush.server.node import PushServer

        host = options["address"] or conf.get("SERVERPUSH_HOST")
        port = options["port"] or conf.get("SERVERPUSH_PORT")
        notifier_port = conf.get("SERVERPUSH_NOTIFIER_PORT")
        _log_to_console()
        worker = processes.worker()
        sock = _bind(lambda: listen(host, port, shared=worker is not None), port, PORT_FIX)
        server = PushServer(async_mode)
        if async_mode == "asgi":
            from serverpush.server.mount import Mount

            app = Mount(None, server)  # started by uvicorn's lifespan, on its event loop
            if conf.get("SERVERPUSH_LOG") == "memory":  # its notifier binds then: see now whether it can
                _bind(lambda: listen(conf.get("SERVERPUSH_NOTIFIER_HOST"), notifier_port).close(), notifier_port, NOTIFIER_FIX, "notifier port")
        else:
            _bind(server.start, notifier_port, NOTIFIER_FIX, "notifier port")
            app = with_monitoring(server.wsgi_app(), server)
        where = f"worker {worker[0]} of {worker[1]}" if worker else f"notifier on port {notifier_port}"
        self.stdout.write(f"serverpush: push server on http://{host}:{port}/ ({async_mode}); {where}", ending="\n")
        self.stdout.flush()
        serve(app, sock, async_mode, conf.get("SERVERPUSH_MAX_CONNECTIONS"), conf.get("SERVERPUSH_MAX_MESSAGE_BYTES"))

    def supervise(self, workers: int, options: dict[str, Any]) -> int:
        """Start ``workers`` push servers on one port and keep them running (see serverpush.processes)."""
        self.check(display_num_errors=False)
        if not get_log().shared:
            raise CommandError(
                f"--workers {workers} needs a log that several push servers can tail, and the embedded log lives in one "
                "push server's memory. Set SERVERPUSH_LOG to a Redis URL (docs/redis.md), or run one worker."
            )
        if list(conf.get("SERVERPUSH_TRANSPORTS") or ()) != ["websocket"]:
            raise CommandError(
                f"--workers {workers} needs SERVERPUSH_TRANSPORTS = ['websocket'] in the settings of Django and the push server: "
                "the workers share one port, and the long-polling requests of one page would land on different workers."
            )
        host = options["address"] or conf.get("SERVERPUSH_HOST")
        port = options["port"] or conf.get("SERVERPUSH_PORT")
        _bind(lambda: listen(host, port).close(), port, PORT_FIX)  # free now: the workers may share it
        _log_to_console()
        self.stdout.write(f"serverpush: {workers} workers sharing http://{host}:{port}/", ending="\n")
        self.stdout.flush()
        return processes.supervise_workers(workers)


def _log_to_console() -> None:
    if not logging.getLogger("serverpush").handlers and not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _bind(bind: Any, port: int, fix: str, what: str = "port") -> Any:
    """Call ``bind``; a port in use stops the command with the port, what holds it and what to do."""
    try:
        return bind()
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        raise CommandError(f"serverpush: {what} {port} is already in use{holder(port)}. {fix}") from None
