"""ServiceMetrics: what each call the loop makes shows in the exposition, in base units, with bounded labels."""

from __future__ import annotations

import math

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from broker.model import UNLIMITED, Resources, SolveReport, SolveStatus
from broker.quota import compute_runtime_quota
from broker.service.extender.metrics import ExtenderMetrics
from broker.service.observability import LoopStep, PushFailure, PushPath, ServiceMetrics, bound_gap
from tests.quota.builders import cpu, group, policy

from .conftest import FakeClock, exercise_everything, exercise_extender, node, plan, quota_ab, report, res, team

GiB = 2**30


def scrape(metrics: ServiceMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The exposition as the Prometheus server reads it: ``{(sample name, sorted labels): value}``."""
    body, content_type = metrics.exposition()
    assert content_type.startswith("text/plain; version=")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body.decode()) for s in family.samples}


def value(metrics: ServiceMetrics, name: str, **labels: str) -> float | None:
    return scrape(metrics).get((name, tuple(sorted(labels.items()))))


def names_with(metrics: ServiceMetrics, name: str, label: str) -> set[str]:
    return {dict(key)[label] for (sample, key) in scrape(metrics) if sample == name}


def test_the_exposition_of_every_metric_with_the_extenders_parses_back() -> None:
    registry = CollectorRegistry()
    metrics = ServiceMetrics(registry)
    exercise_everything(metrics)
    exercise_extender(ExtenderMetrics(registry, lambda: 0.0))
    parsed = {f.name: f for f in text_string_to_metric_families(metrics.exposition()[0].decode())}
    shown = {name for name, f in parsed.items() if f.samples and not name.endswith("_created")}
    assert shown == {f.name for f in registry.collect()}
    assert parsed["broker_loop_step_seconds"].type == "histogram"
    assert parsed["broker_push_failures"].type == "counter"
    assert parsed["broker_extender_request_seconds"].type == "histogram"


def test_every_service_metric_is_named_broker_and_no_label_is_a_node(full_registry: CollectorRegistry) -> None:
    for family in full_registry.collect():
        assert family.name.startswith("broker_")
        for sample in family.samples:
            assert "node" not in sample.labels


def test_a_published_plan_gives_lendable_and_lent_per_site_in_cores_and_bytes(metrics: ServiceMetrics) -> None:
    metrics.plan_published(plan(7, (node("n1", "idc-a", res(4, 1024)), node("n2", "idc-a", res(2.5, 1024)),
                                    node("n3", "idc-b", res(8, 4096))),
                                (team("a", **{"idc-a": res(1, 512)}), team("b", **{"idc-a": res(2), "idc-b": res(3)}))))
    assert value(metrics, "broker_pool_lendable", site="idc-a", dimension="cpu_cores") == 6.5
    assert value(metrics, "broker_pool_lendable", site="idc-a", dimension="memory_bytes") == 2 * GiB
    assert value(metrics, "broker_pool_lent", site="idc-a", dimension="cpu_cores") == 3.0
    assert value(metrics, "broker_pool_lent", site="idc-a", dimension="memory_bytes") == 512 * 2**20
    assert value(metrics, "broker_pool_lent", site="idc-b", dimension="cpu_cores") == 3.0
    assert value(metrics, "broker_plan_version") == 7


def test_a_site_that_leaves_the_plan_loses_its_series(metrics: ServiceMetrics) -> None:
    metrics.plan_published(plan(1, (node("n1", "idc-a", res(4)), node("n2", "idc-b", res(4)))))
    metrics.plan_published(plan(2, (node("n1", "idc-a", res(4)),)))
    assert names_with(metrics, "broker_pool_lendable", "site") == {"idc-a"}
    assert names_with(metrics, "broker_pool_lent", "site") == {"idc-a"}


def test_offline_usage_per_site_replaces_the_previous_report(metrics: ServiceMetrics) -> None:
    metrics.offline_used({"idc-a": res(1, 1024), "idc-b": res(2)})
    metrics.offline_used({"idc-a": res(3, 1024)})
    assert value(metrics, "broker_pool_used", site="idc-a", dimension="cpu_cores") == 3.0
    assert value(metrics, "broker_pool_used", site="idc-a", dimension="memory_bytes") == GiB
    assert names_with(metrics, "broker_pool_used", "site") == {"idc-a"}


def test_team_quota_borrowed_lent_and_used(metrics: ServiceMetrics) -> None:
    metrics.team_quota(quota_ab(), {"b": res(30)})
    assert value(metrics, "broker_team_runtime_quota", team="a", dimension="cpu_cores") == 5.0
    assert value(metrics, "broker_team_lent", team="a", dimension="cpu_cores") == 25.0
    assert value(metrics, "broker_team_borrowed", team="b", dimension="cpu_cores") == 25.0
    assert value(metrics, "broker_team_used", team="b", dimension="cpu_cores") == 30.0
    assert value(metrics, "broker_team_used", team="a", dimension="cpu_cores") == 0.0


def test_unlimited_is_exported_as_infinity(metrics: ServiceMetrics) -> None:
    metrics.offline_used({"idc-a": Resources.exact(cpu_milli=UNLIMITED, memory_mib=UNLIMITED)})
    assert value(metrics, "broker_pool_used", site="idc-a", dimension="cpu_cores") == math.inf


def test_a_team_missing_from_the_next_quota_is_forgotten(metrics: ServiceMetrics) -> None:

    metrics.team_quota(quota_ab(), {})
    metrics.team_quota(compute_runtime_quota(policy(group("b").min(cpu="10")), cpu(40), {"b": cpu(5)}), {})
    assert names_with(metrics, "broker_team_runtime_quota", "team") == {"b"}


@pytest.mark.parametrize(("solve", "gap"), [
    (SolveReport(status=SolveStatus.OPTIMAL, objective=95.0, lp_bound=100.0), 0.05),
    (SolveReport(status=SolveStatus.FEASIBLE, objective=100.0000001, lp_bound=100.0), 0.0),
    (SolveReport(status=SolveStatus.EMPTY), 0.0),
], ids=["gap", "rounding-above-bound", "empty"])
def test_gap_to_the_bound(solve: SolveReport, gap: float) -> None:
    assert bound_gap(solve) == pytest.approx(gap)


def test_no_bound_is_not_a_perfect_plan() -> None:
    assert math.isnan(bound_gap(SolveReport(status=SolveStatus.GREEDY, objective=10.0, lp_bound=0.0)))


def test_a_solve_records_time_status_objective_greedy_and_gap(metrics: ServiceMetrics) -> None:
    assert math.isnan(value(metrics, "broker_planner_bound_gap_ratio") or 0.0)
    metrics.planner_solved(SolveReport(status=SolveStatus.FEASIBLE, objective=90.0, lp_bound=100.0,
                                       greedy_objective=70.0, solve_seconds=1.5))
    assert value(metrics, "broker_planner_solve_seconds_count") == 1
    assert value(metrics, "broker_planner_solve_seconds_sum") == 1.5
    assert value(metrics, "broker_planner_solves_total", status="feasible") == 1
    assert value(metrics, "broker_planner_bound_gap_ratio") == pytest.approx(0.1)
    assert (value(metrics, "broker_planner_objective"), value(metrics, "broker_planner_greedy_objective")) == (90, 70)


def test_a_failed_step_is_timed_and_counted(metrics: ServiceMetrics) -> None:
    metrics.step_finished(LoopStep.COLLECT, 0.01, ok=True)
    metrics.step_finished(LoopStep.PUSH, 0.5, ok=False)
    assert value(metrics, "broker_loop_step_seconds_count", step="collect") == 1
    assert value(metrics, "broker_loop_step_seconds_count", step="push") == 1
    assert value(metrics, "broker_loop_step_failures_total", step="push") == 1
    assert value(metrics, "broker_loop_step_failures_total", step="collect") is None


def test_only_a_good_cycle_moves_the_last_success_timestamp(metrics: ServiceMetrics, clock: FakeClock) -> None:
    metrics.cycle_finished(ok=True)
    first = clock.now
    clock.now += 10
    metrics.cycle_finished(ok=False)
    assert value(metrics, "broker_loop_last_success_timestamp_seconds") == first
    assert value(metrics, "broker_loop_cycles_total", result="ok") == 1
    assert value(metrics, "broker_loop_cycles_total", result="failed") == 1


def test_plan_age_grows_until_the_next_plan(metrics: ServiceMetrics, clock: FakeClock) -> None:
    assert math.isnan(value(metrics, "broker_plan_age_seconds") or 0.0)
    metrics.plan_published(plan(1))
    clock.now += 25
    assert value(metrics, "broker_plan_age_seconds") == 25
    metrics.plan_published(plan(2))
    assert value(metrics, "broker_plan_age_seconds") == 0


@pytest.mark.parametrize(("sink_report", "reason"), [
    (report("yarn:prod", ok=False), "peer"),
    (report("yarn:prod", nodes_failed=3), "partial"),
    (report("yarn:prod"), None),
], ids=["peer", "partial", "ok"])
def test_a_push_report_is_timed_and_its_failure_counted_by_reason(metrics: ServiceMetrics, sink_report: object,
                                                                   reason: str | None) -> None:
    metrics.push_finished(sink_report)  # type: ignore[arg-type]
    assert value(metrics, "broker_push_seconds_count", sink="yarn:prod", path="loop") == 1
    failures = {dict(k)["reason"] for (n, k) in scrape(metrics) if n == "broker_push_failures_total"}
    assert failures == ({reason} if reason else set())


def test_a_push_cut_at_the_deadline_is_a_timeout(metrics: ServiceMetrics) -> None:
    metrics.push_failed("kubernetes:idc-1", PushFailure.TIMEOUT, 5.0, PushPath.FAST)
    assert value(metrics, "broker_push_failures_total", sink="kubernetes:idc-1", path="fast", reason="timeout") == 1
    assert value(metrics, "broker_push_seconds_sum", sink="kubernetes:idc-1", path="fast") == 5.0


def test_a_confirmed_shrink_counts_its_latency_and_evictions(metrics: ServiceMetrics) -> None:
    metrics.shrink_started(2)
    metrics.shrink_finished(report("yarn:prod", evicted=3), since_sample_s=0.8)
    metrics.shrink_finished(report("kubernetes:idc-1", ok=False), since_sample_s=1.9)
    assert value(metrics, "broker_fastpath_shrinks_total") == 2
    assert value(metrics, "broker_fastpath_shrink_seconds_count", sink="yarn:prod") == 1
    assert value(metrics, "broker_fastpath_shrink_seconds_bucket", sink="yarn:prod", le="1.0") == 1
    assert value(metrics, "broker_fastpath_shrink_seconds_count", sink="kubernetes:idc-1") is None
    assert value(metrics, "broker_push_failures_total", sink="kubernetes:idc-1", path="fast", reason="peer") == 1
    assert value(metrics, "broker_evictions_total", sink="yarn:prod") == 3


def test_two_seconds_is_a_bucket_edge_of_the_shrink_latency(metrics: ServiceMetrics) -> None:
    metrics.shrink_finished(report("yarn:prod"), since_sample_s=2.0)
    assert value(metrics, "broker_fastpath_shrink_seconds_bucket", sink="yarn:prod", le="2.0") == 1


def test_agents_are_summarised_without_a_series_per_node(metrics: ServiceMetrics) -> None:
    metrics.agent_samples([0.1, 0.4, -0.2])
    metrics.agents_seen(connected=4998, expected=5000, max_lag_s=3.5)
    assert value(metrics, "broker_agent_sample_lag_seconds_count") == 3
    assert value(metrics, "broker_agent_sample_lag_seconds_sum") == pytest.approx(0.5)
    assert value(metrics, "broker_agents_connected") == 4998
    assert value(metrics, "broker_agents_expected") == 5000
    assert value(metrics, "broker_agent_lag_max_seconds") == 3.5


def test_leadership_is_one_series_for_this_replica_and_changes_are_counted(metrics: ServiceMetrics) -> None:
    metrics.leadership("r1", leading=False)
    metrics.leadership("r1", leading=True)
    metrics.leadership("r1", leading=True)
    assert value(metrics, "broker_leader", replica="r1") == 1
    assert value(metrics, "broker_leader_changes_total") == 1
    metrics.leadership("r2", leading=False)
    assert names_with(metrics, "broker_leader", "replica") == {"r2"}


def test_a_deposed_leader_stops_exporting_what_only_the_leader_decides(metrics: ServiceMetrics) -> None:
    metrics.leadership("r1", leading=True)
    metrics.plan_published(plan(3, (node("n1", "idc-a", res(4)),)))
    metrics.offline_used({"idc-a": res(1)})
    metrics.team_quota(quota_ab(), {})
    metrics.planner_solved(SolveReport(status=SolveStatus.OPTIMAL, objective=9.0, lp_bound=10.0))
    metrics.leadership("r1", leading=False)
    samples = scrape(metrics)
    assert not [k for k in samples if k[0].startswith(("broker_pool_", "broker_team_"))]
    assert value(metrics, "broker_plan_version") == -1
    assert math.isnan(value(metrics, "broker_plan_age_seconds") or 0.0)
    assert math.isnan(value(metrics, "broker_planner_bound_gap_ratio") or 0.0)
    assert value(metrics, "broker_leader", replica="r1") == 0
    assert value(metrics, "broker_leader_changes_total") == 1


def test_store_errors_by_operation(metrics: ServiceMetrics) -> None:
    metrics.store_error("put_plan")
    metrics.store_error("put_plan")
    metrics.store_error("lease")
    assert value(metrics, "broker_store_errors_total", operation="put_plan") == 2
    assert value(metrics, "broker_store_errors_total", operation="lease") == 1


def test_each_instance_has_its_own_registry() -> None:
    first, second = ServiceMetrics(), ServiceMetrics()
    first.store_error("get_plan")
    assert value(second, "broker_store_errors_total", operation="get_plan") is None
