"""Benchmark: sync N changed nodes end to end against the stand-in RM, and time how fast shrinks land.

Starts ``tests/yarn_bridge/standin_rm.py`` as a separate process (so that the RM's HTTP handling does not
share the bridge's interpreter), with N nodes of 64 GiB / 32 vCores, then:

1. full sync: a plan that changes every node (10% shrink to 32 GiB / 16 vCores, the rest grow to 96 GiB / 48
   vCores) -> wall time of ``ClusterBridge.sync`` (read ``/nodes``, N POSTs with bounded concurrency,
   read-back); shrink latency = last shrink POST received by the RM - the moment the sync was called (the
   decision);
2. guard shrink: a plan that shrinks 20 nodes and leaves the rest as they are -> the same latency for a
  typical
   fast-path shrink on a cluster of N nodes.

Usage: ``python bench/yarn_sync_bench.py --nodes 5000 [--concurrency 64]``. Targets: (1) under 10 s, shrinks
within 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from pathlib import Path

import httpx

from broker.model import NodePlan, Plan, Resources
from broker.yarn_bridge import ClusterBridge, NodeStatus, RMClient, SyncReport, YarnCluster

STANDIN = Path(__file__).resolve().parent.parent / "tests" / "yarn_bridge" / "standin_rm.py"


def node_plan(i: int, cpu: str, memory: str) -> NodePlan:
    return NodePlan(
        node=f"nm-{i}.example", site="idc-a", cluster="yarn-a", yarn=Resources.of(cpu=cpu, memory=memory)
    )


async def timed_sync(cluster: YarnCluster, plan: Plan) -> tuple[SyncReport, float, float]:
    async with RMClient(cluster) as client:
        start = time.time()
        report = await ClusterBridge(client).sync(plan)
        return report, start, time.time() - start


def shrink_latency(url: str, start: float, shrunk: set[str]) -> float:
    log = httpx.get(f"{url}/_standin/log", timeout=30).json()
    times = [
        at for method, path, at in log if method == "POST" and path.split("/")[5] in shrunk and at >= start
    ]
    return max(times) - start


def main() -> None:
    parser = argparse.ArgumentParser(description="Sync N changed nodes against the stand-in RM.")
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    proc = subprocess.Popen(
        [sys.executable, str(STANDIN), "--nodes", str(args.nodes)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        url = f"http://127.0.0.1:{proc.stdout.readline().split()[1]}"
        cluster = YarnCluster(
            name="yarn-a", site="idc-a", rm_urls=(url,), concurrency=args.concurrency, timeout_s=30
        )
        n_shrink = args.nodes // 10
        full = Plan(
            nodes=tuple(
                node_plan(i, "16", "32Gi") if i < n_shrink else node_plan(i, "48", "96Gi")
                for i in range(args.nodes)
            )
        )
        report, start, seconds = asyncio.run(timed_sync(cluster, full))
        applied = sum(1 for n in report.nodes if n.status is NodeStatus.APPLIED)
        shrunk = {f"nm-{i}.example:8041" for i in range(n_shrink)}
        print(
            f"full sync: {args.nodes} nodes changed ({n_shrink} shrink), concurrency {args.concurrency}: "
            f"{seconds:.2f} s, {applied} applied and verified, ok={report.ok}"
        )
        print(
            f"  last shrink received by the RM {shrink_latency(url, start, shrunk):.3f} s after the decision"
        )
        guard = Plan(
            nodes=tuple(node_plan(i, "8", "16Gi") if i < 20 else n for i, n in enumerate(full.nodes))
        )
        report, start, seconds = asyncio.run(timed_sync(cluster, guard))
        latency = shrink_latency(url, start, {f"nm-{i}.example:8041" for i in range(20)})
        print(
            f"guard shrink: 20 of {args.nodes} nodes: sync {seconds:.3f} s, last shrink received "
            f"{latency:.3f} s after the decision, ok={report.ok}"
        )
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
