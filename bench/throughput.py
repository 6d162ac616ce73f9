"""Does serverpush deliver as fast as raw python-socketio? Ratios measured in one run.

    .venv/bin/python bench/throughput.py [--clients 50] [--changes 1000] [--async-mode eventlet[,gevent][,asgi]]
                                         [--rate CHANGES_PER_S] [--client-procs 1] [--modes raw,serverpush,serverpush-notify]
                                         [--log memory|redis] [--workers 1[,2]]

``--workers 1,2`` measures the push server as one process, then as two
(``runserverpush --workers 2``: processes sharing the port), on the Redis log
(``--log redis``, a redis-server started for the run; it is the default with
``--workers``): the ``serverpush xN`` rows, and their ratio to one worker.
``--async-mode eventlet,asgi`` measures the push server under each adapter in one
run, one after the other (python-socketio's Server under eventlet, AsyncServer under
uvicorn: ``runserverpush --async-mode asgi``), and prints them side by side.

For each mode, ``--clients`` real python-socketio clients (websocket transport, in a
separate process: bench/throughput_clients.py) connect; then this process produces
``--changes`` changes, flat out or at ``--rate``, and the time runs from the first
change to the moment every client has received every message. Each change carries
its creation time (``time.time()``) as its title, and each client records each
message's latency (receive time minus that stamp; one machine, one clock).

Modes (raw runs first, then both serverpush modes against one push server):

- ``raw``: ``bench/raw_socketio_server.py``, a bare ``socketio.Server`` in the same
  async mode (eventlet or gevent; not run for asgi). The clients join one room; this process PUSHes serverpush's notifier
  messages (one entry each, same encoding) over ZeroMQ; the server emits one event
  of serverpush's payload shape per entry to the room.
- ``serverpush``: the real push server (``manage.py runserverpush``, tests.settings,
  a throwaway SQLite file). The clients connect as the page ``/t/registered/`` (one
  field-map spec matching every ``testapp.Note``, shared by all of them); this
  process runs ``Note.objects.create`` N times (each commits, then publishes one entry).
- ``serverpush-notify``: the same push server and page, but this process publishes
  the N entries straight to the notifier (``serverpush.capture.publish``), without
  the ORM and SQLite: fed exactly as ``raw`` is, so it compares the servers alone.

Reading the table: delivered msg/s is clients x changes / elapsed. Flat out, the
changes queue up, so latency is mostly time spent waiting in that queue; use
``--rate`` below the slowest mode's throughput to compare latencies without it.
Clients, producer and server share this machine's cores: the ``cpu s`` columns
(from /proc) say who was busy, and ``bound by`` names the likely bottleneck.
The push server's ``/serverpush/stats`` must show one serialization per change
(one shared spec), however many clients.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import zmq  # noqa: E402

from tests.ports import free_port  # noqa: E402

MODES = ("raw", "serverpush", "serverpush-notify")
GAUGES = {"connections", "groups"}  # stats that are levels, not counters
PUSH_STATS = ("entries", "serializations", "connects", "serializer_errors", "connections", "groups")
Producer = Callable[[int, "float | None"], None]  # (changes, changes per second or None: flat out)


# ---- measuring -------------------------------------------------------------------

@dataclass
class Result:
    mode: str
    clients: int
    changes: int
    produce_s: float
    elapsed_s: float
    received: int
    latencies_ms: list[float]
    server_cpu_s: float
    clients_cpu_s: float
    producer_cpu_s: float
    stats: dict[str, int] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return self.received == self.clients * self.changes

    @property
    def rate(self) -> float:
        return self.received / self.elapsed_s

    def percentile(self, p: int) -> float:
        if len(self.latencies_ms) < 2:
            return float("nan")
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[p - 1]


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU time of this process (all threads) or of process ``pid`` and its running children."""
    if pid is None:
        times = os.times()
        return times.user + times.system
    after_name = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return (int(after_name[11]) + int(after_name[12])) / os.sysconf("SC_CLK_TCK") + sum(cpu_seconds(int(child)) for child in children)


class Clients:
    """``--clients`` clients over ``--client-procs`` processes of bench/throughput_clients.py."""

    def __init__(self, url: str, token: str | None, options: argparse.Namespace, log: Path, wanted: list[str] | None = None) -> None:
        """``wanted``: what the clients wait for (default: ``--expected`` every change)."""
        self.log = log
        self.procs: list[subprocess.Popen] = []
        wanted = wanted or ["--expected", str(options.changes)]
        command = [sys.executable, str(ROOT / "bench" / "throughput_clients.py"), "--url", url, *wanted,
                   "--timeout", str(options.timeout), *(["--token", token] if token else [])]
        try:
            with open(log, "ab") as err:
                first = 0
                for size in split(options.clients, options.client_procs):
                    self.procs.append(subprocess.Popen([*command, "--clients", str(size), "--first", str(first)], stdin=subprocess.PIPE,
                                                       stdout=subprocess.PIPE, stderr=err, text=True, cwd=ROOT))
                    first += size
            for proc in self.procs:
                self._read(proc)  # {"ready": true}
        except BaseException:
            self.close()
            raise

    def _read(self, proc: subprocess.Popen) -> dict[str, Any]:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"a client process exited with {proc.wait()}:\n{self.log.read_text(errors='replace')[-3000:]}")
        return json.loads(line)

    def go(self, line: str = "go") -> None:
        for proc in self.procs:
            proc.stdin.write(line + "\n")
            proc.stdin.flush()

    def results(self) -> list[dict[str, Any]]:
        return [self._read(proc) for proc in self.procs]

    def cpu_seconds(self) -> float:
        return sum(cpu_seconds(proc.pid) for proc in self.procs)

    def close(self) -> None:
        for proc in self.procs:
            try:
                proc.stdin.close()
            except OSError:
                pass
        for proc in self.procs:
            stop(proc)


def split(total: int, parts: int) -> list[int]:
    """``total`` as ``parts`` near-equal positive sizes (fewer parts if ``total`` is small)."""
    return [size for i in range(parts) if (size := total // parts + (i < total % parts))]


def measure(mode: str, clients: Clients, produce: Producer, server: Server, changes: int, rate: float | None) -> Result:
    """Produce ``changes`` changes and wait until every client has them all."""
    cpu = (server.cpu_seconds(), clients.cpu_seconds(), cpu_seconds())
    clients.go()
    start = time.time()
    produce(changes, rate)
    produced = time.time()
    results = clients.results()
    lasts = [r["last"] for r in results]
    end = max(lasts) if None not in lasts else time.time()
    return Result(mode=mode, clients=sum(len(r["counts"]) for r in results), changes=changes,
                  produce_s=produced - start, elapsed_s=end - start, received=sum(sum(r["counts"]) for r in results),
                  latencies_ms=[ms for r in results for ms in r["latencies_ms"]], server_cpu_s=server.cpu_seconds() - cpu[0],
                  clients_cpu_s=clients.cpu_seconds() - cpu[1], producer_cpu_s=cpu_seconds() - cpu[2], stats=server.stats())


def run_mode(mode: str, server: Server, token: str | None, produce: Producer, options: argparse.Namespace) -> Result:
    """Connect the clients, measure (the server's stats are read while they are connected)."""
    clients = Clients(server.url, token, options, options.tmp / f"clients-{mode}.log")
    try:
        return measure(mode, clients, produce, server, options.changes, options.rate)
    finally:
        clients.close()


def stop(proc: subprocess.Popen) -> None:
    """Terminate a child we started, and reap it (killed if it lingers)."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_until(predicate: Callable[[], Any], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


# ---- producers -------------------------------------------------------------------

def stamped_entry(pk: int) -> Any:
    """A ``testapp.Note`` creation entry whose title is its creation time."""
    from django.utils import timezone

    from serverpush.entries import Entry
    from tests.testapp.models import Note

    return Entry.of(Note(pk=pk, title=repr(time.time()), updated=timezone.now()), "create")


def ticks(n: int, rate: float | None) -> Iterator[int]:
    """0 .. n-1, as fast as the caller goes or, with ``rate``, that many per second."""
    start = time.perf_counter()
    for i in range(n):
        if rate:
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        yield i


def create_notes(n: int, rate: float | None) -> None:
    """Through the ORM: each create commits, and capture publishes one entry."""
    from tests.testapp.models import Note

    for _ in ticks(n, rate):
        Note.objects.create(title=repr(time.time()))


def publish_entries(n: int, rate: float | None) -> None:
    """Straight to serverpush's notifier, one entry per message, as capture does."""
    from serverpush.capture import publish

    for i in ticks(n, rate):
        publish([stamped_entry(1_000_000 + i)])


class ZmqProducer:
    """Feeds the raw server: the same one-entry notifier messages, over the same PUSH socket kind."""

    def __init__(self, port: int) -> None:
        self.socket = zmq.Context.instance().socket(zmq.PUSH)
        self.socket.setsockopt(zmq.SNDHWM, 10_000)
        self.socket.setsockopt(zmq.LINGER, 1000)
        self.socket.connect(f"tcp://127.0.0.1:{port}")

    def __call__(self, n: int, rate: float | None = None) -> None:
        from serverpush.entries import encode

        for i in ticks(n, rate):
            self.socket.send(encode([stamped_entry(1_000_000 + i)]), zmq.NOBLOCK)

    def close(self) -> None:
        self.socket.close()


# ---- servers ---------------------------------------------------------------------

class Server:
    """A server subprocess logging to a file, ready once ``stats_path`` answers."""

    def __init__(self, command: list[str], port: int, stats_path: str, log: Path, env: dict[str, str] | None = None) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.stats_url = self.url + stats_path
        self.log = log
        with open(log, "ab") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
        try:
            wait_until(self._ready, 30, f"{command[1]} on port {port} (log: {log})")
        except BaseException:
            self.stop()
            raise

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log.read_text(errors='replace')}")
        try:
            self.stats()
            return True
        except OSError:
            return False

    def stats(self) -> dict[str, int]:
        with urllib.request.urlopen(self.stats_url, timeout=5) as response:
            return json.load(response)

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.process.pid)

    def stop(self) -> None:
        stop(self.process)


def start_raw_server(tmp: Path, options: argparse.Namespace) -> tuple[Server, int]:
    port, zmq_port = free_port(), free_port()
    command = [sys.executable, str(ROOT / "bench" / "raw_socketio_server.py"), "--port", str(port),
               "--zmq-port", str(zmq_port), "--async-mode", options.async_mode]
    return Server(command, port, "/stats", tmp / "raw.log"), zmq_port


def start_push_server(tmp: Path, options: argparse.Namespace) -> Server:
    port = int(os.environ["SERVERPUSH_PORT"])
    workers = getattr(options, "worker_count", 1)
    command = [sys.executable, str(ROOT / "manage.py"), "runserverpush", "--port", str(port), "--async-mode", options.async_mode, "--workers", str(workers)]
    env = {k: v for k, v in os.environ.items() if k != "SERVERPUSH_PATCHED"}
    server = Server(command, port, "/serverpush/stats", tmp / "push.log", env)
    if workers > 1:
        wait_until(lambda: len(Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children").read_text().split()) == workers, 30, "the workers")
    return server


# ---- the modes -------------------------------------------------------------------

@dataclass
class Target:
    """What a mode measures: a running server, the page token to connect with (if any), a producer."""

    server: Server
    token: str | None
    produce: Producer


def start_raw(stack: ExitStack, options: argparse.Namespace) -> Target:
    server, zmq_port = start_raw_server(options.tmp, options)
    stack.callback(server.stop)
    producer = ZmqProducer(zmq_port)
    stack.callback(producer.close)
    producer(1)  # connects the PUSH socket; the room is still empty
    wait_until(lambda: server.stats().get("entries") == 1, 10, "the raw server's warm-up entry")
    return Target(server, None, producer)


def start_serverpush(stack: ExitStack, options: argparse.Namespace) -> tuple[Target, Target]:
    """One push server for both serverpush modes: (ORM saves, entries published directly)."""
    from django.test import Client

    from tests.testapp.models import Note

    server = start_push_server(options.tmp, options)
    stack.callback(server.stop)
    Note.objects.create(title="warm-up")  # connects this process's notifier socket
    wait_until(lambda: all(server.stats().get("entries") == 1 for _ in range(4 * options.worker_count)), 10, "every worker's warm-up entry")
    token = page_token(Client(HTTP_HOST="localhost"), "/t/registered/")
    return Target(server, token, create_notes), Target(server, token, publish_entries)


def start_targets(stack: ExitStack, options: argparse.Namespace, modes: list[str]) -> dict[str, Target]:
    targets = {}
    if "raw" in modes:
        targets["raw"] = start_raw(stack, options)
    if {"serverpush", "serverpush-notify"} & set(modes):
        targets["serverpush"], targets["serverpush-notify"] = start_serverpush(stack, options)
    return targets


def run_target(mode: str, target: Target, options: argparse.Namespace) -> Result:
    """Measure one mode; its ``stats`` are the server's counters for this run alone."""
    before = target.server.stats()
    result = run_mode(mode, target.server, target.token, target.produce, options)
    after = result.stats
    result.stats = {key: value if key in GAUGES else value - before.get(key, 0) for key, value in after.items()}
    return result


def page_token(client: Any, path: str) -> str:
    """The page's signed token, as tests.conftest.render reads it from the HTML."""
    response = client.get(path)
    assert response.status_code == 200, f"GET {path} answered {response.status_code}"
    return re.search(r'data-token="([^"]*)"', response.content.decode()).group(1)


def setup_django(tmp: Path, log: str = "memory", stack: ExitStack | None = None) -> None:
    os.environ.update({"DJANGO_SETTINGS_MODULE": "tests.settings", "SERVERPUSH_TEST_DB": str(tmp / "bench.sqlite3"),
                       "SERVERPUSH_PORT": str(free_port()), "SERVERPUSH_NOTIFIER_PORT": str(free_port())})
    os.environ.pop("SERVERPUSH_PATCHED", None)
    if log == "redis":  # workers share one port: pages connect by websocket only, as the clients do
        from tests.redis_fixture import RedisServer

        redis = RedisServer(tmp).start()
        stack.callback(redis.close)  # a Redis log needs the caller's stack
        os.environ.update({"SERVERPUSH_TEST_LOG": redis.url, "SERVERPUSH_TEST_OVERRIDES": json.dumps({"SERVERPUSH_TRANSPORTS": ["websocket"]})})
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


# ---- report ----------------------------------------------------------------------

METRICS = ("produce s", "elapsed s", "delivered msg/s", "p50 ms", "p95 ms", "p99 ms", "cpu s: server", "clients", "producer")
COLUMNS = ("mode", "clients", "changes", *METRICS, "bound by")


def metrics(r: Result) -> dict[str, float]:
    values = (r.produce_s, r.elapsed_s, r.rate, r.percentile(50), r.percentile(95), r.percentile(99), r.server_cpu_s, r.clients_cpu_s, r.producer_cpu_s)
    return dict(zip(METRICS, values))


def medians(results: list[Result], mode: str) -> dict[str, float]:
    runs = [metrics(r) for r in results if r.mode == mode]
    return {name: statistics.median(run[name] for run in runs) for name in METRICS}


def row(label: str, m: dict[str, float], options: argparse.Namespace) -> tuple[str, ...]:
    formats = {"delivered msg/s": "{:,.0f}", "p50 ms": "{:.1f}", "p95 ms": "{:.1f}", "p99 ms": "{:.1f}"}
    cells = [formats.get(name, "{:.2f}").format(m[name]) for name in METRICS]
    return (label, str(options.clients), str(options.changes), *cells, bound_by(m, options))


def bound_by(m: dict[str, float], options: argparse.Namespace) -> str:
    """A guess at the bottleneck: who was busy for most of the elapsed time."""
    elapsed = m["elapsed s"]
    if m["produce s"] >= 0.9 * elapsed:
        return "--rate" if options.rate else "producer"
    if m["clients"] >= 0.8 * elapsed * len(split(options.clients, options.client_procs)):
        return "clients"
    if m["cpu s: server"] >= 0.8 * elapsed:
        return "server"
    return "?"


def print_table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(cells[i]) for cells in rows) for i in range(len(rows[0]))]
    for cells in rows:
        print("  ".join(cell.ljust(width) if i == 0 else cell.rjust(width) for i, (cell, width) in enumerate(zip(cells, widths))))


def label(r: Result, round_: int) -> str:
    missing = "" if r.complete else f" INCOMPLETE {r.received}/{r.clients * r.changes}"
    return f"{r.mode} #{round_}{missing}"


def ratio(name: str, a: dict[str, float], b: dict[str, float]) -> str:
    return f"{name} x{a[name] / b[name]:.2f}" if b[name] else f"{name} n/a"


def print_ratios(results: list[Result], modes: list[str]) -> None:
    """Each serverpush mode against raw python-socketio in the same async mode, and each async mode against the first."""
    names = ("delivered msg/s", "p50 ms", "p95 ms", "p99 ms", "cpu s: server")
    for mode in modes:
        base, _, async_mode = mode.partition(" @ ")
        raw = f"raw @ {async_mode}" if async_mode else "raw"
        if base != "raw" and raw in modes:
            print(f"{mode} / {raw}: " + ", ".join(ratio(name, medians(results, mode), medians(results, raw)) for name in names))
    for mode in modes:
        base, _, rest = mode.partition(" x")
        count, _, async_mode = rest.partition(" @ ")
        one = f"{base} x1" + (f" @ {async_mode}" if async_mode else "")
        if count.isdigit() and count != "1" and one in modes:
            print(f"{mode} / {one}: " + ", ".join(ratio(name, medians(results, mode), medians(results, one)) for name in names))
    first = modes[0].partition(" @ ")[2]
    for mode in modes:
        base, _, async_mode = mode.partition(" @ ")
        if async_mode and async_mode != first and f"{base} @ {first}" in modes:
            print(f"{mode} / {base} @ {first}: " + ", ".join(ratio(name, medians(results, mode), medians(results, f"{base} @ {first}")) for name in names))


def print_checks(results: list[Result], rounds: list[int]) -> None:
    """One serialization per change for the shared spec, however many clients."""
    print("\n/serverpush/stats of each serverpush run (counters: this run only):")
    for r, n in zip(results, rounds):
        if not r.mode.startswith("raw"):
            check = "OK" if r.stats.get("serializations") == r.changes == r.stats.get("entries") else "MISMATCH"
            shown = ", ".join(f"{key} {r.stats.get(key, 0)}" for key in PUSH_STATS)
            print(f"  {label(r, n)}: {shown}; serializations == entries == changes: {check}")


def report(results: list[Result], options: argparse.Namespace) -> None:
    pace = f"{options.rate:g} changes/s" if options.rate else "flat out"
    print(f"\nasync mode {', '.join(options.async_modes)}, {options.log} log, workers {', '.join(map(str, options.workers))}, {os.cpu_count()} CPUs, {options.clients} clients in "
          f"{len(split(options.clients, options.client_procs))} process(es), producer {pace}\n")
    rounds = [len([x for x in results[: i + 1] if x.mode == r.mode]) for i, r in enumerate(results)]
    print_table([COLUMNS, *(row(label(r, n), metrics(r), options) for r, n in zip(results, rounds))])
    if options.repeat > 1:
        print(f"\nmedians over {options.repeat} rounds\n")
        print_table([COLUMNS, *(row(mode, medians(results, mode), options) for mode in options.modes)])
    print()
    print_ratios(results, options.modes)
    print_checks(results, rounds)


# ---- main ------------------------------------------------------------------------

def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50, help="Socket.IO clients (default 50)")
    parser.add_argument("--changes", type=int, default=1000, help="changes per mode (default 1000)")
    parser.add_argument("--async-mode", default="eventlet", help="comma-separated async modes of the servers, measured in turn: eventlet, gevent, asgi (default eventlet)")
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma-separated subset of {','.join(MODES)} (default all)")
    parser.add_argument("--rate", type=float, default=None, help="changes per second (default: as fast as the producer goes)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of all modes, interleaved; ratios use medians (default 3)")
    parser.add_argument("--client-procs", type=int, default=1, help="processes the clients are spread over (default 1)")
    parser.add_argument("--timeout", type=float, default=60, help="seconds to wait for delivery per mode (default 60)")
    parser.add_argument("--log", choices=("memory", "redis"), default=None, help="the push server's log (default: memory, redis with --workers)")
    parser.add_argument("--workers", default="1", help="comma-separated push-server process counts, measured in turn (runserverpush --workers; default 1)")
    options = parser.parse_args()
    options.workers = [int(w) for w in options.workers.split(",") if w.strip()]
    if any(w < 1 for w in options.workers):
        parser.error("--workers takes process counts of 1 or more")
    options.log = options.log or ("redis" if max(options.workers) > 1 else "memory")
    if options.log == "memory" and max(options.workers) > 1:
        parser.error("--workers above 1 needs --log redis: the embedded log serves one push server")
    options.modes = [m.strip() for m in options.modes.split(",") if m.strip()]
    if unknown := set(options.modes) - set(MODES):
        parser.error(f"unknown modes {sorted(unknown)}; choose from {', '.join(MODES)}")
    options.async_modes = [m.strip() for m in options.async_mode.split(",") if m.strip()]
    if unknown := set(options.async_modes) - {"eventlet", "gevent", "asgi"}:
        parser.error(f"unknown async modes {sorted(unknown)}; choose from eventlet, gevent, asgi")
    return options


def run_async_mode(async_mode: str, workers: int, options: argparse.Namespace) -> list[Result]:
    """Every round of ``options.modes`` against servers in ``async_mode`` with ``workers`` processes; labelled with those if several are run."""
    options.async_mode, options.worker_count = async_mode, workers
    modes = [m for m in options.modes if not (m == "raw" and (async_mode == "asgi" or workers != options.workers[0]))]
    with ExitStack() as stack:
        targets = start_targets(stack, options, modes)
        results = [run_target(mode, targets[mode], options) for _ in range(options.repeat) for mode in modes]
    for r in results:
        if len(options.workers) > 1 and r.mode != "raw":
            r.mode = f"{r.mode} x{workers}"
        if len(options.async_modes) > 1:
            r.mode = f"{r.mode} @ {async_mode}"
    return results


def main() -> None:
    options = parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind, so every child gets stopped
    with tempfile.TemporaryDirectory(prefix="serverpush-throughput-") as tmp, ExitStack() as stack:
        options.tmp = Path(tmp)
        setup_django(options.tmp, options.log, stack)
        results = [r for async_mode in options.async_modes for workers in options.workers for r in run_async_mode(async_mode, workers, options)]
        options.modes = list(dict.fromkeys(r.mode for r in results))
        report(results, options)


if __name__ == "__main__":
    main()
