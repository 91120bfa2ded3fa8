"""Runtime quota: what each group may use this interval, given the pool and every leaf's demand.

``compute_runtime_quota(policy, pool, demand)`` is pure and exact. Each dimension is divided on its own, in
four passes over the tree (``m`` min, ``M`` max, ``L`` lendingLimit, ``B`` borrowingLimit, ``d`` demand, ``w``
weight, all resolved against the pool ``P`` of the interval):

1. **Effective min** ``em`` (top-down). When the top-level mins add up to more than ``P`` (the evening peak
   shrinks the pool), they are scaled down in proportion to fit; below that, children's mins are scaled into
   their parent's effective min when they no longer fit. The result reports the ratio (``min_ratio_ppm``).
2. **Want** (bottom-up). ``cap = min(M, em + B)``; a leaf asks ``r = min(d, cap)``, an inner group
   ``r = min(cap, sum of its children's want)``. A group that may lend only ``L`` of its min keeps
   ``keep = em - min(L, em)`` even when idle, so ``want = max(r, keep)`` and its guaranteed part is
   ``reserved = max(min(em, r), keep)``.
3. **Allocation** (top-down). Starting from ``P`` at the pool, each group's runtime quota ``Q`` is split among
   its children: first every child's ``reserved`` (it always fits: ``sum reserved <= min(em, sum want) <=
   Q``), then the surplus by weighted water-filling up to each child's ``want`` (``fill.water_fill``).
4. **Accounting.** ``guaranteed = min(Q, em)``, ``borrowed = Q - em`` above the min, ``lent = em - Q`` below
   it.

Consequences (property-tested): the top-level runtime quotas add up to at most ``P`` and children's to at most
their parent's; every group gets at least ``min(d, em)``; no group exceeds ``M`` or ``em + B``; ``lent <= L``;
the same inputs give the same result (ties go to the group declared first).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, NamedTuple

from broker.errors import InputError
from broker.model import UNLIMITED, Resources, total
from broker.quota.fill import scale_down, water_fill
from broker.quota.policy import QuotaPolicy
from broker.quota.tree import QuotaTree, resolve

PPM = 1_000_000
"""``min_ratio_ppm`` of a dimension whose mins were not scaled."""

_DIM_NAMES = ("cpu", "memory", "disk", "network", "gpu")


Vector = tuple[int, int, int, int, int]
"""Five exact amounts in ``Resources.FIELDS`` order."""


@dataclass(frozen=True)
class GroupQuota:
    """One group's quota for the interval. Inner groups' ``demand`` is the sum of their leaves'.

    The amounts are kept as integer vectors and turned into ``Resources`` on first use: a plan for 1,000
    groups reads a few of them per group, and building seven frozen models per group every interval would cost
    more than the computation itself.
    """

    name: str
    parent: str | None
    leaf: bool
    preemptible: bool
    demand_vector: Vector
    min_vector: Vector
    max_vector: Vector
    runtime_vector: Vector

    @cached_property
    def demand(self) -> Resources:
        """The demand (running + pending) the quota was computed for."""
        return Resources.exact(*self.demand_vector)

    @cached_property
    def min(self) -> Resources:
        """The effective min: the policy's min, scaled down when the pool cannot hold every min."""
        return Resources.exact(*self.min_vector)

    @cached_property
    def max(self) -> Resources:
        """The cap this interval: ``min(max, min + borrowingLimit)``."""
        return Resources.exact(*self.max_vector)

    @cached_property
    def runtime(self) -> Resources:
        """The runtime quota: what the group may use this interval."""
        return Resources.exact(*self.runtime_vector)

    @property
    def guaranteed(self) -> Resources:
        """The part of ``runtime`` covered by the group's own min."""
        return self.runtime.min(self.min)

    @property
    def borrowed(self) -> Resources:
        """The part of ``runtime`` above the min: lent by others, taken back by reclaim when they need it."""
        return self.runtime - self.min

    @property
    def lent(self) -> Resources:
        """The part of the min not used this interval: available to others (never more than the
        lendingLimit)."""
        return self.min - self.runtime

    def for_storage(self) -> dict[str, Any]:
        """JSON form with exact integer vectors."""
        return {
            "parent": self.parent,
            "leaf": self.leaf,
            "demand": self.demand.for_storage(),
            "min": self.min.for_storage(),
            "max": self.max.for_storage(),
            "runtime": self.runtime.for_storage(),
            "guaranteed": self.guaranteed.for_storage(),
            "borrowed": self.borrowed.for_storage(),
            "lent": self.lent.for_storage(),
        }


@dataclass(frozen=True, slots=True)
class RuntimeQuota:
    """Every group's runtime quota for one interval, keyed by group name (declared order)."""

    pool: Resources
    groups: Mapping[str, GroupQuota]
    min_ratio_ppm: tuple[int, ...]
    """Per dimension (``Resources.FIELDS`` order), the factor applied to the mins in parts per million."""

    @property
    def scaled(self) -> bool:
        """True when the pool could not hold every min and the mins were scaled down."""
        return any(r < PPM for r in self.min_ratio_ppm)

    @property
    def scaled_dimensions(self) -> tuple[str, ...]:
        """Names of the dimensions whose mins were scaled down."""
        return tuple(n for n, r in zip(_DIM_NAMES, self.min_ratio_ppm, strict=True) if r < PPM)

    @property
    def allocated(self) -> Resources:
        """The part of the pool given to top-level groups."""
        return total([g.runtime for g in self.groups.values() if g.parent is None])

    def for_storage(self) -> dict[str, Any]:
        """JSON form: the pool, the scaling and each group keyed by name."""
        return {
            "pool": self.pool.for_storage(),
            "scaled": self.scaled,
            "min_ratio_ppm": dict(zip(_DIM_NAMES, self.min_ratio_ppm, strict=True)),
            "groups": {name: group.for_storage() for name, group in self.groups.items()},
        }


def compute_runtime_quota(policy: QuotaPolicy, pool: Resources,
                          demand: Mapping[str, Resources]) -> RuntimeQuota:
    """Each group's runtime quota for a pool of ``pool`` and ``demand`` per LEAF group (running + pending).

    Leaves missing from ``demand`` want nothing. A key that is not a leaf is an ``InputError`` naming it.
    """
    tree = policy.tree
    size = tree.size
    leaf_demand: list[tuple[int, ...]] = [(0, 0, 0, 0, 0)] * size
    for name, amount in demand.items():
        index = tree.index.get(name)
        if index is None:
            raise InputError(f"demand.{name}", "no quota group of this name")
        if not tree.is_leaf(index):
            raise InputError(f"demand.{name}", "not a leaf group; demand belongs to the leaves")
        leaf_demand[index] = tuple(amount)
    cols = [_divide(tree, d, amount, [row[d] for row in leaf_demand]) for d, amount in enumerate(pool)]
    groups: dict[str, GroupQuota] = {}
    rows = [list(zip(*(getattr(c, part) for c in cols), strict=True)) for part in ("demand", "eff", "cap",
                                                                                     "runtime")]
    for i, name in enumerate(tree.names):
        parent = tree.parent[i]
        groups[name] = GroupQuota(name=name, parent=tree.names[parent] if parent >= 0 else None,
                                  leaf=tree.is_leaf(i), preemptible=tree.preemptible[i],
                                  demand_vector=rows[0][i],
                                  min_vector=rows[1][i], max_vector=rows[2][i], runtime_vector=rows[3][i])
    return RuntimeQuota(pool=pool, groups=groups, min_ratio_ppm=tuple(c.ratio_ppm for c in cols))


class _Column(NamedTuple):
    """One dimension's result, one entry per group index."""

    eff: list[int]
    cap: list[int]
    runtime: list[int]
    demand: list[int]
    ratio_ppm: int


def _divide(tree: QuotaTree, d: int, pool: int, leaf_demand: list[int]) -> _Column:
    """Divide dimension ``d`` of ``pool``: the four passes of the module docstring."""
    size = tree.size
    mins = resolve(tree.mins[d], pool)
    maxes = resolve(tree.maxes[d], pool)
    lending = resolve(tree.lending[d], pool)
    borrowing = resolve(tree.borrowing[d], pool)
    weights = tree.weights[d]

    # 1. effective mins, scaled top-down where they no longer fit
    eff = list(mins)
    top_sum = sum(mins[i] for i in tree.top)
    ratio = PPM if top_sum <= pool else pool * PPM // top_sum
    _scale_into(eff, tree.top, pool)
    for g in tree.order:
        if tree.children[g]:
            _scale_into(eff, tree.children[g], eff[g])

    # 2. want and reserved, bottom-up
    cap = [0] * size
    want = [0] * size
    reserved = [0] * size
    dem = list(leaf_demand)
    for g in reversed(tree.order):
        kids = tree.children[g]
        if kids:
            dem[g] = sum(dem[c] for c in kids)
            asked = sum(want[c] for c in kids)
        else:
            asked = dem[g]
        cap[g] = min(maxes[g], UNLIMITED if borrowing[g] >= UNLIMITED else eff[g] + borrowing[g])
        r = min(asked, cap[g])
        keep = eff[g] - min(lending[g], eff[g])
        want[g] = max(r, keep)
        reserved[g] = max(min(eff[g], r), keep)

    # 3. allocation, top-down
    runtime = [0] * size
    _allocate(runtime, tree.top, pool, reserved, want, weights)
    for g in tree.order:
        if tree.children[g]:
            _allocate(runtime, tree.children[g], runtime[g], reserved, want, weights)
    return _Column(eff, cap, runtime, dem, ratio)


def _scale_into(eff: list[int], members: tuple[int, ...], room: int) -> None:
    """Scale the effective mins of ``members`` in proportion so that they add up to at most ``room``."""
    wanted = [eff[i] for i in members]
    if sum(wanted) > room:
        for i, value in zip(members, scale_down(room, wanted), strict=True):
            eff[i] = value


def _allocate(runtime: list[int], members: tuple[int, ...], amount: int, reserved: list[int], want: list[int],
              weights: tuple[int, ...]) -> None:
    """Give ``members`` their reserved part, then water-fill the rest of ``amount`` up to their want."""
    surplus = amount - sum(reserved[i] for i in members)
    extra = water_fill(surplus, [want[i] - reserved[i] for i in members], [weights[i] for i in members])
    for i, more in zip(members, extra, strict=True):
        runtime[i] = reserved[i] + more


__all__ = ["PPM", "GroupQuota", "RuntimeQuota", "compute_runtime_quota"]
