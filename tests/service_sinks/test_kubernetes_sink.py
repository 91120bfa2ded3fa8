"""The Kubernetes sink against the stand-in API server: extended resources written only where they change, the
fast path's shrink, victims evicted through the Eviction subresource, and an API server that fails, hangs or is
gone."""

from __future__ import annotations

import asyncio

import pytest

from broker.model import Resources
from broker.model.demand import Sink
from broker.service.sinks import Eviction
from tests.kubernetes.kube_apiserver import Fault

from .conftest import NODES, Clock, RestartableApiServer, k8s_wanted, kubernetes_sink, plan

PATCH = "/api/v1/nodes/"


def test_a_push_writes_every_node_and_a_repeated_push_sends_nothing(kube: RestartableApiServer) -> None:
    the_plan = plan(8, 4, 0)

    async def scenario() -> None:
        sink = kubernetes_sink(kube.url)
        first = await sink.push(the_plan)
        assert first.ok and first.nodes_changed == 3 and first.sink == "kubernetes:idc-a"
        patches = len(kube.server.patches)
        again = await sink.push(the_plan)
        assert again.ok and again.nodes_changed == 0
        assert len(kube.server.patches) == patches
        await sink.close()

    asyncio.run(scenario())
    assert kube.offline() == k8s_wanted(the_plan)


def test_only_the_nodes_and_values_that_changed_are_patched(kube: RestartableApiServer) -> None:
    async def scenario() -> None:
        sink = kubernetes_sink(kube.url)
        await sink.push(plan(8, 4, 2))
        kube.server.patches.clear()
        first = plan(8, 4, 2)
        cpu_only = first.nodes[2].model_copy(update={"kubernetes": Resources.of(cpu="3", memory="4Gi")})
        report = await sink.push(first.model_copy(update={"nodes": (*first.nodes[:2], cpu_only)}))
        assert report.nodes_changed == 1
        await sink.close()

    asyncio.run(scenario())
    assert [(node, [op["path"] for op in ops]) for node, _, ops in kube.server.patches] == [
        (NODES[2], ["/status/capacity/broker.elastic.io~1batch-cpu"])
    ]


def test_drift_is_read_back_and_repaired_after_the_drift_check_period(kube: RestartableApiServer) -> None:
    the_plan = plan(8, 8, 8)
    clock = Clock()

    async def scenario() -> None:
        sink = kubernetes_sink(kube.url, clock, drift_check_s=30)
        await sink.push(the_plan)
        edited = kube.server.node(NODES[1])
        edited["status"]["capacity"]["broker.elastic.io/batch-cpu"] = "64k"  # someone else wrote it
        kube.server.put("nodes", edited)
        assert (await sink.push(the_plan)).nodes_changed == 0  # trusted within the period
        clock.now += 30
        assert (await sink.push(the_plan)).nodes_changed == 1
        await sink.close()

    asyncio.run(scenario())
    assert kube.offline() == k8s_wanted(the_plan)


def test_a_shrink_touches_only_the_given_nodes_and_lists_nothing(kube: RestartableApiServer) -> None:
    clock = Clock()

    async def scenario() -> None:
        sink = kubernetes_sink(kube.url, clock)
        await sink.push(plan(8, 8, 8))
        clock.now += 3600  # a push would list now; a shrink must not
        list_fault = Fault(kind="status", path="/api/v1/nodes", method="GET", status=500)
        kube.server.inject(list_fault)
        report = await sink.shrink(plan(8, 2, 2), [NODES[1]], [])
        assert report.ok and report.nodes_changed == 1
        assert list_fault.times == 1
        await sink.close()

    asyncio.run(scenario())
    assert kube.offline() == k8s_wanted(plan(8, 2, 8))


def test_victims_are_evicted_by_uid_and_one_already_gone_counts_as_done(kube: RestartableApiServer) -> None:
    victims = [
        Eviction(NODES[0], Sink.KUBERNETES, "uid-team-a-exec-1"),
        Eviction(NODES[0], Sink.KUBERNETES, "uid-gone"),
        Eviction(NODES[0], Sink.YARN, "container_1_0001_01_000002"),
    ]

    async def scenario() -> None:
        sink = kubernetes_sink(kube.url)
        report = await sink.shrink(plan(2, 8, 8), [NODES[0]], victims)
        assert report.ok and report.evicted == 2 and report.evictions_failed == 0
        await sink.close()

    asyncio.run(scenario())
    assert kube.server.evictions == ["team-a/exec-1"]  # not team-b/exec-1: same name, other namespace and node
    assert set(kube.server.objects("pods")) == {"team-a/exec-2", "team-b/exec-1"}


def test_an_eviction_a_disruption_budget_forbids_is_reported_not_retried(kube: RestartableApiServer) -> None:
    kube.server.disruption_blocked.add("team-a/exec-2")

    async def scenario() -> None:
        sink = kubernetes_sink(kube.url)
        victim = Eviction(NODES[0], Sink.KUBERNETES, "uid-team-a-exec-2")
        report = await sink.shrink(plan(2, 8, 8), [NODES[0]], [victim])
        assert not report.ok and report.evicted == 0 and report.evictions_failed == 1
        assert report.nodes_changed == 1  # the capacity went down regardless
        assert report.error is not None and "429" in report.error and "disruption budget" in report.error
        await sink.close()

    asyncio.run(scenario())
    assert "team-a/exec-2" in kube.server.objects("pods")


# --- failures --------------------------------------------------------------------------------------------


def test_an_api_server_answering_5xx_is_reported_then_the_plan_converges(kube: RestartableApiServer) -> None:
    the_plan = plan(6, 6, 6)

    async def scenario() -> None:
        sink = kubernetes_sink(kube.url)
        kube.server.inject(Fault(kind="status", status=503, times=1000))
        listed = await sink.push(the_plan)
        assert not listed.ok and listed.error is not None and "503" in listed.error
        kube.server.clear_faults()
        assert (await sink.push(plan(8, 8, 8))).ok
        kube.server.inject(Fault(kind="status", path=PATCH, method="PATCH", status=500, times=1000))
        patched = await sink.push(the_plan)
        assert not patched.ok and patched.nodes_failed == 3 and patched.nodes_changed == 0
        kube.server.clear_faults()
        recovered = await sink.push(the_plan)
        assert recovered.ok and recovered.nodes_changed == 3
        await sink.close()

    asyncio.run(scenario())
    assert kube.offline() == k8s_wanted(the_plan)


def test_a_push_cancelled_while_the_api_server_hangs_converges_once_it_answers(
    kube: RestartableApiServer,
) -> None:
    """The hung patches land after the sink gave up, even after a newer push: the plan still wins."""
    before, after = plan(8, 8, 8), plan(2, 2, 2)

    async def scenario() -> None:
        sink = kubernetes_sink(kube.url)
        assert (await sink.push(before)).ok
        kube.server.inject(Fault(kind="hang", path=PATCH, method="PATCH", seconds=0.8, times=3))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(sink.push(after), 0.2)
        back = await sink.push(before)  # while the hung writes of ``after`` are still on their way
        assert back.ok and back.nodes_changed == 3
        await asyncio.sleep(1.0)
        assert kube.offline() == k8s_wanted(after)  # they landed last
        converged = await sink.push(before)
        assert converged.ok and converged.nodes_changed == 3
        await sink.close()

    asyncio.run(scenario())
    assert kube.offline() == k8s_wanted(before)


def test_an_api_server_refusing_connections_is_reported_then_the_plan_converges(
    kube: RestartableApiServer,
) -> None:
    the_plan = plan(4, 4, 4)

    async def scenario() -> None:
        sink = kubernetes_sink(kube.url, drift_check_s=3600)
        assert (await sink.push(plan(8, 8, 8))).ok
        kube.stop()
        gone = await sink.push(the_plan)
        assert not gone.ok and gone.nodes_failed == 3
        shrink = await sink.shrink(the_plan, [NODES[0]], [Eviction(NODES[0], Sink.KUBERNETES, "uid-team-a-exec-1")])
        assert not shrink.ok and shrink.nodes_failed == 1 and shrink.evictions_failed == 1
        kube.start()
        back = await sink.push(the_plan)
        assert back.ok and back.nodes_changed == 3
        await sink.close()

    asyncio.run(scenario())
    assert kube.offline() == k8s_wanted(the_plan)
