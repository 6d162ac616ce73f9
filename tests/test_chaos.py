"""A short chaos run on each log: every kind of fault, and no tab ends showing anything but the database.

It runs ``bench/chaos.py`` as a user would (``--json`` for the figures): real push
servers, real Redis, writer processes, Socket.IO tabs that behave like serverpush.js.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

KINDS = {"memory": {"kill", "stop", "drop", "overflow"}, "redis": {"kill", "stop", "drop", "redis-restart", "redis-pause"}}


@pytest.mark.parametrize("backend", sorted(KINDS))
def test_a_short_chaos_run_leaves_no_tab_stale(backend):
    faults = 2 * len(KINDS[backend]) if backend == "memory" else len(KINDS[backend])  # two overflows: one exits first
    command = [sys.executable, str(ROOT / "bench" / "chaos.py"), "--backend", backend, "--tabs", "60", "--faults", str(faults), "--seed", "3", "--jitter", "2", "--pace", "0.3", "--json"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=280)
    assert done.returncode == 0, f"bench/chaos.py failed:\n{done.stderr[-3000:]}"
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(result["faults"]) == KINDS[backend] and sum(result["faults"].values()) == faults
    if backend == "memory":
        assert result["overflows_that_dropped"] == result["faults"]["overflow"], "an overflow fault lost nothing"
    assert result["stale_at_end"] == 0, f"tabs ended stale: {result['stale_examples']}"
    assert result["heals"] > 0 and result["reloads"] > 0
