"""Benchmark of the kube-scheduler extender at the design scale: 5,000 nodes, a plan for 50 teams.

Measures, and checks against the targets:

1. server time of ``filter`` and ``prioritize`` with 500 ``NodeNames`` (what the scheduler sends at 5,000
   nodes) and with all 5,000, in process: the same ``Extender.handle`` the HTTP endpoint calls (read, decide,
   encode, metrics); targets p99 <= 2 ms (500 names) and <= 10 ms (5,000 names);
2. end-to-end throughput over HTTP against ``broker serve extender`` in its own process (one event loop, so
   one core), driven by keep-alive connections from this process after one warm-up pass over the bodies;
   target >= 1,000 requests/s for each verb; the server's CPU time per request is reported too, since on a
   shared machine the requests/s depend on what else runs;
3. the plan load: decoding the 4 MB plan and building the tables from the document, against validating a
   ``Plan`` first; and how long a newly written plan file takes to be answered from (``/readyz`` reports its
   version), from the moment the write starts; target <= 1 s.

Run: ``python bench/extender_bench.py [--parts server,http,plan]`` (about a minute). Load goes to 127.0.0.1
only, bounded by a request count and a time limit. The load average before and after is reported.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson

from broker.model import NodePlan, Placement, Plan, Resources, Sink, TeamBinding, TeamPlan
from broker.service.extender import (
    Extender,
    ExtenderConfig,
    PlanDocument,
    Verb,
    build_tables,
    tables_from_document,
)

DOMAIN = "broker.elastic.io"


def make_plan(nodes: int, teams: int, version: int, created_at_s: float) -> Plan:
    """A plan where each node hosts placements of 4 teams (one AM class on stable nodes)."""
    rng = random.Random(7)
    node_plans = []
    for i in range(nodes):
        stable, disk = i % 4 == 0, i % 3 != 0
        placements = []
        for t in rng.sample(range(teams), 4):
            placements.append(Placement(demand_class=f"team-{t}-exec", team=f"team-{t}", sink=Sink.KUBERNETES,
                                        count=rng.randint(1, 8)))
            if stable:
                placements.append(Placement(demand_class=f"team-{t}-am", team=f"team-{t}",
                                            sink=Sink.KUBERNETES, is_am=True, count=1))
        node_plans.append(NodePlan(
            node=f"node-{i:05d}", site=f"idc-{i % 3}", cluster="k8s-a",
            labels=("disk" if disk else "diskless", "stable" if stable else "elastic"),
            kubernetes=Resources.of(cpu=str(rng.randint(4, 48)), memory=f"{rng.randint(16, 192)}Gi"),
            placements=tuple(placements)))
    team_plans = [TeamPlan(team=f"team-{t}", runtime_quota=Resources.of(cpu="100000", memory="400000Gi"),
                           placed=Resources.of(cpu="100", memory="400Gi"),
                           binding=TeamBinding(namespaces={"k8s-a": (f"team-{t}",)})) for t in range(teams)]
    return Plan(version=version, created_at_s=created_at_s, nodes=tuple(node_plans), teams=tuple(team_plans))


def pod_object(i: int, teams: int) -> dict[str, object]:
    """A Spark executor pod as the scheduler sends it (managedFields and all, about 3 KB)."""
    t = i % teams
    requests = {f"{DOMAIN}/batch-cpu": "2000", f"{DOMAIN}/batch-memory": "4Gi"}
    return {
        "metadata": {
            "name": f"exec-{i}", "namespace": f"team-{t}", "uid": f"00000000-0000-0000-0000-{i:012d}",
            "creationTimestamp": "2026-11-21T19:40:11Z", "resourceVersion": str(1000 + i),
            "labels": {"spark-role": "executor", f"{DOMAIN}/class": f"team-{t}-exec", "app": "etl"},
            "managedFields": [{"manager": "spark-operator", "operation": "Update", "apiVersion": "v1",
                               "fieldsType": "FieldsV1",
                               "fieldsV1": {"f:spec": {"f:containers": {'k:{"name":"exec"}': {".": {}}}}}}],
        },
        "spec": {
            "containers": [{"name": "exec", "image": "registry.invalid/spark:3.5",
                            "resources": {"requests": requests, "limits": requests},
                            "volumeMounts": [{"name": "kube-api-access", "readOnly": True,
                                              "mountPath": "/var/run/secrets/kubernetes.io"}]}],
            "restartPolicy": "Never", "schedulerName": "default-scheduler", "priority": 100,
            "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                             "effect": "NoExecute", "tolerationSeconds": 300}],
        },
        "status": {"phase": "Pending", "qosClass": "Burstable"},
    }


def bodies(count: int, names: int, nodes: int, teams: int) -> list[bytes]:
    """``count`` filter/prioritize bodies with ``names`` random candidate names each."""
    rng = random.Random(11)
    all_names = [f"node-{i:05d}" for i in range(nodes)]
    return [orjson.dumps({"Pod": pod_object(i, teams), "Nodes": None,
                          "NodeNames": rng.sample(all_names, names) if names < nodes else all_names})
            for i in range(count)]


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def server_time(extender: Extender, verb: Verb, requests: list[bytes], rounds: int) -> dict[str, float]:
    """Per-request server time (ms) of ``extender.handle`` over ``rounds`` passes of ``requests``."""
    for body in requests:  # steady state: the per-kind memo is filled once per plan
        extender.handle(verb, body)
    times = []
    for _ in range(rounds):
        for body in requests:
            started = time.perf_counter()
            reply = extender.handle(verb, body)
            times.append((time.perf_counter() - started) * 1000)
            if reply.status != 200:
                raise SystemExit(f"{verb.value} answered {reply.status}: {reply.body[:200]!r}")
    return {"p50_ms": statistics.median(times), "p99_ms": percentile(times, 0.99), "max_ms": max(times),
            "requests": len(times)}


def cold_time(extender: Extender, verb: Verb, requests: list[bytes]) -> dict[str, float]:
    """Server time (ms) of requests that each find the per-kind memo empty, as the first request of a pod kind
    after a new plan does (the tables are installed again before each one, which empties the memo)."""
    tables = extender.tables
    if tables is None:
        raise SystemExit("no plan installed")
    times = []
    for body in requests:
        extender.install_tables(tables)
        started = time.perf_counter()
        extender.handle(verb, body)
        times.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": statistics.median(times), "max_ms": max(times), "requests": len(times)}


async def _connection(port: int, path: str, requests: list[bytes], stop: Callable[[], bool],
                      done: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    heads = [f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
             f"Content-Length: {len(body)}\r\n\r\n".encode() + body for body in requests]
    i = 0
    while not stop():
        writer.write(heads[i % len(heads)])
        i += 1
        header = await reader.readuntil(b"\r\n\r\n")
        if not header.startswith(b"HTTP/1.1 200"):
            raise SystemExit(f"{path} answered {header.splitlines()[0]!r}")
        length = next(int(line.split(b":")[1]) for line in header.split(b"\r\n")
                      if line.lower().startswith(b"content-length"))
        await reader.readexactly(length)
        done[0] += 1
    writer.close()


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) process ``pid`` has used, from ``/proc`` (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def throughput(port: int, path: str, requests: list[bytes], max_requests: int, max_s: float,
               connections: int, server_pid: int | None = None) -> dict[str, float]:
    """Requests/s over ``connections`` keep-alive connections, stopping at ``max_requests`` or ``max_s``; with
    ``server_pid``, also the server's CPU milliseconds per request."""
    done = [0]
    cpu_before = cpu_seconds(server_pid) if server_pid is not None else 0.0
    started = time.perf_counter()

    def stop() -> bool:
        return done[0] >= max_requests or time.perf_counter() - started > max_s

    async def run() -> None:
        await asyncio.gather(*(_connection(port, path, requests, stop, done) for _ in range(connections)))

    asyncio.run(run())
    elapsed = time.perf_counter() - started
    out = {"requests": done[0], "seconds": elapsed, "per_s": done[0] / elapsed}
    if server_pid is not None:
        out["server_cpu_ms_per_request"] = (cpu_seconds(server_pid) - cpu_before) * 1000 / done[0]
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def write_atomically(path: Path, text: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(text)
    os.replace(tmp, path)


def plan_visibility(port: int, path: Path, plan: Plan, repeats: int) -> list[float]:
    """Seconds from writing a new plan version to ``/readyz`` reporting it, ``repeats`` times."""
    out = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
        for k in range(repeats):
            version = plan.version + 1 + k
            text = plan.model_copy(update={"version": version, "created_at_s": time.time()}).model_dump_json()
            written = time.perf_counter()
            write_atomically(path, text.encode())
            while client.get("/readyz").json().get("plan_version") != version:
                if time.perf_counter() - written > 10:
                    raise SystemExit("plan not visible within 10 s")
                time.sleep(0.005)
            out.append(time.perf_counter() - written)
    return out


def serve(path: Path, port: int) -> subprocess.Popen[bytes]:
    """``broker serve extender`` on ``port`` following ``path``, once it is ready."""
    server = subprocess.Popen([sys.executable, "-c", "from broker.cli.main import main; main()",
                               "serve", "extender", "--plan", str(path), "--port", str(port),
                               "--max-plan-age-s", "3600", "--log-level", "warning"])
    deadline = time.perf_counter() + 30
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                return server
        except httpx.TransportError:
            pass
        if time.perf_counter() > deadline or server.poll() is not None:
            server.terminate()
            raise SystemExit("server did not become ready")
        time.sleep(0.1)


def plan_load(plan: Plan) -> dict[str, float]:
    """Seconds to decode the plan's JSON and build the tables from it, against validating a ``Plan`` first."""
    text = plan.model_dump_json().encode()
    fast, model = [], []
    for _ in range(3):
        started = time.perf_counter()
        tables_from_document(PlanDocument(orjson.loads(text)))
        fast.append(time.perf_counter() - started)
        started = time.perf_counter()
        build_tables(Plan.model_validate_json(text))
        model.append(time.perf_counter() - started)
    return {"document_median_s": statistics.median(fast), "model_median_s": statistics.median(model),
            "bytes": len(text)}


PARTS = ("server", "http", "plan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--teams", type=int, default=50)
    parser.add_argument("--names", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=4, help="passes over 500 bodies for server time")
    parser.add_argument("--http-requests", type=int, default=20_000)
    parser.add_argument("--http-seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {PARTS}")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    if not parts <= set(PARTS):
        parser.error(f"--parts: choose among {', '.join(PARTS)}")

    results: dict[str, object] = {"load_average_start": os.getloadavg()}
    plan = make_plan(args.nodes, args.teams, version=1, created_at_s=time.time())
    some = bodies(500, args.names, args.nodes, args.teams)
    if "server" in parts:
        extender = Extender(ExtenderConfig(max_plan_age_s=3600))
        extender.install(plan)
        every = bodies(50, args.nodes, args.nodes, args.teams)
        for verb in (Verb.FILTER, Verb.PRIORITIZE):
            results[f"{verb.value}_{args.names}_server"] = server_time(extender, verb, some, args.rounds)
            results[f"{verb.value}_{args.nodes}_server"] = server_time(extender, verb, every, 2)
            results[f"{verb.value}_{args.nodes}_cold_server"] = cold_time(extender, verb, every[:20])
    if "plan" in parts:
        results["plan_load"] = plan_load(plan)
    if parts & {"http", "plan"}:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "plan.json"
            write_atomically(path, plan.model_dump_json().encode())
            port = free_port()
            server = serve(path, port)
            try:
                if "http" in parts:
                    for verb in (Verb.FILTER, Verb.PRIORITIZE):
                        # warm-up: one pass fills the per-kind memo, as the in-process measurement does
                        throughput(port, f"/{verb.value}", some[:100], 100, 60, 1)
                        results[f"{verb.value}_{args.names}_http"] = throughput(
                            port, f"/{verb.value}", some[:100], args.http_requests, args.http_seconds,
                            args.connections, server.pid)
                if "plan" in parts:
                    visible = plan_visibility(port, path, plan, 7)
                    results["plan_visible_s"] = {"max": max(visible), "median": statistics.median(visible),
                                                 "all": visible}
            finally:
                server.terminate()
                server.wait(timeout=10)
    results["load_average_end"] = os.getloadavg()
    sys.stdout.write(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode() + "\n")


if __name__ == "__main__":
    main()
