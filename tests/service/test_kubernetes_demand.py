"""``demand.kind: kubernetes``: every cycle the loop takes the offline pods of each cluster (followed by list + watch
against the stand-in API server), maps them to teams through the quota policy's namespace bindings, and plans for
them so that the extender admits exactly those pods.

- Pending offline pods of bound namespaces are their team's demand, placed on their own cluster's nodes; the
  extender of that cluster then lets each pending pod through on a node the plan gave its class.
- A bound pod counts as running; online and finished pods are not demand.
- Offline pods of no team are counted per namespace and logged, not planned.
- Classes: a class label names the class, sized for every pod carrying it; other pods share a class per team,
  role, size and disk; labels that cannot name a class, or name another team's or cluster's, are counted and
  left out; a cluster makes at most ``max_classes`` classes.
- The API server down: the last good demand stands in until the max age, then nothing; ``/readyz`` says so.
- Only the fields read of a pod are kept of it (``plugins.kubernetes.pods.READ_FIELDS``): the demand, and what the
  extender reads, are the same from the kept pods as from the pods as sent, and every field read is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from kubernetes import client

from broker.errors import InputError
from broker.model import Demand, Inventory, Plan, Sink, TeamBinding
from broker.quota import QuotaPolicy
from broker.service.control.config import DemandKind, ServiceConfig, load_service_config
from broker.service.control.demand_reads import ReadState
from broker.service.control.kubernetes_demand import (
    KubernetesDemandSource,
    PodReader,
    PodState,
    pod_state,
    rounded_up,
)
from broker.service.control.leader import SoloElector
from broker.service.control.loop import ControlLoop, CycleOutcome
from broker.service.control.plans import PlanBoard
from broker.service.control.service import build
from broker.service.control.sources import AgentUsage, LiveWorld
from broker.service.control.storage import LocalPlans, ServiceStore
from broker.service.extender import Conventions, Extender, ExtenderConfig, Verb
from broker.service.extender.pod import read_pod
from broker.service.observability import ServiceMetrics
from broker.service.observability.metrics import UnplannedPods
from broker.store.memory import MemoryStore
from broker.store.policy_log import PolicyLog
from plugins.kubernetes.pods import READ_FIELDS, Fields, kept
from tests.agent.kube_pods import Identity, PodsApiServer
from tests.extender.builders import DOMAIN, PodBuilder, filter_body, pod
from tests.quota.builders import group, policy
from tests.service.test_yarn_demand import CORES, MEMORY_GIB, Clock, cycles, placed, quiet, sample
from tests.service_sinks.conftest import RestartableApiServer

NAMES = Conventions.for_domain(DOMAIN)
CLUSTERS = ("k8s-a", "k8s-b")


# --- builders -------------------------------------------------------------------------------------------------


def bound(builder: PodBuilder, node: str, phase: str = "Running") -> dict[str, Any]:
    """The pod as the API server holds it once the scheduler bound it to ``node`` (and the kubelet started it)."""
    obj = builder.obj()
    obj["spec"]["nodeName"] = node
    obj["status"]["phase"] = phase
    return obj


def online(name: str, namespace: str) -> dict[str, Any]:
    """A pod requesting only ordinary resources: not the broker's business."""
    obj = pod(name).ns(namespace).obj()
    obj["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "2", "memory": "4Gi"}}
    return obj


def inventory(*clusters: str) -> Inventory:
    """Per cluster two stable and two elastic nodes with disks, 32 cores and 64 GiB each."""
    return Inventory.model_validate({
        "sites": [{"name": "idc-a"}],
        "clusters": [{"name": name, "kind": "kubernetes", "site": "idc-a"} for name in clusters],
        "nodes": [{"name": f"{name}-n{i}", "site": "idc-a", "cluster": name, "stable": i < 2, "disk": True,
                   "capacity": {"cpu": CORES, "memory": f"{MEMORY_GIB}Gi"}} for name in clusters for i in range(4)],
    })


def team_policy(*clusters: str) -> QuotaPolicy:
    """search and ads, each bound to the namespace of its own name on every cluster."""
    groups = []
    for team in ("search", "ads"):
        builder = group(team)
        for name in clusters:
            builder = builder.namespaces(name, team)
        groups.append(builder)
    return policy(*groups)


def bindings(*clusters: str) -> dict[str, TeamBinding]:
    return team_policy(*clusters).bindings()


def api(url: str) -> client.ApiClient:
    configuration = client.Configuration()
    configuration.host = url
    return client.ApiClient(configuration)


def source(servers: dict[str, RestartableApiServer], *, metrics: ServiceMetrics | None = None,
           max_age_s: float = 30.0, clock: Clock | None = None, timeout_s: float = 5.0) -> KubernetesDemandSource:
    """Pod watches of the stand-ins, short enough that stopping one is seen within a second or so."""
    return KubernetesDemandSource({name: api(server.url) for name, server in servers.items()},
                                  metrics or ServiceMetrics(), names=NAMES, timeout_s=timeout_s, max_age_s=max_age_s,
                                  watch_timeout_s=1, retry_s=0.05, retry_max_s=0.2, clock=clock or time.monotonic)


def loop_over(demand: KubernetesDemandSource, fleet: Inventory, quota: QuotaPolicy,
              metrics: ServiceMetrics) -> ControlLoop:
    """A leader's loop as ``broker serve`` assembles it for a real fleet, with agents that report ``quiet``."""
    samples = quiet(fleet)
    store = ServiceStore(MemoryStore(), LocalPlans())
    PolicyLog(store.policies).apply(quota, author="test", comment="teams bound to their namespaces")
    config = ServiceConfig.model_validate({"replica": "test", "interval_s": 1.0, "planner": {"time_limit_s": 2.0},
                                           "log": {"format": "text"}})
    world = LiveWorld(fleet, AgentUsage(fleet, lambda: samples), demand)
    return ControlLoop(config, world, store, PlanBoard(), SoloElector(), [], metrics, fenced_store=False)


async def eventually(read: Callable[[], Awaitable[Demand]], done: Callable[[Demand], bool]) -> Demand:
    """Read demand until ``done`` holds for it (the watch applies a change within milliseconds), 10 s at most."""
    deadline = time.monotonic() + 10
    while True:
        demand = await read()
        if done(demand) or time.monotonic() > deadline:
            return demand
        await asyncio.sleep(0.05)


def counts(demand: Demand) -> dict[str, tuple[int, int]]:
    """Class -> (count, running)."""
    return {item.name: (item.count, item.running) for item in demand.classes}


def nodes_of(plan: Plan, demand_class: str) -> set[str]:
    return {n.node for n in plan.nodes for p in n.placements if p.demand_class == demand_class and p.count}


@pytest.fixture
def apiservers() -> Iterator[dict[str, RestartableApiServer]]:
    """One empty stand-in API server (with selector watches, as the real one) per cluster."""
    started = {name: RestartableApiServer(PodsApiServer()) for name in CLUSTERS}
    yield started
    for server in started.values():
        server.stop()


# --- pods become the teams' demand, planned on their cluster and admitted by its extender -------------------------

SEARCH_AM = "k8s.k8s-a.search.am.1000m.2048Mi"
SEARCH_WORKER = "k8s.k8s-a.search.worker.2000m.4096Mi"
ADS_DISK_B = "k8s.k8s-b.ads.worker.1000m.1024Mi.disk"


def executor(i: int) -> PodBuilder:
    return pod(f"search-exec-{i}").ns("search").batch(2000, "4Gi").label("spark-role", "executor")


def two_clusters(servers: dict[str, RestartableApiServer]) -> None:
    """k8s-a: a Spark job of search (a driver and four executors), three ads pods of class ads-etl (one of them
    larger), an online pod and a finished offline pod; k8s-b: two disk-writing ads pods."""
    a, b = servers["k8s-a"].server, servers["k8s-b"].server
    a.put("pods", pod("search-driver").ns("search").batch(1000, "2Gi").label("spark-role", "driver").obj())
    for i in range(4):
        a.put("pods", executor(i).obj())
    for i, (cpu, memory) in enumerate(((1000, "2Gi"), (1000, "2Gi"), (1500, "3Gi"))):
        a.put("pods", pod(f"etl-{i}").ns("ads").batch(cpu, memory).of_class("ads-etl").obj())
    a.put("pods", online("web-0", "search"))
    a.put("pods", bound(pod("search-exec-old").ns("search").batch(2000, "4Gi"), "k8s-a-n3", phase="Succeeded"))
    for i in range(2):
        b.put("pods", pod(f"shuffle-{i}").ns("ads").batch(1000, "1Gi").needs_disk().obj())


def filter_nodes(extender: Extender, obj: dict[str, Any], candidates: list[str]) -> list[str]:
    """The nodes the extender lets ``obj`` use among ``candidates``, as kube-scheduler would ask."""
    reply = extender.handle(Verb.FILTER, filter_body(obj, candidates))
    assert reply.status == 200, reply.body
    passed: list[str] = orjson.loads(reply.body)["NodeNames"]
    return passed


def test_pending_offline_pods_are_placed_on_their_clusters_nodes_and_its_extender_admits_each_there(
        apiservers: dict[str, RestartableApiServer]) -> None:
    two_clusters(apiservers)
    fleet, metrics = inventory(*CLUSTERS), ServiceMetrics()
    demand = source(apiservers, metrics=metrics)

    async def go() -> list[CycleOutcome]:
        try:
            return await cycles(loop_over(demand, fleet, team_policy(*CLUSTERS), metrics))
        finally:
            await demand.aclose()

    [outcome] = asyncio.run(go())
    plan = outcome.plan
    assert plan is not None, outcome.failed_step
    assert {name: placed(plan, name) for name in (SEARCH_AM, SEARCH_WORKER, "ads-etl", ADS_DISK_B)} == {
        SEARCH_AM: 1, SEARCH_WORKER: 4, "ads-etl": 3, ADS_DISK_B: 2}
    assert {p.demand_class for n in plan.nodes for p in n.placements} == {  # the online and the finished pod are not
        SEARCH_AM, SEARCH_WORKER, "ads-etl", ADS_DISK_B}
    cluster_of = {n.name: n.cluster for n in fleet.nodes}
    assert {cluster_of[n] for n in nodes_of(plan, SEARCH_AM) | nodes_of(plan, SEARCH_WORKER)} == {"k8s-a"}
    assert {cluster_of[n] for n in nodes_of(plan, "ads-etl")} == {"k8s-a"}
    assert {cluster_of[n] for n in nodes_of(plan, ADS_DISK_B)} == {"k8s-b"}
    assert all(p.sink is Sink.KUBERNETES for n in plan.nodes for p in n.placements)
    assert sample(metrics, "broker_kubernetes_demand_pending_pods", team="search") == 5
    assert sample(metrics, "broker_kubernetes_demand_pending_pods", team="ads") == 5
    assert sample(metrics, "broker_kubernetes_demand_age_seconds", cluster="k8s-b") == 0.0

    stable = {n.name for n in fleet.nodes if n.stable}
    expected = {"search-driver": SEARCH_AM, **{f"search-exec-{i}": SEARCH_WORKER for i in range(4)},
                **{f"etl-{i}": "ads-etl" for i in range(3)}, **{f"shuffle-{i}": ADS_DISK_B for i in range(2)}}
    for cluster in CLUSTERS:
        extender = Extender(ExtenderConfig(conventions=NAMES, cluster=cluster, max_plan_age_s=3600.0))
        extender.install(plan)
        candidates = [n.name for n in fleet.nodes if n.cluster == cluster]
        for key, obj in apiservers[cluster].server.objects("pods").items():
            name = key.split("/")[1]
            if name not in expected:
                continue
            passed = filter_nodes(extender, obj, candidates)
            assert passed, f"{key} refused everywhere"
            assert set(passed) <= nodes_of(plan, expected[name]), key  # only where the plan gave its class room
            if name == "search-driver":
                assert set(passed) <= stable


def test_a_bound_pod_counts_as_running_in_its_class_and_for_its_teams_quota(
        apiservers: dict[str, RestartableApiServer]) -> None:
    two_clusters(apiservers)
    fleet, metrics = inventory(*CLUSTERS), ServiceMetrics()
    demand = source(apiservers, metrics=metrics)
    binds = bindings(*CLUSTERS)

    async def go() -> tuple[Demand, CycleOutcome]:
        try:
            loop = loop_over(demand, fleet, team_policy(*CLUSTERS), metrics)
            await cycles(loop)
            apiservers["k8s-a"].server.put("pods", bound(executor(0), "k8s-a-n2"))
            seen = await eventually(lambda: demand.demand(0.0, binds), lambda d: counts(d)[SEARCH_WORKER][1] == 1)
            return seen, await loop.cycle()
        finally:
            await demand.aclose()

    seen, outcome = asyncio.run(go())
    assert counts(seen)[SEARCH_WORKER] == (4, 1)  # still wanted (it holds its capacity), and running
    assert outcome.plan is not None, outcome.failed_step
    search = next(t for t in outcome.plan.teams if t.team == "search")
    assert (search.running.cpu_milli, search.running.memory_mib) == (2000, 4096)  # what the extender charges first
    assert sample(metrics, "broker_kubernetes_demand_pending_pods", team="search") == 4


def test_a_pod_that_finishes_leaves_the_demand_though_the_api_server_keeps_it(
        apiservers: dict[str, RestartableApiServer]) -> None:
    a = apiservers["k8s-a"]
    a.server.put("pods", executor(0).obj())
    a.server.put("pods", bound(executor(1), "k8s-a-n2"))
    demand = source({"k8s-a": a})
    binds = bindings("k8s-a")

    async def go() -> tuple[Demand, Demand]:
        try:
            first = await demand.demand(0.0, binds)
            a.server.put("pods", bound(executor(1), "k8s-a-n2", phase="Succeeded"))
            return first, await eventually(lambda: demand.demand(0.0, binds),
                                           lambda d: counts(d)[SEARCH_WORKER] == (1, 0))
        finally:
            await demand.aclose()

    first, after = asyncio.run(go())
    assert counts(first) == {SEARCH_WORKER: (2, 1)}
    assert counts(after) == {SEARCH_WORKER: (1, 0)}
    assert list(a.server.objects("pods")) == ["search/search-exec-0", "search/search-exec-1"]  # finished, not gone


def test_offline_pods_in_a_namespace_of_no_team_are_counted_and_logged_not_planned(
        apiservers: dict[str, RestartableApiServer], caplog: pytest.LogCaptureFixture) -> None:
    a = apiservers["k8s-a"].server
    for i in range(2):
        a.put("pods", pod(f"tmp-{i}").ns("scratch").batch(1000, "1Gi").obj())
    a.put("pods", pod("stranger").ns("search").batch(1000, "1Gi").of_team("ads").obj())  # ads is not bound there
    a.put("pods", executor(0).obj())
    metrics = ServiceMetrics()
    demand = source({"k8s-a": apiservers["k8s-a"]}, metrics=metrics)
    binds = bindings("k8s-a")

    async def go() -> tuple[Demand, Demand]:
        try:
            return await demand.demand(0.0, binds), await demand.demand(0.0, binds)
        finally:
            await demand.aclose()

    with caplog.at_level(logging.WARNING, logger="broker.service.control.kubernetes_demand"):
        first, _ = asyncio.run(go())
    assert counts(first) == {SEARCH_WORKER: (1, 0)}
    assert sample(metrics, "broker_kubernetes_demand_unmapped_pods", cluster="k8s-a", namespace="scratch") == 2
    assert sample(metrics, "broker_kubernetes_demand_unmapped_pods", cluster="k8s-a", namespace="search") == 1
    logged = [r.getMessage() for r in caplog.records if "not planned for" in r.getMessage()]
    assert len(logged) == 1 and "2 offline pod(s) in namespace scratch, of no team" in logged[0]  # once


def test_a_class_label_of_one_cluster_is_not_a_second_class_in_another(
        apiservers: dict[str, RestartableApiServer]) -> None:
    """Class names are fleet-wide: the same label in two clusters is the first cluster's class."""
    for cluster, server in apiservers.items():
        server.server.put("pods", pod(f"etl-{cluster}").ns("search").batch(1000, "1Gi").of_class("etl").obj())
    metrics = ServiceMetrics()
    demand = source(apiservers, metrics=metrics)

    async def go() -> Demand:
        try:
            return await demand.demand(0.0, bindings(*CLUSTERS))
        finally:
            await demand.aclose()

    [etl] = asyncio.run(go()).classes
    assert (etl.name, etl.cluster, etl.count) == ("etl", "k8s-a", 1)
    assert sample(metrics, "broker_kubernetes_demand_unplanned_pods", cluster="k8s-b", reason="class_conflict") == 1
    assert sample(metrics, "broker_kubernetes_demand_unplanned_pods", cluster="k8s-a", reason="class_conflict") == 0


# --- the API server down ----------------------------------------------------------------------------------------


def test_an_api_server_down_its_last_good_demand_stands_in_until_the_max_age_then_it_is_dropped(
        apiservers: dict[str, RestartableApiServer]) -> None:
    two_clusters(apiservers)
    clock, metrics = Clock(), ServiceMetrics()
    demand = source(apiservers, metrics=metrics, max_age_s=30.0, clock=clock)
    binds = bindings(*CLUSTERS)

    def teams(of: Demand) -> dict[str, int]:
        out: dict[str, int] = {}
        for item in of.classes:
            out[item.team] = out.get(item.team, 0) + item.count
        return out

    async def go() -> None:
        b = apiservers["k8s-b"]
        try:
            assert teams(await demand.demand(0.0, binds)) == {"search": 5, "ads": 3 + 2}
            b.stop()
            seen = await eventually(lambda: demand.demand(0.0, binds),
                                    lambda _: demand.status()["k8s-b"].state is ReadState.STALE)
            assert teams(seen) == {"search": 5, "ads": 5}  # b's last good demand
            clock.now += 20
            assert teams(await demand.demand(0.0, binds)) == {"search": 5, "ads": 5}
            status = demand.status()["k8s-b"]
            assert status.state is ReadState.STALE and status.age_s == 20.0
            assert status.error is not None and "kube-apiserver k8s-b" in status.error
            assert sample(metrics, "broker_kubernetes_demand_age_seconds", cluster="k8s-b") == 20.0
            clock.now += 11
            assert teams(await demand.demand(0.0, binds)) == {"search": 5, "ads": 3}  # older than 30 s: dropped
            assert demand.status()["k8s-b"].state is ReadState.MISSING
            assert demand.status()["k8s-a"].state is ReadState.FRESH
            assert sample(metrics, "broker_kubernetes_demand_age_seconds", cluster="k8s-b") == math.inf
            assert sample(metrics, "broker_kubernetes_demand_pending_pods", team="ads") == 3
            b.start()
            back = await eventually(lambda: demand.demand(0.0, binds),
                                    lambda _: demand.status()["k8s-b"].state is ReadState.FRESH)
            assert teams(back) == {"search": 5, "ads": 5}  # listed again
        finally:
            await demand.aclose()

    asyncio.run(go())
    failures = sample(metrics, "broker_kubernetes_demand_failures_total", cluster="k8s-b")
    assert failures is not None and failures >= 1
    assert sample(metrics, "broker_kubernetes_demand_failures_total", cluster="k8s-a") is None


def test_a_service_account_that_may_not_list_pods_leaves_its_cluster_missing_with_the_servers_refusal() -> None:
    broker = Identity("system:serviceaccount:broker-system:broker", frozenset())  # bound to no role
    server = RestartableApiServer(PodsApiServer(tokens={"no-pods": broker}))
    server.server.put("pods", executor(0).obj())
    refused = api(server.url)
    refused.configuration.api_key = {"authorization": "no-pods"}
    refused.configuration.api_key_prefix = {"authorization": "Bearer"}
    demand = KubernetesDemandSource({"k8s-a": refused}, ServiceMetrics(), names=NAMES, timeout_s=0.5, max_age_s=30.0,
                                    watch_timeout_s=1, retry_s=0.05, retry_max_s=0.2)

    async def go() -> Demand:
        try:
            return await demand.demand(0.0, bindings("k8s-a"))
        finally:
            await demand.aclose()
            server.stop()

    assert asyncio.run(go()).classes == ()
    status = demand.status()["k8s-a"]
    assert status.state is ReadState.MISSING and status.error is not None
    assert "403" in status.error and 'cannot list resource "pods"' in status.error


def clusters_file(directory: Path, urls: dict[str, str]) -> Path:
    """A clusters file naming each cluster of ``urls``, reached through one kubeconfig with a context each."""
    kubeconfig = directory / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": next(iter(urls)),
        "clusters": [{"name": name, "cluster": {"server": url}} for name, url in urls.items()],
        "users": [{"name": "broker", "user": {"token": "test-token"}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": "broker"}} for name in urls],
    }), encoding="utf-8")
    path = directory / "clusters.yaml"
    path.write_text(yaml.safe_dump({"clusters": [
        {"name": name, "site": "idc-a", "kubeconfig": str(kubeconfig), "context": name} for name in urls]}),
        encoding="utf-8")
    return path


def replica_config(directory: Path, urls: dict[str, str], fleet: Inventory, **demand: Any) -> ServiceConfig:
    """A replica of a real fleet reading the pods of ``urls``' clusters."""
    (directory / "inventory.yaml").write_text(yaml.safe_dump(fleet.model_dump(mode="json")), encoding="utf-8")
    (directory / "policy.yaml").write_text(yaml.safe_dump(team_policy(*urls).for_storage()), encoding="utf-8")
    (directory / "token").write_text("token-for-tests")
    return ServiceConfig.model_validate({
        "replica": "kubernetes-demand", "interval_s": 1.0, "http": {"port": 0}, "log": {"format": "text"},
        "policy": str(directory / "policy.yaml"), "kubernetes_clusters": str(clusters_file(directory, urls)),
        "fleet": {"inventory": str(directory / "inventory.yaml"), "usage": "agents"},
        "agents": {"listen": "127.0.0.1:0", "token_file": str(directory / "token")},
        "demand": {"kind": "kubernetes", **demand},
    })


def test_a_replica_follows_each_clusters_pods_and_readyz_shows_each_ones_state(
        tmp_path: Path, apiservers: dict[str, RestartableApiServer]) -> None:
    """k8s-a answers; k8s-b's API server refuses connections from the start."""
    two_clusters(apiservers)
    apiservers["k8s-a"].server.put("pods", pod("tmp-0").ns("scratch").batch(1000, "1Gi").obj())
    apiservers["k8s-b"].stop()
    config = replica_config(tmp_path, {name: server.url for name, server in apiservers.items()},
                            inventory(*CLUSTERS), timeout_s=0.5)
    replica = build(config, {})
    reader = replica.kubernetes_demand
    assert reader is not None and replica.yarn_demand is None

    async def go() -> CycleOutcome:
        try:
            return (await cycles(replica.loop))[0]
        finally:
            await reader.aclose()

    outcome = asyncio.run(go())
    assert outcome.plan is not None, outcome.failed_step
    # no agent has reported: nothing is lent, and the plan says why the pods are unmet
    assert {u.demand_class for u in outcome.plan.unmet} == {SEARCH_AM, SEARCH_WORKER, "ads-etl"}
    states = replica.readiness()[1]["kubernetes_demand"]
    assert isinstance(states, dict)
    assert states["k8s-a"]["state"] == "fresh" and states["k8s-a"]["error"] is None
    assert states["k8s-b"]["state"] == "missing" and "pods not listed yet" in states["k8s-b"]["error"]
    assert "kube-apiserver k8s-b" in states["k8s-b"]["error"]
    exposition = replica.metrics.exposition()[0].decode()
    assert 'broker_kubernetes_demand_unmapped_pods{cluster="k8s-a",namespace="scratch"} 1.0' in exposition
    assert 'broker_kubernetes_demand_age_seconds{cluster="k8s-b"} +Inf' in exposition


# --- which class a pod is in -------------------------------------------------------------------------------------


def read(*pods: dict[str, Any], max_classes: int = 100, cluster: str = "k8s-a") -> tuple[Demand, dict[str, int]]:
    """The demand of ``pods`` in ``cluster`` under the two teams' bindings, and the pods left out by reason."""
    objects = {f"{p['metadata']['namespace']}/{p['metadata']['name']}": copy.deepcopy(p) for p in pods}
    for i, obj in enumerate(objects.values()):
        obj["metadata"]["resourceVersion"] = str(100 + i)
    got = PodReader(cluster, NAMES, max_classes).read(objects, bindings(cluster))
    return Demand(classes=got.classes), {reason.value: n for reason, n in got.unplanned.items() if n}


def test_a_class_label_names_the_class_sized_for_every_pod_that_carries_it() -> None:
    """A driver and executors of different sizes, one of them writing shuffle data, share the label ``job-7``: the
    class is the largest of each, an AM class (stable nodes only) and a disk class, so each pod fits wherever the
    plan puts the class; the extender looks the pods up by that name."""
    demand, left = read(pod("driver").ns("search").batch(1000, "8Gi").label("spark-role", "driver").of_class("job-7")
                        .obj(),
                        pod("exec-0").ns("search").batch(4000, "4Gi").of_class("job-7").needs_disk().obj(),
                        bound(pod("exec-1").ns("search").batch(2000, "4Gi").of_class("job-7"), "k8s-a-n1"))
    [job] = demand.classes
    assert (job.name, job.team, job.cluster, job.sink) == ("job-7", "search", "k8s-a", Sink.KUBERNETES)
    assert (job.shape.cpu_milli, job.shape.memory_mib, job.is_am, job.needs_disk) == (4000, 8192, True, True)
    assert (job.count, job.running) == (3, 1)
    assert left == {}


def test_unlabelled_pods_share_a_class_per_team_role_size_and_disk() -> None:
    demand, _ = read(*(pod(f"e{i}").ns("search").batch(2000, "4Gi").obj() for i in range(3)),
                     pod("d").ns("search").batch(1000, "2Gi").am().obj(),
                     pod("w").ns("search").batch(2000, "4Gi").needs_disk().obj(),
                     pod("x").ns("ads").batch(2000, "4Gi").obj())
    assert counts(demand) == {
        "k8s.k8s-a.search.worker.2000m.4096Mi": (3, 0), "k8s.k8s-a.search.am.1000m.2048Mi": (1, 0),
        "k8s.k8s-a.search.worker.2000m.4096Mi.disk": (1, 0), "k8s.k8s-a.ads.worker.2000m.4096Mi": (1, 0)}
    assert [c.is_am for c in demand.classes if ".am." in c.name] == [True]


def test_a_class_label_carried_by_two_teams_is_the_first_teams_class_and_the_others_pods_are_left_out() -> None:
    demand, left = read(pod("s").ns("search").batch(1000, "1Gi").of_class("etl").obj(),
                        *(pod(f"a{i}").ns("ads").batch(1000, "1Gi").of_class("etl").obj() for i in range(2)))
    assert [(c.name, c.team, c.count) for c in demand.classes] == [("etl", "ads", 2)]
    assert left == {"class_conflict": 1}


@pytest.mark.parametrize("label", ["", "-etl", "yarn.yarn-a.search.worker.1024Mi.1c",
                                   "k8s.k8s-a.search.worker.2000m.4096Mi"],
                         ids=["empty", "not-a-name", "yarn-prefix", "k8s-prefix"])
def test_a_class_label_that_cannot_name_a_class_is_counted_and_left_out(label: str) -> None:
    demand, left = read(pod("p").ns("search").batch(1000, "1Gi").of_class(label).obj(),
                        pod("q").ns("search").batch(1000, "1Gi").obj())
    assert [c.name for c in demand.classes] == ["k8s.k8s-a.search.worker.1000m.1024Mi"]
    assert left == {"class_label": 1}


def test_a_pod_that_cannot_be_read_or_asks_for_nothing_is_counted_and_left_out() -> None:
    unreadable = pod("p").ns("search").batch(1000, "1Gi").obj()
    unreadable["spec"]["containers"][0]["resources"]["requests"][f"{DOMAIN}/batch-memory"] = "lots"
    empty = pod("q").ns("search").batch(0, "0").obj()
    demand, left = read(unreadable, empty, pod("r").ns("search").batch(1000, "1Gi").obj())
    assert len(demand.classes) == 1 and left == {"invalid": 2}


def test_past_the_class_limit_sizes_are_rounded_up_to_merge_near_ones() -> None:
    """Four memory sizes within an eighth of each other become one class of the largest rounded size."""
    near = [pod(f"p{mib}").ns("search").batch(1000, f"{mib}Mi").obj() for mib in (4300, 4400, 4500, 4600)]
    demand, left = read(*near, max_classes=2)
    assert counts(demand) == {"k8s.k8s-a.search.worker.1024m.4608Mi": (4, 0)}
    assert left == {}


def test_sizes_are_rounded_up_no_more_than_the_class_limit_needs() -> None:
    """4,400 and 5,000 MiB stay apart when rounded by an eighth (4,608 and 5,120) and meet at a quarter; the class
    labelled ``etl`` is never resized."""
    pods = [pod("a").ns("search").batch(1000, "4400Mi").obj(), pod("b").ns("search").batch(1000, "5000Mi").obj(),
            pod("c").ns("search").batch(1000, "4400Mi").of_class("etl").obj()]
    got = PodReader("k8s-a", NAMES, max_classes=2).read(
        {f"search/{p['metadata']['name']}": p for p in pods}, bindings("k8s-a"))
    assert counts(Demand(classes=got.classes)) == {"k8s.k8s-a.search.worker.1024m.5120Mi": (2, 0), "etl": (1, 0)}
    assert [c.shape.memory_mib for c in got.classes if c.name == "etl"] == [4400]
    assert any("rounded up by at most 1/4" in note for note in got.notes)


def test_past_the_class_limit_even_when_rounded_the_classes_with_the_fewest_pods_are_left_out() -> None:
    pods = [pod(f"p{cores}-{i}").ns("search").batch(cores * 1000, "1Gi").obj()
            for cores, copies in ((1, 3), (4, 2), (16, 1)) for i in range(copies)]
    demand, left = read(*pods, max_classes=2)
    assert counts(demand) == {"k8s.k8s-a.search.worker.1024m.1024Mi": (3, 0),
                              "k8s.k8s-a.search.worker.4096m.1024Mi": (2, 0)}
    assert left == {"class_limit": 1}


@pytest.mark.parametrize("bits", [1, 2, 3])
@pytest.mark.parametrize("amount", [1, 7, 8, 9, 100, 1000, 1023, 1024, 1025, 4300, 4608, 123_456, 2**40 + 1])
def test_rounding_up_adds_at_most_the_fraction_its_bits_allow_and_is_stable(amount: int, bits: int) -> None:
    up = rounded_up(amount, bits)
    assert amount <= up <= amount + amount / 2**bits and rounded_up(up, bits) == up


@pytest.mark.parametrize(("node", "phase", "deleting", "state"), [
    ("", "Pending", False, PodState.PENDING),
    ("", "", False, PodState.PENDING),
    ("", "Pending", True, None),
    ("n1", "Pending", False, PodState.RUNNING),
    ("n1", "Running", False, PodState.RUNNING),
    ("n1", "Running", True, PodState.RUNNING),
    ("n1", "Unknown", False, None),
    ("n1", "Succeeded", False, None),
    ("n1", "Failed", False, None),
], ids=["unbound", "unbound-no-phase", "unbound-deleted", "bound-starting", "bound-running", "bound-terminating",
        "node-lost", "succeeded", "failed"])
def test_pending_and_running_follow_binding_phase_and_deletion(node: str, phase: str, deleting: bool,
                                                               state: PodState | None) -> None:
    obj = bound(pod("p").batch(), node, phase)
    if deleting:
        obj["metadata"]["deletionTimestamp"] = "2026-11-21T19:45:00Z"
    assert pod_state(obj) is state


# --- what is kept of a pod --------------------------------------------------------------------------------------


def as_sent(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` with what the API server also sends of a Spark pod and the broker does not read: managedFields, owner
    references, env, ports, mounts, volumes, tolerations, conditions, container statuses."""
    sent = copy.deepcopy(obj)
    meta, spec, status = sent["metadata"], sent["spec"], sent["status"]
    meta["managedFields"] = [{"manager": "spark-submit", "operation": "Update", "apiVersion": "v1",
                              "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {".": {}}},
                                                                     "f:spec": {"f:containers": {}}}}]
    meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "Pod", "name": "driver", "uid": "uid-driver"}]
    meta["generateName"] = f"{meta['name']}-"
    for container in spec.get("containers", []) + spec.get("initContainers", []):
        container["env"] = [{"name": "SPARK_USER", "value": "spark"},
                            {"name": "SPARK_POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]
        container["ports"] = [{"name": "blockmanager", "containerPort": 7079, "protocol": "TCP"}]
        container["volumeMounts"] = [{"name": "spark-local-dir-1", "mountPath": "/var/data/spark-1"}]
        container["resources"]["claims"] = [{"name": "gpu"}]
        container["terminationMessagePolicy"] = "File"
    spec["volumes"] = [{"name": "spark-local-dir-1", "emptyDir": {}},
                       {"name": "token", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}]
    spec["tolerations"] = [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"}]
    spec["serviceAccountName"] = "spark"
    status["conditions"] = [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]
    status["containerStatuses"] = [{"name": "c", "ready": False, "restartCount": 0, "state": {"waiting": {}}}]
    status["qosClass"] = "Burstable"
    return sent


def varied_pods() -> dict[str, dict[str, Any]]:
    """Pods as sent, by key, covering every field the readers look at: roles, classes, teams, disk by label and by
    annotation, init containers and overhead, binding, phases, deletion, priority, start time, an unreadable pod, an
    online one, one of no team."""
    init = pod("init").ns("search").batch(1000, "1Gi").obj()
    init["spec"]["initContainers"] = [{"name": "fetch", "resources": {"limits": {f"{DOMAIN}/batch-cpu": "3000"}}}]
    init["spec"]["overhead"] = {f"{DOMAIN}/batch-memory": "256Mi"}
    annotated = pod("annotated").ns("ads").batch(1000, "1Gi").obj()
    annotated["metadata"]["annotations"] = {f"{DOMAIN}/needs-disk": "true", "prometheus.io/scrape": "true"}
    leaving = pod("leaving").ns("search").batch(2000, "4Gi").obj()
    leaving["metadata"]["deletionTimestamp"] = "2026-11-21T19:45:00Z"
    started = bound(pod("started").ns("ads").batch(2000, "4Gi").priority(100), "k8s-a-n1")
    started["status"]["startTime"] = "2026-11-21T19:41:00Z"
    unreadable = pod("unreadable").ns("search").batch(1000, "1Gi").obj()
    unreadable["spec"]["containers"][0]["resources"]["requests"][f"{DOMAIN}/batch-memory"] = "lots"
    pods = [
        pod("driver").ns("search").batch(1000, "2Gi").label("spark-role", "driver").obj(),
        *(executor(i).obj() for i in range(3)),
        bound(executor(3), "k8s-a-n2"),
        bound(executor(4), "k8s-a-n2", phase="Unknown"),
        pod("etl-0").ns("ads").batch(1000, "2Gi").of_class("ads-etl").obj(),
        bound(pod("etl-1").ns("ads").batch(1500, "3Gi").of_class("ads-etl").am(), "k8s-a-n3"),
        pod("shuffle").ns("ads").batch(1000, "1Gi").needs_disk().obj(),
        pod("guest").ns("search").batch(1000, "1Gi").of_team("ads").obj(),
        pod("tmp").ns("scratch").batch(1000, "1Gi").obj(),
        init, annotated, leaving, started, unreadable, online("web", "search"),
    ]
    out: dict[str, dict[str, Any]] = {}
    for i, obj in enumerate(pods):
        obj["metadata"]["resourceVersion"] = str(200 + i)
        out[f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"] = as_sent(obj)
    return out


def test_the_demand_of_the_kept_pods_is_the_demand_of_the_pods_as_sent() -> None:
    sent = varied_pods()
    whole = PodReader("k8s-a", NAMES, max_classes=100).read(sent, bindings("k8s-a"))
    trimmed = PodReader("k8s-a", NAMES, max_classes=100).read({k: kept(p) for k, p in sent.items()},
                                                             bindings("k8s-a"))
    assert trimmed == whole
    assert len(whole.classes) >= 6 and whole.unmapped and whole.unplanned  # the pods do exercise every outcome


def test_what_the_extender_reads_of_a_kept_pod_is_what_it_reads_of_the_pod_as_sent() -> None:
    for key, sent in varied_pods().items():
        trimmed = kept(sent)
        assert len(orjson.dumps(trimmed)) < len(orjson.dumps(sent)) / 2, key
        assert pod_state(trimmed) == pod_state(sent), key
        try:
            facts = read_pod(sent, NAMES)
        except InputError as exc:
            with pytest.raises(InputError) as caught:
                read_pod(trimmed, NAMES)
            assert str(caught.value) == str(exc), key
        else:
            assert read_pod(trimmed, NAMES) == facts, key


class Recorded(dict[str, Any]):
    """A pod, or an object within one, that notes in ``reads`` the path of every field read of it."""

    def __init__(self, value: dict[str, Any], path: tuple[str, ...], reads: set[tuple[str, ...]]) -> None:
        super().__init__(value)
        self._path, self._reads = path, reads

    def _field(self, key: str) -> Any:
        path = (*self._path, key)
        self._reads.add(path)
        return recorded(dict.__getitem__(self, key), path, self._reads)

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return self._field(key) if dict.__contains__(self, key) else self._missing(key, default)

    def _missing(self, key: str, default: Any) -> Any:
        self._reads.add((*self._path, key))
        return default

    def __getitem__(self, key: str) -> Any:
        return self._field(key)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self._reads.add((*self._path, key))
        return dict.__contains__(self, key)

    def __iter__(self) -> Iterator[str]:
        for key in dict.keys(self):
            self._reads.add((*self._path, key))
            yield key

    def items(self) -> Any:
        return [(key, self._field(key)) for key in dict.keys(self)]

    def values(self) -> Any:
        return [self._field(key) for key in dict.keys(self)]


def recorded(value: Any, path: tuple[str, ...], reads: set[tuple[str, ...]]) -> Any:
    """``value`` noting the reads of its fields (a list's elements share its path, as in ``Fields``)."""
    if isinstance(value, dict):
        return Recorded(value, path, reads)
    if isinstance(value, list):
        return [recorded(item, path, reads) for item in value]
    return value


def is_kept(path: tuple[str, ...], fields: Fields | None = READ_FIELDS) -> bool:
    for key in path:
        if fields is None:
            return True
        if key not in fields:
            return False
        fields = fields[key]
    return True


def test_every_field_the_demand_and_the_extender_read_of_a_pod_is_kept() -> None:
    """Reading a field of a pod that ``READ_FIELDS`` does not keep fails here, naming the field, before it can
    silently read as missing from the pods the broker follows."""
    reads: set[tuple[str, ...]] = set()
    sent = {key: recorded(obj, (), reads) for key, obj in varied_pods().items()}
    PodReader("k8s-a", NAMES, max_classes=100).read(sent, bindings("k8s-a"))
    for obj in sent.values():
        pod_state(obj)
        with contextlib.suppress(InputError):
            read_pod(obj, NAMES)
    assert {("metadata", "labels"), ("spec", "containers", "resources", "requests"), ("status", "phase")} <= reads
    assert sorted(".".join(path) for path in reads if not is_kept(path)) == []


# --- configuration -----------------------------------------------------------------------------------------------

REAL_FLEET = """\
fleet: {inventory: inventory.yaml, usage: agents}
agents: {listen: '127.0.0.1:0', token_file: token}
"""


def config_files(tmp_path: Path, text: str, clusters: tuple[str, ...] = CLUSTERS) -> Path:
    """``broker.yaml`` (a real fleet plus ``text``) beside an inventory of ``CLUSTERS`` and ``yarn-a``, the agents'
    token, a clusters file naming ``clusters`` and a YARN cluster file naming ``yarn-a``."""
    fleet = inventory(*CLUSTERS).model_dump(mode="json")
    fleet["clusters"].append({"name": "yarn-a", "kind": "yarn", "site": "idc-a"})
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump(fleet))
    (tmp_path / "token").write_text("token-for-tests")
    (tmp_path / "yarn.yaml").write_text(yaml.safe_dump({"clusters": [{"name": "yarn-a",
                                                                     "rm_urls": ["http://rm.yarn-a:8088"]}]}))
    clusters_file(tmp_path, {name: f"http://{name}.invalid:6443" for name in clusters})
    path = tmp_path / "broker.yaml"
    path.write_text(REAL_FLEET + text)
    return path


def test_yarn_and_kubernetes_demand_are_read_together(tmp_path: Path) -> None:
    env = {"BROKER_DEMAND__KIND": "yarn+kubernetes", "BROKER_KUBERNETES_CLUSTERS": "clusters.yaml"}
    config = load_service_config(config_files(tmp_path, "demand: {yarn: yarn.yaml}\n"), env)
    assert config.demand.kind is DemandKind.YARN_KUBERNETES
    assert config.demand.kind.reads_yarn and config.demand.kind.reads_kubernetes
    replica = build(config, {})
    assert replica.yarn_demand is not None and set(replica.yarn_demand.status()) == {"yarn-a"}
    assert replica.kubernetes_demand is not None and replica.kubernetes_demand.clusters == CLUSTERS
    asyncio.run(replica.kubernetes_demand.aclose())


@pytest.mark.parametrize(("text", "field"), [
    ("demand: {kind: kubernetes}\n", "demand.kind"),
    ("demand: {kind: yarn+kubernetes}\nkubernetes_clusters: clusters.yaml\n", "demand.yarn"),
    ("demand: {kind: kubernetes, yarn: yarn.yaml}\nkubernetes_clusters: clusters.yaml\n", "demand.yarn"),
    ("demand: {kind: kubernetes, max_age_s: 0}\nkubernetes_clusters: clusters.yaml\n", "demand.max_age_s"),
    ("demand: {kind: k8s}\nkubernetes_clusters: clusters.yaml\n", "demand.kind"),
], ids=["no-clusters-file", "no-yarn-cluster-file", "yarn-file-without-yarn", "zero-max-age", "unknown-kind"])
def test_a_kubernetes_demand_that_cannot_work_names_its_field(tmp_path: Path, text: str, field: str) -> None:
    with pytest.raises(InputError) as caught:
        load_service_config(config_files(tmp_path, text), {})
    assert field in str(caught.value)


def test_kubernetes_demand_needs_a_real_fleet(tmp_path: Path) -> None:
    clusters_file(tmp_path, {"k8s-a": "http://k8s-a.invalid:6443"})
    path = tmp_path / "broker.yaml"
    path.write_text("demand: {kind: kubernetes}\nkubernetes_clusters: clusters.yaml\n")
    with pytest.raises(InputError) as caught:
        load_service_config(path, {})
    assert caught.value.field.endswith("demand.kind")


def test_a_kubernetes_cluster_the_inventory_lacks_is_refused_at_start(tmp_path: Path) -> None:
    path = config_files(tmp_path, "demand: {kind: kubernetes}\nkubernetes_clusters: clusters.yaml\n",
                        clusters=("k8s-a", "k8s-c"))
    with pytest.raises(InputError) as caught:
        build(load_service_config(path, {}), {})
    assert caught.value.field == "kubernetes_clusters" and "k8s-c" in caught.value.message


# --- metrics -----------------------------------------------------------------------------------------------------


def test_kubernetes_demand_series_of_gone_clusters_teams_and_namespaces_are_removed_and_a_follower_drops_them(
        ) -> None:
    metrics = ServiceMetrics()
    metrics.kubernetes_demand_used({"k8s-a": 0.5, "k8s-b": 1.0}, {"search": 3, "ads": 1},
                                   {("k8s-a", "scratch"): 2, ("k8s-b", "tmp"): 1},
                                   {("k8s-a", UnplannedPods.CLASS_LIMIT): 4, ("k8s-b", UnplannedPods.INVALID): 1})
    metrics.kubernetes_demand_used({"k8s-a": 0.5}, {"search": 4}, {("k8s-a", "scratch"): 1},
                                   {("k8s-a", UnplannedPods.CLASS_LIMIT): 0})
    assert sample(metrics, "broker_kubernetes_demand_age_seconds", cluster="k8s-b") is None
    assert sample(metrics, "broker_kubernetes_demand_pending_pods", team="ads") is None
    assert sample(metrics, "broker_kubernetes_demand_unmapped_pods", cluster="k8s-b", namespace="tmp") is None
    assert sample(metrics, "broker_kubernetes_demand_unmapped_pods", cluster="k8s-a", namespace="scratch") == 1
    assert sample(metrics, "broker_kubernetes_demand_unplanned_pods", cluster="k8s-b", reason="invalid") is None
    assert sample(metrics, "broker_kubernetes_demand_unplanned_pods", cluster="k8s-a", reason="class_limit") == 0
    metrics.leadership("r1", True)
    metrics.leadership("r1", False)  # a deposed leader's figures must not be summed with the new leader's
    assert sample(metrics, "broker_kubernetes_demand_pending_pods", team="search") is None
    assert sample(metrics, "broker_kubernetes_demand_age_seconds", cluster="k8s-a") is None
