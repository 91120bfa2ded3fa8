"""Benchmark: the fast path's own cost on a large fleet, from queued shrinks to the new plan stored and published.

The fast path (``ControlLoop.shrink_pending``) derives a plan with the shrunk nodes, stores it as the next version
(in Redis, fenced, on the production path) and puts it on the board, before the sinks push those nodes. On a
5,000-node fleet the plan is a 4 MB document, so this is where the fleet's size shows; the pushes themselves touch
only the shrunk nodes (``bench/yarn_sync_bench.py`` measures the YARN side: the last of 500 shrinks at the RM).

It builds a planner plan on a synthetic fleet (``broker.scheduler.instance``), a ``LiveWorld`` over it, and a
replica-shaped ``ControlLoop`` on a real ``redis-server`` started on a free port (``--store memory`` to leave Redis
out), then times batches of 1, 10 and 100 shrunk nodes, ``--repeat`` times each. Prints one JSON object.

Usage: ``python bench/fastpath_bench.py --nodes 5000 [--repeat 5] [--store redis|memory]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from broker.model import Demand
from broker.scheduler import instance, solve
from broker.service.control.config import ServiceConfig
from broker.service.control.leader import RedisElector, SoloElector
from broker.service.control.loop import ControlLoop, NodeShrink
from broker.service.control.plans import PlanBoard
from broker.service.control.sources import AgentUsage, DemandFile, LiveWorld
from broker.service.control.storage import LocalPlans, ServiceStore
from broker.service.observability.metrics import ServiceMetrics
from broker.store.memory import MemoryStore
from broker.store.redis_store import RedisStore
from tests.redis_server import running_redis


async def _measure(nodes: int, repeat: int, store_kind: str, directory: Path) -> dict[str, Any]:
    problem = instance(nodes=nodes, teams=50, classes=200, sites=4, seed=0)
    plan = solve(problem, time_limit_s=10.0).plan.model_copy(update={"version": 1, "created_at_s": time.time()})
    demand = directory / "demand.json"
    demand.write_text(Demand().model_dump_json())
    world = LiveWorld(problem.inventory, AgentUsage(problem.inventory, dict), DemandFile(demand))
    config = ServiceConfig.model_validate({"replica": "bench", "interval_s": 10, "log": {"format": "text"}})
    with running_redis(directory / "redis") if store_kind == "redis" else _nothing() as server:
        if server is not None:
            redis = RedisStore.from_url(server.url)
            store, elector, fenced = ServiceStore(redis, redis), RedisElector(redis, "bench", "bench", 30.0), True
        else:
            store, elector, fenced = ServiceStore(MemoryStore(), LocalPlans()), SoloElector(), False
        board = PlanBoard()
        loop = ControlLoop(config, world, store, board, elector, [], ServiceMetrics(), fenced_store=fenced)
        await loop.campaign()
        board.put(plan)
        names = [n.node for n in plan.nodes if n.yarn.cpu_milli or n.kubernetes.cpu_milli]
        results: dict[str, Any] = {}
        for batch in (1, 10, 100):
            seconds = []
            for r in range(repeat):
                current = board.plan
                assert current is not None
                by_name = {n.node: n for n in current.nodes}
                chosen = names[(r * batch + batch * batch) % len(names):][:batch]  # fresh nodes each time
                for name in chosen:
                    node = by_name[name]
                    loop.request_shrink(NodeShrink(name, node.yarn.scaled(1, 2), node.kubernetes.scaled(1, 2)))
                before = board.version
                started = time.perf_counter()
                await loop.shrink_pending()
                seconds.append(time.perf_counter() - started)
                assert board.version == before + 1, "the batch published no new plan"
            results[f"batch_{batch}"] = {"median_s": statistics.median(seconds), "max_s": max(seconds)}
        if server is not None:
            redis.close()
    return {"nodes": nodes, "store": store_kind, "plan_bytes": len(plan.model_dump_json()), "repeat": repeat,
            **results, "load_1m": os.getloadavg()[0], "machine": platform.processor() or platform.machine(),
            "cpus": os.cpu_count()}


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--store", choices=("redis", "memory"), default="redis")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        print(json.dumps(asyncio.run(_measure(args.nodes, args.repeat, args.store, Path(directory))), indent=2))


if __name__ == "__main__":
    main()
