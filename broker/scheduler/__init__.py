"""Placement: which offline work gets the spare capacity of which node, decided by an LP over groups of
identical nodes (OR-Tools GLOP), packed exactly per node, compared with the greedy baseline and checked
independently.

Entry point: ``plan(problem, time_limit_s=..., seed=..., now_s=...) -> Plan``. The mathematics is written in
``model``, the objective in ``objective``; ``docs/planner.md`` is the user's guide.
"""

from broker.scheduler.check import Violation, check_feasible, placed_resources, score
from broker.scheduler.inputs import LendableDocument, QuotaDocument, TeamQuota
from broker.scheduler.objective import Levels
from broker.scheduler.planner import Solution, plan, solve
from broker.scheduler.problem import NO_QUOTA, PlacementProblem
from broker.scheduler.synthetic import instance

__all__ = [
    "NO_QUOTA",
    "LendableDocument",
    "Levels",
    "PlacementProblem",
    "QuotaDocument",
    "Solution",
    "TeamQuota",
    "Violation",
    "check_feasible",
    "instance",
    "placed_resources",
    "plan",
    "score",
    "solve",
]
