"""The embedded log's ring: positions, replay ranges, gaps."""
from __future__ import annotations

import pytest

from serverpush.entries import Entry
from serverpush.log import BadCursor, Gap
from serverpush.entries import clock_skew_ms
from serverpush.log import notifier
from serverpush.log.memory import Ring


def entries(n: int, ts: int = 0) -> list[Entry]:
    return [Entry("testapp.note", i, "update", {}, ts=ts + i) for i in range(n)]


def test_positions_increase_and_replay_starts_after_the_cursor():
    ring = Ring(10)
    ring.add(entries(5))
    assert [e.position for e in ring.entries] == [f"{ring.epoch}:{i}" for i in range(1, 6)]
    assert [e.pk for e in ring.after(f"{ring.epoch}:3")] == [3, 4]
    assert ring.after(ring.head()) == []
    assert len(ring.after(f"{ring.epoch}:0")) == 5


def test_a_cursor_the_ring_has_evicted_is_a_gap():
    ring = Ring(3)
    ring.add(entries(5))
    assert [e.pk for e in ring.after(f"{ring.epoch}:2")] == [2, 3, 4]
    with pytest.raises(Gap) as gap:
        ring.after(f"{ring.epoch}:1")
    assert gap.value.code == "log_gap"


def test_a_cursor_of_another_run_is_a_restart():
    with pytest.raises(Gap) as gap:
        Ring(3).after("deadbeef:1")
    assert gap.value.code == "log_restarted"


def test_page_cursors_replay_by_time_with_a_margin():
    ring = Ring(10)
    start = ring.started_ms + 10_000
    ring.add(entries(3, ts=start))
    assert len(ring.after(f"t{start + 1 + clock_skew_ms()}")) == 2
    assert len(ring.after(f"t{start}")) == 3


def test_a_page_rendered_before_the_server_started_must_resync():
    ring = Ring(10)
    with pytest.raises(Gap) as gap:
        ring.after(f"t{ring.started_ms - 1}")
    assert gap.value.code == "log_restarted"


def test_a_page_cursor_older_than_evicted_entries_is_a_gap():
    ring = Ring(2)
    start = ring.started_ms + 10_000
    ring.add(entries(4, ts=start))
    with pytest.raises(Gap):
        ring.after(f"t{start}")


@pytest.mark.parametrize("cursor", ["garbage", "t12x", "abc:def", "x:"])
def test_malformed_cursors(cursor):
    with pytest.raises(BadCursor):
        Ring(2).after(cursor)


def test_a_cursor_from_the_future_is_refused():
    ring = Ring(2)
    with pytest.raises(BadCursor, match="ahead of the log"):
        ring.after(f"{ring.epoch}:5")


def frame(sender, number, ts=0, ended=()):
    entries = [Entry("testapp.note", 1, "update", {}, ts=ts)] if ts else []
    return notifier.Frame(sender, number, None, entries, [notifier.Ended(*e) for e in ended])


def test_a_sender_that_ended_with_every_frame_received_lost_nothing():
    senders = notifier.Senders(started_ms=1000)
    assert senders.check(frame("a", 1, ts=2000)) is None
    assert senders.check(frame("a", 2, ts=2100)) is None
    assert senders.check(frame("b", 1, ts=2200, ended=[("a", 2, 2100, None)])) is None


def test_a_sender_that_ended_before_its_last_frames_arrived_lost_them():
    senders = notifier.Senders(started_ms=1000)
    senders.check(frame("a", 1, ts=2000))
    lost = senders.check(frame("b", 1, ts=2200, ended=[("a", 3, 2100, None)]))
    assert (lost.count, lost.since, lost.until) == (2, 2000, 2100)


def test_a_sender_that_ended_with_a_report_pending_passes_it_on():
    senders = notifier.Senders(started_ms=1000)
    lost = senders.check(frame("b", 1, ts=2200, ended=[("a", 3, 2100, notifier.Lost(5, 1500, 2100))]))
    assert lost is not None and lost.count >= 5 and lost.until == 2100


def test_a_sender_that_ended_before_this_server_started_is_the_new_epoch_s_business():
    senders = notifier.Senders(started_ms=100_000)
    assert senders.check(frame("b", 1, ts=100_200, ended=[("a", 3, 2100, notifier.Lost(5, 1500, 2100))])) is None


def test_ended_records_travel_in_the_frame_header():
    payload = b'{"s": "b", "n": 1, "ended": [["a", 3, 2100, null]]}\n[]'
    assert notifier.parse(payload).ended == [notifier.Ended("a", 3, 2100, None)]
    with pytest.raises(ValueError):
        notifier.parse(b'{"s": "b", "n": 1, "ended": [["a", "3"]]}\n[]')
