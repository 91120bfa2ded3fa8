"""The planner: one pure function from a ``PlacementProblem`` to a ``Plan``.

Each call runs, in order: compile the problem to arrays; the greedy first-fit-decreasing baseline; group
identical nodes; the LP over groups, one component at a time (its optimum is the bound); exact per-node
packing of the LP solution and a first-fit repair; keep whichever of the packed and the greedy plan scores
higher; explain every class left short; assemble the plan. Same inputs and seed, same plan: GLOP is
deterministic and every other step is ordered by index, so the seed only reaches the solver's own
tie-breaking. If the LP does not finish within the time limit the greedy plan is returned (status ``greedy``,
explanations bound by ``time_limit``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from broker.model import Plan, SolveReport, SolveStatus
from broker.scheduler.assemble import assemble
from broker.scheduler.compiled import compile_problem
from broker.scheduler.explain import explain
from broker.scheduler.greedy import greedy
from broker.scheduler.groups import group_nodes
from broker.scheduler.model import solve_lp
from broker.scheduler.objective import Levels, Terms, evaluate, terms_of
from broker.scheduler.packing import pack
from broker.scheduler.problem import PlacementProblem
from broker.scheduler.residual import Residual

OPTIMALITY_GAP = 1e-6
"""A plan within this relative distance of the LP bound is reported ``optimal``."""


@dataclass(frozen=True, eq=False)
class Solution:
    """A plan with what the benchmark and tests compare it against: its levels, the greedy baseline's levels
    and placements, the number of node groups and the LP's own run time."""

    plan: Plan
    levels: Levels
    greedy_levels: Levels
    greedy_state: Residual
    groups: int
    lp_seconds: float


def plan(problem: PlacementProblem, *, time_limit_s: float = 1.0, seed: int = 0, now_s: float = 0.0,
         version: int = 0, interval_s: float = 10.0) -> Plan:
    """Plan ``problem`` (see the module docstring); ``now_s`` stamps the plan, it never changes a decision."""
    return solve(problem, time_limit_s=time_limit_s, seed=seed, now_s=now_s, version=version,
                 interval_s=interval_s).plan


def solve(problem: PlacementProblem, *, time_limit_s: float = 1.0, seed: int = 0, now_s: float = 0.0,
          version: int = 0, interval_s: float = 10.0) -> Solution:
    """``plan`` with its comparison record."""
    started = time.perf_counter()
    compiled = compile_problem(problem)
    terms = terms_of(compiled)
    baseline = greedy(compiled, terms)
    baseline_levels = evaluate(compiled, terms, compiled.by_site(baseline.counts))
    groups = group_nodes(compiled)
    left_s = time_limit_s - (time.perf_counter() - started)
    lp = solve_lp(compiled, groups, terms, time_limit_s=left_s, seed=seed)
    chosen, levels, status = baseline, baseline_levels, SolveStatus.GREEDY
    if lp.solved:
        packed = pack(compiled, groups, terms, lp.z)
        packed_levels = evaluate(compiled, terms, compiled.by_site(packed.counts))
        if packed_levels.value >= baseline_levels.value:
            chosen, levels = packed, packed_levels
            at_bound = levels.value >= lp.bound - OPTIMALITY_GAP * max(abs(lp.bound), 1.0)
            status = SolveStatus.OPTIMAL if at_bound else SolveStatus.FEASIBLE
    if int(compiled.count.sum()) == 0 or compiled.n_nodes == 0:
        status = SolveStatus.EMPTY
    unmet = explain(chosen, timed_out=not lp.solved and status is not SolveStatus.EMPTY)
    report = SolveReport(status=status, objective=levels.value, lp_bound=lp.bound if lp.solved else 0.0,
                         greedy_objective=baseline_levels.value, solve_seconds=time.perf_counter() - started,
                         placed_fraction=_placed_fraction(chosen, terms),
                         greedy_placed_fraction=_placed_fraction(baseline, terms))
    result = assemble(chosen, report, unmet, now_s=now_s, version=version, interval_s=interval_s)
    return Solution(plan=result, levels=levels, greedy_levels=baseline_levels, greedy_state=baseline,
                    groups=len(groups.members), lp_seconds=lp.seconds)


def _placed_fraction(state: Residual, terms: Terms) -> float:
    """Placed demand over wanted demand, both measured in pool shares (container size, not container
    count)."""
    wanted = float((terms.share * state.compiled.count).sum())
    placed = float((terms.share * (state.compiled.count - state.left)).sum())
    return min(placed / wanted, 1.0) if wanted > 0 else 0.0


__all__ = ["Solution", "plan", "solve"]
