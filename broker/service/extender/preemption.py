"""The preempt decision: which of the scheduler's candidate nodes (with their victims) quota reclaim allows.

kube-scheduler computes, per candidate node, the smallest set of lower-priority victims whose eviction would
let the pod fit, then asks the extender. The extender may only take nodes away (it keeps each node's victims
as the scheduler chose them, since a smaller set might not make room). It keeps a node when all of these hold:

- the preemptor is an offline pod of a known team that stays within its runtime quota with the pod: only a
  team reclaiming what it is owed may evict; a team over its quota waits (checked by the caller, which then
  answers "no candidate node");
- the plan allows the pod on the node (the same per-node verdict as filter);
- every victim is an offline pod the extender can vouch for (one it has seen, or whose Pod the scheduler sent);
  an online pod or an unknown UID keeps the node out;
- the node's victims keep to the reclaim rule, which ``broker.quota.victims.check_victims`` decides: each
  victim's team is *borrowing* (using more than its runtime quota in some dimension), and the victims of each
  team add up to no more than what that team borrows, in each dimension it borrows in, so that reclaim never
  takes a team below its own quota. Teams are leaf quota groups here: their runtime quota comes from the plan,
  their usage is what the plan counts plus what the ledger charged since.

Among the nodes kept, reclaim order decides: nodes whose victims include no AM/driver win over nodes that
would evict one (an AM is never the first to go, since killing it restarts the whole job), and among those,
the nodes whose highest-priority victim has the lowest priority. kube-scheduler then picks among what is left
by its own rules (fewest PDB violations, lowest priorities, fewest victims, most recently started), which
completes the "lowest priority, newest first" order.

The rule is the one ``broker.quota.reclaim`` chooses victims by (borrowers only, never below their runtime
quota, AMs last), applied the other way round: ``plan_reclaim`` *chooses* victims among running containers,
while here kube-scheduler has already chosen them per node and the extender may only accept or refuse each
node's set. Both go through ``broker.quota.victims``, so the extender holds no copy of the rule; it only
ranks the nodes that pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from broker.model.resources import Resources
from broker.quota import Refusal, RefusalReason, check_victims
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


@dataclass(frozen=True, slots=True)
class _Victim:
    """A victim pod as the reclaim rule reads it (a ``broker.quota.victims.Victim``): its team is its group."""

    id: str
    group: str
    resources: Resources
    is_am: bool


def _refused(refusal: Refusal, known: Mapping[str, SeenPod]) -> str:
    """Why the node is out, in the extender's words (teams and pods rather than groups and ids)."""
    team = refusal.group
    if refusal.reason is RefusalReason.BELOW_QUOTA:
        return f"evicting these would take team {team} below its runtime quota"
    facts = known[refusal.victims[0]].facts
    pod = f"{facts.namespace}/{facts.name}"
    if refusal.reason is RefusalReason.UNKNOWN_GROUP:
        return f"victim {pod} belongs to team {team}, which has no runtime quota in the plan"
    return f"victim {pod} belongs to team {team}, which is not borrowing"


def _check_node(name: str, victims: NodeVictims, tables: PlanTables, kind: PodKind,
                known: Mapping[str, SeenPod], runtime: Mapping[str, Resources],
                usage: Mapping[str, Resources]) -> _Candidate | str:
    """The node as a candidate, or why reclaim does not allow it."""
    entry = tables.nodes.get(name)
    if entry is None:
        return f"not in plan v{tables.version}"
    verdict = judge_node(entry, kind)
    if verdict:
        return verdict
    chosen: list[_Victim] = []
    top = _NO_VICTIM_PRIORITY
    for victim in victims.pods:
        seen = known.get(victim.uid)
        if seen is None:
            return f"victim {victim.uid} is not an offline pod the extender knows"
        chosen.append(_Victim(victim.uid, seen.team, seen.facts.shape, seen.facts.is_am))
        top = max(top, seen.facts.priority)
    check = check_victims(chosen, runtime, usage)
    if not check.allowed:
        return _refused(check.refusals[0], known)
    return _Candidate(name, victims, check.evicts_am, top)


def choose_victims(nodes: Mapping[str, NodeVictims], tables: PlanTables, kind: PodKind,
                   known: Mapping[str, SeenPod], runtime: Mapping[str, Resources],
                   usage: Mapping[str, Resources]) -> PreemptionDecision:
    """Keep the nodes of ``nodes`` that reclaim allows, best tier only (see the module docstring).

    ``known`` maps every victim UID the caller could identify to its pod and team; ``runtime`` and ``usage``
    map each team to its runtime quota and what counts against it (a team without runtime quota is refused).
    """
    dropped: dict[str, str] = {}
    candidates: list[_Candidate] = []
    for name, victims in nodes.items():
        checked = _check_node(name, victims, tables, kind, known, runtime, usage)
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
