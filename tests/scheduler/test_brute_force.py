"""Seeded tiny instances against an exhaustive search: the LP bound bounds the true optimum, the planner never
beats it (it would be infeasible) and stays close to it, and never falls below greedy. The exhaustive search
keeps only plans ``check_feasible`` accepts, so the planner is held to every rule the checker knows (with
``with_clusters``, each node in a cluster of its own and some classes tied to one)."""

from __future__ import annotations

import itertools
import random

import pytest

from broker.model import ZERO, Node, NodePlan, Placement, Plan
from broker.scheduler import PlacementProblem, check_feasible, score, solve

from .builders import fleet


def tiny(seed: int, *, with_ams: bool = False, with_clusters: bool = False) -> PlacementProblem:
    rng = random.Random(seed)
    tie = random.Random(-1 - seed)  # its own stream: the instances without clusters stay as they were
    builder = fleet().site("a").site("b").link("a", "b", capacity=100)
    for i in range(2):
        builder.node(f"n{i}", site=rng.choice("ab"), cpu=str(rng.choice([3, 4, 6])),
                     memory=f"{rng.choice([8, 12, 16])}Gi", disk=rng.random() < 0.6,
                     stable=rng.random() < 0.5, cluster=f"k{i}" if with_clusters else None)
    for k in range(3):
        builder.want(f"c{k}", team=f"t{k % 2}", count=rng.randint(1, 3), cpu=str(rng.choice([1, 2, 3])),
                     memory=f"{rng.choice([2, 4, 6])}Gi", is_am=k == 0 if with_ams else rng.random() < 0.3,
                     needs_disk=rng.random() < 0.4,
                     data_site="a", read_mbps=rng.choice([0, 40]),
                     am_class="c0" if with_ams and k == 2 else None,
                     cluster=tie.choice([None, "k0", "k1"]) if with_clusters else None)
    builder.quota("t0", min={"cpu": "3", "memory": "6Gi"}, runtime={"cpu": "8"})
    builder.quota("t1", runtime={})
    return builder.build()


def as_plan(nodes: tuple[Node, ...], problem: PlacementProblem, counts: tuple[int, ...]) -> Plan:
    classes = problem.demand.classes
    out = []
    for n, node in enumerate(nodes):
        placements = tuple(Placement(demand_class=c.name, team=c.team, sink=c.sink, is_am=c.is_am,
                                     count=counts[k * len(nodes) + n])
                           for k, c in enumerate(classes) if counts[k * len(nodes) + n])
        yarn = sum((c.shape * counts[k * len(nodes) + n] for k, c in enumerate(classes)), start=ZERO)
        out.append(NodePlan(node=node.name, site=node.site, cluster=node.cluster, yarn=yarn,
                            placements=placements))
    return Plan(nodes=tuple(out))


def brute_force_optimum(problem: PlacementProblem) -> float:
    nodes = problem.inventory.nodes
    ranges = [range(c.count + 1) for c in problem.demand.classes for _ in nodes]
    best = 0.0
    for counts in itertools.product(*ranges):
        candidate = as_plan(nodes, problem, counts)
        if not check_feasible(problem, candidate):
            best = max(best, score(problem, candidate).value)
    return best


@pytest.mark.parametrize(("with_ams", "with_clusters"), [(False, False), (True, False), (False, True)],
                         ids=["independent", "executors-name-their-am", "tied-to-clusters"])
@pytest.mark.parametrize("seed", range(8))
def test_planner_against_exhaustive_search(seed: int, with_ams: bool, with_clusters: bool) -> None:
    problem = tiny(seed, with_ams=with_ams, with_clusters=with_clusters)
    solution = solve(problem, time_limit_s=5)
    report = solution.plan.solve
    optimum = brute_force_optimum(problem)
    assert check_feasible(problem, solution.plan) == ()
    assert report.lp_bound >= optimum - 1e-6
    assert report.greedy_objective - 1e-9 <= report.objective <= optimum + 1e-6
    assert report.objective >= 0.99 * optimum
