"""The extender's memory of pods between plans: quota charged to pods it admitted, and the pods it has seen.

A plan counts what each team ran when it was made (``TeamPlan.running``). A pod the extender lets through
afterwards is bound within seconds but shows up in usage only with the next plan; until then the extender charges
it to its team (an *assumed* pod, as kube-scheduler assumes pods in its own cache), so that a burst of pods cannot
overrun a quota between two plans. A charge ends when a plan made after it arrives (that plan counts the pod if it
was bound) or when it expires (the pod was never bound, or no plan came), whichever is first. Charges are keyed by
pod UID, so the scheduler's repeated filter calls for one pod charge it once.

When the extender also binds (``bind``), a binding is recorded here: the pod's charge (made anew if the
filter call went to another replica but this one has seen the pod) no longer expires, because the pod is known
to run; it ends only when a plan made after the binding arrives. The node of each binding is remembered, so
that a repeated bind of the same pod is answered without a second API call and a bind to another node is
refused.

The seen-pod index remembers, per UID, the team and facts of offline pods that passed through filter, because
``nodeCacheCapable`` preemption requests name victims by UID only. It and the binding index are bounded and
forget the oldest first.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from broker.model.resources import ZERO, Resources
from broker.service.extender.pod import PodFacts


@dataclass(frozen=True, slots=True)
class SeenPod:
    """An offline pod the extender has seen, with the team it was mapped to."""

    team: str
    facts: PodFacts


@dataclass(frozen=True, slots=True)
class _Charge:
    shape: Resources
    at_s: float


class Ledger:
    """Assumed-pod charges per team (with expiry) and a bounded index of seen pods. Not thread-safe: the
    server runs it on its single event loop."""

    def __init__(self, assume_ttl_s: float, max_seen: int = 200_000) -> None:
        if assume_ttl_s <= 0 or max_seen <= 0:
            raise ValueError("assume_ttl_s and max_seen must be positive")
        self._ttl_s = assume_ttl_s
        self._max_seen = max_seen
        self._charges: dict[str, OrderedDict[str, _Charge]] = {}
        self._bound_charges: dict[str, dict[str, _Charge]] = {}
        self._totals: dict[str, Resources] = {}
        self._seen: OrderedDict[str, SeenPod] = OrderedDict()
        self._bound_nodes: OrderedDict[str, str] = OrderedDict()

    # --- assumed pods ---------------------------------------------------------------------------------------

    def assume(self, uid: str, team: str, shape: Resources, now_s: float) -> None:
        """Charge ``shape`` to ``team`` for pod ``uid`` from ``now_s``; a second call for the same pod does
        nothing."""
        charges = self._charges.setdefault(team, OrderedDict())
        if uid not in charges and uid not in self._bound_charges.get(team, {}):
            charges[uid] = _Charge(shape, now_s)
            self._totals[team] = self._totals.get(team, ZERO) + shape

    def charged(self, team: str, now_s: float) -> Resources:
        """What ``team``'s live charges add up to at ``now_s`` (expired ones are dropped on the way)."""
        charges = self._charges.get(team)
        if charges:
            self._drop_while(team, charges, now_s - self._ttl_s, inclusive=True)
        return self._totals.get(team, ZERO)

    def settle(self, plan_created_at_s: float) -> None:
        """Drop every charge made before a plan created at ``plan_created_at_s``: that plan counts them."""
        for team, charges in self._charges.items():
            self._drop_while(team, charges, plan_created_at_s, inclusive=False)
        for team, bound in self._bound_charges.items():
            for uid in [uid for uid, charge in bound.items() if charge.at_s < plan_created_at_s]:
                self._totals[team] = self._totals[team] - bound.pop(uid).shape

    # --- bindings -------------------------------------------------------------------------------------------

    def bind(self, uid: str, node: str, now_s: float) -> None:
        """Record that pod ``uid`` was bound to ``node`` at ``now_s``: a pod this extender has seen is charged
        to its team until a plan made after ``now_s`` arrives, with no expiry."""
        self._bound_nodes[uid] = node
        self._bound_nodes.move_to_end(uid)
        while len(self._bound_nodes) > self._max_seen:
            self._bound_nodes.popitem(last=False)
        seen = self._seen.get(uid)
        if seen is None:
            return
        team, shape = seen.team, seen.facts.shape
        bound = self._bound_charges.setdefault(team, {})
        if uid in bound:
            return
        assumed = self._charges.get(team)
        if assumed is None or assumed.pop(uid, None) is None:
            self._totals[team] = self._totals.get(team, ZERO) + shape
        bound[uid] = _Charge(shape, now_s)

    def bound_node(self, uid: str) -> str | None:
        """The node pod ``uid`` was bound to through this extender, if remembered."""
        return self._bound_nodes.get(uid)

    def _drop_while(self, team: str, charges: OrderedDict[str, _Charge], cutoff_s: float,
                    inclusive: bool) -> None:
        """Drop the oldest charges made before ``cutoff_s`` (or at it, if ``inclusive``), keeping the total
        exact."""
        while charges:
            oldest = next(iter(charges.values()))
            if oldest.at_s > cutoff_s or (oldest.at_s == cutoff_s and not inclusive):
                break
            charges.popitem(last=False)
            self._totals[team] = self._totals[team] - oldest.shape

    # --- seen pods ------------------------------------------------------------------------------------------

    def remember(self, team: str, facts: PodFacts) -> None:
        """Index an offline pod by UID (pods without a UID cannot be named as victims and are skipped)."""
        if not facts.uid:
            return
        self._seen[facts.uid] = SeenPod(team, facts)
        self._seen.move_to_end(facts.uid)
        while len(self._seen) > self._max_seen:
            self._seen.popitem(last=False)

    def seen(self, uid: str) -> SeenPod | None:
        """The pod seen with ``uid``, if remembered."""
        return self._seen.get(uid)


__all__ = ["Ledger", "SeenPod"]
