"""What making a page live costs a Django request, on the embedded and the Redis log.

    .venv/bin/python bench/page_cost.py [--log memory|redis|both] [-n 2000]

Django's test client (in process: no network, no server) GETs the same template
two ways, interleaved in rounds so drift and the machine's load hit both alike:

- ``plain``: ``/t/plain/``, a view without update functions: serverpush's
  middleware and context processor run and find nothing to do;
- ``live``: ``/t/registered/``, the same template with one spec: the middleware
  reads the page cursor, the context processor signs the page token.

Reported: the median time per request of each, and ``live - plain``, the cost of
a live page. On the Redis log the redis-server is local (started here), and the
page is measured twice: a cursor read per page (the default), and with
``SERVERPUSH_CURSOR_MAX_AGE = 1.0`` (a cursor read in the last second reused).
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402

PATHS = {"plain": "/t/plain/", "live": "/t/registered/"}


def measure(n: int, rounds: int = 10) -> dict[str, float]:
    """Median milliseconds per request for each path, over ``rounds`` interleaved rounds."""
    client = harness.browser()
    for path in PATHS.values():  # warm up: URL resolution, templates, connections
        for _ in range(50):
            assert client.get(path).status_code == 200
    per_round: dict[str, list[float]] = {name: [] for name in PATHS}
    for _ in range(rounds):
        for name, path in PATHS.items():
            start = time.perf_counter()
            for _ in range(n // rounds):
                client.get(path)
            per_round[name].append(1000 * (time.perf_counter() - start) / (n // rounds))
    return {name: statistics.median(times) for name, times in per_round.items()}


def run(log: str, n: int) -> None:
    """In a fresh interpreter per log: Django is set up once per process."""
    tmp = harness.setup(log)
    redis = harness.start_redis(tmp) if log == "redis" else None
    try:
        show(log, measure(n))
        if redis is not None:
            from django.test import override_settings

            with override_settings(SERVERPUSH_CURSOR_MAX_AGE=1.0):
                show(f"{log}, cursor reused up to 1 s", measure(n))
    finally:
        if redis is not None:
            redis.stop()


def show(label: str, ms: dict[str, float]) -> None:
    print(f"{label:7}  plain {ms['plain']:.3f} ms  live {ms['live']:.3f} ms  live - plain {ms['live'] - ms['plain']:+.3f} ms "
          f"(x{ms['live'] / ms['plain']:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log", choices=("memory", "redis", "both"), default="both")
    parser.add_argument("-n", type=int, default=2000, help="requests per path (default 2000)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child or options.log != "both":
        run(options.log, options.n)
        return
    print(f"load average {harness.os.getloadavg()[0]:.2f}")
    for log in ("memory", "redis"):
        subprocess.run([sys.executable, __file__, "--log", log, "-n", str(options.n), "--child"], check=True)


if __name__ == "__main__":
    main()
