"""Builders for the observability tests: plans, quota and sink reports as the loop hands them over."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

from broker.model import NodePlan, Plan, Resources, SolveReport, SolveStatus, TeamPlan
from broker.quota import RuntimeQuota, compute_runtime_quota
from broker.service.extender.metrics import ExtenderMetrics
from broker.service.observability import DemandReadFailure, LoopStep, PushFailure, ServiceMetrics
from broker.service.observability.metrics import UnplannedPods
from broker.service.sinks.base import SinkReport
from tests.quota.builders import cpu, group, policy


class FakeClock:
    """Unix seconds that move only when told."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def res(cores: float, mib: int = 0) -> Resources:
    return Resources.exact(cpu_milli=int(cores * 1000), memory_mib=mib)


def node(name: str, site: str, lendable: Resources) -> NodePlan:
    return NodePlan(node=name, site=site, cluster=f"{site}-c", lendable=lendable)


def team(name: str, **placed_by_site: Resources) -> TeamPlan:
    return TeamPlan(team=name, placed_by_site=placed_by_site)


def plan(version: int, nodes: tuple[NodePlan, ...] = (), teams: tuple[TeamPlan, ...] = ()) -> Plan:
    return Plan(version=version, nodes=nodes, teams=teams)


def quota_ab() -> RuntimeQuota:
    """``a`` (min 30 cores) wants 5, ``b`` (min 10) wants 100: ``a`` lends 25 cores that ``b`` borrows."""
    return compute_runtime_quota(policy(group("a").min(cpu="30"), group("b").min(cpu="10")), cpu(40),
                                 {"a": cpu(5), "b": cpu(100)})


def report(sink: str, ok: bool = True, nodes_failed: int = 0, evicted: int = 0, seconds: float = 0.1) -> SinkReport:
    return SinkReport(sink=sink, ok=ok, nodes_failed=nodes_failed, evicted=evicted, seconds=seconds,
                      error=None if ok else "boom")


def exercise_everything(metrics: ServiceMetrics) -> None:
    """Call every method once, so that every labelled family has samples (their labels are read from them)."""
    metrics.loop_configured(10.0)
    for step in LoopStep:
        metrics.step_finished(step, 0.01, ok=step is not LoopStep.PUSH)
    metrics.cycle_finished(ok=True)
    metrics.planner_solved(SolveReport(status=SolveStatus.OPTIMAL, objective=9.0, lp_bound=10.0,
                                       greedy_objective=8.0, solve_seconds=0.2))
    metrics.plan_published(plan(1, (node("n1", "idc-a", res(4, 1024)),), (team("a", **{"idc-a": res(2)}),)))
    metrics.offline_used({"idc-a": res(1, 512)})
    metrics.team_quota(quota_ab(), {"a": res(3)})
    metrics.push_finished(report("yarn:prod", ok=False))
    metrics.push_failed("kubernetes:idc-a", PushFailure.TIMEOUT, 5.0)
    metrics.shrink_started(1)
    metrics.shrink_finished(report("yarn:prod", evicted=2), since_sample_s=0.4)
    metrics.agent_samples([0.2, 0.3])
    metrics.agents_seen(connected=3, expected=4, max_lag_s=1.5)
    metrics.leadership("replica-1", leading=True)
    metrics.store_error("put_plan")
    metrics.yarn_demand_read("yarn-a", 0.05)
    metrics.yarn_demand_read("yarn-b", 5.0, DemandReadFailure.TIMEOUT)
    metrics.yarn_demand_used({"yarn-a": 1.5, "yarn-b": math.inf}, {"a": 12}, {("yarn-a", "root.default"): 3})
    metrics.kubernetes_demand_failed("k8s-b")
    metrics.kubernetes_demand_used({"k8s-a": 0.5, "k8s-b": math.inf}, {"a": 4}, {("k8s-a", "scratch"): 2},
                                   {("k8s-a", UnplannedPods.CLASS_LIMIT): 1})


def exercise_extender(metrics: ExtenderMetrics) -> None:
    metrics.answered("filter", "ok", 0.001)
    metrics.nodes_passed.inc()
    metrics.plan_loads.labels("ok").inc()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def metrics(clock: FakeClock) -> ServiceMetrics:
    return ServiceMetrics(clock=clock)


@pytest.fixture
def full_registry() -> Iterator[CollectorRegistry]:
    """One registry as the service builds it: its own metrics and the extender's, each used once."""
    registry = CollectorRegistry()
    exercise_everything(ServiceMetrics(registry))
    exercise_extender(ExtenderMetrics(registry, lambda: 0.0))
    yield registry
