"""Per-node and per-team decision tables, built once when a plan arrives.

A filter call with 500 candidate nodes must answer in well under the scheduler's budget, so nothing is derived
from the plan at request time: each ``NodePlan`` becomes a ``NodeEntry`` holding exactly what a node check
reads (its labels as booleans, the capacity given to batch pods, the slots the plan placed per team and class
for the Kubernetes sink), each ``TeamPlan`` a ``TeamEntry``, and the team bindings an index from namespace to
teams.

The tables are immutable; a new plan builds new tables and the server swaps one reference.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from broker.model.demand import Sink
from broker.model.plan import Plan
from broker.model.resources import Resources


@dataclass(frozen=True, slots=True)
class NodeEntry:
    """What the plan says about one node, for batch pods.

    ``class_slots`` counts the containers placed per ``(team, demand class)``; ``role_slots`` per ``(team,
    is_am)``, for pods that do not name their class; ``teams`` every team with pods placed there.
    ``amounts`` is ``capacity`` as plain integers (``Resources.FIELDS`` order), which the per-node checks
    compare without going through the pydantic value.
    """

    name: str
    stable: bool
    disk: bool
    capacity: Resources
    amounts: tuple[int, ...]
    class_slots: dict[tuple[str, str], int]
    role_slots: dict[tuple[str, bool], int]
    teams: frozenset[str]


@dataclass(frozen=True, slots=True)
class TeamEntry:
    """A team's runtime quota and what it was running when the plan was made."""

    name: str
    quota: Resources
    running: Resources


@dataclass(frozen=True, slots=True)
class PlanTables:
    """Everything the extender answers from, for one plan version."""

    version: int
    created_at_s: float
    nodes: dict[str, NodeEntry]
    teams: dict[str, TeamEntry]
    namespaces: dict[str, tuple[str, ...]]


KubernetesPlacement = tuple[str, str, bool, int]
"""``(team, demand class, is_am, count)`` of one placement on the Kubernetes sink."""


def node_entry(name: str, labels: Iterable[str], capacity: Resources,
               placements: Iterable[KubernetesPlacement]) -> NodeEntry:
    """The entry of one node from what the plan says about it (its Kubernetes placements only).

    Both ways of reading a plan (``build_tables`` from a ``Plan``, ``plan_document`` straight from JSON) build
    entries here, so that they cannot disagree on what a placement means.
    """
    class_slots: dict[tuple[str, str], int] = defaultdict(int)
    role_slots: dict[tuple[str, bool], int] = defaultdict(int)
    for team, demand_class, is_am, count in placements:
        if count > 0:
            class_slots[team, demand_class] += count
            role_slots[team, is_am] += count
    label_set = frozenset(labels)
    return NodeEntry(
        name=name,
        stable="stable" in label_set,
        disk="disk" in label_set,
        capacity=capacity,
        amounts=tuple(capacity),
        class_slots=dict(class_slots),
        role_slots=dict(role_slots),
        teams=frozenset(team for team, _ in role_slots),
    )


def assemble(plan: Plan, nodes: dict[str, NodeEntry], cluster: str | None) -> PlanTables:
    """The tables of ``plan`` with node entries already built; everything but ``plan.nodes`` is read here.

    ``cluster`` selects the Kubernetes cluster this extender serves: only its namespace bindings map pods to
    teams (the same namespace may belong to different teams in different clusters). ``None`` merges every
    cluster's bindings, which is right when namespaces are unique across the fleet.
    """
    teams = {t.team: TeamEntry(name=t.team, quota=t.runtime_quota, running=t.running) for t in plan.teams}
    namespaces: dict[str, list[str]] = defaultdict(list)
    for team in plan.teams:
        for bound_cluster, names in sorted(team.binding.namespaces.items()):
            if cluster is not None and bound_cluster != cluster:
                continue
            for namespace in names:
                if team.team not in namespaces[namespace]:
                    namespaces[namespace].append(team.team)
    return PlanTables(
        version=plan.version,
        created_at_s=plan.created_at_s,
        nodes=nodes,
        teams=teams,
        namespaces={ns: tuple(sorted(owners)) for ns, owners in namespaces.items()},
    )


def build_tables(plan: Plan, cluster: str | None = None) -> PlanTables:
    """The tables for a validated ``plan``, serving ``cluster`` (see ``assemble``)."""
    nodes = {
        node.node: node_entry(node.node, node.labels, node.kubernetes, (
            (p.team, p.demand_class, p.is_am, p.count) for p in node.placements if p.sink is Sink.KUBERNETES
        ))
        for node in plan.nodes
    }
    return assemble(plan, nodes, cluster)


__all__ = [
    "KubernetesPlacement",
    "NodeEntry",
    "PlanTables",
    "TeamEntry",
    "assemble",
    "build_tables",
    "node_entry",
]
