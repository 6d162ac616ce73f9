"""Chaos: many tabs, writers and injected faults; at the end, does every tab show the database?

    .venv/bin/python bench/chaos.py --backend redis --tabs 1000 --faults 100 --seed 1
    .venv/bin/python bench/chaos.py --backend memory --tabs 1000 --faults 100 --seed 1

Starts real push servers (two nodes on one Redis log, or one with the embedded log),
writer processes that commit changes to a few dozen notes (renames, two in one
transaction, deletes, re-creations; several writers contend on the same rows), and
``--tabs`` tabs (:mod:`chaos_tabs`: real Socket.IO clients that behave like
serverpush.js, spread over processes of 250; most show notes pinned by pk, which
heal, the rest every note, which reload). Then it injects ``--faults`` faults, every kind in turn (shuffled):

- ``kill``: SIGKILL a push-server node, restart it a moment later;
- ``stop``: SIGSTOP a node for up to 3 s, then SIGCONT;
- ``drop``: a tenth of the tabs lose their connection abruptly;
- ``overflow`` (embedded log): SIGSTOP the node while a Django process overflows its
  notifier queue and loses changes, then SIGCONT; that process exits soon after, or
  (every other time) before the node runs again;
- ``redis-restart`` (Redis log): Redis restarts, losing its data or keeping it;
- ``redis-pause`` (Redis log): Redis hangs (SIGSTOP) long enough for writes to give up.

Then the writers stop (a few seconds later), and the kit waits for the tabs to settle (up to the reload
jitter plus 90 s) and compares every tab with the database. Reported:

- stale at end: tabs that show something else than the database (the promise broken),
  and of those, silent: live tabs never told to reload;
- late > 5 s: times a live tab showed a value the database had replaced more than
  5 s earlier (a lower bound: the age of the database's value);
- reloads, heals, out-of-order events (an older value after a newer one).

``--json`` prints the figures as one JSON object (tests/test_chaos.py uses it).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import harness

HERE = Path(__file__).resolve().parent
KINDS = {"memory": ["kill", "stop", "drop", "overflow"], "redis": ["kill", "stop", "drop", "redis-restart", "redis-pause"]}
# The writers go on this long after the last fault: a process that exited leaves
# its loss report to the next process that sends, which must have the time to.
COOLDOWN_SECONDS = 3.0
UNHEALABLE_EVERY = 20  # one tab in 20 shows every note (it reloads); the others show notes pinned by pk (they heal)


class TabProcess:
    """A process of tabs (``chaos_tabs.py``), asked one JSON command at a time."""

    def __init__(self, spec: dict) -> None:
        env = {**os.environ, "SERVERPUSH_LOG_LEVEL": "ERROR"}
        self.process = subprocess.Popen([sys.executable, str(HERE / "chaos_tabs.py")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        self.process.stdin.write(json.dumps(spec) + "\n")
        self.process.stdin.flush()

    def send(self, cmd: str, **args: object) -> None:
        self.process.stdin.write(json.dumps({"cmd": cmd, **args}) + "\n")
        self.process.stdin.flush()

    def answer(self) -> object:
        for line in self.process.stdout:
            if line.startswith('{"answer"'):
                return json.loads(line)["answer"]
        raise SystemExit(f"a tab process exited with {self.process.wait()}")

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.send("close")
                self.process.wait(30)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()


class Chaos:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.tmp = harness.setup(args.backend)
        self.redis = harness.start_redis(self.tmp) if args.backend == "redis" else None
        self.nodes: list = []
        self.writers: list[subprocess.Popen] = []
        self.tab_processes: list[TabProcess] = []
        self.faults: Counter[str] = Counter()
        self.overflows_dropped = 0

    def ask(self, cmd: str, **args: object) -> list:
        """Every tab process's answer to ``cmd``."""
        for worker in self.tab_processes:
            worker.send(cmd, **args)
        return [worker.answer() for worker in self.tab_processes]

    # -- setting up -----------------------------------------------------------

    def start(self) -> None:
        from tests.conftest import PushServer
        from tests.testapp.models import Note

        Note.objects.bulk_create([Note(pk=pk, title="start") for pk in range(1, self.args.notes + 1)])
        count = 1 if self.args.backend == "memory" else self.args.nodes
        for n in range(count):
            port = int(os.environ["SERVERPUSH_PORT"]) if n == 0 else None
            notifier = int(os.environ["SERVERPUSH_NOTIFIER_PORT"]) if n == 0 else None
            self.nodes.append(PushServer(self.tmp, port, notifier).start())
        for n in range(self.args.writers):
            self.writers.append(self.spawn_writer(n + 1))
        tabs = [(n, self.page_path(n)) for n in range(self.args.tabs)]
        processes = self.args.tab_processes or max(1, round(self.args.tabs / 250))
        for n in range(processes):
            spec = {"tabs": tabs[n::processes], "nodes": [node.url for node in self.nodes], "seed": self.args.seed, "late": self.args.late}
            self.tab_processes.append(TabProcess(spec))
        # The faults begin once nearly every tab is live (a loaded node may keep a few connecting).
        wait(lambda: self.progress(lambda states: states.get("live", 0) + states.get("reloading", 0) >= 0.95 * self.args.tabs), "the tabs to go live", 120 + self.args.tabs * 0.3, fail=False)

    def progress(self, done: object) -> bool:
        states: Counter[str] = Counter()
        for answer in self.ask("status"):
            states.update(answer)
        if not self.args.json and time.monotonic() - getattr(self, "_said", 0) > 10:
            self._said = time.monotonic()
            print(f"  tabs: {dict(states)}", file=sys.stderr)
        return done(states)

    def page_path(self, n: int) -> str:
        if n % UNHEALABLE_EVERY == UNHEALABLE_EVERY - 1:
            return "/t/shown-all/"
        pks = self.rng.sample(range(1, self.args.notes + 1), 3)
        return f"/t/shown/{','.join(map(str, pks))}/"

    def spawn_writer(self, number: int, *extra: str) -> subprocess.Popen:
        """A writer; a burst (``extra``) writes notes of its own, so a change it loses is never overwritten by another writer's."""
        split = self.args.notes - (max(1, self.args.notes // 10) if "overflow" in KINDS[self.args.backend] else 0)
        pks = f"{split + 1}-{self.args.notes}" if extra else f"1-{split}"
        args = [sys.executable, str(HERE / "chaos_writer.py"), "--pks", pks, "--rate", str(self.args.rate), "--id", str(number), "--seed", str(self.args.seed), *extra]
        pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "text": True} if extra else {}
        env = {**os.environ, "SERVERPUSH_LOG_LEVEL": "ERROR"}  # a burst's drops are the point, not news
        return subprocess.Popen(args, env=env, **pipes)

    # -- faults -----------------------------------------------------------------

    def inject(self) -> None:
        kinds = KINDS[self.args.backend]
        plan: list[str] = []
        while len(plan) < self.args.faults:
            self.rng.shuffle(kinds)
            plan += kinds
        for n, kind in enumerate(plan[: self.args.faults]):
            getattr(self, "fault_" + kind.replace("-", "_"))()
            self.faults[kind] += 1
            if not self.args.json:
                print(f"  fault {n + 1}/{self.args.faults}: {kind}", file=sys.stderr)
            time.sleep(self.rng.uniform(0.5, 2.0) * self.args.pace)

    def fault_kill(self) -> None:
        node = self.rng.choice(self.nodes)
        node.stop(kill=True)
        time.sleep(self.rng.uniform(0.2, 1.5) * self.args.pace)
        try:
            node.start()
        except AssertionError:  # slower than the tests' 30 s on a loaded machine: wait longer
            wait(node._ready, "a push server to restart", 300)

    def fault_stop(self) -> None:
        node = self.rng.choice(self.nodes)
        node.process.send_signal(signal.SIGSTOP)
        time.sleep(self.rng.uniform(0.5, 3.0) * self.args.pace)
        node.process.send_signal(signal.SIGCONT)

    def fault_drop(self) -> None:
        self.ask("drop", numbers=self.rng.sample(range(self.args.tabs), max(1, self.args.tabs // 10)))

    def fault_overflow(self) -> None:
        """Every other time, the process that lost changes exits before the push server runs again."""
        node = self.nodes[0]
        exits_first = self.faults["overflow"] % 2 == 0
        node.process.send_signal(signal.SIGSTOP)
        burst = self.spawn_writer(1000 + sum(self.faults.values()), "--burst", str(self.rng.randint(1, 10)), "--linger", f"{self.rng.uniform(0, 1.5) * (not exits_first):.2f}")
        try:
            self.overflows_dropped += burst.stdout.readline().strip() == "dropped"
            if exits_first:
                burst.communicate("\n", timeout=60)
        finally:
            node.process.send_signal(signal.SIGCONT)
        if not exits_first:
            burst.communicate("\n", timeout=60)

    def fault_redis_restart(self) -> None:
        if self.rng.random() < 0.5:
            self.redis.kill()  # no persistence: the stream is gone, a new epoch
            time.sleep(self.rng.uniform(0.1, 1.0) * self.args.pace)
            self.redis.start()
        else:
            self.redis.restart(keep_data=True)

    def fault_redis_pause(self) -> None:
        self.redis.pause()
        time.sleep(self.rng.uniform(0.5, 2.0) * max(self.args.pace, 0.5))  # long enough for writes to give up
        self.redis.resume()

    # -- measuring ----------------------------------------------------------------

    def settle(self) -> float:
        time.sleep(COOLDOWN_SECONDS)
        for writer in self.writers:
            writer.send_signal(signal.SIGTERM)
        for writer in self.writers:
            writer.wait(60)
        self.ask("stop_checking")
        started = time.monotonic()
        wait(lambda: not sum(self.ask("stale")), "every tab to show the database", self.args.jitter + 90, fail=False)
        return time.monotonic() - started

    def report(self, settled: float) -> dict:
        reports = self.ask("report")
        result = {"backend": self.args.backend, "tabs": self.args.tabs, "nodes": len(self.nodes), "seed": self.args.seed,
                  "faults": dict(self.faults), "overflows_that_dropped": self.overflows_dropped}
        for key in ("stale_at_end", "stale_silent", "late_over_5s", "tabs_late", "reloads", "heals", "out_of_order", "events"):
            result[key] = sum(report[key] for report in reports)
        result["settled_seconds"] = round(settled, 1)
        result["stale_examples"] = [example for report in reports for example in report["stale_examples"]][:5]
        result["node_stats"] = [self.node_stats(node) for node in self.nodes]
        return result

    def node_stats(self, node: object) -> dict:
        keys = ("notifier_losses", "notifier_dropped", "lost_markers", "log_restarts", "log_holes", "healed", "refreshes", "readback_errors", "heal_errors")
        try:
            found = node.stats()
        except OSError:
            return {}
        return {key: found[key] for key in keys if found.get(key)}

    def close(self) -> None:
        for worker in self.tab_processes:
            worker.close()
        for writer in self.writers:
            if writer.poll() is None:
                writer.kill()
        for node in self.nodes:
            if node.process and node.process.poll() is None:
                node.process.send_signal(signal.SIGCONT)
            node.stop(kill=True)
        if self.redis is not None:
            self.redis.close()


def wait(predicate: object, what: str, timeout: float, fail: bool = True) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            if fail:
                raise SystemExit(f"timed out waiting for {what}")
            return False
        time.sleep(0.5)
    return True


def print_table(result: dict) -> None:
    rows = [
        ("backend, nodes, tabs", f"{result['backend']}, {result['nodes']}, {result['tabs']}"),
        ("faults", ", ".join(f"{k} {v}" for k, v in sorted(result["faults"].items()))),
        ("stale at end (silent)", f"{result['stale_at_end']} ({result['stale_silent']})"),
        ("late > 5 s while live (tabs)", f"{result['late_over_5s']} ({result['tabs_late']})"),
        ("reloads", result["reloads"]),
        ("heals", result["heals"]),
        ("out-of-order events", f"{result['out_of_order']} of {result['events']}"),
        ("settled after writers stopped", f"{result['settled_seconds']} s"),
    ]
    for name, value in rows:
        print(f"  {name:<32} {value}")
    for example in result["stale_examples"]:
        print(f"  stale: {example}")
    for n, found in enumerate(result["node_stats"]):
        print(f"  node {n} (since its last start): {found}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=sorted(KINDS), default="redis")
    parser.add_argument("--tabs", type=int, default=1000)
    parser.add_argument("--faults", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--nodes", type=int, default=2, help="push-server nodes on the Redis log (the embedded log has one)")
    parser.add_argument("--notes", type=int, default=50)
    parser.add_argument("--writers", type=int, default=2)
    parser.add_argument("--rate", type=float, default=4.0, help="transactions per second per writer")
    parser.add_argument("--jitter", type=float, default=10.0, help="SERVERPUSH_RESYNC_JITTER of the push servers")
    parser.add_argument("--late", type=float, default=5.0, help="seconds after which a live tab's value counts as late")
    parser.add_argument("--pace", type=float, default=1.0, help="scales the pauses between faults and how long each lasts")
    parser.add_argument("--tab-processes", type=int, default=0, help="processes the tabs are spread over (default: one per 250 tabs)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    os.environ["SERVERPUSH_TEST_OVERRIDES"] = json.dumps({
        "SERVERPUSH_RESYNC_JITTER": args.jitter,
        "SERVERPUSH_MEMORY_LOG_SIZE": 3000,  # the overflow fault's messages are big
        "SERVERPUSH_NOTIFIER_QUEUE": 50,
    })
    chaos = Chaos(args)
    try:
        chaos.start()
        started = time.monotonic()
        chaos.inject()
        faults_took = time.monotonic() - started
        result = chaos.report(chaos.settle())
        result["fault_seconds"] = round(faults_took, 1)
    finally:
        chaos.close()
    if args.json:
        print(json.dumps(result))
    else:
        print(f"chaos: {args.faults} faults in {result['fault_seconds']} s, seed {args.seed}")
        print_table(result)


if __name__ == "__main__":
    main()
