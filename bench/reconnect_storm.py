"""A reconnect storm on the Redis log: many pages come back at once, cursors in one range.

    .venv/bin/python bench/reconnect_storm.py [--clients 300] [--missed 100]

``--clients`` pages each show one note (``/t/note/<pk>/``) and each sees its own
note change, so their cursors are spread over one range of the stream. Then the
push server is killed, ``--missed`` notes change, the push server restarts (its
memory is empty: everything the pages missed must come from Redis) and every page
reconnects at the same time, each from its own thread. Reported: the time until
every page is live with the right state, and how many range reads the push server
made in Redis (``redis_range_reads`` in ``/serverpush/stats``) — one per page
without the shared window.
"""
from __future__ import annotations

import argparse
import threading
import time

import harness


def title(tab: object, pk: int) -> str | None:
    data = tab.state.get(("note", pk))
    return data and data["title"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=300)
    parser.add_argument("--missed", type=int, default=100)
    args = parser.parse_args()
    tmp = harness.setup("redis")
    redis = harness.start_redis(tmp)
    server = harness.start_push_server(tmp)
    try:
        storm(server, args.clients, args.missed)
    finally:
        server.stop()
        redis.close()


def storm(server: object, clients: int, missed: int) -> None:
    from tests.testapp.models import Note

    notes = [Note.objects.create(title="start") for _ in range(clients)]
    tabs = pages_each_on_its_note(server, notes)
    server.stop(kill=True)
    for tab in tabs:
        tab.disconnect()
    for note in notes[:missed]:
        note.title = "missed"
        note.save()
    server.start()
    started = time.perf_counter()
    threads = [threading.Thread(target=tab.connect, args=(server,)) for tab in tabs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    expected = [(note.pk, "missed" if n < missed else "seen") for n, note in enumerate(notes)]
    wait(lambda: all(title(tab, pk) == want for tab, (pk, want) in zip(tabs, expected)), "every page's state")
    report(server, tabs, missed, time.perf_counter() - started)


def pages_each_on_its_note(server: object, notes: list) -> list:
    """Live pages, each having seen a change of its own note: cursors spread over one range."""
    from tests.tabs import Tab

    browser = harness.browser()
    tabs = [Tab(browser, f"/t/note/{note.pk}/").connect(server) for note in notes]
    for note in notes:
        note.title = "seen"
        note.save()
    wait(lambda: all(title(tab, note.pk) == "seen" for tab, note in zip(tabs, notes)), "every page's own change")
    return tabs


def report(server: object, tabs: list, missed: int, elapsed: float) -> None:
    stats = server.stats()
    print(f"{len(tabs)} pages reconnecting at once, {missed} of their notes changed while away:")
    print(f"  all live with the right state after {elapsed:.2f} s ({sum(bool(tab.refreshes) for tab in tabs)} refreshed)")
    print(f"  Redis range reads by the push server: {stats.get('redis_range_reads', 0)} (one per page without sharing: {len(tabs)})")
    print(f"  connects: {stats.get('connects', 0)}, replayed events: {stats.get('replayed', 0)}")
    for tab in tabs:
        tab.disconnect()


def wait(predicate: object, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


if __name__ == "__main__":
    main()
