"""Restart a command when its code changes, as ``runserver`` does, with Django's autoreloader.

The command runs in a child process that Django's reloader watches; the parent
only restarts it when it exits to reload (code 3), and passes SIGTERM and SIGINT on,
so a supervisor that stops the parent never leaves the child running.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from django.utils import autoreload

RELOAD_EXIT_CODE = 3  # what Django's reloader exits with when a file changed


def is_child() -> bool:
    """Whether this process is the one that serves (and is watched), not the parent that restarts it."""
    return os.environ.get(autoreload.DJANGO_AUTORELOAD_ENV) == "true"


def run(main: Callable[[], Any], enabled: bool) -> None:
    """Run ``main``; if ``enabled``, in a child process restarted whenever a Python file it imported changes."""
    if not enabled:
        main()
    elif is_child():
        autoreload.start_django(autoreload.get_reloader(), main)
    else:
        sys.exit(supervise())


def supervise() -> int:
    """Start the child again each time it exits to reload; return its last other exit code."""
    env = {**os.environ, autoreload.DJANGO_AUTORELOAD_ENV: "true"}
    env.pop("SERVERPUSH_PATCHED", None)  # the child patches itself (serverpush.runtime.ensure_patched)
    child: subprocess.Popen | None = None

    def forward(signum: int, frame: Any) -> None:
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, forward)
    while True:
        child = subprocess.Popen(autoreload.get_child_arguments(), env=env, close_fds=False)
        code = child.wait()
        if code != RELOAD_EXIT_CODE:
            return 128 - code if code < 0 else code  # killed by a signal: exit as a shell reports it
