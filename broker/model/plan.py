"""The plan: what the broker decided for one interval, and everything a sink needs to enforce it.

A ``Plan`` is self-contained on purpose. The YARN bridge, the kube-scheduler extender and the Kubernetes node sink
read only the plan (from the store), never the planner's inputs, so that stateless extender replicas can answer from
it and a replayed plan means the same thing tomorrow.

- ``nodes``: per node, what the estimator said could be lent (``lendable``), the capacity given to each sink
  (``yarn`` for the NodeManager, ``kubernetes`` for batch pods), the containers placed per demand class, and the
  node's labels.
- ``teams``: per team, its runtime quota for the interval, what was placed, what was already running, and its
  bindings to the outside (YARN queues and Kubernetes namespaces per cluster), so that a sink can map a pod or an
  app to a team.
- ``unmet``: one explanation per demand class that did not get everything it asked for, naming the constraint
  that binds and how much more of it would help.
- ``solve``: how the plan was found, with its bound and the greedy baseline.
"""

from __future__ import annotations

from enum import Enum

from pydantic import BaseModel, ConfigDict, Field

from broker.model.demand import Sink
from broker.model.resources import ZERO, Resources


class Placement(BaseModel):
    """``count`` containers of one demand class on one node."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    demand_class: str
    team: str
    sink: Sink
    is_am: bool = False
    count: int = Field(ge=0)


class NodePlan(BaseModel):
    """The plan for one node."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    node: str
    site: str
    cluster: str
    labels: tuple[str, ...] = ()
    lendable: Resources = ZERO
    yarn: Resources = ZERO
    kubernetes: Resources = ZERO
    placements: tuple[Placement, ...] = ()


class TeamBinding(BaseModel):
    """Where a team's work shows up outside: YARN queue paths and Kubernetes namespaces, per cluster."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    yarn_queues: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    namespaces: dict[str, tuple[str, ...]] = Field(default_factory=dict)


class TeamPlan(BaseModel):
    """A team's runtime quota for the interval and what was placed for it, in total and per site."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    team: str
    runtime_quota: Resources = ZERO
    placed: Resources = ZERO
    placed_by_site: dict[str, Resources] = Field(default_factory=dict)
    binding: TeamBinding = TeamBinding()
    placed_by_cluster: dict[str, Resources] = Field(default_factory=dict)
    running: Resources = Field(ZERO, description="What the team's work held when the plan was made (its demand "
                                                 "classes' running containers); the extender counts it against "
                                                 "the quota, not the plan's placements.")


class LinkUse(BaseModel):
    """Bandwidth on one site link: its capacity, what online traffic uses and what the plan's offline reads add."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    a: str
    b: str
    capacity_mbps: int = Field(ge=0)
    online_used_mbps: int = Field(0, ge=0)
    offline_mbps: int = Field(0, ge=0)


class Binding(str, Enum):
    """The constraint that left demand unmet (``am``: executors held back because their AM class is short)."""

    QUOTA = "quota"
    CAPACITY = "capacity"
    LABEL = "label"
    BANDWIDTH = "bandwidth"
    TIME_LIMIT = "time_limit"
    AM = "am"


class Explanation(BaseModel):
    """Why a demand class got fewer containers than it asked for, and what would help."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    demand_class: str
    team: str
    wanted: int = Field(ge=0)
    placed: int = Field(ge=0)
    binding: Binding
    detail: str
    would_help: str = ""


class SolveStatus(str, Enum):
    """How a plan was found."""

    OPTIMAL = "optimal"
    FEASIBLE = "feasible"
    GREEDY = "greedy"
    EMPTY = "empty"


class SolveReport(BaseModel):
    """The solver's record: status, objective, its LP upper bound, the greedy baseline's objective, run time."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: SolveStatus
    objective: float = 0.0
    lp_bound: float = 0.0
    greedy_objective: float = 0.0
    solve_seconds: float = Field(0.0, ge=0)
    placed_fraction: float = Field(0.0, ge=0, le=1)
    greedy_placed_fraction: float = Field(0.0, ge=0, le=1)


class Plan(BaseModel):
    """Everything decided for one interval. ``version`` increases by one with each published plan."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = Field(0, ge=0)
    created_at_s: float = Field(0.0, ge=0, description="Clock time (s) the plan was made, as given to the planner.")
    interval_s: float = Field(10.0, gt=0)
    nodes: tuple[NodePlan, ...] = ()
    teams: tuple[TeamPlan, ...] = ()
    unmet: tuple[Explanation, ...] = ()
    solve: SolveReport = SolveReport(status=SolveStatus.EMPTY)
    links: tuple[LinkUse, ...] = ()


__all__ = [
    "Binding",
    "Explanation",
    "LinkUse",
    "NodePlan",
    "Placement",
    "Plan",
    "SolveReport",
    "SolveStatus",
    "TeamBinding",
    "TeamPlan",
]
