"""Fixtures for the sinks: a stand-in RM and a stand-in API server over real HTTP, each able to go away and come
back at the same address (connections refused meanwhile), and plans over one cluster that both serve."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from kubernetes import client
from starlette.applications import Starlette

from broker.model import NodePlan, Plan, Resources
from broker.service.extender import uvicorn_config
from broker.service.sinks import KubernetesSink, YarnSink
from broker.yarn_bridge import RMClient, YarnCluster
from tests.kubernetes.kube_apiserver import StandInApiServer
from tests.kubernetes.wire import canonical_quantity
from tests.yarn_bridge.standin_rm import RMServer, StandinContainer, StandinRM

CLUSTER = "idc-a"
SITE = "idc-a"
NODES = [f"nm-{i}.example" for i in range(3)]
CPU, MEMORY = "broker.elastic.io/batch-cpu", "broker.elastic.io/batch-memory"


def container_id(app: int, n: int) -> str:
    return f"container_1700000000000_{app:04d}_01_{n:06d}"


def node_plan(i: int, yarn_cpu: int, k8s_cpu: int) -> NodePlan:
    """Node ``nm-<i>.example`` lending ``yarn_cpu`` cores to YARN and ``k8s_cpu`` to batch pods (2 GiB each)."""
    return NodePlan(
        node=NODES[i],
        site=SITE,
        cluster=CLUSTER,
        yarn=Resources.of(cpu=str(yarn_cpu), memory=f"{2 * yarn_cpu}Gi"),
        kubernetes=Resources.of(cpu=str(k8s_cpu), memory=f"{2 * k8s_cpu}Gi"),
    )


def plan(*cores: int, version: int = 1) -> Plan:
    """One node per entry, each lending that many cores to both sinks."""
    return Plan(version=version, nodes=tuple(node_plan(i, c, c) for i, c in enumerate(cores)))


# --- the ResourceManager ---------------------------------------------------------------------------------


class RestartableRM:
    """A stand-in RM whose server can stop (connections refused) and start again on the same port."""

    def __init__(self, rm: StandinRM) -> None:
        self.rm = rm
        self.server: RMServer | None = RMServer(rm).start()
        self.port = int(self.server.url.rsplit(":", 1)[1])
        self.url = self.server.url

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def start(self) -> None:
        self.server = RMServer(self.rm, port=self.port).start()

    def totals(self) -> dict[str, tuple[int, int]]:
        """NodeId -> (memory MB, vCores) as the RM has them now."""
        with self.rm.lock:
            return {n.id: (n.total_mb, n.total_vcores) for n in self.rm.nodes.values()}


@pytest.fixture
def rm() -> Iterator[RestartableRM]:
    standin = StandinRM.with_nodes(len(NODES))
    for app, node in enumerate(standin.nodes, start=1):
        cid = container_id(app, 2)
        standin.containers[cid] = StandinContainer(cid, node)
    restartable = RestartableRM(standin)
    yield restartable
    restartable.stop()


def yarn_sink(url: str, **overrides: Any) -> YarnSink:
    settings: dict[str, Any] = {
        "name": CLUSTER,
        "site": SITE,
        "rm_urls": [url],
        "timeout_s": 2.0,
        "backoff_s": 0.01,
        "retries": 1,
        **overrides,
    }
    return YarnSink(RMClient(YarnCluster.model_validate(settings)))


def yarn_wanted(the_plan: Plan) -> dict[str, tuple[int, int]]:
    """NodeId -> (memory MB, vCores) the plan asks of the RM."""
    return {f"{n.node}:8041": (n.yarn.memory_mib, n.yarn.cpu_milli // 1000) for n in the_plan.nodes}


# --- the API server --------------------------------------------------------------------------------------


class RestartableApiServer:
    """The stand-in API server on uvicorn, able to stop (connections refused) and start on the same port.

    Not ``tests.extender.live_server``: that picks a new free port on every start, and a client that comes back
    to its peer must find it at the same address.
    """

    def __init__(self, server: StandInApiServer) -> None:
        self.server = server
        self._uvicorn: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = self._serve(0)
        self.url = f"http://127.0.0.1:{self.port}"

    def _serve(self, port: int) -> int:
        app: Starlette = self.server.app
        self._uvicorn = uvicorn.Server(uvicorn_config(app, "127.0.0.1", port, log_level="warning"))
        self._thread = threading.Thread(target=self._uvicorn.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._uvicorn.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the stand-in API server did not start")
            time.sleep(0.01)
        bound: int = self._uvicorn.servers[0].sockets[0].getsockname()[1]
        return bound

    def stop(self) -> None:
        if self._uvicorn is not None and self._thread is not None:
            self._uvicorn.should_exit = True
            self._thread.join(timeout=10)
            self._uvicorn = None

    def start(self) -> None:
        self._serve(self.port)

    def offline(self) -> dict[str, tuple[str, str]]:
        """Node -> (batch-cpu, batch-memory) as the API server stores them now."""
        return {
            name: (node["status"]["capacity"].get(CPU, ""), node["status"]["capacity"].get(MEMORY, ""))
            for name, node in self.server.objects("nodes").items()
        }


def pod(namespace: str, name: str, node: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{namespace}-{name}"},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "registry.invalid/app:1"}]},
        "status": {"phase": "Running"},
    }


@pytest.fixture
def kube() -> Iterator[RestartableApiServer]:
    standin = StandInApiServer()
    for name in NODES:
        standin.put(
            "nodes",
            {"metadata": {"name": name}, "status": {"capacity": {"cpu": "32", "memory": "128Gi"}}},
        )
    standin.put("pods", pod("team-a", "exec-1", NODES[0]))
    standin.put("pods", pod("team-a", "exec-2", NODES[0]))
    standin.put("pods", pod("team-b", "exec-1", NODES[1]))
    restartable = RestartableApiServer(standin)
    yield restartable
    restartable.stop()


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def kubernetes_sink(url: str, clock: Clock | None = None, **options: Any) -> KubernetesSink:
    configuration = client.Configuration()
    configuration.host = url
    return KubernetesSink(
        client.ApiClient(configuration), CLUSTER, request_timeout_s=2.0, clock=clock or Clock(), **options
    )


def k8s_wanted(the_plan: Plan) -> dict[str, tuple[str, str]]:
    """Node -> the canonical (batch-cpu, batch-memory) the plan asks for (``8000`` is stored as ``8k``)."""
    return {
        n.node: (
            canonical_quantity(str(n.kubernetes.cpu_milli), extended=True),
            canonical_quantity(f"{n.kubernetes.memory_mib}Mi", extended=True),
        )
        for n in the_plan.nodes
    }
