"""Child processes that serverpush starts: push-server workers, the push server under rundemo and in tests."""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from typing import Any

from django.utils import autoreload

logger = logging.getLogger(__name__)

WORKER_ENV = "SERVERPUSH_WORKER"  # "n/count" in a worker's environment
# A worker that exits with an error this soon after it started failed to start (its
# settings, its port): its siblings would too, so the supervisor stops them all and
# exits rather than restarting it forever. One killed by a signal is started again.
STARTUP_SECONDS = 10.0
RESTART_DELAY = 1.0


def stop(process: subprocess.Popen, timeout: float = 10) -> None:
    """Ask ``process`` to exit (SIGTERM), and kill it if it has not within ``timeout`` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def worker() -> tuple[int, int] | None:
    """``(n, count)`` in a worker started by :func:`supervise_workers`, else None."""
    value = os.environ.get(WORKER_ENV)
    if not value:
        return None
    n, _, count = value.partition("/")
    return int(n), int(count)


def supervise_workers(count: int) -> int:
    """Run ``count`` copies of this command line as workers, until SIGTERM or SIGINT.

    Each worker binds the same port with SO_REUSEPORT, so the kernel spreads new
    connections over them. A worker that dies is started again; one that fails to
    start stops them all. Returns the exit code for the supervisor.
    """
    arguments = autoreload.get_child_arguments()
    env = {key: value for key, value in os.environ.items() if key != "SERVERPUSH_PATCHED"}  # each worker patches itself
    running: dict[int, tuple[int, float]] = {}  # pid -> (worker number, when it started)
    stopping: list[int] = []

    def start(n: int) -> None:
        child = subprocess.Popen(arguments, env={**env, WORKER_ENV: f"{n}/{count}"}, close_fds=False)
        running[child.pid] = (n, time.monotonic())

    def forward(signum: int, frame: Any) -> None:
        stopping.append(signum)
        for pid in running:
            _signal(pid, signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, forward)
    for n in range(1, count + 1):
        start(n)
    code = 0
    while running:
        pid, status = os.wait()
        if pid not in running:
            continue
        n, started = running.pop(pid)
        exit_code = os.waitstatus_to_exitcode(status)
        if stopping:
            continue
        if exit_code > 0 and time.monotonic() - started < STARTUP_SECONDS:
            logger.error("serverpush: worker %d (pid %d) exited with %s as it started; stopping the other workers", n, pid, exit_code)
            code = exit_code
            forward(signal.SIGTERM, None)
            continue
        logger.warning("serverpush: worker %d (pid %d) exited with %s; starting it again", n, pid, exit_code)
        time.sleep(RESTART_DELAY)
        if not stopping:
            start(n)
    return code


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:  # exited meanwhile; os.wait reaps it
        pass
