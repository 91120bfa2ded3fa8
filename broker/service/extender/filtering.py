"""The filter decision: which candidate nodes an offline pod may use, and why not the others.

A node passes when three things hold, checked in this order:

1. the pod's team has runtime quota left for the pod: ``runtime_quota - running - charged >= shape``, where
   ``running`` is what the team ran when the plan was made and ``charged`` what pods admitted since the plan
   add up to (see ``ledger``). The plan's placements are not usage: they are where the pending pods may go, so
   counting them too would refuse the very pods the plan placed once a team's placements reach its quota;
2. the node fits the pod's labels: AMs and drivers only on ``stable`` nodes, disk-needing pods only on
   ``disk`` nodes;
3. the plan gives the node room for the pod's class: a Kubernetes placement for the team and class (or, when
   the pod names no class, for the team and role), and batch capacity at least the pod's size.

Failures of (2) and (3) cannot be cured by evicting anything, so those nodes go to
``FailedAndUnresolvableNodes`` and preemption skips them; a quota shortfall goes to ``FailedNodes`` (it
changes as the team's pods finish). The per-node checks depend only on the plan and the pod's *kind*, so their
verdicts are memoised per kind for the life of one plan's tables; exact per-node bin-packing is left to
kube-scheduler itself, which checks the batch extended resources against node status (written from the same
plan) counting its own assumed pods.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass, field

from broker.model.resources import Resources
from broker.service.extender.pod import PodFacts
from broker.service.extender.tables import NodeEntry, PlanTables, TeamEntry
from broker.service.extender.wire import FilterResult


@dataclass(frozen=True, slots=True)
class PodKind:
    """What the per-node checks read of a pod; pods of one kind get the same verdict on every node.

    ``amounts`` is ``shape`` as plain integers and ``needs`` its non-zero ``(dimension, amount)`` pairs,
    derived once per request for the per-node checks, which run up to 5,000 times a request.
    """

    team: str
    demand_class: str | None
    is_am: bool
    needs_disk: bool
    shape: Resources
    amounts: tuple[int, ...] = field(init=False, compare=False)
    needs: tuple[tuple[int, int], ...] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        amounts = tuple(self.shape)
        object.__setattr__(self, "amounts", amounts)
        object.__setattr__(self, "needs", tuple((i, amount) for i, amount in enumerate(amounts) if amount))


def team_of(facts: PodFacts, tables: PlanTables, team_label_key: str) -> tuple[str | None, str]:
    """The pod's team and ``""``, or ``None`` and why no team could be given.

    The namespace decides; the team label only chooses among the teams bound to a shared namespace, so a pod
    cannot spend another team's quota by labelling itself.
    """
    owners = tables.namespaces.get(facts.namespace, ())
    if facts.team_label is not None:
        if facts.team_label in owners:
            return facts.team_label, ""
        return None, (f"label {team_label_key}={facts.team_label} names a team not bound to namespace "
                      f"{facts.namespace} in plan v{tables.version}")
    if len(owners) == 1:
        return owners[0], ""
    if not owners:
        return None, f"namespace {facts.namespace} is bound to no team in plan v{tables.version}"
    return None, (f"namespace {facts.namespace} is shared by teams {', '.join(owners)}; "
                  f"label the pod with {team_label_key}")


def kind_of(facts: PodFacts, team: str) -> PodKind:
    """The kind of an offline pod already mapped to ``team``."""
    return PodKind(team, facts.demand_class, facts.is_am, facts.needs_disk, facts.shape)


def team_usage(team: TeamEntry, charged: Resources) -> Resources:
    """What counts against ``team``'s quota: what it ran as of the plan, plus pods admitted since."""
    return team.running + charged


def quota_shortfall(team: TeamEntry, charged: Resources, shape: Resources) -> str:
    """``""`` when the team has runtime quota left for ``shape``, else a short reason."""
    left = team.quota - team_usage(team, charged)
    if shape.fits_in(left):
        return ""
    return f"team {team.name} has quota left {left} < pod {shape} (runtime quota {team.quota})"


def judge_node(entry: NodeEntry, kind: PodKind) -> str:
    """``""`` when the plan lets a pod of ``kind`` use the node, else a short reason (labels first, then
    room)."""
    if kind.is_am and not entry.stable:
        return "AM/driver pods run only on stable nodes"
    if kind.needs_disk and not entry.disk:
        return "pod needs a disk node"
    if kind.demand_class is not None:
        if not entry.class_slots.get((kind.team, kind.demand_class)):
            return f"plan places no {kind.team}/{kind.demand_class} pods here"
    elif not entry.role_slots.get((kind.team, kind.is_am)):
        return f"plan places no {'AM' if kind.is_am else 'worker'} pods of team {kind.team} here"
    if not all(map(operator.le, kind.amounts, entry.amounts)):
        return f"pod {kind.shape} exceeds the plan's batch capacity {entry.capacity} here"
    return ""


def filter_nodes(candidates: Iterable[str], tables: PlanTables, kind: PodKind, quota_reason: str,
                 memo: MutableMapping[str, str]) -> FilterResult:
    """Split ``candidates`` for a pod of ``kind``. ``quota_reason`` (from ``quota_shortfall``) fails every
    node that the plan would otherwise allow; ``memo`` holds per-node verdicts for this kind and these tables.
    """
    nodes = tables.nodes
    passed: list[str] = []
    failed: dict[str, str] = {}
    unresolvable: dict[str, str] = {}
    for name in candidates:
        verdict = memo.get(name)
        if verdict is None:
            entry = nodes.get(name)
            if entry is None:
                unresolvable[name] = f"not in plan v{tables.version}"
                continue
            verdict = memo[name] = judge_node(entry, kind)
        if verdict:
            unresolvable[name] = verdict
        elif quota_reason:
            failed[name] = quota_reason
        else:
            passed.append(name)
    return FilterResult(tuple(passed), failed, unresolvable)


def reject_all(candidates: Iterable[str], reason: str) -> FilterResult:
    """Every candidate unresolvable for one reason (no team, no usable plan)."""
    return FilterResult((), {}, dict.fromkeys(candidates, reason))


def pass_all(candidates: Iterable[str]) -> FilterResult:
    """Every candidate passes (pods the broker does not manage, or the fail-open policy)."""
    return FilterResult(tuple(candidates), {}, {})


def refuse(error: str) -> FilterResult:
    """An answer carrying only ``Error``: kube-scheduler then skips the extender if it is ``ignorable``, else
    fails the pod's scheduling attempt."""
    return FilterResult((), {}, {}, error)


__all__ = [
    "PodKind",
    "filter_nodes",
    "judge_node",
    "kind_of",
    "pass_all",
    "quota_shortfall",
    "refuse",
    "reject_all",
    "team_of",
    "team_usage",
]
