"""Reclaim: only borrowers give back, never below their runtime quota, cheapest victims first, after a
grace."""

from __future__ import annotations

import pytest

from broker.errors import InputError
from broker.model import Resources
from broker.quota import (
    EvictionReason,
    ReclaimRequest,
    RunningContainer,
    RuntimeQuota,
    compute_runtime_quota,
    plan_reclaim,
    track_over_quota,
)

from .builders import cpu, group, policy


def setting(owner_demand: int = 30) -> RuntimeQuota:
    """owner (min 30) wants ``owner_demand`` cores back; borrower (min 10) runs 30 on a 40-core pool."""
    p = policy(group("owner").min(cpu="30"), group("borrower").min(cpu="10"))
    return compute_runtime_quota(p, cpu(40), {"owner": cpu(owner_demand), "borrower": cpu(30)})


def box(ident: str, cores: int = 5, priority: int = 0, started: float = 0.0, am: bool = False,
        preemptible: bool | None = None, group_name: str = "borrower") -> RunningContainer:
    return RunningContainer(id=ident, group=group_name, resources=cpu(cores), priority=priority,
                            started_at_s=started, is_am=am, preemptible=preemptible)


def reclaim(containers: list[RunningContainer], runtime: RuntimeQuota | None = None, grace: float = 0.0,
            over_since: dict[str, float] | None = None, owner_usage: int = 10) -> list[str]:
    runtime = runtime or setting()
    usage = {"owner": cpu(owner_usage),
             "borrower": cpu(sum(c.resources.cpu_milli for c in containers) // 1000)}
    plan = plan_reclaim(ReclaimRequest(containers=containers, runtime=runtime, usage=usage, now_s=100.0,
                                       grace_s=grace, over_since_s=over_since or {}))
    return [e.container for e in plan.evictions]


def test_the_lowest_priority_containers_go_first() -> None:
    # borrower runtime 10, usage 30: 20 owed to owner, none free
    victims = reclaim([box("high", 10, priority=5), box("low1", 10, priority=1), box("low2", 10, priority=1),
                       ], owner_usage=10)
    assert sorted(victims) == ["low1", "low2"]


def test_among_equal_priority_the_most_recently_started_goes_first() -> None:
    victims = reclaim([box("old", 10, started=1), box("new", 10, started=50), box("mid", 10, started=20)])
    assert sorted(victims) == ["mid", "new"]


def test_application_masters_go_after_workers() -> None:
    victims = reclaim([box("am", 10, am=True), box("w1", 10, priority=9), box("w2", 10, priority=9)])
    assert "am" not in victims


def test_non_preemptible_work_goes_last_with_its_reason() -> None:
    containers = [box("keep", 10, preemptible=False), box("w", 10), box("am", 10, am=True)]
    p = plan_reclaim(ReclaimRequest(containers=containers, runtime=setting(), now_s=0.0,
                                    usage={"owner": cpu(10), "borrower": cpu(30)}))
    assert {e.container: e.reason for e in p.evictions} == {"w": EvictionReason.BORROWED,
                                                            "am": EvictionReason.BORROWED_AM}


def test_a_borrower_is_never_taken_below_its_runtime_quota() -> None:
    # borrower runtime 10; one 25-core container would take it to 5
    assert reclaim([box("big", 25), box("small", 5)]) == ["small"]


def test_nothing_is_evicted_when_the_pool_has_room_for_what_is_owed() -> None:
    runtime = setting()
    p = plan_reclaim(ReclaimRequest(containers=[box("w", 10)], runtime=runtime, now_s=0.0,
                                    usage={"owner": cpu(10), "borrower": cpu(10)}))
    assert p.needed.is_zero() and not p.evictions


def test_borrowers_inside_their_grace_period_are_deferred() -> None:
    runtime = setting()
    p = plan_reclaim(ReclaimRequest(containers=[box("w", 20), box("x", 10)], runtime=runtime, now_s=100.0,
                                    grace_s=60.0, over_since_s={"borrower": 90.0},
                                    usage={"owner": cpu(10), "borrower": cpu(30)}))
    assert not p.evictions
    assert [(d.group, d.evictable_at_s) for d in p.deferred] == [("borrower", 150.0)]
    assert p.short == cpu(20)


def test_borrowers_past_their_grace_period_are_reclaimed() -> None:
    victims = reclaim([box("w", 10), box("x", 10), box("y", 10)], grace=60.0, over_since={"borrower": 10.0})
    assert len(victims) == 2


def test_the_set_is_minimal_no_victim_can_be_spared() -> None:
    # 15 cores owed: greedy takes the newest 4-core container, then the 16-core one; the 4 are then redundant
    victims = reclaim([box("small", 4, started=9), box("big", 16, started=1), box("rest", 10, started=0)],
                      owner_usage=15)
    assert victims == ["big"]


def test_over_quota_tracking_keeps_the_first_time_and_forgets_groups_back_within_quota() -> None:
    runtime = setting()
    first = track_over_quota({}, runtime, {"borrower": cpu(30), "owner": cpu(1)}, now_s=5.0)
    later = track_over_quota(first, runtime, {"borrower": cpu(30), "owner": cpu(1)}, now_s=9.0)
    back = track_over_quota(later, runtime, {"borrower": cpu(10), "owner": cpu(1)}, now_s=12.0)
    assert (first, later, back) == ({"borrower": 5.0}, {"borrower": 5.0}, {})


def test_a_container_of_an_unknown_group_is_an_input_error() -> None:
    with pytest.raises(InputError) as caught:
        plan_reclaim(ReclaimRequest(containers=[box("x", group_name="ghost")], runtime=setting(), now_s=0.0,
                                    usage={"owner": cpu(10), "borrower": cpu(30)}))
    assert caught.value.field == "containers[0].group"


def test_memory_that_a_borrower_does_not_borrow_is_not_a_reason_to_evict() -> None:
    runtime = setting()
    victim = RunningContainer(id="m", group="borrower", resources=Resources.of(memory="8Gi"))
    p = plan_reclaim(ReclaimRequest(containers=[victim], runtime=runtime, now_s=0.0,
                                    usage={"owner": cpu(10), "borrower": cpu(30)}))
    assert not p.evictions and p.short == cpu(20)
