"""Preempt: only victims quota reclaim allows (borrowers, never below quota), AMs last, lowest priority."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from broker.service.extender import Extender, Verb

from .builders import PodBuilder, filter_body, node, plan, pod, preempt_body, team


def preempt(extender: Extender, body: bytes) -> dict[str, Any]:
    reply = extender.handle(Verb.PREEMPT, body)
    assert reply.status == 200, reply.body
    kept: dict[str, Any] = orjson.loads(reply.body)["NodeNameToMetaVictims"]
    return kept


def seen(extender: Extender, *pods: PodBuilder) -> None:
    """Let the extender see running pods the way it does: through filter, when they were scheduled."""
    for p in pods:
        extender.handle(Verb.FILTER, filter_body(p, ["n1"]))


@pytest.fixture
def reclaim(extender: Extender) -> Extender:
    """team-a owns 8 cores and uses 2; team-b owns 2 cores and borrows 4 more (uses 6)."""
    nodes = [
        node(f"n{i}").stable().places("team-a", "exec", 4).places("team-b", "exec", 4) for i in (1, 2, 3)
    ]
    extender.install(
        plan(
            nodes=nodes,
            teams=[
                team("team-a").quota(cpu="8", memory="64Gi").running(cpu="2", memory="2Gi"),
                team("team-b").quota(cpu="2", memory="64Gi").running(cpu="6", memory="6Gi"),
            ],
        )
    )
    return extender


def b_pod(name: str, cpu: int = 1000, priority: int = 0) -> PodBuilder:
    return pod(name).ns("team-b").batch(cpu, "1Gi").priority(priority)


def test_victims_of_a_borrowing_team_are_kept(reclaim: Extender) -> None:
    seen(reclaim, b_pod("b1"))
    kept = preempt(reclaim, preempt_body(pod("a").batch(1000).priority(10), {"n1": ["uid-b1"]}))
    assert kept == {"n1": {"Pods": [{"UID": "uid-b1"}], "NumPDBViolations": 0}}


def test_victims_of_a_team_within_its_quota_are_not(reclaim: Extender) -> None:
    seen(reclaim, pod("a1").batch(1000))
    assert preempt(reclaim, preempt_body(b_pod("b", priority=10), {"n1": ["uid-a1"]})) == {}


def test_reclaim_never_takes_a_borrower_below_its_quota(reclaim: Extender) -> None:
    # team-b borrows 4 cores: evicting 5 one-core pods on one node would take it below its quota.
    victims = [b_pod(f"b{i}") for i in range(5)]
    seen(reclaim, *victims)
    body = preempt_body(
        pod("a").batch(1000).priority(10), {"n1": [f"uid-b{i}" for i in range(5)], "n2": ["uid-b0", "uid-b1"]}
    )
    assert set(preempt(reclaim, body)) == {"n2"}


def test_a_team_over_its_quota_may_not_reclaim(reclaim: Extender) -> None:
    seen(reclaim, b_pod("b1"))
    # team-b is itself borrowing: its new pod cannot evict anything, not even its own team's borrowers.
    assert preempt(reclaim, preempt_body(b_pod("b-new", priority=10), {"n1": ["uid-b1"]})) == {}


def test_an_unknown_victim_keeps_its_node_out(reclaim: Extender) -> None:
    seen(reclaim, b_pod("b1"))
    body = preempt_body(pod("a").batch(1000).priority(10), {"n1": ["uid-b1", "uid-online"], "n2": ["uid-b1"]})
    assert set(preempt(reclaim, body)) == {"n2"}


def test_nodes_that_would_evict_an_am_lose_to_nodes_that_need_not(reclaim: Extender) -> None:
    seen(reclaim, b_pod("b-am").am(), b_pod("b-exec"))
    body = preempt_body(pod("a").batch(1000).priority(10), {"n1": ["uid-b-am"], "n2": ["uid-b-exec"]})
    assert set(preempt(reclaim, body)) == {"n2"}


def test_an_am_may_go_when_every_candidate_evicts_one(reclaim: Extender) -> None:
    seen(reclaim, b_pod("b-am").am())
    body = preempt_body(pod("a").batch(1000).priority(10), {"n1": ["uid-b-am"]})
    assert set(preempt(reclaim, body)) == {"n1"}


def test_only_nodes_with_the_lowest_priority_victims_are_kept(reclaim: Extender) -> None:
    seen(reclaim, b_pod("low", priority=1), b_pod("mid", priority=5), b_pod("low2", priority=1))
    body = preempt_body(
        pod("a").batch(1000).priority(10), {"n1": ["uid-mid"], "n2": ["uid-low"], "n3": ["uid-low2"]}
    )
    assert set(preempt(reclaim, body)) == {"n2", "n3"}


def test_nodes_the_plan_does_not_allow_are_dropped(reclaim: Extender) -> None:
    seen(reclaim, b_pod("b1"))
    body = preempt_body(pod("a").batch(1000).priority(10), {"ghost": ["uid-b1"], "n1": ["uid-b1"]})
    assert set(preempt(reclaim, body)) == {"n1"}


def test_full_victim_pods_are_judged_without_having_been_seen(reclaim: Extender) -> None:
    victim = b_pod("b9").obj()
    body = orjson.dumps(
        {
            "Pod": pod("a").batch(1000).priority(10).obj(),
            "NodeNameToMetaVictims": None,
            "NodeNameToVictims": {"n1": {"Pods": [victim], "NumPDBViolations": 1}},
        }
    )
    assert preempt(reclaim, body) == {"n1": {"Pods": [{"UID": "uid-b9"}], "NumPDBViolations": 1}}


def test_without_a_plan_an_offline_pod_finds_no_candidate(extender: Extender) -> None:
    assert preempt(extender, preempt_body(pod("a").batch(), {"n1": []})) == {}
