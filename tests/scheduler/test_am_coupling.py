"""Executors and their ApplicationMasters / drivers: executors are placed only in proportion to the AMs of
their ``am_class`` that are placed, by the optimiser, the greedy baseline and the checker alike."""

from __future__ import annotations

from broker.model import Binding, NodePlan, Placement, Plan, Resources, Sink
from broker.scheduler import PlacementProblem, check_feasible, solve

from .builders import fleet
from .test_planner import feasible_plan, placed


def job(stable_cpu: str, *, ams: int = 4, executors: int = 8) -> PlacementProblem:
    """``ams`` 1-core AMs and ``executors`` 1-core executors of one team; a stable node of ``stable_cpu`` and a
    large elastic node."""
    return (fleet().node("stable", cpu=stable_cpu, memory="64Gi", stable=True)
            .node("elastic", cpu="64", memory="256Gi")
            .want("am", count=ams, cpu="1", memory="2Gi", is_am=True)
            .want("exec", count=executors, cpu="1", memory="2Gi", am_class="am", priority=10)
            .quota(runtime={}).build())


def test_executors_are_not_placed_while_their_ams_are_not() -> None:
    problem = (fleet().node("elastic", cpu="64", memory="256Gi")
               .want("am", count=2, cpu="1", memory="2Gi", is_am=True)
               .want("exec", count=10, am_class="am").quota(runtime={}).build())
    result = feasible_plan(problem)
    assert (placed(result, "am"), placed(result, "exec")) == (0, 0)
    why = {e.demand_class: e for e in result.unmet}
    assert why["am"].binding is Binding.LABEL
    assert why["exec"].binding is Binding.AM and "am" in why["exec"].would_help


def test_executors_follow_the_share_of_their_ams_that_is_placed() -> None:
    result = feasible_plan(job(stable_cpu="2"))
    assert (placed(result, "am"), placed(result, "exec")) == (2, 4)


def test_all_ams_placed_let_every_executor_run() -> None:
    result = feasible_plan(job(stable_cpu="8"))
    assert (placed(result, "am"), placed(result, "exec")) == (4, 8)


def test_the_greedy_baseline_also_places_ams_before_their_executors() -> None:
    problem = job(stable_cpu="4")
    solution = solve(problem)
    greedy = solution.greedy_state
    classes = [c.name for c in problem.demand.classes]
    assert greedy.counts[classes.index("am")].sum() == 4
    assert greedy.counts[classes.index("exec")].sum() == 8


def test_an_am_class_with_nothing_left_to_place_holds_no_executor_back() -> None:
    result = feasible_plan(job(stable_cpu="8", ams=0))
    assert placed(result, "exec") == 8


def test_the_checker_refuses_executors_beyond_their_ams() -> None:
    problem = job(stable_cpu="8")
    node = problem.inventory.nodes[1]
    executors = Placement(demand_class="exec", team="t", sink=Sink.YARN, count=3)
    plan = Plan(nodes=(NodePlan(node=node.name, site=node.site, cluster=node.cluster,
                                yarn=Resources.of(cpu="3", memory="6Gi"), placements=(executors,)),))
    [violation] = check_feasible(problem, plan)
    assert (violation.kind, violation.where) == ("am", "exec")
