"""``demand.kind: yarn``: every cycle the loop reads pending and running work from each ResourceManager (stand-ins
speaking the RM REST contract), maps it to teams through the quota policy's queue bindings, and plans for it.

- Apps pending in a team's queue are that team's demand and are placed; running containers count as running.
- Each RM's work, pending and running, is placed only on the nodes of its own cluster; a replica whose YARN cluster
  file names a cluster the inventory does not list refuses to start, naming it (and the plan step would fail).
- Pending work in a queue of no team is counted per queue and logged, not dropped silently.
- One RM down: the other's demand flows, the down one's last good demand stands in until it is older than the
  max age, then the RM contributes nothing; it is visible in the metrics and in ``/readyz``; nothing raises.
"""

from __future__ import annotations

import asyncio
import logging
import math
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from broker.errors import InputError
from broker.model import Demand, Inventory, Plan, Resources, TeamBinding
from broker.quota import QuotaPolicy
from broker.service.control.config import ServiceConfig
from broker.service.control.leader import SoloElector
from broker.service.control.loop import ControlLoop, CycleOutcome
from broker.service.control.plans import PlanBoard
from broker.service.control.service import build
from broker.service.control.sources import AgentUsage, LiveWorld
from broker.service.control.storage import LocalPlans, ServiceStore
from broker.service.control.yarn_demand import ReadState, YarnDemandSource, running_classes, team_queues
from broker.service.observability import ServiceMetrics
from broker.store.memory import MemoryStore
from broker.store.policy_log import PolicyLog
from broker.yarn_bridge import RMClient, YarnCluster
from plugins.node_agent.wire import NodeSample
from tests.quota.builders import group, policy
from tests.service_sinks.conftest import RestartableRM
from tests.yarn_bridge.standin_rm import CS, RMServer, StandinRM

CORES, MEMORY_GIB = 32, 64
TEAMS = ("search", "ads")


# --- builders -------------------------------------------------------------------------------------------------


def ask(count: int, memory_mb: int, vcores: int, *, am: bool = False, label: str = "") -> dict[str, Any]:
    """A pending ask as the RM lists it under an app's ``resourceRequests`` (the ANY request)."""
    return {"priority": 0 if am else 1, "resourceName": "*", "capability": {"memory": memory_mb, "vCores": vcores},
            "numContainers": count, "nodeLabelExpression": label}


def app(n: int, queue: str, *asks: dict[str, Any], running: tuple[int, int, int] = (0, 0, 0)) -> dict[str, Any]:
    """App ``n`` in ``queue``; ``running``: (containers, MB, vCores) it holds (a RUNNING app when any)."""
    containers, mb, vcores = running
    return {"id": f"application_1700000000000_{n:04d}", "queue": queue,
            "state": "RUNNING" if containers else "ACCEPTED", "allocatedMB": mb, "allocatedVCores": vcores,
            "runningContainers": containers, "resourceRequests": list(asks)}


def rm(*apps: dict[str, Any]) -> StandinRM:
    """An active RM with root.offline.{search,ads,other} (other belongs to no team)."""
    conf = {f"{CS}root.queues": "offline", f"{CS}root.offline.capacity": "100",
            f"{CS}root.offline.queues": "search,ads,other"}
    conf.update({f"{CS}root.offline.{leaf}.capacity": c for leaf, c in (("search", "40"), ("ads", "40"),
                                                                          ("other", "20"))})
    return StandinRM.with_nodes(0, conf=conf, apps=list(apps))


def cluster(name: str, *urls: str) -> YarnCluster:
    return YarnCluster.model_validate({"name": name, "site": "idc-a", "rm_urls": list(urls), "timeout_s": 1.0,
                                       "retries": 1, "backoff_s": 0.01})


def team_policy(*clusters: str) -> QuotaPolicy:
    """search and ads, each bound to root.offline.<team> on every cluster."""
    groups = []
    for team in TEAMS:
        builder = group(team)
        for name in clusters:
            builder = builder.queues(name, f"root.offline.{team}")
        groups.append(builder)
    return policy(*groups)


def inventory(*clusters: str) -> Inventory:
    """Per cluster two stable and two elastic nodes with disks, 32 cores and 64 GiB each."""
    return Inventory.model_validate({
        "sites": [{"name": "idc-a"}],
        "clusters": [{"name": name, "kind": "yarn", "site": "idc-a"} for name in clusters],
        "nodes": [{"name": f"{name}-n{i}", "site": "idc-a", "cluster": name, "stable": i < 2, "disk": True,
                   "capacity": {"cpu": CORES, "memory": f"{MEMORY_GIB}Gi"}} for name in clusters for i in range(4)],
    })


def quiet(fleet: Inventory) -> dict[str, NodeSample]:
    """Every node's agent reporting 4 cores and 8 GiB of online usage, now."""
    return {node.name: NodeSample(node=node.name, seq=1, sampled_at_s=time.time(), capacity_cpu_milli=CORES * 1000,
                                  capacity_memory_mib=MEMORY_GIB * 1024, online_cpu_milli=4000,
                                  online_memory_mib=8192) for node in fleet.nodes}


class Clock:
    """Monotonic seconds that move only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def source(*clusters: YarnCluster, metrics: ServiceMetrics | None = None, max_age_s: float = 30.0,
           clock: Clock | None = None, timeout_s: float = 2.0) -> YarnDemandSource:
    return YarnDemandSource([RMClient(c) for c in clusters], metrics or ServiceMetrics(), timeout_s=timeout_s,
                            max_age_s=max_age_s, clock=clock or time.monotonic)


def loop_over(demand: YarnDemandSource, fleet: Inventory, quota: QuotaPolicy, metrics: ServiceMetrics) -> ControlLoop:
    """A leader's loop as ``broker serve`` assembles it for a real fleet, with agents that report ``quiet``."""
    samples = quiet(fleet)
    store = ServiceStore(MemoryStore(), LocalPlans())
    PolicyLog(store.policies).apply(quota, author="test", comment="teams bound to their queues")
    config = ServiceConfig.model_validate({"replica": "test", "interval_s": 1.0, "planner": {"time_limit_s": 2.0},
                                           "log": {"format": "text"}})
    world = LiveWorld(fleet, AgentUsage(fleet, lambda: samples), demand)
    return ControlLoop(config, world, store, PlanBoard(), SoloElector(), [], metrics, fenced_store=False)


async def cycles(loop: ControlLoop, count: int = 1) -> list[CycleOutcome]:
    await loop.campaign()
    return [await loop.cycle() for _ in range(count)]


def placed(plan: Plan, demand_class: str) -> int:
    return sum(p.count for n in plan.nodes for p in n.placements if p.demand_class == demand_class)


def sample(metrics: ServiceMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


@pytest.fixture
def servers() -> Iterator[list[RMServer]]:
    started: list[RMServer] = []
    yield started
    for server in started:
        server.stop()


@pytest.fixture
def hung_rm() -> Iterator[str]:
    """The URL of an RM that accepts connections and never answers (the kernel completes the handshake)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def serve(servers: list[RMServer], standin: StandinRM) -> RMServer:
    server = RMServer(standin).start()
    servers.append(server)
    return server


# --- pending and running work becomes the teams' demand --------------------------------------------------------


def test_apps_pending_in_a_teams_queue_are_its_demand_and_are_placed(servers: list[RMServer]) -> None:
    server = serve(servers, rm(app(1, "root.offline.search", ask(1, 2048, 1, am=True), ask(10, 4096, 2)),
                               app(2, "ads", ask(4, 2048, 1, label="disk-elastic"))))
    metrics = ServiceMetrics()
    demand = source(cluster("yarn-a", server.url), metrics=metrics)

    async def go() -> list[CycleOutcome]:
        try:
            return await cycles(loop_over(demand, inventory("yarn-a"), team_policy("yarn-a"), metrics))
        finally:
            await demand.aclose()

    [outcome] = asyncio.run(go())
    plan = outcome.plan
    assert plan is not None, outcome.failed_step
    assert placed(plan, "yarn.yarn-a.search.am.2048Mi.1c") == 1
    assert placed(plan, "yarn.yarn-a.search.worker.4096Mi.2c") == 10
    assert placed(plan, "yarn.yarn-a.ads.worker.2048Mi.1c.disk-elastic") == 4  # the leaf name maps too
    stable = {n.name for n in inventory("yarn-a").nodes if n.stable}
    assert all(n.node in stable for n in plan.nodes for p in n.placements if p.is_am)
    teams = {t.team: t for t in plan.teams}
    assert teams["search"].placed == Resources.of(cpu="21", memory=f"{2 + 40}Gi")
    assert teams["search"].binding.yarn_queues == {"yarn-a": ("root.offline.search",)}
    assert sample(metrics, "broker_yarn_demand_pending_containers", team="search") == 11
    assert sample(metrics, "broker_yarn_demand_pending_containers", team="ads") == 4


def test_each_rms_work_is_planned_only_on_its_own_clusters_nodes(servers: list[RMServer]) -> None:
    """search asks yarn-a for more than yarn-a's four nodes lend, while yarn-b has room to spare: the rest stays
    unmet, explained by the cluster, rather than landing where yarn-a's RM cannot start it."""
    a = serve(servers, rm(app(1, "search", ask(2, 2048, 1, am=True), ask(40, 8192, 4), running=(2, 4096, 2))))
    b = serve(servers, rm(app(2, "ads", ask(1, 2048, 1, am=True), ask(6, 4096, 2))))
    metrics = ServiceMetrics()
    demand = source(cluster("yarn-a", a.url), cluster("yarn-b", b.url), metrics=metrics)
    fleet = inventory("yarn-a", "yarn-b")

    async def go() -> list[CycleOutcome]:
        try:
            return await cycles(loop_over(demand, fleet, team_policy("yarn-a", "yarn-b"), metrics))
        finally:
            await demand.aclose()

    [outcome] = asyncio.run(go())
    plan = outcome.plan
    assert plan is not None, outcome.failed_step
    cluster_of = {n.name: n.cluster for n in fleet.nodes}
    seen: dict[str, set[str]] = {}
    for node in plan.nodes:
        for p in node.placements:
            seen.setdefault(p.demand_class, set()).add(cluster_of[node.node])
    assert seen == {"yarn.yarn-a.search.am.2048Mi.1c": {"yarn-a"}, "yarn.yarn-a.search.worker.8192Mi.4c": {"yarn-a"},
                    "yarn.yarn-a.search.running.2048Mi.1c": {"yarn-a"}, "yarn.yarn-b.ads.am.2048Mi.1c": {"yarn-b"},
                    "yarn.yarn-b.ads.worker.4096Mi.2c": {"yarn-b"}}
    assert placed(plan, "yarn.yarn-b.ads.worker.4096Mi.2c") == 6
    [why] = plan.unmet
    assert why.demand_class == "yarn.yarn-a.search.worker.8192Mi.4c" and 0 < why.placed < 40
    assert why.detail == "only nodes of cluster yarn-a may run it, and none of them has room"
    by_cluster = {t.team: t.placed_by_cluster for t in plan.teams}
    assert set(by_cluster["search"]) == {"yarn-a"} and set(by_cluster["ads"]) == {"yarn-b"}


def test_an_rm_of_a_cluster_the_inventory_does_not_list_fails_the_plan_step_naming_it(
        servers: list[RMServer], caplog: pytest.LogCaptureFixture) -> None:
    a = serve(servers, rm(app(1, "search", ask(2, 1024, 1))))
    b = serve(servers, rm(app(2, "ads", ask(3, 1024, 1))))
    metrics = ServiceMetrics()
    demand = source(cluster("yarn-a", a.url), cluster("yarn-b", b.url), metrics=metrics)

    async def go() -> list[CycleOutcome]:
        try:
            return await cycles(loop_over(demand, inventory("yarn-a"), team_policy("yarn-a", "yarn-b"), metrics))
        finally:
            await demand.aclose()

    with caplog.at_level(logging.WARNING, logger="broker.service.control.loop"):
        [outcome] = asyncio.run(go())
    assert outcome.plan is None and outcome.failed_step == "plan"
    assert any("cluster: unknown cluster 'yarn-b'" in r.getMessage() for r in caplog.records)


def test_running_containers_count_as_running_for_the_extender_and_the_quota(servers: list[RMServer]) -> None:
    """ads runs 3 containers holding 5 vCores and 10,000 MB, and asks for 2 more."""
    server = serve(servers, rm(app(1, "root.offline.ads", ask(2, 2048, 1), running=(3, 10_000, 5))))
    metrics = ServiceMetrics()
    demand = source(cluster("yarn-a", server.url), metrics=metrics)

    async def go() -> list[CycleOutcome]:
        try:
            return await cycles(loop_over(demand, inventory("yarn-a"), team_policy("yarn-a"), metrics))
        finally:
            await demand.aclose()

    [outcome] = asyncio.run(go())
    assert outcome.plan is not None and outcome.quota is not None, outcome.failed_step
    ads = next(t for t in outcome.plan.teams if t.team == "ads")
    held = Resources.exact(cpu_milli=5000, memory_mib=10_000)
    assert ads.running == held  # what the extender charges ads before its new pods
    assert ads.placed == held + Resources.of(cpu="2", memory="4Gi")  # the running work keeps its capacity
    wanted = outcome.quota.groups["ads"].demand
    assert (wanted.cpu_milli, wanted.memory_mib) == (7000, 10_000 + 4096)


@pytest.mark.parametrize(("used", "expected"), [
    (Resources.exact(cpu_milli=5000, memory_mib=10_000), {(1000, 2000): 5}),
    (Resources.exact(cpu_milli=3000, memory_mib=10_000), {(1000, 3333): 2, (1000, 3334): 1}),
    (Resources.exact(cpu_milli=0, memory_mib=1024), {(0, 1024): 1}),
    (Resources.exact(cpu_milli=2000, memory_mib=0), {(1000, 0): 2}),
    (Resources.exact(), {}),
], ids=["even", "uneven-memory", "memory-only", "cpu-only", "nothing"])
def test_running_usage_becomes_running_one_vcore_containers_adding_up_exactly(
        used: Resources, expected: dict[tuple[int, int], int]) -> None:
    classes = running_classes("yarn-a", "ads", used)
    assert {(c.shape.cpu_milli, c.shape.memory_mib): c.count for c in classes} == expected
    assert all(c.running == c.count and c.team == "ads" and not c.is_am and c.cluster == "yarn-a" for c in classes)
    total = Resources()
    for c in classes:
        total = total + c.shape * c.count
    assert total == used
    Demand(classes=classes)  # names unique and valid


def test_a_teams_queues_are_its_policy_binding_else_the_cluster_files() -> None:
    on_file = YarnCluster.model_validate({"name": "yarn-a", "rm_urls": ["http://rm:8088"], "team_queues": {
        "search": ["root.file.search"], "etl": ["root.file.etl"]}})
    bindings = {"search": TeamBinding(yarn_queues={"yarn-a": ("root.offline.search",)}),
                "ads": TeamBinding(yarn_queues={"yarn-b": ("root.offline.ads",)})}
    assert team_queues(bindings, on_file) == {"search": ("root.offline.search",), "etl": ("root.file.etl",)}


def test_pending_work_in_a_queue_of_no_team_is_counted_and_logged(servers: list[RMServer],
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    server = serve(servers, rm(app(1, "other", ask(3, 1024, 1)), app(2, "search", ask(2, 1024, 1))))
    metrics = ServiceMetrics()
    demand = source(cluster("yarn-a", server.url), metrics=metrics)
    bindings = team_policy("yarn-a").bindings()

    async def go() -> tuple[Demand, Demand]:
        try:
            return await demand.demand(0.0, bindings), await demand.demand(0.0, bindings)
        finally:
            await demand.aclose()

    with caplog.at_level(logging.WARNING, logger="broker.service.control.yarn_demand"):
        first, _ = asyncio.run(go())
    assert {c.team for c in first.classes} == {"search"}
    assert sample(metrics, "broker_yarn_demand_unmapped_containers", cluster="yarn-a", queue="other") == 3
    logged = [r.getMessage() for r in caplog.records if "queues of no team" in r.getMessage()]
    assert len(logged) == 1 and "other (3)" in logged[0]  # once, not every cycle


# --- one RM down -------------------------------------------------------------------------------------------------


def test_one_rm_down_its_last_good_demand_stands_in_until_the_max_age_then_it_is_dropped(
        servers: list[RMServer]) -> None:
    a = serve(servers, rm(app(1, "search", ask(5, 1024, 1))))
    b = RestartableRM(rm(app(2, "ads", ask(7, 1024, 1), running=(1, 2048, 2))))
    clock, metrics = Clock(), ServiceMetrics()
    demand = source(cluster("yarn-a", a.url), cluster("yarn-b", b.url), metrics=metrics, max_age_s=30.0,
                    clock=clock)
    bindings = team_policy("yarn-a", "yarn-b").bindings()

    def teams(of: Demand) -> dict[str, int]:
        out: dict[str, int] = {}
        for item in of.classes:
            out[item.team] = out.get(item.team, 0) + item.count
        return out

    async def go() -> None:
        try:
            assert teams(await demand.demand(0.0, bindings)) == {"search": 5, "ads": 7 + 2}
            b.stop()
            clock.now += 20
            assert teams(await demand.demand(0.0, bindings)) == {"search": 5, "ads": 9}  # b's last good read
            status = demand.status()
            assert status["yarn-b"].state is ReadState.STALE and status["yarn-b"].age_s == 20.0
            assert status["yarn-b"].error is not None and "yarn-b" in status["yarn-b"].error
            assert sample(metrics, "broker_yarn_demand_age_seconds", cluster="yarn-b") == 20.0
            clock.now += 11
            assert teams(await demand.demand(0.0, bindings)) == {"search": 5}  # older than 30 s: dropped
            assert demand.status()["yarn-b"].state is ReadState.MISSING
            assert sample(metrics, "broker_yarn_demand_age_seconds", cluster="yarn-b") == math.inf
            assert sample(metrics, "broker_yarn_demand_pending_containers", team="ads") == 0
            assert demand.status()["yarn-a"].state is ReadState.FRESH
            b.start()
            assert teams(await demand.demand(0.0, bindings)) == {"search": 5, "ads": 9}  # back: read again
            assert demand.status()["yarn-b"].state is ReadState.FRESH
        finally:
            b.stop()
            await demand.aclose()

    asyncio.run(go())
    assert sample(metrics, "broker_yarn_demand_read_failures_total", cluster="yarn-b", reason="peer") == 2
    assert sample(metrics, "broker_yarn_demand_read_failures_total", cluster="yarn-a", reason="peer") is None
    assert sample(metrics, "broker_yarn_demand_read_seconds_count", cluster="yarn-a") == 4


def test_an_rm_that_hangs_or_has_no_active_member_never_fails_the_cycle(
        servers: list[RMServer], hung_rm: str, caplog: pytest.LogCaptureFixture) -> None:
    """yarn-a answers; yarn-b hangs past the read's timeout; yarn-c is a standby that knows no active RM."""
    a = serve(servers, rm(app(1, "search", ask(5, 1024, 1))))
    c = serve(servers, StandinRM.with_nodes(0, ha_state="STANDBY"))
    metrics = ServiceMetrics()
    demand = source(cluster("yarn-a", a.url), cluster("yarn-b", hung_rm), cluster("yarn-c", c.url),
                    metrics=metrics, timeout_s=0.5)

    async def go() -> tuple[list[CycleOutcome], float]:
        loop = loop_over(demand, inventory("yarn-a", "yarn-b", "yarn-c"), team_policy("yarn-a", "yarn-b", "yarn-c"),
                         metrics)
        started = time.perf_counter()
        try:
            return await cycles(loop), time.perf_counter() - started
        finally:
            await demand.aclose()

    with caplog.at_level(logging.WARNING):
        [outcome], seconds = asyncio.run(go())
    assert outcome.failed_step is None and outcome.plan is not None
    assert placed(outcome.plan, "yarn.yarn-a.search.worker.1024Mi.1c") == 5
    assert sample(metrics, "broker_yarn_demand_read_failures_total", cluster="yarn-b", reason="timeout") == 1
    assert sample(metrics, "broker_yarn_demand_read_failures_total", cluster="yarn-c", reason="peer") == 1
    assert seconds < 2.0  # the hanging RM cost the read's timeout (0.5 s), not its client's (1 s, retried)
    assert all(r.exc_info is None for r in caplog.records)  # one line each, no traceback
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "yarn-b not read (timeout)" in messages and "no active ResourceManager" in messages


def test_yarn_demand_series_of_gone_clusters_teams_and_queues_are_removed_and_a_follower_drops_them() -> None:
    metrics = ServiceMetrics()
    metrics.yarn_demand_used({"yarn-a": 0.5, "yarn-b": 1.0}, {"search": 3, "ads": 1},
                             {("yarn-a", "other"): 2, ("yarn-b", "tmp"): 1})
    metrics.yarn_demand_used({"yarn-a": 0.5}, {"search": 4}, {("yarn-a", "other"): 1})
    assert sample(metrics, "broker_yarn_demand_age_seconds", cluster="yarn-b") is None
    assert sample(metrics, "broker_yarn_demand_pending_containers", team="ads") is None
    assert sample(metrics, "broker_yarn_demand_unmapped_containers", cluster="yarn-b", queue="tmp") is None
    assert sample(metrics, "broker_yarn_demand_unmapped_containers", cluster="yarn-a", queue="other") == 1
    metrics.leadership("r1", True)
    metrics.leadership("r1", False)  # a deposed leader's figures must not be summed with the new leader's
    assert sample(metrics, "broker_yarn_demand_pending_containers", team="search") is None
    assert sample(metrics, "broker_yarn_demand_age_seconds", cluster="yarn-a") is None


# --- the replica -------------------------------------------------------------------------------------------------


def test_a_replica_reads_its_rms_every_cycle_and_readyz_shows_each_ones_state(tmp_path: Path,
                                                                              servers: list[RMServer]) -> None:
    up = serve(servers, rm(app(1, "search", ask(5, 1024, 1)), app(2, "other", ask(1, 1024, 1))))

    def write(name: str, data: Any) -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(data), encoding="utf-8")
        return path

    fleet = inventory("yarn-a", "yarn-b")
    write("inventory.yaml", fleet.model_dump(mode="json"))
    write("policy.yaml", team_policy("yarn-a").for_storage())
    write("yarn.yaml", {"clusters": [
        {"name": "yarn-a", "rm_urls": [up.url], "timeout_s": 1.0, "retries": 0},
        {"name": "yarn-b", "rm_urls": ["http://127.0.0.1:9"], "timeout_s": 1.0, "retries": 0}]})
    (tmp_path / "token").write_text("token-for-tests")
    config = ServiceConfig.model_validate({
        "replica": "yarn-demand", "interval_s": 1.0, "http": {"port": 0}, "log": {"format": "text"},
        "policy": str(tmp_path / "policy.yaml"),
        "fleet": {"inventory": str(tmp_path / "inventory.yaml"), "usage": "agents"},
        "agents": {"listen": "127.0.0.1:0", "token_file": str(tmp_path / "token")},
        "demand": {"kind": "yarn", "yarn": str(tmp_path / "yarn.yaml")},
    })
    replica = build(config, {})
    reader = replica.yarn_demand
    assert reader is not None

    async def go() -> CycleOutcome:
        try:
            return (await cycles(replica.loop))[0]
        finally:
            await reader.aclose()

    outcome = asyncio.run(go())
    assert outcome.plan is not None, outcome.failed_step
    # no agent has reported: nothing is lent, and the plan says why the YARN demand is unmet
    assert {u.demand_class for u in outcome.plan.unmet} == {"yarn.yarn-a.search.worker.1024Mi.1c"}
    body = replica.readiness()[1]
    states = body["yarn_demand"]
    assert isinstance(states, dict)
    assert states["yarn-a"]["state"] == "fresh" and states["yarn-a"]["error"] is None
    assert states["yarn-b"]["state"] == "missing" and "yarn-b" in states["yarn-b"]["error"]
    exposition = replica.metrics.exposition()[0].decode()
    assert 'broker_yarn_demand_unmapped_containers{cluster="yarn-a",queue="other"} 1.0' in exposition
    assert 'broker_yarn_demand_age_seconds{cluster="yarn-b"} +Inf' in exposition


def test_a_replica_refuses_to_start_with_a_yarn_cluster_the_inventory_does_not_list(tmp_path: Path) -> None:
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump(inventory("yarn-a").model_dump(mode="json")))
    (tmp_path / "demand-yarn.yaml").write_text(yaml.safe_dump({"clusters": [
        {"name": "yarn-a", "rm_urls": ["http://127.0.0.1:9"]}, {"name": "yarn-z", "rm_urls": ["http://127.0.0.1:9"]}]}))
    (tmp_path / "token").write_text("token-for-tests")
    config = ServiceConfig.model_validate({
        "replica": "yarn-demand", "http": {"port": 0}, "log": {"format": "text"},
        "fleet": {"inventory": str(tmp_path / "inventory.yaml"), "usage": "agents"},
        "agents": {"listen": "127.0.0.1:0", "token_file": str(tmp_path / "token")},
        "demand": {"kind": "yarn", "yarn": str(tmp_path / "demand-yarn.yaml")},
    })
    with pytest.raises(InputError) as refused:
        build(config, {})
    assert refused.value.field == "demand.yarn" and "yarn-z" in str(refused.value)
