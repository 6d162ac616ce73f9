"""The spool of loss reports that exited processes leave to the next one (serverpush.log.outage.Spool).

Real processes appending while this one takes; the end-to-end case (a worker that
saves while Redis is down, then exits) is in tests/test_scaleout.py.
"""
from __future__ import annotations

import logging
import subprocess
import sys

from serverpush.log.outage import Spool
from tests.conftest import ROOT

WRITER = """
import sys
from serverpush.log.outage import Spool
spool = Spool("redis://127.0.0.1:1/0|serverpush:log", sys.argv[1])
for n in range(int(sys.argv[2])):
    assert spool.put(1, int(sys.argv[3]) + n)
"""


def test_every_report_reaches_exactly_one_taker_while_writers_append(tmp_path):
    directory = tmp_path / "spool"
    spool = Spool("redis://127.0.0.1:1/0|serverpush:log", directory)
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(directory), "300", str(start)], cwd=ROOT) for start in (5000, 1000)]
    taken, first = 0, []
    while any(writer.poll() is None for writer in writers):
        count, since = spool.take()
        taken += count
        first += [since] if count else []
    assert [writer.returncode for writer in writers] == [0, 0]
    count, since = spool.take()
    taken += count
    first += [since] if count else []
    assert taken == 600  # none lost while being taken, none taken twice
    assert min(first) == 1000
    assert spool.take() == (0, 0)


def test_other_logs_have_their_own_spool(tmp_path):
    one, other = Spool("redis://a|serverpush:log", tmp_path), Spool("redis://b|serverpush:log", tmp_path)
    assert one.put(3, 1234)
    assert other.take() == (0, 0)
    assert one.take() == (3, 1234)


def test_lines_that_are_not_reports_are_skipped(tmp_path):
    spool = Spool("redis://a|serverpush:log", tmp_path)
    spool.put(2, 50)
    with open(spool.path, "a") as file:
        file.write('not json\n{"count": "x", "since": 1}\n{"other": 1}\n')
    spool.put(1, 40)
    assert spool.take() == (3, 40)


def test_a_directory_others_may_use_is_refused(tmp_path, caplog):
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    spool = Spool("redis://a|serverpush:log", shared)
    with caplog.at_level(logging.ERROR, logger="serverpush"):
        assert spool.put(1, 1) is False
    assert "must be a directory that only this user can use" in caplog.text
    assert not spool.path.exists()
