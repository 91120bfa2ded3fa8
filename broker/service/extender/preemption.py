"""The preempt decision: which of the scheduler's candidate nodes (with their victims) quota reclaim allows.

kube-scheduler computes, per candidate node, the smallest set of lower-priority victims whose eviction would
let the pod fit, then asks the extender. The extender may only take nodes away (it keeps each node's victims
as the scheduler chose them, since a smaller set might not make room). It keeps a node when all of these hold:

- the preemptor is an offline pod of a known team that stays within its runtime quota with the pod: only a
  team reclaiming what it is owed may evict; a team over its quota waits (checked by the caller, which then
  answers "no candidate node");
- the plan allows the pod on the node (the same per-node verdict as filter);
- every victim is an offline pod of a team that is *borrowing* (using more than its runtime quota in some
  dimension), and the victims of each team on the node add up to no more than what that team borrows, in each
  dimension it borrows in: reclaim never takes a team below its own quota. A victim the extender cannot vouch
  for (an online pod, or a UID it has not seen) keeps the node out.

Among the nodes kept, reclaim order decides: nodes whose victims include no AM/driver win over nodes that
would evict one (an AM is never the first to go, since killing it restarts the whole job), and among those,
the nodes whose highest-priority victim has the lowest priority. kube-scheduler then picks among what is left
by its own rules (fewest PDB violations, lowest priorities, fewest victims, most recently started), which
completes the "lowest priority, newest first" order.

These are the reclaim rules of ``broker.quota.reclaim`` (borrowers only, never below their runtime quota, AMs
last), applied the other way round: ``plan_reclaim`` *chooses* victims among running containers, while here
kube-scheduler has already chosen them per node and the extender may only accept or refuse each node's set.
Sharing one implementation needs a "check these victims" entry point in ``broker.quota`` (open work, issue 6).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from broker.model.resources import ZERO, Resources
from broker.service.extender.filtering import PodKind, judge_node
from broker.service.extender.ledger import SeenPod
from broker.service.extender.tables import PlanTables
from broker.service.extender.wire import NodeVictims

_NO_VICTIM_PRIORITY = -(2**63)


@dataclass(frozen=True, slots=True)
class PreemptionDecision:
    """The nodes kept (with their victims unchanged) and, for every node taken away, why."""

    kept: dict[str, NodeVictims]
    dropped: dict[str, str]


@dataclass(frozen=True, slots=True)
class _Candidate:
    name: str
    victims: NodeVictims
    evicts_am: bool
    top_priority: int


def _within_borrowed(taken: Resources, borrowed: Resources) -> bool:
    """True when ``taken`` leaves the team at or above its quota in every dimension it borrows in.

    Dimensions it does not borrow in are already within its quota; evicting a pod lowers them too,
    unavoidably, so they do not veto a reclaim (a team borrowing CPU but not memory still gives its CPU back).
    """
    return all(t <= b for t, b in zip(taken, borrowed, strict=True) if b > 0)


def _check_node(name: str, victims: NodeVictims, tables: PlanTables, kind: PodKind,
                known: Mapping[str, SeenPod], borrowed: Mapping[str, Resources]) -> _Candidate | str:
    """The node as a candidate, or why reclaim does not allow it."""
    entry = tables.nodes.get(name)
    if entry is None:
        return f"not in plan v{tables.version}"
    verdict = judge_node(entry, kind)
    if verdict:
        return verdict
    taken: dict[str, Resources] = {}
    evicts_am = False
    top = _NO_VICTIM_PRIORITY
    for victim in victims.pods:
        seen = known.get(victim.uid)
        if seen is None:
            return f"victim {victim.uid} is not an offline pod the extender knows"
        team = seen.team
        if borrowed.get(team, ZERO).is_zero():
            pod = f"{seen.facts.namespace}/{seen.facts.name}"
            return f"victim {pod} belongs to team {team}, which is not borrowing"
        taken[team] = taken.get(team, ZERO) + seen.facts.shape
        if not _within_borrowed(taken[team], borrowed[team]):
            return f"evicting these would take team {team} below its runtime quota"
        evicts_am = evicts_am or seen.facts.is_am
        top = max(top, seen.facts.priority)
    return _Candidate(name, victims, evicts_am, top)


def choose_victims(nodes: Mapping[str, NodeVictims], tables: PlanTables, kind: PodKind,
                   known: Mapping[str, SeenPod], borrowed: Mapping[str, Resources]) -> PreemptionDecision:
    """Keep the nodes of ``nodes`` that reclaim allows, best tier only (see the module docstring).

    ``known`` maps every victim UID the caller could identify to its pod and team; ``borrowed`` maps each team
    to how much it uses above its runtime quota (absent or zero: not borrowing).
    """
    dropped: dict[str, str] = {}
    candidates: list[_Candidate] = []
    for name, victims in nodes.items():
        checked = _check_node(name, victims, tables, kind, known, borrowed)
        if isinstance(checked, str):
            dropped[name] = checked
        else:
            candidates.append(checked)
    if any(not c.evicts_am for c in candidates):
        for c in candidates:
            if c.evicts_am:
                dropped[c.name] = "would evict an AM/driver while other nodes need not"
        candidates = [c for c in candidates if not c.evicts_am]
    if candidates:
        lowest = min(c.top_priority for c in candidates)
        for c in candidates:
            if c.top_priority > lowest:
                dropped[c.name] = f"victims up to priority {c.top_priority}; others need only up to {lowest}"
    kept = {c.name: c.victims for c in candidates if c.name not in dropped}
    return PreemptionDecision(kept, dropped)


__all__ = ["PreemptionDecision", "choose_victims"]
