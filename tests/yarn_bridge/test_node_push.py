"""Node capacity push: read-back verification, shrinks first, anti-churn, partial failure, idempotency."""

from __future__ import annotations

import pytest

from broker.yarn_bridge import Change, NodeStatus, YarnResource, nodes

from .conftest import node, plan, sync
from .standin_rm import Fault, RMServer, StandinRM


def test_a_push_is_applied_only_after_reading_it_back(server: RMServer, rm: StandinRM) -> None:
    report = sync(server.url, plan(node(0, cpu="8.9", memory="20Gi")))
    [outcome] = report.nodes
    assert outcome.status is NodeStatus.APPLIED
    assert outcome.read_back == YarnResource(memory_mb=20480, vcores=8)  # 8.9 cores round down to 8 vCores
    assert (rm.nodes["nm-0.example:8041"].total_mb, rm.nodes["nm-0.example:8041"].total_vcores) == (20480, 8)
    assert rm.requests(
        "GET", "/ws/v1/cluster/nodes/nm-0.example:8041"
    )  # the stale POST answer is not trusted


def test_verification_catches_a_silent_zeroing(
    server: RMServer, rm: StandinRM, monkeypatch: pytest.MonkeyPatch
) -> None:
    def flat(want: YarnResource, timeout_ms: int) -> dict[str, int]:
        return {"memory": want.memory_mb, "vcores": want.vcores}  # the documented-but-wrong flat form

    monkeypatch.setattr(nodes, "resource_body", flat)
    report = sync(server.url, plan(node(0)))
    [outcome] = report.nodes
    assert outcome.status is NodeStatus.FAILED
    assert outcome.read_back == YarnResource(memory_mb=0, vcores=0)
    assert "read back 0MB/0vc" in outcome.error
    assert not report.ok


def test_shrinks_reach_the_rm_before_growth(server: RMServer, rm: StandinRM) -> None:
    rm.nodes["nm-1.example:8041"].total_mb = 1024
    the_plan = plan(node(1, cpu="32", memory="60Gi"), node(0, memory="8Gi"), node(2, memory="4Gi"))
    sync(server.url, the_plan, concurrency=1)
    posted = [r.path.split("/")[5] for r in rm.requests("POST")]
    assert posted == ["nm-0.example:8041", "nm-2.example:8041", "nm-1.example:8041"]


def test_small_growth_is_held_back_but_shrink_is_always_pushed(server: RMServer, rm: StandinRM) -> None:
    rm.nodes["nm-0.example:8041"].total_mb = 32000
    rm.nodes["nm-1.example:8041"].total_mb = 32768
    report = sync(server.url, plan(node(0, cpu="32"), node(1, cpu="32", memory="32767Mi")))
    by_node = {o.node_id: o for o in report.nodes}
    assert by_node["nm-0.example:8041"].status is NodeStatus.HELD  # +2.4%, below the 10% threshold
    assert by_node["nm-1.example:8041"].change is Change.SHRINK  # -1 MiB is still a shrink
    assert by_node["nm-1.example:8041"].status is NodeStatus.APPLIED


def test_partial_failure_applies_the_rest_and_retries_the_failed(server: RMServer, rm: StandinRM) -> None:
    rm.inject(
        Fault(path="/ws/v1/cluster/nodes/nm-1.example:8041/resource", kind="status", status=503, times=4)
    )
    rm.nodes["nm-2.example:8041"].state = "LOST"
    report = sync(server.url, plan(*(node(i, memory="8Gi") for i in range(4))), retries=1)
    by_node = {o.node_id: o for o in report.nodes}
    assert by_node["nm-0.example:8041"].status is NodeStatus.APPLIED
    assert by_node["nm-3.example:8041"].status is NodeStatus.APPLIED
    assert by_node["nm-1.example:8041"].status is NodeStatus.APPLIED  # 2 tries in round 1, 2 more in round 2
    assert by_node["nm-1.example:8041"].attempts == 3
    assert by_node["nm-2.example:8041"].status is NodeStatus.FAILED  # 500: refused, not repeated in the batch
    assert "LOST" in by_node["nm-2.example:8041"].error
    assert len(rm.requests("POST", "/ws/v1/cluster/nodes/nm-2.example:8041")) == 1


def test_the_next_sync_retries_a_node_that_failed(server: RMServer, rm: StandinRM) -> None:
    rm.inject(
        Fault(path="/ws/v1/cluster/nodes/nm-0.example:8041/resource", kind="status", status=503, times=3)
    )
    first = sync(server.url, plan(node(0)), retries=0)
    assert first.nodes[0].status is NodeStatus.FAILED
    second = sync(server.url, plan(node(0)), retries=0)
    assert second.nodes[0].status is NodeStatus.APPLIED


def test_a_repeated_sync_makes_no_writes(server: RMServer, rm: StandinRM) -> None:
    the_plan = plan(*(node(i, labels=("disk", "stable")) for i in range(4)))
    assert sync(server.url, the_plan).ok
    rm.clear_log()
    again = sync(server.url, the_plan)
    assert rm.writes() == []
    assert again.nodes == () and again.requests == () and again.unchanged_nodes == 4


def test_dry_run_lists_the_writes_and_sends_none(server: RMServer, rm: StandinRM) -> None:
    report = sync(server.url, plan(node(0)), dry_run=True)
    assert [r.line() for r in report.requests] == [
        "POST /nodes/nm-0.example:8041/resource {'resource': {'memory': 32768, 'vCores': 16}, "
        "'overCommitTimeout': -1}"
    ]
    assert report.nodes[0].status is NodeStatus.PLANNED
    assert rm.writes() == []


def test_unmapped_plan_nodes_are_reported(server: RMServer, rm: StandinRM) -> None:
    from broker.model import NodePlan, Resources

    stray = NodePlan(node="k8s-ghost", site="idc-a", cluster="yarn-a", yarn=Resources.of(cpu="1"))
    report = sync(server.url, plan(stray))
    assert "no NodeManager" in report.unmapped["k8s-ghost"]


def test_dynamic_resources_method_renders_the_file_instead_of_posting(
    server: RMServer, rm: StandinRM
) -> None:
    report = sync(server.url, plan(node(0, cpu="2", memory="4Gi")), node_resource_method="dynamic-resources")
    assert "<name>yarn.resource.dynamic.nm-0.example:8041.memory</name>\n    <value>4096</value>" in (
        report.dynamic_resources_xml
    )
    assert report.commands == (("yarn", "rmadmin", "-refreshNodesResources"),)
    assert rm.requests("POST") == []
