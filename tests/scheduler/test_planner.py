"""The planner's behaviour, one rule per test; every plan goes through the independent checker."""

from __future__ import annotations

import pytest

from broker.model import Binding, Plan, SolveStatus
from broker.scheduler import PlacementProblem, check_feasible, instance, plan, score, solve

from .builders import fleet


def feasible_plan(problem: PlacementProblem, **kwargs: float) -> Plan:
    result = plan(problem, **kwargs)  # type: ignore[arg-type]
    assert check_feasible(problem, result) == ()
    return result


def placed(result: Plan, demand_class: str) -> int:
    return sum(p.count for n in result.nodes for p in n.placements if p.demand_class == demand_class)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_synthetic_plans_are_feasible_and_between_greedy_and_the_lp_bound(seed: int) -> None:
    problem = instance(nodes=120, teams=6, classes=20, sites=3, seed=seed)
    report = feasible_plan(problem).solve
    assert report.greedy_objective <= report.objective <= report.lp_bound + 1e-6


@pytest.mark.parametrize("seed", [0, 5])
def test_score_recomputed_from_the_plan_equals_the_reported_objective(seed: int) -> None:
    problem = instance(nodes=80, teams=4, classes=12, sites=2, seed=seed)
    result = plan(problem)
    assert score(problem, result).value == pytest.approx(result.solve.objective, rel=1e-9)


def test_same_inputs_and_seed_give_the_same_plan() -> None:
    problem = instance(nodes=150, teams=5, classes=15, seed=4)
    first = plan(problem, seed=7).model_dump(exclude={"solve"})
    assert plan(problem, seed=7).model_dump(exclude={"solve"}) == first


def test_where_labels_and_bandwidth_bind_the_plan_places_10_percent_more_than_greedy() -> None:
    solution = solve(instance(nodes=1000, teams=20, classes=60, seed=0), time_limit_s=10)
    assert solution.levels.guaranteed_plus_fair >= 1.10 * solution.greedy_levels.guaranteed_plus_fair


def test_am_goes_only_to_stable_nodes() -> None:
    problem = (fleet().node("elastic", cpu="64", memory="256Gi")
               .node("stable", cpu="4", memory="16Gi", stable=True)
               .want("am", count=10, cpu="1", memory="2Gi", is_am=True).quota(runtime={}).build())
    result = feasible_plan(problem)
    assert placed(result, "am") == 4
    [why] = result.unmet
    assert why.binding is Binding.LABEL and "stable" in why.would_help


def test_shuffle_writers_need_disk_unless_they_use_remote_shuffle() -> None:
    problem = (fleet().node("diskless", cpu="8", memory="32Gi", disk=False)
               .want("local-shuffle", count=2, needs_disk=True)
               .want("remote-shuffle", count=2, needs_disk=True, remote_shuffle=True)
               .quota(runtime={}).build())
    result = feasible_plan(problem)
    assert (placed(result, "local-shuffle"), placed(result, "remote-shuffle")) == (0, 2)
    assert [(e.demand_class, e.binding) for e in result.unmet] == [("local-shuffle", Binding.LABEL)]


def test_bin_packing_places_whole_containers_only() -> None:
    problem = (fleet().node("n", cpu="3500m", memory="64Gi").want("exec", count=5, cpu="2", memory="4Gi")
               .quota(runtime={}).build())
    result = feasible_plan(problem)
    assert placed(result, "exec") == 1
    assert result.unmet[0].binding is Binding.CAPACITY


def test_runtime_quota_caps_a_team_and_says_by_how_much_to_raise_it() -> None:
    problem = (fleet().node("n", cpu="64", memory="256Gi").want("w", count=10, cpu="2", memory="4Gi")
               .quota(runtime={"cpu": "8"}).build())
    result = feasible_plan(problem)
    assert placed(result, "w") == 4
    [why] = result.unmet
    assert why.binding is Binding.QUOTA and why.would_help == "raise t's runtime quota by cpu=12"


def test_a_team_without_quota_gets_nothing_and_is_told_why() -> None:
    problem = fleet().node("n").want("w", team="stranger", count=1).build()
    [why] = feasible_plan(problem).unmet
    assert why.binding is Binding.QUOTA and "no runtime quota" in why.detail


def test_remote_reads_stay_within_the_free_link_bandwidth() -> None:
    problem = (fleet().site("a").site("b").node("far", site="b", cpu="64", memory="256Gi")
               .link("a", "b", capacity=1000, online=700)
               .want("reader", count=10, data_site="a", read_mbps=100).quota(runtime={}).build())
    result = feasible_plan(problem)
    assert placed(result, "reader") == 3
    assert result.links[0].offline_mbps == 300
    [why] = result.unmet
    assert why.binding is Binding.BANDWIDTH and "a<->b" in why.detail
    assert why.would_help == "700 Mbit/s more on a link from a would place 7 of the 7 missing"


def test_more_bandwidth_is_asked_only_for_what_the_remote_room_could_hold() -> None:
    problem = (fleet().site("a").site("b").node("far", site="b", cpu="4", memory="16Gi")
               .link("a", "b", capacity=1000, online=900)
               .want("reader", count=50, data_site="a", read_mbps=100).quota(runtime={}).build())
    result = feasible_plan(problem)
    assert placed(result, "reader") == 1
    [why] = result.unmet
    assert why.binding is Binding.BANDWIDTH
    assert why.would_help == "300 Mbit/s more on a link from a would place 3 of the 49 missing"


def test_data_sites_without_a_link_are_unreachable() -> None:
    problem = (fleet().site("a").site("b").node("far", site="b")
               .want("reader", count=1, data_site="a", read_mbps=10).quota(runtime={}).build())
    [why] = feasible_plan(problem).unmet
    assert why.binding is Binding.BANDWIDTH and "no link" in why.detail


def test_node_nic_budget_limits_readers() -> None:
    problem = (fleet().node("n", cpu="64", memory="256Gi", nic=250).want("reader", count=5, read_mbps=100)
               .quota(runtime={}).build())
    result = feasible_plan(problem)
    assert placed(result, "reader") == 2
    assert result.unmet[0].binding is Binding.BANDWIDTH


def test_guarantees_come_before_priority_and_the_rest_is_shared_fairly() -> None:
    problem = (fleet().node("n", cpu="8", memory="32Gi")
               .want("urgent", team="borrower", count=8, priority=100)
               .want("owed", team="owner", count=8)
               .quota("borrower", runtime={}).quota("owner", min={"cpu": "6", "memory": "24Gi"}, runtime={})
               .build())
    result = feasible_plan(problem)
    # 6 cores guaranteed to the owner, the 2 left split by equal weight, whatever the borrower's priority.
    assert (placed(result, "owed"), placed(result, "urgent")) == (7, 1)


def test_capacity_above_guarantees_is_shared_by_weight() -> None:
    problem = (fleet().node("n", cpu="12", memory="48Gi")
               .want("a", team="heavy", count=12).want("b", team="light", count=12)
               .quota("heavy", runtime={}, weight=2).quota("light", runtime={}, weight=1).build())
    result = feasible_plan(problem)
    assert (placed(result, "a"), placed(result, "b")) == (8, 4)


def test_local_data_is_preferred_over_crossing_a_link() -> None:
    problem = (fleet().site("a").site("b").node("near", site="a").node("far", site="b")
               .link("a", "b", capacity=10_000).want("reader", count=8, data_site="a", read_mbps=10)
               .quota(runtime={}).build())
    result = feasible_plan(problem)
    by_node = {n.node: sum(p.count for p in n.placements) for n in result.nodes}
    assert by_node == {"near": 8, "far": 0}


def test_lendable_capacity_net_of_running_work_places_only_the_delta() -> None:
    problem = (fleet().node("n1", cpu="16", memory="64Gi").node("n2", cpu="16", memory="64Gi")
               .lend("n1", cpu="2", memory="8Gi").want("w", count=10).quota(runtime={}).build())
    result = feasible_plan(problem)
    assert {n.node: n.yarn.cpu_milli for n in result.nodes} == {"n1": 2000, "n2": 0}


def test_sink_capacities_add_up_per_sink() -> None:
    problem = (fleet().node("n", cpu="16", memory="64Gi").want("y", count=2, sink="yarn")
               .want("k", count=3, cpu="2", sink="kubernetes").quota(runtime={}).build())
    [node] = feasible_plan(problem).nodes
    assert (node.yarn.cpu_milli, node.kubernetes.cpu_milli) == (2000, 6000)


def test_nothing_to_place_is_an_empty_plan() -> None:
    result = feasible_plan(fleet().node("n").quota(runtime={}).build())
    assert result.solve.status is SolveStatus.EMPTY and result.unmet == ()


def test_out_of_time_falls_back_to_the_greedy_plan_and_says_so() -> None:
    problem = instance(nodes=60, teams=3, classes=10, seed=1)
    result = feasible_plan(problem, time_limit_s=0.0)
    assert result.solve.status is SolveStatus.GREEDY
    assert result.solve.objective == result.solve.greedy_objective
    assert {e.binding for e in result.unmet} == {Binding.TIME_LIMIT}


def test_team_totals_are_reported_per_site_and_cluster() -> None:
    problem = (fleet().site("a").site("b").node("na", site="a").node("nb", site="b")
               .want("w", count=16, cpu="1", memory="4Gi").quota(runtime={}).build())
    [team] = feasible_plan(problem).teams
    assert team.placed.cpu_milli == 16000
    assert {s: r.cpu_milli for s, r in team.placed_by_site.items()} == {"a": 8000, "b": 8000}
    assert {c: r.cpu_milli for c, r in team.placed_by_cluster.items()} == {"a-c": 8000, "b-c": 8000}


def test_each_team_carries_what_its_classes_already_run() -> None:
    problem = (fleet().node("n", cpu="64", memory="256Gi")
               .want("w", count=10, cpu="2", memory="4Gi", running=3)
               .want("v", count=4, cpu="1", memory="1Gi", running=1).quota().build())
    [team] = feasible_plan(problem).teams
    assert (team.running.cpu_milli, team.running.memory_mib) == (7000, 13 * 1024)
