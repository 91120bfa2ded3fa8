"""Checking victims someone else chose: borrowers only, never below their runtime quota where they borrow, and
whether an AM is among them. Whatever ``plan_reclaim`` chooses passes the same check."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from broker.model import Resources
from broker.quota import QuotaPolicy, ReclaimRequest, RunningContainer, compute_runtime_quota, plan_reclaim
from broker.quota.victims import RefusalReason, check_victims

from .builders import cpu

# borrower: runtime quota 10 cores, uses 16 (borrows 6); owner: runtime quota 30 cores, uses 10
RUNTIME = {"borrower": cpu(10), "owner": cpu(30)}
USAGE = {"borrower": cpu(16), "owner": cpu(10)}


def victim(ident: str, cores: int = 1, group: str = "borrower", am: bool = False,
           memory_mib: int = 0) -> RunningContainer:
    return RunningContainer(id=ident, group=group, is_am=am,
                            resources=Resources.exact(cpu_milli=cores * 1000, memory_mib=memory_mib))


def test_victims_of_a_borrower_within_what_it_borrows_are_allowed() -> None:
    check = check_victims([victim("a", 2), victim("b", 3)], RUNTIME, USAGE)
    assert check.allowed and check.refusals == ()


def test_victims_freeing_exactly_what_the_group_borrows_are_allowed() -> None:
    assert check_victims([victim("a", 6)], RUNTIME, USAGE).allowed


def test_no_victims_are_allowed() -> None:
    assert check_victims([], RUNTIME, USAGE).allowed


def test_victims_of_a_group_within_its_runtime_quota_are_refused_as_not_borrowing() -> None:
    check = check_victims([victim("o1", group="owner"), victim("o2", group="owner")], RUNTIME, USAGE)
    assert not check.allowed
    assert [(r.group, r.victims, r.reason) for r in check.refusals] == [
        ("owner", ("o1", "o2"), RefusalReason.NOT_BORROWING)]


def test_victims_adding_up_to_more_than_the_group_borrows_are_refused_as_below_quota() -> None:
    # each alone fits in the 6 borrowed cores; together (7) they would take borrower to 9 < 10
    check = check_victims([victim("a", 4), victim("b", 3)], RUNTIME, USAGE)
    assert [(r.group, r.victims, r.reason) for r in check.refusals] == [
        ("borrower", ("a", "b"), RefusalReason.BELOW_QUOTA)]


def test_a_dimension_the_group_does_not_borrow_in_does_not_veto() -> None:
    # borrower borrows CPU only: the memory its victims free (it has none above quota) does not count
    check = check_victims([victim("a", 2, memory_mib=4096)], RUNTIME, USAGE)
    assert check.allowed


def test_every_dimension_the_group_borrows_in_bounds_its_victims() -> None:
    runtime = {"borrower": Resources.exact(cpu_milli=10_000, memory_mib=1000)}
    usage = {"borrower": Resources.exact(cpu_milli=16_000, memory_mib=1500)}
    check = check_victims([victim("a", 2, memory_mib=600)], runtime, usage)
    assert [r.reason for r in check.refusals] == [RefusalReason.BELOW_QUOTA]


def test_each_group_is_judged_on_its_own_victims() -> None:
    check = check_victims([victim("b1", 2), victim("o1", group="owner"), victim("b2", 2)], RUNTIME, USAGE)
    assert [(r.group, r.victims) for r in check.refusals] == [("owner", ("o1",))]


def test_refusals_come_in_the_order_their_groups_first_appear() -> None:
    runtime = {**RUNTIME, "other": cpu(5)}
    usage = {**USAGE, "other": cpu(1)}
    check = check_victims([victim("x", group="other"), victim("o", group="owner"), victim("b", 9)], runtime,
                          usage)
    assert [r.group for r in check.refusals] == ["other", "owner", "borrower"]


def test_a_group_without_runtime_quota_is_refused() -> None:
    check = check_victims([victim("g", group="ghost")], RUNTIME, {**USAGE, "ghost": cpu(50)})
    assert [(r.group, r.reason) for r in check.refusals] == [("ghost", RefusalReason.UNKNOWN_GROUP)]


def test_a_group_missing_from_usage_uses_nothing_and_is_not_borrowing() -> None:
    check = check_victims([victim("a")], RUNTIME, {"owner": cpu(10)})
    assert [r.reason for r in check.refusals] == [RefusalReason.NOT_BORROWING]


def test_the_check_says_whether_an_am_is_among_the_victims() -> None:
    assert check_victims([victim("w"), victim("am", am=True)], RUNTIME, USAGE).evicts_am


def test_the_check_says_when_no_am_is_among_the_victims() -> None:
    assert not check_victims([victim("w1"), victim("w2")], RUNTIME, USAGE).evicts_am


def test_a_refused_set_still_says_whether_it_holds_an_am() -> None:
    check = check_victims([victim("am", group="owner", am=True)], RUNTIME, USAGE)
    assert not check.allowed and check.evicts_am


@st.composite
def victim_sets(draw: st.DrawFn) -> tuple[list[RunningContainer], dict[str, Resources], dict[str, Resources]]:
    """Random groups (some borrowing, some not) and random victims among them, in two dimensions."""
    names = [f"g{i}" for i in range(draw(st.integers(1, 4)))]
    runtime = {n: Resources.exact(draw(st.integers(0, 20)), draw(st.integers(0, 20))) for n in names}
    usage = {n: Resources.exact(draw(st.integers(0, 30)), draw(st.integers(0, 30))) for n in names}
    victims = [RunningContainer(id=f"v{k}", group=draw(st.sampled_from(names)), is_am=draw(st.booleans()),
                                resources=Resources.exact(draw(st.integers(0, 8)), draw(st.integers(0, 8))))
               for k in range(draw(st.integers(0, 8)))]
    return victims, runtime, usage


@settings(max_examples=150, deadline=None)
@given(victim_sets(), st.data())
def test_any_subset_of_an_allowed_set_is_allowed(case: Any, data: st.DataObject) -> None:
    victims, runtime, usage = case
    if not check_victims(victims, runtime, usage).allowed:
        return
    subset = [v for v in victims if data.draw(st.booleans())]
    assert check_victims(subset, runtime, usage).allowed


@st.composite
def reclaim_requests(draw: st.DrawFn) -> ReclaimRequest:
    """Leaf groups with random mins, running random two-dimensional containers, on a random pool."""
    count = draw(st.integers(2, 5))
    policy = QuotaPolicy.from_document({"groups": [
        {"name": f"t{i}", "min": {"cpu_milli": draw(st.integers(0, 40)), "memory_mib": draw(st.integers(0, 40))}}
        for i in range(count)]})
    containers: list[RunningContainer] = []
    usage: dict[str, Resources] = {}
    for i in range(count):
        used = Resources()
        for k in range(draw(st.integers(0, 12))):
            shape = Resources.exact(draw(st.integers(0, 9)), draw(st.integers(0, 9)))
            containers.append(RunningContainer(
                id=f"t{i}-{k}", group=f"t{i}", resources=shape, priority=draw(st.integers(0, 3)),
                started_at_s=float(draw(st.integers(0, 100))), preemptible=draw(st.sampled_from([None, True, False])),
                is_am=draw(st.booleans())))
            used = used + shape
        usage[f"t{i}"] = used
    demand = {name: used + Resources.exact(draw(st.integers(0, 40)), draw(st.integers(0, 40)))
              for name, used in usage.items()}
    pool = Resources.exact(draw(st.integers(0, 200)), draw(st.integers(0, 200)))
    runtime = compute_runtime_quota(policy, pool, demand)
    return ReclaimRequest(containers=containers, runtime=runtime, usage=usage, now_s=100.0)


@settings(max_examples=200, deadline=None)
@given(reclaim_requests())
def test_whatever_plan_reclaim_evicts_of_one_group_passes_the_check(request: ReclaimRequest) -> None:
    plan = plan_reclaim(request)
    by_id = {c.id: c for c in request.containers}
    runtime = {name: group.runtime for name, group in request.runtime.groups.items()}
    for name in {e.group for e in plan.evictions}:
        victims = [by_id[e.container] for e in plan.evictions if e.group == name]
        check = check_victims(victims, runtime, request.usage)
        assert check.allowed, check.refusals
        assert check.evicts_am == any(v.is_am for v in victims)
