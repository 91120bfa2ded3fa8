"""Load test of a broker replica's extender while its control loop publishes a plan every second.

The issue's last reliability test: "the extender under 2x its benchmarked request rate for a minute while plans
are published every second: no errors, no stale answers beyond one plan". Two OS processes, one core each:

- **the server**: this file run with ``--serve``, which does what ``broker serve --config`` does (the same
  ``load_service_config``, ``configure_logging``, ``build`` and ``Replica.run``) on a simulated fleet of 4,960
  nodes (the embedded scenario at ``node_scale`` 16) with ``interval_s: 1``: the real loop collects, estimates,
  plans and publishes a complete plan every second, and the extender installs each one. It also watches the
  replica's plan board and records when each version was published (wall clock), and writes the first plan's
  node names and Kubernetes (team, class) kinds, so that the load is made of real pods of the plan;
- **the load generator**: this process. Raw asyncio streams over HTTP/1.1 keep-alive connections, pre-encoded
  bodies (``nodeCacheCapable`` form: a pod and 500 candidate ``NodeNames``), each offline pod sent as a filter
  then a prioritize, as kube-scheduler does; open loop: request ``i`` is due at ``start + i / rate`` whatever
  the answers do, and its latency runs from that due time (no coordinated omission).

**Which plan an answer was computed on.** The extender's answers do not say. Each verb request is pipelined with a
``GET /extender/readyz`` on the same connection, which reports the version of the extender's installed tables;
the previous such probe on that connection (or the one made at connect time) is a lower bound of the version the
verb was answered on, the one after it an upper bound (the extender reads its tables once per request, on the
event loop, and versions only grow). An answer is **stale** when that lower bound is older than the newest
published version minus one at the time the answer arrived: a conservative count, since both the bound and the
time err towards calling an answer stale.

Run: ``python bench/service_load.py --rate 1000 --seconds 60 [--json]``; ``--find-max`` steps the rate up until
p99 reaches 50 ms or a request fails and reports the last rate that held (with ``--rate`` too, the fixed-rate run
follows on the same server). Load goes to 127.0.0.1 only. Results and the choice of rate:
``docs/benchmarks/service.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import itertools
import os
import random
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml

from broker.service.control.config import load_service_config
from broker.service.control.service import build
from broker.service.observability import configure_logging
from plugins.sim.scenario import default_scenario

DOMAIN = "broker.elastic.io"
NODE_SCALE = 16.0
"""The embedded scenario has 310 nodes: 16 times that is 4,960, the design scale of the extender benchmark."""
P99_LIMIT_MS = 50.0
"""What ``--find-max`` calls sustainable: p99 below this, and no failed request."""
_READYZ = b"GET /extender/readyz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


# --- the server process ---------------------------------------------------------------------------------------


def write_config(directory: Path, node_scale: float = NODE_SCALE, interval_s: float = 1.0) -> Path:
    """A service configuration for the load test: the embedded scenario scaled to ``node_scale``, the loop every
    ``interval_s``, the in-process store, HTTP on a free port, warnings only in the log."""
    scenario = default_scenario().model_dump(mode="json", exclude_none=True)
    scenario.update({"name": "load", "node_scale": node_scale, "days": 0.5, "warmup_days": 0.5})
    (directory / "scenario.yaml").write_text(yaml.safe_dump(scenario), encoding="utf-8")
    config = {
        "replica": "load-test",
        "interval_s": interval_s,
        "fleet": {"scenario": "scenario.yaml"},
        "http": {"host": "127.0.0.1", "port": 0},
        "log": {"level": "warning", "format": "text"},
    }
    path = directory / "service.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def serve(config_path: Path, out: Path, cpu: int | None) -> None:
    """The server process: ``broker serve --config config_path``, plus the publication log in ``out``.

    Writes ``out/ready.json`` (port) once listening, ``out/plan.json`` (node names and pod kinds) once a plan is
    published, and ``out/published.json`` ([version, wall-clock time] per publication) when SIGTERM stops it.
    """
    _pin(cpu)

    settings = load_service_config(config_path, os.environ)
    configure_logging(settings.log.level, settings.log.format)
    replica = build(settings, os.environ)
    published: list[tuple[int, float]] = []

    async def watch_board() -> None:
        # woken on the board's own event: at most one request's handling after the put
        async for _ in replica.board.plans():
            published.append((replica.board.version, time.time()))
            plan = replica.board.plan
            if len(published) == 1 and plan is not None:
                kinds = sorted({(p.team, p.demand_class, p.is_am) for n in plan.nodes for p in n.placements
                                if p.sink.value == "kubernetes"})
                summary = {"nodes": [n.node for n in plan.nodes], "kinds": kinds}
                await asyncio.to_thread(_write_atomically, out / "plan.json", orjson.dumps(summary))

    async def run() -> None:
        stop, ready = asyncio.Event(), asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        watcher = asyncio.create_task(watch_board())
        serving = asyncio.create_task(replica.run(stop, ready, own_process=True))  # as `broker serve` does
        await ready.wait()
        _write_atomically(out / "ready.json", orjson.dumps({"port": replica.http_port}))
        try:
            await serving
        finally:
            watcher.cancel()
            _write_atomically(out / "published.json", orjson.dumps(published))

    asyncio.run(run())


def _write_atomically(path: Path, data: bytes) -> None:
    partial = path.with_suffix(".partial")
    partial.write_bytes(data)
    partial.replace(path)


@dataclass
class Server:
    """The server process and what it wrote."""

    process: subprocess.Popen[bytes]
    out: Path
    port: int
    nodes: list[str]
    kinds: list[tuple[str, str, bool]]

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the server has used, from ``/proc`` (Linux)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def published(self) -> list[tuple[int, float]]:
        """The publication log (after ``stop``)."""
        return [(int(v), float(t)) for v, t in orjson.loads((self.out / "published.json").read_bytes())]

    def log(self) -> str:
        path = self.out / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def _pin(cpu: int | None) -> None:
    if cpu is not None and hasattr(os, "sched_setaffinity") and cpu < (os.cpu_count() or 1):
        os.sched_setaffinity(0, {cpu})


@contextlib.contextmanager
def running_server(directory: Path, node_scale: float = NODE_SCALE, interval_s: float = 1.0,
                   cpu: int | None = None, timeout_s: float = 60.0) -> Iterator[Server]:
    """The server process (pinned to ``cpu`` when given), once it serves a published plan; stopped on exit."""
    config = write_config(directory, node_scale, interval_s)
    with (directory / "server.log").open("ab") as log:
        command = [sys.executable, __file__, "--serve", str(config), "--out", str(directory)]
        process = subprocess.Popen(command + (["--cpu", str(cpu)] if cpu is not None else []),
                                   stdout=log, stderr=subprocess.STDOUT)
    server: Server | None = None
    try:
        deadline = time.monotonic() + timeout_s
        while not ((directory / "ready.json").exists() and (directory / "plan.json").exists()):
            if process.poll() is not None or time.monotonic() > deadline:
                text = (directory / "server.log").read_text(errors="replace")
                raise RuntimeError(f"the server did not publish a plan within {timeout_s:g} s:\n{text[-3000:]}")
            time.sleep(0.1)
        plan = orjson.loads((directory / "plan.json").read_bytes())
        server = Server(process, directory, orjson.loads((directory / "ready.json").read_bytes())["port"],
                        plan["nodes"], [(t, c, bool(am)) for t, c, am in plan["kinds"]])
        yield server
    finally:
        if server is not None:
            server.stop()
        elif process.poll() is None:
            process.kill()
            process.wait(5)


# --- requests ---------------------------------------------------------------------------------------------------


def pod_object(team: str, demand_class: str, is_am: bool, uid: str) -> dict[str, Any]:
    """An offline pod of ``team``'s ``demand_class`` as kube-scheduler sends it (managedFields and all)."""
    requests = {f"{DOMAIN}/batch-cpu": "500", f"{DOMAIN}/batch-memory": "1Gi"}
    labels = {f"{DOMAIN}/class": demand_class, "spark-role": "driver" if is_am else "executor", "app": "etl"}
    return {
        "metadata": {
            "name": f"{demand_class}-{uid}", "namespace": team, "uid": uid,
            "creationTimestamp": "2026-11-21T19:40:11Z", "resourceVersion": "1000", "labels": labels,
            "managedFields": [{"manager": "spark-operator", "operation": "Update", "apiVersion": "v1",
                               "fieldsType": "FieldsV1",
                               "fieldsV1": {"f:spec": {"f:containers": {'k:{"name":"c"}': {".": {}}}}}}],
        },
        "spec": {
            "containers": [{"name": "c", "image": "registry.invalid/spark:3.5",
                            "resources": {"requests": requests, "limits": requests}}],
            "restartPolicy": "Never", "schedulerName": "default-scheduler", "priority": 100,
        },
        "status": {"phase": "Pending", "qosClass": "Burstable"},
    }


_UID_MARK = "~" * 12
"""Where a template's pod UID goes: twelve digits of the request's serial number replace it."""


@dataclass(frozen=True)
class Template:
    """A filter or prioritize request, pre-encoded with its head, split where the pod's UID goes, so that every
    request is a new pod (the extender charges each admitted pod once per UID) at the cost of a concatenation."""

    verb: str
    parts: tuple[bytes, ...]

    def request(self, serial: int) -> bytes:
        return f"{serial:012d}".encode().join(self.parts)


def templates(nodes: list[str], kinds: list[tuple[str, str, bool]], names: int, count: int,
              seed: int = 11) -> list[tuple[Template, Template]]:
    """``count`` (filter, prioritize) pairs for pods of the plan's kinds, each with ``names`` random candidates."""
    rng = random.Random(seed)
    pairs = []
    for i in range(count):
        team, demand_class, is_am = kinds[i % len(kinds)]
        candidates = rng.sample(nodes, min(names, len(nodes)))
        body = orjson.dumps({"Pod": pod_object(team, demand_class, is_am, _UID_MARK), "Nodes": None,
                             "NodeNames": candidates})
        pair = []
        for verb in ("filter", "prioritize"):
            head = (f"POST /extender/{verb} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n").encode()
            pair.append(Template(verb, tuple((head + body).split(_UID_MARK.encode()))))
        pairs.append((pair[0], pair[1]))
    return pairs


# --- the load generator -----------------------------------------------------------------------------------------


@dataclass(slots=True)
class Sample:
    """One request: when it was due and answered (``perf_counter`` seconds), how, and on which plan."""

    verb: str
    due: float
    done: float
    status: int
    error: str | None
    version_low: int | None
    version_high: int | None
    refused_stale: bool = False


async def _response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    return status, await reader.readexactly(length)


def _version(status: int, body: bytes) -> int | None:
    """The installed plan's version from ``/extender/readyz`` (``None`` while it has none or it is stale)."""
    if status != 200:
        return None
    version = orjson.loads(body).get("plan_version")
    return version if isinstance(version, int) else None


async def _connection(port: int, queue: asyncio.Queue[tuple[int, float] | None], pairs: list[tuple[Template,
                      Template]], samples: list[Sample], serial_base: int) -> None:
    """One keep-alive connection: takes due requests off ``queue`` (FIFO among connections, so each one's last
    version probe stays recent) until it gets ``None``; reconnects after a failure."""
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    low: int | None = None
    while True:
        item = await queue.get()
        if item is None:
            break
        i, due = item
        template = pairs[(i // 2) % len(pairs)][i % 2]
        try:
            if writer is None or reader is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(_READYZ)
                low = _version(*await _response(reader))
            writer.write(template.request(serial_base + i // 2) + _READYZ)
            status, body = await _response(reader)
            done = time.perf_counter()
            high = _version(*await _response(reader))
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            samples.append(Sample(template.verb, due, time.perf_counter(), 0, f"connection: {type(exc).__name__}",
                                  None, None))
            if writer is not None:
                writer.close()
            reader = writer = None
            continue
        refused = status == 200 and template.verb == "filter" and (b"s old, limit" in body or b"no plan yet" in body)
        samples.append(Sample(template.verb, due, done, status, None if status == 200 else f"http {status}",
                              low, high, refused))
        low = high if high is not None else low
    if writer is not None:
        writer.close()


async def drive(port: int, pairs: list[tuple[Template, Template]], rate: float, seconds: float,
                connections: int, serial_base: int = 0) -> tuple[list[Sample], float]:
    """Open-loop load at ``rate`` requests/s for ``seconds``; the samples and the run's start (``perf_counter``)."""
    queue: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()
    samples: list[Sample] = []
    workers = [asyncio.create_task(_connection(port, queue, pairs, samples, serial_base))
               for _ in range(connections)]
    total = int(rate * seconds)
    start = time.perf_counter() + 0.05
    i = 0
    while i < total:
        now = time.perf_counter()
        while i < total and start + i / rate <= now:
            queue.put_nowait((i, start + i / rate))
            i += 1
        if i < total:
            await asyncio.sleep(max(start + i / rate - time.perf_counter(), 0.0))
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    return samples, start


# --- results ----------------------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


@dataclass
class Result:
    """What one run at a fixed rate measured (see ``summarize``)."""

    rate: float
    seconds: float
    requests: int
    achieved_per_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: dict[str, int]
    stale: int
    behind: dict[int, int]
    exact_versions: int
    versions_published: int
    max_publication_gap_s: float
    server_cpu_share: float
    loader_cpu_share: float

    @property
    def ok(self) -> bool:
        return not self.errors and self.stale == 0

    def sustainable(self, p99_limit_ms: float = P99_LIMIT_MS) -> bool:
        """No failed or stale answer, the rate kept up with, and p99 under ``p99_limit_ms``."""
        return self.ok and self.p99_ms < p99_limit_ms and self.achieved_per_s >= 0.95 * self.rate


def summarize(samples: list[Sample], start: float, rate: float, seconds: float,
              published: list[tuple[int, float]], wall_offset: float, server_cpu_s: float,
              loader_cpu_s: float) -> Result:
    """Latency from each request's due time; errors by kind; staleness against the publication log.

    ``wall_offset`` turns ``perf_counter`` readings into wall-clock time (the publication log's clock). An answer
    is ``behind`` by ``newest - version_low`` where ``newest`` is the last version published at or before its
    arrival; it is stale when that is more than one.
    """
    latencies = [(s.done - s.due) * 1000 for s in samples]
    errors = Counter(s.error for s in samples if s.error is not None)
    errors.update("refused: stale plan" for s in samples if s.refused_stale)
    times = [t for _, t in published]
    behind: Counter[int] = Counter()
    for s in samples:
        if s.error is not None:
            continue
        k = bisect.bisect_right(times, s.done + wall_offset)
        newest = published[k - 1][0] if k else 0
        low = s.version_low or 0
        behind[max(newest - low, 0)] += 1
    end = max((s.done for s in samples), default=start)
    window = [t for t in times if start + wall_offset <= t <= end + wall_offset]
    gaps = [b - a for a, b in itertools.pairwise(window)]
    elapsed = max(end - start, 1e-9)
    return Result(
        rate=rate, seconds=seconds, requests=len(samples), achieved_per_s=len(samples) / elapsed,
        p50_ms=percentile(latencies, 0.50), p99_ms=percentile(latencies, 0.99), max_ms=max(latencies, default=0.0),
        errors=dict(errors), stale=sum(n for k, n in behind.items() if k > 1), behind=dict(sorted(behind.items())),
        exact_versions=sum(1 for s in samples if s.version_low is not None and s.version_low == s.version_high),
        versions_published=len(window), max_publication_gap_s=max(gaps, default=0.0),
        server_cpu_share=server_cpu_s / elapsed, loader_cpu_share=loader_cpu_s / elapsed)


def _own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class LoadRun:
    """Runs of open-loop load against one server; the publication log is read when the server has stopped, so
    results are completed by ``results()`` after the server's block ends."""

    def __init__(self, server: Server, names: int = 500, connections: int = 32, bodies: int = 200) -> None:
        self.server = server
        self.connections = connections
        self.pairs = templates(server.nodes, server.kinds, names, bodies)
        self.serials = 0
        self._runs: list[tuple[list[Sample], float, float, float, float, float, float]] = []

    def run(self, rate: float, seconds: float) -> int:
        """One run at ``rate`` for ``seconds``; returns its index for ``results``."""
        cpu_server, cpu_self = self.server.cpu_seconds(), _own_cpu_seconds()
        offset = time.time() - time.perf_counter()
        samples, start = _run_loop(drive(self.server.port, self.pairs, rate, seconds, self.connections,
                                         self.serials))
        self.serials += int(rate * seconds) // 2 + 1
        self._runs.append((samples, start, rate, seconds, offset, self.server.cpu_seconds() - cpu_server,
                           _own_cpu_seconds() - cpu_self))
        return len(self._runs) - 1

    def quick(self, index: int) -> Result:
        """A run's result judged without the publication log (every answer counted current): for stepping."""
        samples, start, rate, seconds, offset, server_cpu, own_cpu = self._runs[index]
        return summarize(samples, start, rate, seconds, [], offset, server_cpu, own_cpu)

    def results(self, published: list[tuple[int, float]]) -> list[Result]:
        return [summarize(samples, start, rate, seconds, published, offset, server_cpu, own_cpu)
                for samples, start, rate, seconds, offset, server_cpu, own_cpu in self._runs]


def _run_loop(coroutine: Any) -> Any:
    try:
        import uvloop
    except ImportError:  # the plain loop measures the same, with more of the load generator's core
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def find_max(load: LoadRun, start: float, step: float, seconds: float, ceiling: float,
             p99_limit_ms: float = P99_LIMIT_MS) -> list[int]:
    """Runs at ``start``, ``start + step``, ... until one is not sustainable (or ``ceiling``); their indexes."""
    indexes = []
    rate = start
    while rate <= ceiling:
        index = load.run(rate, seconds)
        indexes.append(index)
        if not load.quick(index).sustainable(p99_limit_ms):
            break
        rate += step
    return indexes


# --- command line -----------------------------------------------------------------------------------------------


def _row(result: Result) -> str:
    errors = ", ".join(f"{k}: {v}" for k, v in result.errors.items()) or "none"
    return (f"{result.rate:>7.0f} req/s target {result.achieved_per_s:>7.0f} achieved  p50 {result.p50_ms:6.2f} ms  "
            f"p99 {result.p99_ms:7.2f} ms  max {result.max_ms:7.1f} ms  errors {errors}  stale {result.stale}  "
            f"behind {result.behind}  plans {result.versions_published}  server cpu {result.server_cpu_share:.0%}  "
            f"load cpu {result.loader_cpu_share:.0%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, help="requests/s (filters and prioritizes together)")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--find-max", action="store_true", help="step the rate up to the sustainable maximum")
    parser.add_argument("--start", type=float, default=500.0, help="--find-max: first rate")
    parser.add_argument("--step", type=float, default=250.0, help="--find-max: rate increment")
    parser.add_argument("--step-seconds", type=float, default=10.0, help="--find-max: seconds per step")
    parser.add_argument("--ceiling", type=float, default=6000.0, help="--find-max: highest rate tried")
    parser.add_argument("--p99-limit-ms", type=float, default=P99_LIMIT_MS,
                        help="--find-max: the p99 a sustainable rate stays under")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--names", type=int, default=500)
    parser.add_argument("--node-scale", type=float, default=NODE_SCALE)
    parser.add_argument("--interval-s", type=float, default=1.0, help="the control loop's interval")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the server to CPU 0 and the load to CPU 1")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--cpu", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve, args.out, args.cpu)
        return
    if args.rate is None and not args.find_max:
        parser.error("give --rate, --find-max, or both")
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as folder:
        with running_server(Path(folder), args.node_scale, args.interval_s, cpu=None if args.no_pin else 0) as server:
            _pin(None if args.no_pin else 1)
            load = LoadRun(server, args.names, args.connections)
            load.run(200, 2)  # warm-up: connections, the first plans' memo; not reported
            stepped = (find_max(load, args.start, args.step, args.step_seconds, args.ceiling, args.p99_limit_ms)
                       if args.find_max else [])
            fixed = load.run(args.rate, args.seconds) if args.rate is not None else None
        results = load.results(server.published())
    steps = [results[i] for i in stepped]
    sustainable = [r.rate for r in steps if r.sustainable(args.p99_limit_ms)]
    report: dict[str, Any] = {"nodes": len(server.nodes), "pod_kinds": len(server.kinds), "names": args.names,
                              "connections": args.connections, "load_average_before": load_before,
                              "load_average_after": os.getloadavg()}
    if steps:
        report["find_max"] = {"steps": [r.__dict__ for r in steps], "sustainable_per_s": max(sustainable, default=0)}
    if fixed is not None:
        report["run"] = results[fixed].__dict__
    if args.json:
        sys.stdout.write(orjson.dumps(report, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode() + "\n")
        return
    print(f"{report['nodes']} nodes, {report['pod_kinds']} pod kinds, {args.names} names, "
          f"{args.connections} connections; load average {load_before} -> {report['load_average_after']}")
    for r in steps:
        print("step  " + _row(r))
    if steps:
        best = report["find_max"]["sustainable_per_s"]
        print(f"sustainable (p99 < {args.p99_limit_ms:g} ms, no errors, rate kept): {best:.0f} req/s")
    if fixed is not None:
        print("run   " + _row(results[fixed]))


if __name__ == "__main__":
    main()
