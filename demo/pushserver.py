"""The demo's push server process: ``rundemo`` starts it, the Outage page stops and restarts it."""
from __future__ import annotations

import subprocess
import threading

from serverpush import processes


class PushProcess:
    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.argv = argv
        self.env = env
        self.process: subprocess.Popen | None = None
        self.lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        with self.lock:
            if not self.running:
                self.process = subprocess.Popen(self.argv, env=self.env)

    def stop(self) -> None:
        with self.lock:
            if self.running:
                processes.stop(self.process)


# Set by ``rundemo``, whose process also serves the pages; None under any other server.
current: PushProcess | None = None
