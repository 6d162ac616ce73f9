"""The Redis log against a real redis-server: epochs, chains, trimming, outages, page cursors.

The push-server side (the tail) runs here in a thread, as under ``--async-mode threading``.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from django.core.checks import run_checks
from django.db import transaction
from django.test import override_settings

from serverpush.entries import Entry
from serverpush.log import BadCursor, Gap, get_log
from serverpush.log.redis import RedisLog
from serverpush.entries import clock_skew_ms
from serverpush.log.tail import Tail
from serverpush.stats import stats
from tests.conftest import render, wait_until
from tests.settings import MIDDLEWARE
from tests.testapp.models import Note

pytestmark = pytest.mark.django_db

TIMEOUT = 0.25
# What a request may take beyond the Redis timeout on a loaded test machine.
SLACK = 0.5


def change(pk: int, title: str = "x", op: str = "update") -> Entry:
    return Entry("testapp.note", pk, op, {"title": title, "rank": 0, "owner_id": None, "updated": None})


def records(redis_log, kind: str | None = None) -> list[tuple[str, dict]]:
    found = redis_log.client().xrange("serverpush:log")
    return [(i, f) for i, f in found if kind is None or kind in f]


class Tailing:
    """A tail following the log in a thread, collecting what it delivers and the gaps it raises."""

    def __init__(self, url: str, cap: int = 10_000) -> None:
        self.tail = Tail(url, "serverpush:log", cap)
        self.delivered: list[Entry] = []
        self.gaps: list[Gap] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        wait_until(lambda: self.tail.window is not None, 10, "the tail's first sync")

    def _run(self) -> None:
        while not self.tail._closed.is_set():
            try:
                self.tail.serve(self.delivered.extend)
            except Gap as gap:
                self.gaps.append(gap)

    def close(self) -> None:
        self.tail.close()  # the thread ends after its current XREAD


@pytest.fixture
def tailing(redis_log) -> Iterator[Tailing]:
    made = Tailing(redis_log.url)
    yield made
    made.close()


def test_the_page_cursor_is_an_epoch_and_a_stream_id(redis_log):
    log = get_log()
    assert isinstance(log, RedisLog)
    first = log.position()
    epoch, _, sid = first.partition(":")
    log.append([change(1), change(2)])
    second = log.position()
    assert second.startswith(f"{epoch}:") and second != first
    changes = records(redis_log, "e")
    assert [i for i, _ in changes][-1] == second.partition(":")[2]
    assert changes[0][1]["p"] == sid and changes[1][1]["p"] == changes[0][0]


def test_a_flushed_or_replaced_stream_opens_a_new_epoch(redis_log):
    log = get_log()
    before = log.position().partition(":")[0]
    redis_log.client().flushall()
    after = log.position().partition(":")[0]
    assert after != before
    redis_log.client().delete("serverpush:log")
    assert log.position().partition(":")[0] not in {before, after}


def test_the_stream_is_trimmed_by_length(redis_log, settings):
    settings.SERVERPUSH_REDIS_MAXLEN = 20
    redis_log.client().config_set("stream-node-max-entries", 5)  # let '~' trimming bite at this size
    log = get_log()
    for n in range(100):
        log.append([change(n)])
    assert 20 <= redis_log.client().xlen("serverpush:log") <= 30


def test_the_stream_is_trimmed_by_age(redis_log, settings):
    settings.SERVERPUSH_REDIS_MAX_AGE = 0.2
    redis_log.client().config_set("stream-node-max-entries", 2)
    log = get_log()
    for n in range(10):
        log.append([change(n)])
    old = {i for i, _ in records(redis_log)}

    def trimmed() -> bool:
        log.append([change(99)])
        return not old & {i for i, _ in records(redis_log)}

    wait_until(trimmed, 5, "entries older than SERVERPUSH_REDIS_MAX_AGE to be trimmed")


def test_the_tail_delivers_changes_with_their_positions(tailing):
    log = get_log()
    log.append([change(1, "a"), change(2, "b")])
    wait_until(lambda: len(tailing.delivered) == 2, what="two deliveries")
    assert [e.fields["title"] for e in tailing.delivered] == ["a", "b"]
    assert tailing.delivered[-1].position == tailing.tail.head()


def test_replay_reads_after_a_cursor_and_checks_its_epoch(tailing):
    log = get_log()
    log.append([change(1, "a")])
    wait_until(lambda: len(tailing.delivered) == 1, what="a delivery")
    cursor = tailing.tail.head()
    log.append([change(2, "b"), change(3, "c")])
    wait_until(lambda: len(tailing.delivered) == 3, what="three deliveries")
    assert [e.pk for e in tailing.tail.read_after(cursor)] == [2, 3]
    assert tailing.tail.read_after(tailing.tail.head()) == []
    with pytest.raises(Gap) as gap:
        tailing.tail.read_after("0badbeef:" + cursor.partition(":")[2])
    assert gap.value.code == "log_restarted"
    for bad in ("nonsense", "abc:12-x", "t12x"):
        with pytest.raises(BadCursor):
            tailing.tail.read_after(bad)


def test_a_cursor_older_than_the_tail_is_read_from_redis(redis_log):
    log = get_log()
    cursor = log.position()
    log.append([change(n) for n in range(5)])
    tailing = Tailing(redis_log.url)  # starts after those five
    try:
        before = stats["redis_range_reads"]
        assert [e.pk for e in tailing.tail.read_after(cursor)] == [0, 1, 2, 3, 4]
        assert [e.pk for e in tailing.tail.read_after(cursor)] == [0, 1, 2, 3, 4]
        assert stats["redis_range_reads"] == before + 1
    finally:
        tailing.close()


def test_a_time_cursor_replays_from_that_time_in_the_same_epoch(tailing):
    log = get_log()
    log.append([change(1)])
    wait_until(lambda: tailing.delivered, what="a delivery")
    assert [e.pk for e in tailing.tail.read_after(f"t{time.time_ns() // 1_000_000}")] == [1]  # within the clock margin
    assert tailing.tail.read_after(f"t{time.time_ns() // 1_000_000 + 2 * clock_skew_ms()}") == []
    with pytest.raises(Gap) as gap:
        tailing.tail.read_after(f"t{tailing.tail.window.created.ms - 1}")
    assert gap.value.code == "log_restarted"


def test_a_trimmed_cursor_is_a_gap_and_asks_redis_once(redis_log, settings):
    settings.SERVERPUSH_REDIS_MAXLEN = 10
    redis_log.client().config_set("stream-node-max-entries", 2)
    log = get_log()
    cursor = log.position()
    for n in range(40):
        log.append([change(n)])
    tailing = Tailing(redis_log.url, cap=10)
    try:
        before = stats["redis_range_reads"]
        for _ in range(3):
            with pytest.raises(Gap) as gap:
                tailing.tail.read_after(cursor)
            assert gap.value.code == "log_gap"
        assert stats["redis_range_reads"] == before + 1
    finally:
        tailing.close()


def test_concurrent_replays_share_one_range_read(redis_log):
    log = get_log()
    cursors = []
    for n in range(50):
        cursors.append(log.position())
        log.append([change(n)])
    tailing = Tailing(redis_log.url)
    try:
        before = stats["redis_range_reads"]
        results: dict[int, list[int]] = {}
        threads = [threading.Thread(target=lambda n=n: results.__setitem__(n, [e.pk for e in tailing.tail.read_after(cursors[n])])) for n in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert all(results[n] == list(range(n, 50)) for n in range(50))
        assert stats["redis_range_reads"] - before <= 2
    finally:
        tailing.close()


def test_a_new_epoch_under_a_live_tail_is_a_restart_gap(tailing, redis_log):
    get_log().append([change(1)])
    wait_until(lambda: tailing.delivered, what="a delivery")
    old = tailing.tail.head()
    redis_log.restart()
    get_log().append([change(2)])  # opens the new epoch (or the tail did)
    wait_until(lambda: [g for g in tailing.gaps if g.code == "log_restarted"], 15, "a log_restarted gap from the tail")
    wait_until(lambda: tailing.delivered[-1].pk == 2, 15, "the new epoch's change")
    assert tailing.tail.head().partition(":")[0] != old.partition(":")[0]
    assert stats["redis_outages"] >= 1


def test_a_lost_write_is_reported_by_a_marker_when_redis_answers_again(redis_log, tailing):
    log = get_log()
    log.append([change(1)])
    redis_log.stop(keep_data=True)
    started = time.monotonic()
    log.append([change(2)])  # fails: Redis is down
    log.append([change(3)])  # skipped: the breaker is open
    assert time.monotonic() - started < TIMEOUT + SLACK
    redis_log.start()
    wait_until(lambda: records(redis_log, "lost"), 10, "the lost marker, written by the background report")
    [(_, marker)] = records(redis_log, "lost")
    assert '"count": 2' in marker["lost"]
    assert [r[1]["e"] for r in records(redis_log, "e")][-1].count('"pk":1')  # 2 and 3 were not written late
    wait_until(lambda: [g for g in tailing.gaps if g.code == "log_gap"], 15, "the tail's log_gap for the marker")


def assert_requests_stay_fast(browser_client) -> None:
    """Render a live page and append a change, three times: each within the timeout, with a time cursor."""
    for _ in range(3):
        started = time.monotonic()
        page = render(browser_client, "/t/registered/")
        get_log().append([change(1)])
        assert time.monotonic() - started < TIMEOUT + SLACK
        assert page.cursor.startswith("t")


def test_a_dead_redis_never_slows_a_request(redis_log, browser_client):
    redis_log.kill()
    assert_requests_stay_fast(browser_client)


def test_a_hung_redis_costs_a_request_at_most_the_timeout(redis_log, browser_client):
    render(browser_client, "/t/registered/")  # a pooled connection, which the pause will hang
    redis_log.pause()
    try:
        assert_requests_stay_fast(browser_client)
    finally:
        redis_log.resume()


def test_a_live_page_costs_one_round_trip_and_a_plain_page_none(redis_log, browser_client):
    render(browser_client, "/t/registered/")  # connects (and says hello) once
    before = redis_log.commands()
    page = render(browser_client, "/t/registered/")
    after = redis_log.commands()
    called = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
    assert called.pop("eval") == 1 and set(called) <= {"hget", "hmget", "exists"}  # the script's own reads
    assert ":" in page.cursor
    render(browser_client, "/t/plain/")
    assert redis_log.commands() == after


@pytest.mark.django_db(transaction=True)
def test_a_cached_page_cursor_saves_the_round_trip_and_still_replays_what_the_page_could_miss(redis_log, browser_client, settings):
    settings.SERVERPUSH_CURSOR_MAX_AGE = 60
    first = render(browser_client, "/t/registered/")  # reads the cursor
    with transaction.atomic():  # committed after the cursor was read, right before the next page renders
        note = Note.objects.create(title="between the renders")
    evals = redis_log.commands().get("eval", 0)
    second = render(browser_client, "/t/registered/")
    assert redis_log.commands().get("eval", 0) == evals  # no round trip for the second page
    assert second.cursor == first.cursor
    tailing = Tailing(redis_log.url)
    try:
        replayed = tailing.tail.read_after(second.cursor)  # what the second page replays when it connects
    finally:
        tailing.close()
    assert [(e.model, e.pk, e.fields["title"]) for e in replayed] == [("testapp.note", note.pk, "between the renders")]


def test_without_the_middleware_the_cursor_comes_from_the_clock(redis_log, browser_client, settings):
    settings.MIDDLEWARE = [m for m in MIDDLEWARE if "serverpush" not in m]
    assert render(browser_client, "/t/registered/").cursor.startswith("t")


def test_redis_without_the_middleware_is_a_warning(redis_log):
    with override_settings(MIDDLEWARE=[m for m in MIDDLEWARE if "serverpush" not in m]):
        assert [m for m in run_checks() if m.id == "serverpush.W004"][0].hint
    assert not [m for m in run_checks() if m.id == "serverpush.W004"]
