"""Filter: a node passes when the team has quota left, the labels fit and the plan gives the node room."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from broker.service.extender import Extender, ExtenderConfig, StalePolicy, Verb

from .builders import NOW, filter_body, node, plan, pod, team
from .conftest import Clock


def run_filter(extender: Extender, body: bytes) -> dict[str, Any]:
    reply = extender.handle(Verb.FILTER, body)
    assert reply.status == 200, reply.body
    result: dict[str, Any] = orjson.loads(reply.body)
    return result


def two_node_plan(**team_kw: str) -> Any:
    return plan(
        nodes=[node("n1").places("team-a", "exec", 4), node("n2").places("team-a", "exec", 4)],
        teams=[team("team-a").quota(**(team_kw or {"cpu": "100", "memory": "400Gi"}))],
    )


def test_node_with_plan_room_and_quota_left_passes(extender: Extender) -> None:
    extender.install(two_node_plan())
    result = run_filter(extender, filter_body(pod("p").batch(2000, "4Gi"), ["n1", "n2"]))
    assert result["NodeNames"] == ["n1", "n2"]
    assert result["FailedNodes"] == {} and result["FailedAndUnresolvableNodes"] == {}
    assert result["Nodes"] is None and result["Error"] == ""


def test_team_without_quota_left_fails_every_node_as_resolvable(extender: Extender) -> None:
    extender.install(
        plan(
            nodes=[node("n1").places("team-a", "exec")],
            teams=[team("team-a").quota(cpu="4", memory="16Gi").running(cpu="3", memory="1Gi")],
        )
    )
    result = run_filter(extender, filter_body(pod("p").batch(2000, "1Gi"), ["n1"]))
    assert result["NodeNames"] == []
    assert "team team-a has quota left" in result["FailedNodes"]["n1"]
    assert result["FailedAndUnresolvableNodes"] == {}


def test_placements_filling_the_quota_are_not_usage_the_placed_pods_pass(extender: Extender) -> None:
    # The plan placed 8 cores for team-a, all of its quota, and 6 of them already run. The placements are where
    # the pending pods go, not usage: a pending pod passes until running + admitted reaches the quota.
    extender.install(plan(
        nodes=[node("n1").places("team-a", "exec", 4), node("n2").places("team-a", "exec", 4)],
        teams=[team("team-a").quota(cpu="8", memory="64Gi").running(cpu="6", memory="8Gi")],
    ))
    assert run_filter(extender, filter_body(pod("p0").batch(2000, "4Gi"), ["n1", "n2"]))["NodeNames"] == ["n1", "n2"]
    refused = run_filter(extender, filter_body(pod("p1").batch(2000, "4Gi"), ["n1", "n2"]))
    assert refused["NodeNames"] == [] and "quota left" in refused["FailedNodes"]["n1"]


def test_pods_let_through_count_against_quota_until_the_next_plan(extender: Extender) -> None:
    extender.install(two_node_plan(cpu="4", memory="100Gi"))
    for i in range(2):
        assert run_filter(extender, filter_body(pod(f"p{i}").batch(2000), ["n1"]))["NodeNames"] == ["n1"]
    third = run_filter(extender, filter_body(pod("p2").batch(2000), ["n1"]))
    assert third["NodeNames"] == [] and "n1" in third["FailedNodes"]


def test_filtering_the_same_pod_twice_charges_it_once(extender: Extender) -> None:
    extender.install(two_node_plan(cpu="4", memory="100Gi"))
    for _ in range(3):
        assert run_filter(extender, filter_body(pod("p0").batch(2000), ["n1"]))["NodeNames"] == ["n1"]
    assert run_filter(extender, filter_body(pod("p1").batch(2000), ["n1"]))["NodeNames"] == ["n1"]


def test_charges_expire_after_the_assume_ttl(clock: Clock) -> None:
    extender = Extender(ExtenderConfig(assume_ttl_s=30, max_plan_age_s=3600), clock=clock)
    extender.install(two_node_plan(cpu="2", memory="100Gi"))
    assert run_filter(extender, filter_body(pod("p0").batch(2000), ["n1"]))["NodeNames"] == ["n1"]
    assert run_filter(extender, filter_body(pod("p1").batch(2000), ["n1"]))["NodeNames"] == []
    clock.now += 30
    assert run_filter(extender, filter_body(pod("p1").batch(2000), ["n1"]))["NodeNames"] == ["n1"]


def test_a_newer_plan_settles_the_charges_made_before_it(extender: Extender, clock: Clock) -> None:
    extender.install(two_node_plan(cpu="2", memory="100Gi"))
    run_filter(extender, filter_body(pod("p0").batch(2000), ["n1"]))
    clock.now += 5
    later = plan(
        nodes=[node("n1").places("team-a", "exec")],
        teams=[team("team-a").quota(cpu="2", memory="100Gi")],
        version=2,
        created_at_s=clock.now,
    )
    extender.install(later)
    assert run_filter(extender, filter_body(pod("p1").batch(2000), ["n1"]))["NodeNames"] == ["n1"]


def test_am_pods_fit_only_stable_nodes(extender: Extender) -> None:
    extender.install(
        plan(
            nodes=[
                node("stable").stable().places("team-a", "am", is_am=True),
                node("elastic").places("team-a", "am", is_am=True),
            ],
            teams=[team("team-a")],
        )
    )
    result = run_filter(extender, filter_body(pod("driver").batch().am(), ["stable", "elastic"]))
    assert result["NodeNames"] == ["stable"]
    assert result["FailedAndUnresolvableNodes"] == {"elastic": "AM/driver pods run only on stable nodes"}


def test_spark_driver_label_marks_an_am(extender: Extender) -> None:
    extender.install(plan(nodes=[node("elastic").places("team-a", "am", is_am=True)], teams=[team("team-a")]))
    result = run_filter(extender, filter_body(pod("d").batch().label("spark-role", "driver"), ["elastic"]))
    assert "stable" in result["FailedAndUnresolvableNodes"]["elastic"]


def test_disk_needing_pods_fit_only_disk_nodes(extender: Extender) -> None:
    extender.install(
        plan(
            nodes=[node("disk").disk().places("team-a", "x"), node("diskless").places("team-a", "x")],
            teams=[team("team-a")],
        )
    )
    result = run_filter(extender, filter_body(pod("p").batch().needs_disk(), ["disk", "diskless"]))
    assert result["NodeNames"] == ["disk"]
    assert result["FailedAndUnresolvableNodes"] == {"diskless": "pod needs a disk node"}


def test_a_node_without_a_placement_for_the_class_is_unresolvable(extender: Extender) -> None:
    extender.install(
        plan(
            nodes=[node("n1").places("team-a", "exec"), node("n2").places("team-a", "other")],
            teams=[team("team-a")],
        )
    )
    result = run_filter(extender, filter_body(pod("p").batch().of_class("exec"), ["n1", "n2"]))
    assert result["NodeNames"] == ["n1"]
    assert result["FailedAndUnresolvableNodes"] == {"n2": "plan places no team-a/exec pods here"}


def test_a_node_placing_only_other_teams_is_unresolvable(extender: Extender) -> None:
    extender.install(
        plan(nodes=[node("n1").places("team-b", "exec")], teams=[team("team-a"), team("team-b")])
    )
    result = run_filter(extender, filter_body(pod("p").batch(), ["n1"]))
    assert result["FailedAndUnresolvableNodes"] == {"n1": "plan places no worker pods of team team-a here"}


def test_placements_for_yarn_do_not_make_room_for_pods(extender: Extender) -> None:
    from broker.model import Sink

    extender.install(
        plan(nodes=[node("n1").places("team-a", "exec", sink=Sink.YARN)], teams=[team("team-a")])
    )
    result = run_filter(extender, filter_body(pod("p").batch(), ["n1"]))
    assert "n1" in result["FailedAndUnresolvableNodes"]


def test_a_pod_larger_than_the_nodes_batch_capacity_never_fits(extender: Extender) -> None:
    extender.install(
        plan(nodes=[node("n1").batch(cpu="2", memory="8Gi").places("team-a", "exec")], teams=[team("team-a")])
    )
    result = run_filter(extender, filter_body(pod("p").batch(4000, "1Gi"), ["n1"]))
    assert "exceeds the plan's batch capacity" in result["FailedAndUnresolvableNodes"]["n1"]


def test_nodes_outside_the_plan_are_unresolvable(extender: Extender) -> None:
    extender.install(two_node_plan())
    result = run_filter(extender, filter_body(pod("p").batch(), ["n1", "ghost"]))
    assert result["NodeNames"] == ["n1"]
    assert result["FailedAndUnresolvableNodes"] == {"ghost": "not in plan v1"}


def test_a_pod_in_an_unbound_namespace_fits_nowhere(extender: Extender) -> None:
    extender.install(two_node_plan())
    result = run_filter(extender, filter_body(pod("p").ns("elsewhere").batch(), ["n1", "n2"]))
    assert result["NodeNames"] == []
    assert set(result["FailedAndUnresolvableNodes"].values()) == {
        "namespace elsewhere is bound to no team in plan v1"
    }


def test_a_shared_namespace_needs_the_team_label(extender: Extender) -> None:
    extender.install(
        plan(
            nodes=[node("n1").places("team-b", "exec")],
            teams=[team("team-a").namespaces("shared"), team("team-b").namespaces("shared")],
        )
    )
    unlabelled = run_filter(extender, filter_body(pod("p").ns("shared").batch(), ["n1"]))
    assert "shared by teams team-a, team-b" in unlabelled["FailedAndUnresolvableNodes"]["n1"]
    labelled = run_filter(extender, filter_body(pod("q").ns("shared").batch().of_team("team-b"), ["n1"]))
    assert labelled["NodeNames"] == ["n1"]


def test_the_team_label_cannot_claim_a_team_not_bound_to_the_namespace(extender: Extender) -> None:
    extender.install(
        plan(nodes=[node("n1").places("team-b", "exec")], teams=[team("team-a"), team("team-b")])
    )
    result = run_filter(extender, filter_body(pod("p").ns("team-a").batch().of_team("team-b"), ["n1"]))
    assert "not bound to namespace team-a" in result["FailedAndUnresolvableNodes"]["n1"]


def test_only_the_served_clusters_bindings_map_namespaces(clock: Clock) -> None:
    extender = Extender(ExtenderConfig(cluster="k8s-b"), clock=clock)
    extender.install(
        plan(
            nodes=[node("n1").places("team-a", "exec")],
            teams=[team("team-a").namespaces("ns-b", cluster="k8s-b")],
        )
    )
    assert run_filter(extender, filter_body(pod("p").ns("ns-b").batch(), ["n1"]))["NodeNames"] == ["n1"]
    result = run_filter(extender, filter_body(pod("q").ns("team-a").batch(), ["n1"]))
    assert "bound to no team" in result["FailedAndUnresolvableNodes"]["n1"]


def test_pods_without_managed_resources_pass_everywhere(extender: Extender) -> None:
    extender.install(two_node_plan())
    online = {
        "metadata": {"name": "web", "namespace": "team-a"},
        "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "2"}}}]},
    }
    assert run_filter(extender, filter_body(online, ["n1", "ghost"]))["NodeNames"] == ["n1", "ghost"]


def test_a_managed_resource_in_limits_only_makes_a_pod_offline(extender: Extender) -> None:
    extender.install(two_node_plan())
    limited = {
        "metadata": {"name": "x", "namespace": "team-a"},
        "spec": {
            "containers": [{"name": "c", "resources": {"limits": {"broker.elastic.io/batch-cpu": "1000"}}}]
        },
    }
    assert run_filter(extender, filter_body(limited, ["ghost"]))["FailedAndUnresolvableNodes"] == {
        "ghost": "not in plan v1"
    }


def test_without_a_plan_offline_pods_fit_nowhere_by_default(extender: Extender) -> None:
    result = run_filter(extender, filter_body(pod("p").batch(), ["n1"]))
    assert result["NodeNames"] == [] and result["FailedAndUnresolvableNodes"] == {"n1": "no plan yet"}
    assert result["Error"] == ""


def test_a_stale_plan_says_how_old_it_is(extender: Extender, clock: Clock) -> None:
    extender.install(two_node_plan())
    clock.now = NOW + 95
    result = run_filter(extender, filter_body(pod("p").batch(), ["n1"]))
    assert result["FailedAndUnresolvableNodes"] == {"n1": "plan v1 is 95 s old, limit 60 s"}


def test_the_open_policy_lets_offline_pods_through_without_a_plan(clock: Clock) -> None:
    extender = Extender(ExtenderConfig(stale_policy=StalePolicy.OPEN), clock=clock)
    assert run_filter(extender, filter_body(pod("p").batch(), ["n1", "n2"]))["NodeNames"] == ["n1", "n2"]


def test_the_error_policy_answers_with_error_and_no_nodes(clock: Clock) -> None:
    extender = Extender(ExtenderConfig(stale_policy=StalePolicy.ERROR), clock=clock)
    result = run_filter(extender, filter_body(pod("p").batch(), ["n1"]))
    assert result["Error"] == "no plan yet" and result["NodeNames"] == []


@pytest.mark.parametrize("policy", list(StalePolicy), ids=lambda p: p.value)
def test_every_stale_policy_leaves_online_pods_alone(policy: StalePolicy, clock: Clock) -> None:
    extender = Extender(ExtenderConfig(stale_policy=policy), clock=clock)
    online = {"metadata": {"name": "web"}, "spec": {"containers": None}}
    result = run_filter(extender, filter_body(online, ["n1"]))
    assert result["NodeNames"] == ["n1"] and result["Error"] == ""


def test_an_older_plan_version_is_refused(extender: Extender) -> None:
    from broker.errors import InputError

    extender.install(plan(nodes=[], teams=[], version=5))
    with pytest.raises(InputError, match="older than the current v5"):
        extender.install(plan(nodes=[], teams=[], version=4))
    assert extender.tables is not None and extender.tables.version == 5
