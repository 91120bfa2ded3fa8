"""Reclaim: which running containers to evict so that groups below their runtime quota get it back.

``plan_reclaim(request)`` is pure: it receives everything it uses (the containers, the runtime quota, each
leaf's usage, the clock, the grace period and since when each group has been over its quota) and returns
intents.

What is asked. Per dimension, the groups below their runtime quota are owed ``sum(runtime - usage)``; what the
pool has free (``pool - sum(usage)``) pays part of it; the rest is ``needed``::

    needed = max(0, sum_g max(0, runtime_g - usage_g) - max(0, pool - sum_g usage_g))

Who gives. Only *borrowers*: leaves whose usage is above their runtime quota in some dimension, and only once
they have been over it for ``grace_s`` (until then they are reported as ``deferred``, with the time they
become evictable). A container is a candidate when it frees a dimension that is still needed *and* in which
its group borrows. Taking it must not bring its group below its runtime quota in any dimension where the group
borrows (dimensions where the group is not over are untouched by intent; a container's other resources go with
it). This rule lives in ``broker.quota.victims`` (``borrowing_dims``, ``within_borrowed``), which also checks
victim sets chosen elsewhere (kube-scheduler's, through the extender) with ``check_victims``.

In what order. Preemptible workers first, then preemptible ApplicationMasters / drivers, then non-preemptible
workers, then non-preemptible AMs; within a tier, lowest priority first, then the most recently started, then
the container id (so the result is deterministic). Victims are taken in that order until ``needed`` is freed;
a last pass drops, from the most precious back, every victim the others already cover, so that no victim in
the list could be spared (a minimal set; the minimum set is a knapsack problem and not worth the interval's
time).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from broker.errors import InputError
from broker.model import ZERO, Resources
from broker.quota.runtime import RuntimeQuota
from broker.quota.victims import borrowed, borrowing_dims, within_borrowed


class EvictionReason(StrEnum):
    """Why a container was chosen; the order of the members is the order victims are taken in."""

    BORROWED = "borrowed"
    """A preemptible worker of a group using more than its runtime quota."""
    BORROWED_AM = "borrowed-am"
    """An ApplicationMaster or driver of such a group: its workers were not enough."""
    BORROWED_NON_PREEMPTIBLE = "borrowed-non-preemptible"
    """Marked non-preemptible, taken only because the preemptible work of the borrowers was not enough."""
    BORROWED_NON_PREEMPTIBLE_AM = "borrowed-non-preemptible-am"
    """A non-preemptible ApplicationMaster or driver: the very last resort."""


_TIERS = tuple(EvictionReason)


@dataclass(frozen=True, slots=True)
class RunningContainer:
    """A running container charged to leaf group ``group``. ``preemptible=None`` takes the group's default."""

    id: str
    group: str
    resources: Resources
    priority: int = 0
    started_at_s: float = 0.0
    preemptible: bool | None = None
    is_am: bool = False


@dataclass(frozen=True, slots=True)
class ReclaimRequest:
    """Everything reclaim looks at. ``usage`` is per leaf; ``over_since_s`` comes from
    ``track_over_quota``."""

    containers: Sequence[RunningContainer]
    runtime: RuntimeQuota
    usage: Mapping[str, Resources]
    now_s: float
    grace_s: float = 0.0
    over_since_s: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Eviction:
    """One container to evict, and why."""

    container: str
    group: str
    resources: Resources
    reason: EvictionReason
    detail: str


@dataclass(frozen=True, slots=True)
class Deferred:
    """A borrower still inside its grace period: nothing of it is evicted before ``evictable_at_s``."""

    group: str
    over: Resources
    evictable_at_s: float


@dataclass(frozen=True, slots=True)
class ReclaimPlan:
    """The reply: what was needed, what the evictions free, and who was spared for now."""

    needed: Resources
    freed: Resources
    evictions: tuple[Eviction, ...]
    deferred: tuple[Deferred, ...]

    @property
    def short(self) -> Resources:
        """What the evictions could not free (borrowers in grace, or not enough borrowed work)."""
        return self.needed - self.freed


def track_over_quota(previous: Mapping[str, float], runtime: RuntimeQuota, usage: Mapping[str, Resources],
                     now_s: float) -> dict[str, float]:
    """Since when each leaf has been above its runtime quota: kept from ``previous``, started at ``now_s``.

    Call it every interval and pass the result as ``ReclaimRequest.over_since_s``; groups back within their
    quota drop out, so their grace period starts again the next time they borrow.
    """
    out: dict[str, float] = {}
    for name, used in usage.items():
        group = runtime.groups.get(name)
        if group is not None and not used.fits_in(group.runtime):
            out[name] = previous.get(name, now_s)
    return out


_Choice = tuple["RunningContainer", int, tuple[int, ...]]
"""A chosen victim, its tier (index into ``EvictionReason``) and its amounts."""


def plan_reclaim(request: ReclaimRequest) -> ReclaimPlan:
    """The evictions that give back what groups below their runtime quota are owed (see the module
    docstring)."""
    runtime = request.runtime
    for name in request.usage:
        group = runtime.groups.get(name)
        if group is None or not group.leaf:
            raise InputError(f"usage.{name}", "not a leaf quota group")
    needed = _needed(runtime, request.usage)
    if needed.is_zero():
        return ReclaimPlan(needed=needed, freed=ZERO, evictions=(), deferred=())
    need = list(needed)
    over: dict[str, list[int]] = {}
    deferred: list[Deferred] = []
    for name, used in request.usage.items():
        excess = borrowed(runtime.groups[name].runtime, used)
        if not any(need[d] > 0 for d in borrowing_dims(excess)):
            continue  # not a borrower, or borrowing only what nobody is owed
        since = request.over_since_s.get(name, request.now_s)
        if request.now_s - since < request.grace_s:
            deferred.append(Deferred(group=name, over=excess, evictable_at_s=since + request.grace_s))
        else:
            over[name] = list(excess)
    victims, freed = _select(request, over, need)
    return ReclaimPlan(needed=needed, freed=Resources.exact(*freed), evictions=tuple(victims),
                       deferred=tuple(sorted(deferred, key=lambda x: x.group)))


def _needed(runtime: RuntimeQuota, usage: Mapping[str, Resources]) -> Resources:
    owed = [0] * 5
    used_total = [0] * 5
    for name, group in runtime.groups.items():
        if not group.leaf:
            continue
        used = usage.get(name, ZERO)
        for d, (quota, amount) in enumerate(zip(group.runtime, used, strict=True)):
            owed[d] += max(0, quota - amount)
            used_total[d] += amount
    free = [max(0, p - u) for p, u in zip(runtime.pool, used_total, strict=True)]
    return Resources.exact(*(max(0, o - f) for o, f in zip(owed, free, strict=True)))


def _select(request: ReclaimRequest, over: dict[str, list[int]],
            need: list[int]) -> tuple[list[Eviction], list[int]]:
    """Greedy in eviction order within each borrower's excess, then drop the victims the others cover.

    Returns the evictions and what they free per dimension.
    """
    groups = request.runtime.groups
    protected = {name: borrowing_dims(excess) for name, excess in over.items()}
    borrowing = {name: [need[d] > 0 and d in dims for d in range(5)] for name, dims in protected.items()}
    default_tier = {name: 0 if groups[name].preemptible else 2 for name in over}
    positions: list[int] = []
    tiers: list[int] = []
    for position, c in enumerate(request.containers):
        flags = borrowing.get(c.group)
        if flags is None:
            if c.group not in groups:
                raise InputError(f"containers[{position}].group", f"no quota group named {c.group!r}")
            continue
        r = c.resources
        if not ((flags[0] and r.cpu_milli) or (flags[1] and r.memory_mib) or (flags[2] and r.disk_gib)
                or (flags[3] and r.network_mbps) or (flags[4] and r.gpu)):
            continue
        tier = default_tier[c.group] if c.preemptible is None else (0 if c.preemptible else 2)
        positions.append(position)
        tiers.append(tier + 1 if c.is_am else tier)
    order = _eviction_order(request.containers, positions, tiers)
    left = list(need)
    needed_dims = [d for d in range(5) if need[d] > 0]
    # what all eligible borrowers together can still give, per needed dimension: once it is spent, stop early
    givable = [sum(excess[d] for excess in over.values()) for d in range(5)]
    chosen: list[_Choice] = []
    containers = request.containers
    for k in order:
        tier, position = tiers[k], positions[k]
        if not _some(left, givable, needed_dims):
            break
        c = containers[position]
        budget = over[c.group]  # what the group still borrows once the victims already chosen are gone
        r = c.resources
        amounts = (r.cpu_milli, r.memory_mib, r.disk_gib, r.network_mbps, r.gpu)
        if not _helps(amounts, left, budget, needed_dims):
            continue
        if not within_borrowed(amounts, budget, protected[c.group]):
            continue  # it would take the group below its runtime quota where it borrows
        for d in range(5):
            if amounts[d]:
                givable[d] -= min(amounts[d], max(budget[d], 0))
                budget[d] -= amounts[d]
                left[d] -= amounts[d]
        chosen.append((c, tier, amounts))
    if all(x <= 0 for x in left):
        chosen = _drop_covered(chosen, left, needed_dims)
    freed = [0] * 5
    for _, _, taken in chosen:
        for d in range(5):
            freed[d] += taken[d]
    details = {name: f"group {name} uses more than its runtime quota ({groups[name].runtime})"
               for name in over}
    evictions = [Eviction(container=c.id, group=c.group, resources=c.resources, reason=_TIERS[tier],
                          detail=details[c.group]) for c, tier, _ in chosen]
    return evictions, freed


def _eviction_order(containers: Sequence[RunningContainer], positions: list[int],
                    tiers: list[int]) -> list[int]:
    """Candidate indices sorted by (tier, priority, most recent start first, id).

    Done as four stable sorts on plain int / float / str keys, least significant first: CPython compares such
    keys natively, which is several times faster than comparing tuples when 100,000 containers are ranked.
    """
    order = list(range(len(positions)))
    for key in ([containers[p].id for p in positions], [-containers[p].started_at_s for p in positions],
                [containers[p].priority for p in positions], tiers):
        order.sort(key=key.__getitem__)
    return order


def _some(left: list[int], givable: list[int], dims: list[int]) -> bool:
    """True while some needed dimension is still short and the borrowers can still give some of it."""
    # an explicit loop: called per candidate, it is measurably faster than any() over a generator
    for d in dims:  # noqa: SIM110
        if left[d] > 0 and givable[d] > 0:
            return True
    return False


def _helps(amounts: tuple[int, ...], left: list[int], budget: list[int], dims: list[int]) -> bool:
    """True when the container frees a still-needed dimension in which its group still borrows."""
    # an explicit loop: called per candidate, it is measurably faster than any() over a generator
    for d in dims:  # noqa: SIM110
        if left[d] > 0 and budget[d] > 0 and amounts[d] > 0:
            return True
    return False


def _drop_covered(chosen: list[_Choice], left: list[int], dims: list[int]) -> list[_Choice]:
    """Remove, from the last chosen back, every victim whose resources the surplus already covers."""
    slack = [-x for x in left]  # freed beyond what was needed, per dimension
    if all(slack[d] == 0 for d in dims):
        return chosen  # freed exactly what was needed, and every victim frees some needed dimension
    kept: list[_Choice] = []
    for choice in reversed(chosen):
        amounts = choice[2]
        if all(a <= s for a, s in zip(amounts, slack, strict=True)):
            slack = [s - a for a, s in zip(amounts, slack, strict=True)]
        else:
            kept.append(choice)
    kept.reverse()
    return kept


__all__ = [
    "Deferred",
    "Eviction",
    "EvictionReason",
    "ReclaimPlan",
    "ReclaimRequest",
    "RunningContainer",
    "plan_reclaim",
    "track_over_quota",
]
