"""Demand tied to a cluster (``DemandClass.cluster``) is placed only on that cluster's nodes, by the greedy
baseline, the LP and the packer alike; a plan that leaves the cluster is infeasible; demand its cluster cannot
hold is explained as such, however much room other clusters have."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.errors import InputError
from broker.model import Binding, Demand, NodePlan, Placement, Plan, Resources, SolveStatus, parse
from broker.scheduler import PlacementProblem, check_feasible, solve
from broker.scheduler.compiled import compile_problem
from broker.scheduler.groups import group_nodes
from broker.scheduler.model import eligible_pairs

from .builders import ProblemBuilder, fleet


def two_clusters(*, small: str = "8", big: str = "64") -> ProblemBuilder:
    """One site, cluster ``yarn-b`` listed first with a big node, then ``yarn-a`` with a small one, so that
    first-fit in inventory order would reach ``yarn-b`` first."""
    return (fleet().node("b1", cpu=big, memory="256Gi", cluster="yarn-b")
            .node("a1", cpu=small, memory=f"{4 * int(small)}Gi", cluster="yarn-a"))


def clusters_of(problem: PlacementProblem, plan: Plan, demand_class: str) -> dict[str, int]:
    """Containers of ``demand_class`` per cluster of the nodes they were placed on."""
    cluster = {n.name: n.cluster for n in problem.inventory.nodes}
    out: dict[str, int] = {}
    for node in plan.nodes:
        for p in node.placements:
            if p.demand_class == demand_class:
                out[cluster[node.node]] = out.get(cluster[node.node], 0) + p.count
    return out


def test_each_clusters_class_lands_only_on_its_own_nodes_and_an_untied_class_anywhere() -> None:
    problem = (two_clusters(small="16", big="16")
               .want("of-a", count=12, cluster="yarn-a").want("of-b", count=12, cluster="yarn-b")
               .want("anywhere", count=8).quota(runtime={}).build())
    solution = solve(problem)
    assert check_feasible(problem, solution.plan) == ()
    assert clusters_of(problem, solution.plan, "of-a") == {"yarn-a": 12}
    assert clusters_of(problem, solution.plan, "of-b") == {"yarn-b": 12}
    assert sum(clusters_of(problem, solution.plan, "anywhere").values()) == 8
    assert solution.plan.unmet == ()


def test_a_full_cluster_leaves_its_class_unmet_with_the_cluster_reason_though_another_has_room() -> None:
    problem = two_clusters().want("of-a", count=20, cluster="yarn-a").quota(runtime={}).build()
    solution = solve(problem)
    assert check_feasible(problem, solution.plan) == ()
    assert clusters_of(problem, solution.plan, "of-a") == {"yarn-a": 8}
    [why] = solution.plan.unmet
    assert (why.demand_class, why.binding, why.placed) == ("of-a", Binding.LABEL, 8)
    assert why.detail == "only nodes of cluster yarn-a may run it, and none of them has room"
    assert why.would_help == f"{Resources.of(cpu='12', memory='48Gi')} of lendable capacity on nodes of cluster yarn-a"


def test_an_am_class_of_a_cluster_without_stable_room_is_told_both_restrictions() -> None:
    problem = (two_clusters().node("b2", cpu="8", stable=True, cluster="yarn-b")
               .want("am", count=2, is_am=True, cluster="yarn-a").quota(runtime={}).build())
    [why] = solve(problem).plan.unmet
    assert why.binding is Binding.LABEL
    assert why.detail == "only stable nodes of cluster yarn-a may run it, and none of them has room"


def test_a_listed_cluster_without_nodes_leaves_its_class_unmet_saying_so() -> None:
    problem = two_clusters().cluster("yarn-c").want("of-c", count=3, cluster="yarn-c").quota(runtime={}).build()
    result = solve(problem).plan
    assert clusters_of(problem, result, "of-c") == {}
    [why] = result.unmet
    assert why.binding is Binding.LABEL
    assert why.detail == "only nodes of cluster yarn-c may run it, and cluster yarn-c has no nodes"


def test_when_no_node_has_room_capacity_binds_and_asks_for_room_in_the_classs_cluster() -> None:
    problem = (two_clusters().lend("a1", cpu="2", memory="8Gi")  # b1, not named, lends nothing
               .want("of-a", count=6, cluster="yarn-a").quota(runtime={}).build())
    [why] = solve(problem).plan.unmet
    assert why.binding is Binding.CAPACITY
    assert why.would_help.endswith("more lendable capacity on nodes of cluster yarn-a")


def test_greedy_and_the_lp_honour_the_cluster_alike() -> None:
    """First-fit would fill ``yarn-b`` (listed first) and the LP would use its big node; neither does."""
    problem = (two_clusters().want("of-a", count=20, cluster="yarn-a").want("anywhere", count=4)
               .quota(runtime={}).build())
    solution = solve(problem)
    compiled = compile_problem(problem)
    a1 = [n.name for n in problem.inventory.nodes].index("a1")
    of_a = [c.name for c in problem.demand.classes].index("of-a")
    greedy_counts = solution.greedy_state.counts[of_a]
    assert greedy_counts.sum() == greedy_counts[a1] == 8
    groups = group_nodes(compiled)
    eligible = eligible_pairs(compiled, groups)
    on_a = groups.group_of[a1]
    assert eligible[of_a].tolist() == [g == on_a for g in range(len(groups.members))]
    assert solution.plan.solve.status is SolveStatus.OPTIMAL  # the LP bound itself counts yarn-a's room only
    assert clusters_of(problem, solution.plan, "of-a") == {"yarn-a": 8}


def test_identical_nodes_of_two_clusters_are_grouped_apart_only_when_a_class_is_tied_to_one() -> None:
    def nodes() -> ProblemBuilder:
        return fleet().node("n1", cluster="yarn-a").node("n2", cluster="yarn-b").quota(runtime={})

    assert solve(nodes().want("w", count=2).build()).groups == 1
    assert solve(nodes().want("w", count=2, cluster="yarn-a").build()).groups == 2


def test_the_checker_flags_a_plan_that_places_a_class_off_its_cluster() -> None:
    problem = two_clusters().want("of-a", count=2, cluster="yarn-a").quota(runtime={}).build()
    item = problem.demand.classes[0]
    off = Plan(nodes=(NodePlan(node="b1", site="a", cluster="yarn-b", yarn=item.shape * 2,
                               placements=(Placement(demand_class="of-a", team=item.team, sink=item.sink,
                                                     count=2),)),))
    [violation] = check_feasible(problem, off)
    assert (violation.kind, violation.where) == ("cluster", "b1")
    assert "yarn-a" in violation.detail and "yarn-b" in violation.detail


def test_an_executor_class_and_its_am_class_must_name_the_same_cluster() -> None:
    def doc(am_cluster: str | None, executor_cluster: str | None) -> dict[str, object]:
        shape = {"cpu": "1", "memory": "2Gi"}
        return {"classes": [
            {"name": "am", "team": "t", "shape": shape, "count": 1, "is_am": True, "cluster": am_cluster},
            {"name": "exec", "team": "t", "shape": shape, "count": 4, "am_class": "am", "cluster": executor_cluster},
        ]}

    parse(Demand, doc("yarn-a", "yarn-a"))
    for am_cluster, executor_cluster in (("yarn-a", "yarn-b"), (None, "yarn-a"), ("yarn-a", None)):
        with pytest.raises(InputError) as caught:
            parse(Demand, doc(am_cluster, executor_cluster))
        assert caught.value.field == "classes[1].cluster"


def test_a_cluster_the_inventory_does_not_list_is_refused_by_name() -> None:
    problem = two_clusters().build()
    demand = {"classes": [{"name": "w", "team": "t", "shape": {"cpu": "1"}, "count": 1, "cluster": "yarn-a"},
                          {"name": "typo", "team": "t", "shape": {"cpu": "1"}, "count": 1, "cluster": "yarn-z"}]}
    with pytest.raises(InputError) as caught:
        parse(PlacementProblem, {**dict(problem), "demand": demand})
    assert caught.value.field == "demand.classes[1].cluster"
    assert "yarn-z" in caught.value.message


CLUSTERS = ("c0", "c1", "c2")
node_st = st.tuples(st.sampled_from(CLUSTERS), st.integers(1, 8), st.booleans(), st.booleans())
class_st = st.tuples(st.sampled_from((None, *CLUSTERS)), st.integers(1, 6), st.integers(1, 3), st.booleans(),
                     st.booleans())


@settings(max_examples=40, deadline=None)
@given(nodes=st.lists(node_st, min_size=1, max_size=6), classes=st.lists(class_st, min_size=1, max_size=5))
def test_no_plan_ever_places_a_tied_class_outside_its_cluster(
        nodes: list[tuple[str, int, bool, bool]], classes: list[tuple[str | None, int, int, bool, bool]]) -> None:
    """Clusters c0 and c1 at site a, c2 at site b; nodes and classes drawn at random, some classes tied."""
    builder = fleet().site("a").site("b").link("a", "b", capacity=1000)
    for i, (cluster, cpu, disk, stable) in enumerate(nodes):
        builder.node(f"n{i}", site="b" if cluster == "c2" else "a", cpu=str(cpu), memory=f"{4 * cpu}Gi",
                     disk=disk, stable=stable, cluster=cluster)
    for cluster in CLUSTERS:
        if all(node[0] != cluster for node in nodes):
            builder.cluster(cluster, site="b" if cluster == "c2" else "a")
    for k, (cluster, count, cpu, needs_disk, is_am) in enumerate(classes):
        builder.want(f"k{k}", team=f"t{k % 2}", count=count, cpu=str(cpu), memory=f"{2 * cpu}Gi",
                     needs_disk=needs_disk, is_am=is_am, cluster=cluster)
    problem = builder.quota("t0", runtime={}).quota("t1", runtime={"cpu": "6"}).build()
    solution = solve(problem, time_limit_s=5)
    assert check_feasible(problem, solution.plan) == ()
    node_cluster = np.array([n.cluster for n in problem.inventory.nodes])
    for k, item in enumerate(problem.demand.classes):
        if item.cluster is None:
            continue
        assert set(clusters_of(problem, solution.plan, item.name)) <= {item.cluster}
        assert (solution.greedy_state.counts[k][node_cluster != item.cluster] == 0).all()
