"""A Django process for bench/chaos.py: it commits changes to notes until it is stopped.

    chaos_writer.py --pks 1-45 --rate 20 --id 1 --seed 1        # a writer, until SIGTERM
    chaos_writer.py --pks 46-50 --id 9 --seed 1 --burst 5       # overflow the notifier, then exit

The parent sets the environment (``DJANGO_SETTINGS_MODULE``, the database, the log,
the notifier port). Titles carry the time of the write (``<ms>:<writer>:<n>``), so
the tabs can tell an older value from a newer one.

``--burst N`` is the notifier-overflow fault of the embedded log: with the push
server stopped (SIGSTOP), it sends messages to nobody until its notifier drops
one, commits ``N`` changes (each dropped, so lost), prints
``dropped``, waits for a line on stdin (the push server runs again), lingers
``--linger`` seconds and exits: a process that lost changes and then went away.
"""
from __future__ import annotations

import argparse
import random
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BLOB = "x" * 20_000  # a message big enough to fill the kernel's buffers quickly
BURST_SECONDS = 30.0


def title(writer: int, n: int) -> str:
    return f"{time.time_ns() // 1_000_000}:{writer}:{n}"


def write_once(rng: random.Random, pks: range, writer: int, n: int) -> None:
    """One transaction: rename a note (or two), delete one, or bring a deleted one back."""
    from django.db import OperationalError, connection, transaction

    from tests.testapp.models import Note

    for attempt in range(20):
        try:
            with transaction.atomic():
                pk = rng.choice(pks)
                if rng.random() < 0.05:
                    Note.objects.filter(pk=pk).delete()
                else:
                    Note(pk=pk, title=title(writer, n)).save()  # an UPDATE, or an INSERT if it was deleted
                if rng.random() < 0.2:
                    Note(pk=rng.choice(pks), title=title(writer, n)).save()
            return
        except OperationalError:  # SQLite: another writer holds the database; try again
            connection.close()
            time.sleep(0.01 * (attempt + 1))


def write(rng: random.Random, pks: range, writer: int, rate: float) -> None:
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    n = 0
    while not stopping:
        n += 1
        write_once(rng, pks, writer, n)
        time.sleep(rng.expovariate(rate))


def burst(rng: random.Random, pks: range, writer: int, lost: int, linger: float) -> None:
    import serverpush
    from serverpush.stats import stats

    # Fill the notifier's queue and the kernel's buffers (which grow to tens of MB on
    # loopback) with blobs alone, fast; then every change committed is dropped.
    deadline = time.monotonic() + BURST_SECONDS
    while not stats["notifier_dropped"] and time.monotonic() < deadline:
        serverpush.send("chaos_blob", BLOB, users=[0])  # to a user no page belongs to
    dropped = 0
    for n in range(1, lost + 1 if stats["notifier_dropped"] else 1):
        before = stats["notifier_dropped"]
        write_once(rng, pks, writer, n)
        dropped += stats["notifier_dropped"] > before
    print("dropped" if dropped else "never dropped", flush=True)
    sys.stdin.readline()
    time.sleep(linger)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pks", required=True, help="the notes it writes, FIRST-LAST")
    parser.add_argument("--rate", type=float, default=20.0, help="transactions per second")
    parser.add_argument("--id", type=int, required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--burst", type=int, default=0, help="overflow the notifier, losing this many changes")
    parser.add_argument("--linger", type=float, default=0.0)
    args = parser.parse_args()
    import django

    django.setup()
    rng = random.Random(f"{args.seed}:{args.id}")
    first, _, last = args.pks.partition("-")
    pks = range(int(first), int(last) + 1)
    if args.burst:
        burst(rng, pks, args.id, args.burst, args.linger)
    else:
        write(rng, pks, args.id, args.rate)


if __name__ == "__main__":
    main()
