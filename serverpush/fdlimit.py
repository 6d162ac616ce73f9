"""The open-files limit a push server needs to hold ``SERVERPUSH_MAX_CONNECTIONS``.

Every connection is a file descriptor, and Linux starts most processes with a soft
limit of 1,024 open files: past it, ``accept()`` fails and pages never go live.
"""
from __future__ import annotations

import resource

from serverpush import conf

# Descriptors a push server holds besides its connections: the listening and notifier
# sockets, the event loop, database and Redis connections, log files, imports.
HEADROOM = 256

FIX = (
    "Raise the hard limit of the user that runs the push server (LimitNOFILE= in its systemd unit, "
    "'nofile' in /etc/security/limits.conf, 'docker run --ulimit nofile=N:N', or 'ulimit -Hn N' as root "
    "in the shell that starts it), or lower SERVERPUSH_MAX_CONNECTIONS."
)


def needed() -> int:
    """Open files that ``SERVERPUSH_MAX_CONNECTIONS`` connections take, with headroom."""
    return conf.get("SERVERPUSH_MAX_CONNECTIONS") + HEADROOM


def reachable() -> int | None:
    """The most this process may raise its open-files limit to (None: no limit)."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return None if hard == resource.RLIM_INFINITY else hard


def raise_soft_limit() -> int:
    """Raise this process's soft open-files limit to what it needs, within the hard limit; return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = needed() if hard == resource.RLIM_INFINITY else min(needed(), hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft
