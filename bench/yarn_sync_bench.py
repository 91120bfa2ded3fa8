"""Benchmark: sync N changed nodes end to end against the stand-in RM, and time how fast shrinks land.

Starts ``tests/yarn_bridge/standin_rm.py`` as a separate process (so that the RM's HTTP handling does not
share the bridge's interpreter) with N nodes of 64 GiB / 32 vCores, then drives one ``ClusterBridge`` through:

1. cold full sync (the bridge has seen nothing yet): a plan that changes every node, N/10 shrink to 32 GiB /
   16 vCores and the rest grow to 96 GiB / 48 vCores;
2. the same plan again: must send no request (the view of step 1 is fresh);
3. warm full sync: every node changes again, another N/10 shrink (96 -> 32 GiB), the first N/10 grow back and
   the rest grow to 128 GiB; shrinks go out before any read (the shrink fast path);
4. guard shrink: 20 nodes shrink, the rest stay as they are.

For each: wall time of ``ClusterBridge.sync``; for shrinks, the time from the call (the decision) to the RM's
receipt of the last shrink POST (the stand-in's receipt log); requests the RM received; the 1-minute load
average (the machine is shared). Targets: step 1 and 3 under 10 s, shrinks within 1 s.

Usage: ``python bench/yarn_sync_bench.py --nodes 5000 [--concurrency 64] [--connections 4]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from broker.model import NodePlan, Plan, Resources
from broker.yarn_bridge import ClusterBridge, NodeStatus, RMClient, YarnCluster

STANDIN = Path(__file__).resolve().parent.parent / "tests" / "yarn_bridge" / "standin_rm.py"
SIZES = {"small": ("16", "32Gi"), "large": ("48", "96Gi"), "huge": ("64", "128Gi"), "tiny": ("8", "16Gi")}


def node_plan(i: int, size: str) -> NodePlan:
    cpu, memory = SIZES[size]
    return NodePlan(
        node=f"nm-{i}.example", site="idc-a", cluster="yarn-a", yarn=Resources.of(cpu=cpu, memory=memory)
    )


def node_id(i: int) -> str:
    return f"nm-{i}.example:8041"


def received_since(url: str, start: float) -> list[tuple[str, str, float]]:
    """The RM's receipt log since ``start``, without the log requests themselves."""
    log = httpx.get(f"{url}/_standin/log", timeout=30).json()
    return [(m, p, at) for m, p, at in log if at >= start and p.startswith("/ws/")]


async def run(url: str, args: argparse.Namespace) -> None:
    cluster = YarnCluster(
        name="yarn-a",
        site="idc-a",
        rm_urls=(url,),
        concurrency=args.concurrency,
        connections=args.connections,
        timeout_s=30,
    )
    n, tenth = args.nodes, args.nodes // 10
    plans = {
        "cold full sync": Plan(
            nodes=tuple(node_plan(i, "small" if i < tenth else "large") for i in range(n))
        ),
        "repeat, unchanged plan": None,
        "warm full sync": Plan(
            nodes=tuple(
                node_plan(i, "large" if i < tenth else "small" if i < 2 * tenth else "huge") for i in range(n)
            )
        ),
    }
    shrinking = {
        "cold full sync": {node_id(i) for i in range(tenth)},
        "warm full sync": {node_id(i) for i in range(tenth, 2 * tenth)},
        "guard shrink": {node_id(i) for i in range(20)},
    }
    async with RMClient(cluster) as client:
        bridge = ClusterBridge(client)
        last: Plan | None = None
        for name in (*plans, "guard shrink"):
            plan = plans.get(name) or last
            assert plan is not None
            if name == "guard shrink":
                plan = Plan(nodes=tuple(node_plan(i, "tiny") if i < 20 else x for i, x in enumerate(plan.nodes)))
            load = os.getloadavg()[0]
            start = time.time()
            report = await bridge.sync(plan)
            seconds = time.time() - start
            log = received_since(url, start)
            applied = sum(1 for o in report.nodes if o.status is NodeStatus.APPLIED)
            line = (
                f"{name}: {seconds:.2f} s, {applied} pushed and verified, {len(log)} requests "
                f"(read: {', '.join(report.read) or 'nothing'}), ok={report.ok}, load {load:.2f}"
            )
            wanted = shrinking.get(name)
            if wanted:
                times = [at for m, p, at in log if m == "POST" and p.split("/")[5] in wanted]
                line += f"; {len(times)} shrinks, last at the RM {max(times) - start:.3f} s after the decision"
            print(line, flush=True)
            last = plan


def main() -> None:
    parser = argparse.ArgumentParser(description="Sync N changed nodes against the stand-in RM.")
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--connections", type=int, default=4)
    args = parser.parse_args()
    proc = subprocess.Popen(
        [sys.executable, str(STANDIN), "--nodes", str(args.nodes)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        url = f"http://127.0.0.1:{proc.stdout.readline().split()[1]}"
        asyncio.run(run(url, args))
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
