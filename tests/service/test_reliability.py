"""The broker against a real deployment's shape: an inventory file, node agents streaming over gRPC, a demand file,
a stand-in ResourceManager and a stand-in API server that speak the real wire contracts.

- A spike in one agent's reported usage shrinks that node at both peers within 2 s, without waiting for the loop.
- A peer that hangs or answers 5xx does not stop the loop: cycles go on, shrinks still reach the other peer, the
  failures show in the metrics, and once the peer is back the state converges on the newest plan.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from broker.model import Plan
from broker.service.control.config import ServiceConfig
from broker.service.control.service import Replica, build, running
from plugins.node_agent.client import Agent, AgentConfig
from plugins.node_agent.wire import NodeSample
from tests.kubernetes import kube_apiserver
from tests.service_sinks.conftest import NODES, RestartableApiServer, RestartableRM, k8s_wanted, yarn_wanted
from tests.yarn_bridge import standin_rm

TOKEN = "agents-token-for-tests"
CORES, MEMORY_GIB = 32, 64


class Readings:
    """What a node's agent reports: a quiet node until ``spike`` raises its online usage."""

    def __init__(self, node: str) -> None:
        self.node = node
        self.seq = 0
        self.online_cpu_milli = 4_000

    def prime(self) -> None:
        self.seq = 0

    def sample(self) -> NodeSample:
        self.seq += 1
        return NodeSample(node=self.node, seq=self.seq, sampled_at_s=time.time(),
                          capacity_cpu_milli=CORES * 1000, capacity_memory_mib=MEMORY_GIB * 1024,
                          online_cpu_milli=self.online_cpu_milli, online_memory_mib=8 * 1024)


def _files(tmp_path: Path, rm_url: str, kube_url: str) -> ServiceConfig:
    def write(name: str, data: Any) -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(data), encoding="utf-8")
        return path

    inventory = write("inventory.yaml", {
        "sites": [{"name": "idc-a"}],
        "clusters": [{"name": "idc-a", "kind": "kubernetes", "site": "idc-a"}],
        "nodes": [{"name": n, "site": "idc-a", "cluster": "idc-a", "capacity": {"cpu": CORES,
                                                                              "memory": f"{MEMORY_GIB}Gi"},
                   "stable": True, "disk": True} for n in NODES],
    })
    demand = write("demand.yaml", {"classes": [
        {"name": "etl", "team": "team-a", "shape": {"cpu": "1", "memory": "2Gi"}, "count": 300, "sink": "yarn"},
        {"name": "ml", "team": "team-b", "shape": {"cpu": "1", "memory": "2Gi"}, "count": 300,
         "sink": "kubernetes"},
    ]})
    kubeconfig = write("kubeconfig", {
        "apiVersion": "v1", "kind": "Config", "current-context": "standin",
        "clusters": [{"name": "standin", "cluster": {"server": kube_url}}],
        "contexts": [{"name": "standin", "context": {"cluster": "standin", "user": "broker"}}],
        "users": [{"name": "broker", "user": {"token": "unused"}}],
    })
    clusters = write("clusters.yaml", {"clusters": [{"name": "idc-a", "site": "idc-a",
                                                     "kubeconfig": str(kubeconfig)}]})
    yarn = write("yarn.yaml", {"clusters": [{"name": "idc-a", "site": "idc-a", "rm_urls": [rm_url],
                                             "timeout_s": 1.0, "retries": 1, "backoff_s": 0.01}]})
    token = tmp_path / "token"
    token.write_text(TOKEN)
    return ServiceConfig.model_validate({
        "replica": "reliability", "interval_s": 0.5, "http": {"port": 0},
        "fleet": {"inventory": str(inventory), "usage": "agents"},
        "demand": {"kind": "file", "file": str(demand)},
        "agents": {"listen": "127.0.0.1:0", "token_file": str(token)},
        "sinks": {"yarn": str(yarn), "kubernetes": True, "timeout_s": 1.0},
        "kubernetes_clusters": str(clusters), "log": {"format": "text"},
    })


async def _eventually(check: Callable[[], bool], timeout_s: float, what: str) -> float:
    """Seconds until ``check()`` holds; fails after ``timeout_s``."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout_s:
            raise AssertionError(f"{what} not seen within {timeout_s} s")
        await asyncio.sleep(0.02)
    return time.monotonic() - started


def _converged(replica: Replica, rm: RestartableRM, kube: RestartableApiServer) -> Callable[[], bool]:
    def check() -> bool:
        plan = replica.board.plan
        if plan is None or not any(n.yarn.cpu_milli for n in plan.nodes):
            return False
        return rm.totals() == yarn_wanted(plan) and kube.offline() == k8s_wanted(plan)
    return check


def _node(plan: Plan | None, name: str) -> tuple[int, int]:
    """The node's offline CPU (millicores) for YARN and for Kubernetes in ``plan``."""
    assert plan is not None
    node = next(n for n in plan.nodes if n.node == name)
    return node.yarn.cpu_milli, node.kubernetes.cpu_milli


@pytest.mark.slow
def test_a_spike_reaches_both_peers_within_2_s_and_a_failing_peer_does_not_stop_the_other(
        tmp_path: Path, rm: RestartableRM, kube: RestartableApiServer) -> None:
    replica = build(_files(tmp_path, rm.url, kube.url), {})
    readings = {node: Readings(node) for node in NODES}

    async def scenario() -> None:
        async with running(replica) as stop:
            assert replica.hub is not None
            token_file = tmp_path / "token"
            agents = [Agent(AgentConfig(f"127.0.0.1:{replica.hub.port}", token_file, interval_s=0.1), r)
                      for r in readings.values()]
            tasks = [asyncio.create_task(agent.run(stop)) for agent in agents]
            await _eventually(_converged(replica, rm, kube), 30, "both peers enforcing the plan")

            # 1. A spike on node 0: the fast path shrinks it at both peers within 2 s.
            before = _node(replica.board.plan, NODES[0])
            spiked_at = time.monotonic()
            readings[NODES[0]].online_cpu_milli = 27_000
            yarn_node = f"{NODES[0]}:8041"

            def shrunk_at_both() -> bool:
                plan = replica.board.plan
                after = _node(plan, NODES[0])
                return (sum(after) < sum(before) and plan is not None
                        and rm.totals()[yarn_node] == yarn_wanted(plan)[yarn_node]
                        and kube.offline()[NODES[0]] == k8s_wanted(plan)[NODES[0]])

            await _eventually(shrunk_at_both, 2.0, "the shrink at both peers")
            took_s = time.monotonic() - spiked_at
            assert took_s < 2.0
            print(f"fast path: shrink confirmed at both peers {took_s:.3f} s after the spike")
            # The peers hold the change a moment before the push's await returns and its metric is recorded.
            await _eventually(lambda: 'broker_fastpath_shrink_seconds_count{sink="kubernetes:idc-a"} 1.0'
                              in replica.metrics.exposition()[0].decode(), 1.0, "the shrink's metric")
            fast = replica.metrics.exposition()[0].decode()
            assert 'broker_fastpath_shrinks_total 1.0' in fast  # the fast path did it, not the next cycle

            # 2. The RM hangs on every request: the loop goes on and node 1's shrink still reaches Kubernetes.
            rm.rm.inject(standin_rm.Fault(path="/ws", kind="hang", seconds=3.0, times=10_000))
            version = replica.board.version
            before = _node(replica.board.plan, NODES[1])
            readings[NODES[1]].online_cpu_milli = 27_000

            def shrunk_at_kubernetes() -> bool:
                plan = replica.board.plan
                return (sum(_node(plan, NODES[1])) < sum(before) and plan is not None
                        and kube.offline()[NODES[1]] == k8s_wanted(plan)[NODES[1]])

            await _eventually(shrunk_at_kubernetes, 2.0, "node 1's shrink at Kubernetes while the RM hangs")
            await _eventually(lambda: replica.board.version >= version + 3, 10, "cycles going on")
            metrics = replica.metrics.exposition()[0].decode()
            assert 'reason="timeout",sink="yarn:idc-a"' in metrics

            # 3. The API server answers 503 meanwhile, and both peers come back: the state converges.
            kube.server.inject(kube_apiserver.Fault(kind="status", status=503, times=5))
            await asyncio.sleep(1.0)
            with rm.rm.lock:
                rm.rm.faults.clear()
            kube.server.clear_faults()
            readings[NODES[0]].online_cpu_milli = readings[NODES[1]].online_cpu_milli = 4_000
            await _eventually(_converged(replica, rm, kube), 30, "convergence after the peers came back")
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(scenario())
