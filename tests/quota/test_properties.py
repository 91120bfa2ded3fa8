"""Invariants of runtime quota, water-filling and reclaim, checked on random trees, pools and demands."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from broker.model import UNLIMITED, Resources
from broker.quota import (
    QuotaPolicy,
    ReclaimRequest,
    RunningContainer,
    compute_runtime_quota,
    plan_reclaim,
    water_fill,
)

DIMS = ("cpu_milli", "memory_mib")


@st.composite
def trees(draw: st.DrawFn) -> tuple[QuotaPolicy, dict[str, dict[str, int]]]:
    """A random valid policy (up to 14 groups, 4 levels) in exact units, and each group's limits by
    dimension."""
    count = draw(st.integers(1, 14))
    groups: list[dict[str, Any]] = []
    limits: dict[str, dict[str, int]] = {}
    room: dict[str | None, dict[str, int]] = {None: {"cpu_milli": 400, "memory_mib": 4000}}
    depth: dict[str | None, int] = {None: 0}
    for i in range(count):
        name = f"g{i}"
        parents = [p for p in depth if depth[p] < 4]
        parent = draw(st.sampled_from(parents))
        spec: dict[str, Any] = {"name": name, "weight": {"cpu": draw(st.integers(1, 4)),
                                                         "memory": draw(st.integers(1, 4))}}
        if parent is not None:
            spec["parent"] = parent
        mins, own = {}, {}
        for dim in DIMS:
            low = draw(st.integers(0, room[parent][dim]))
            room[parent][dim] -= low
            mins[dim] = low
            high = draw(st.one_of(st.none(), st.integers(low, low + 300)))
            lend = draw(st.one_of(st.none(), st.integers(0, low)))
            borrow = draw(st.one_of(st.none(), st.integers(0, 300)))
            if high is not None and borrow is not None:
                borrow = min(borrow, high)
            own |= {f"min.{dim}": low, f"max.{dim}": UNLIMITED if high is None else high,
                    f"lend.{dim}": UNLIMITED if lend is None else lend,
                    f"borrow.{dim}": UNLIMITED if borrow is None else borrow}
            for key, value in (("max", high), ("lendingLimit", lend), ("borrowingLimit", borrow)):
                if value is not None:
                    spec.setdefault(key, {})[dim] = value
        spec["min"] = mins
        room[name] = dict(mins)
        depth[name] = depth[parent] + 1
        limits[name] = own
        groups.append(spec)
    return QuotaPolicy.from_document({"groups": groups}), limits


def leaf_names(policy: QuotaPolicy) -> list[str]:
    return [policy.tree.names[i] for i in policy.tree.leaves]


@st.composite
def situations(draw: st.DrawFn) -> tuple[QuotaPolicy, dict[str, dict[str, int]], Resources, dict[str,
                                                                                                 Resources]]:
    policy, limits = draw(trees())
    pool = Resources.exact(cpu_milli=draw(st.integers(0, 800)), memory_mib=draw(st.integers(0, 8000)))
    demand = {name: Resources.exact(cpu_milli=draw(st.integers(0, 500)), memory_mib=draw(st.integers(0,
                                                                                                     5000)))
              for name in leaf_names(policy)}
    return policy, limits, pool, demand


@settings(max_examples=150, deadline=None)
@given(situations())
def test_runtime_quota_never_exceeds_the_pool_nor_a_parent(case: Any) -> None:
    policy, _, pool, demand = case
    result = compute_runtime_quota(policy, pool, demand)
    assert result.allocated.fits_in(pool)
    for name, g in result.groups.items():
        kids = [k for k in result.groups.values() if k.parent == name]
        for dim in DIMS:
            assert sum(getattr(k.runtime, dim) for k in kids) <= getattr(g.runtime, dim)


@settings(max_examples=150, deadline=None)
@given(situations())
def test_every_leaf_gets_at_least_the_smaller_of_its_demand_and_its_scaled_min(case: Any) -> None:
    policy, limits, pool, demand = case
    result = compute_runtime_quota(policy, pool, demand)
    for name in leaf_names(policy):
        g = result.groups[name]
        for dim in DIMS:
            assert getattr(g.runtime, dim) >= min(getattr(demand[name], dim), getattr(g.min, dim))
            assert getattr(g.min, dim) <= limits[name][f"min.{dim}"]
    if not result.scaled:
        assert all(getattr(result.groups[n].min, d) == limits[n][f"min.{d}"] for n in limits for d in DIMS)


@settings(max_examples=150, deadline=None)
@given(situations())
def test_no_group_exceeds_its_max_or_min_plus_borrowing_limit(case: Any) -> None:
    policy, limits, pool, demand = case
    result = compute_runtime_quota(policy, pool, demand)
    for name, g in result.groups.items():
        for dim in DIMS:
            got = getattr(g.runtime, dim)
            assert got <= limits[name][f"max.{dim}"]
            assert got <= limits[name][f"min.{dim}"] + limits[name][f"borrow.{dim}"]


@settings(max_examples=150, deadline=None)
@given(situations())
def test_lending_never_exceeds_the_lending_limit(case: Any) -> None:
    policy, limits, pool, demand = case
    result = compute_runtime_quota(policy, pool, demand)
    for name, g in result.groups.items():
        for dim in DIMS:
            assert getattr(g.lent, dim) <= limits[name][f"lend.{dim}"]


@settings(max_examples=60, deadline=None)
@given(situations())
def test_runtime_quota_is_deterministic(case: Any) -> None:
    policy, _, pool, demand = case
    again = QuotaPolicy.from_document(policy.for_storage())
    assert compute_runtime_quota(policy, pool, demand) == compute_runtime_quota(again, pool, dict(demand))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 50), st.integers(1, 5)), min_size=1, max_size=12), st.integers(0,
                                                                                                        400))
def test_water_fill_is_exact_bounded_and_even(claims: list[tuple[int, int]], amount: int) -> None:
    headroom = [h for h, _ in claims]
    weights = [w for _, w in claims]
    out = water_fill(amount, headroom, weights)
    assert sum(out) == min(amount, sum(headroom))
    assert all(0 <= x <= h for x, h in zip(out, headroom, strict=True))
    for i, (x_i, h_i) in enumerate(zip(out, headroom, strict=True)):
        if x_i < h_i:  # not saturated: nobody is more than one unit above its level
            for j, x_j in enumerate(out):
                assert (x_j - 1) * weights[i] < (x_i + 1) * weights[j]


@st.composite
def reclaim_cases(draw: st.DrawFn, unit: bool = False) -> tuple[ReclaimRequest, dict[str, Resources]]:
    count = draw(st.integers(2, 5))
    groups = [{"name": f"t{i}", "min": {"cpu_milli": draw(st.integers(0, 40))}} for i in range(count)]
    policy = QuotaPolicy.from_document({"groups": groups})
    containers: list[RunningContainer] = []
    usage: dict[str, Resources] = {}
    for i in range(count):
        used = [0, 0]
        for k in range(draw(st.integers(0, 12))):
            shape = (1, 0) if unit else (draw(st.integers(0, 9)), draw(st.integers(0, 9)))
            containers.append(RunningContainer(
                id=f"t{i}-{k}", group=f"t{i}", resources=Resources.exact(*shape),
                priority=draw(st.integers(0, 3)), started_at_s=float(draw(st.integers(0, 100))),
                preemptible=draw(st.sampled_from([None, True, False])), is_am=draw(st.booleans())))
            used = [used[0] + shape[0], used[1] + shape[1]]
        usage[f"t{i}"] = Resources.exact(*used)
    demand = {name: used + Resources.exact(draw(st.integers(0, 40)), draw(st.integers(0, 40)))
              for name, used in usage.items()}
    pool = Resources.exact(draw(st.integers(0, 200)), draw(st.integers(0, 200)))
    runtime = compute_runtime_quota(policy, pool, demand)
    return ReclaimRequest(containers=containers, runtime=runtime, usage=usage, now_s=100.0), usage


@settings(max_examples=150, deadline=None)
@given(reclaim_cases())
def test_reclaim_takes_only_from_borrowers_and_never_below_their_runtime_quota(case: Any) -> None:
    request, usage = case
    plan = plan_reclaim(request)
    freed: dict[str, list[int]] = {}
    for e in plan.evictions:
        got = freed.setdefault(e.group, [0] * 5)
        for d, amount in enumerate(e.resources):
            got[d] += amount
    for name, amounts in freed.items():
        quota, used = tuple(request.runtime.groups[name].runtime), tuple(usage[name])
        assert any(u > q for u, q in zip(used, quota, strict=True)), "victims only from borrowers"
        for d in range(5):
            if used[d] > quota[d]:
                assert used[d] - amounts[d] >= quota[d]


@settings(max_examples=150, deadline=None)
@given(reclaim_cases(unit=True))
def test_reclaim_frees_what_was_asked_when_the_borrowers_hold_enough(case: Any) -> None:
    request, usage = case
    plan = plan_reclaim(request)
    excess = sum(max(0, usage[n].cpu_milli - g.runtime.cpu_milli) for n, g in request.runtime.groups.items())
    assert plan.freed.cpu_milli >= min(plan.needed.cpu_milli, excess)


@settings(max_examples=60, deadline=None)
@given(reclaim_cases(), st.randoms(use_true_random=False))
def test_reclaim_does_not_depend_on_the_order_containers_are_listed(case: Any, rnd: random.Random) -> None:
    request, _ = case
    shuffled = list(request.containers)
    rnd.shuffle(shuffled)
    other = ReclaimRequest(containers=shuffled, runtime=request.runtime, usage=request.usage,
                           now_s=request.now_s)
    assert plan_reclaim(request) == plan_reclaim(other)
