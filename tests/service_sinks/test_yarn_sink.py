"""The YARN sink against the stand-in RM: the loop's push, the fast path's shrink, victims signalled through the
RM, and what happens when the RM fails, hangs or is gone."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from broker.model.demand import Sink
from broker.service.sinks import Eviction
from tests.yarn_bridge.standin_rm import Fault

from .conftest import NODES, RestartableRM, container_id, plan, yarn_sink, yarn_wanted

NODE_API = "/ws/v1/cluster/nodes"


def test_a_push_applies_the_plan_and_a_repeated_push_sends_nothing(rm: RestartableRM) -> None:
    the_plan = plan(8, 8, 8)

    async def scenario() -> None:
        sink = yarn_sink(rm.url)
        first = await sink.push(the_plan)
        assert first.ok and first.nodes_changed == 3 and first.nodes_failed == 0 and first.error is None
        assert first.sink == "yarn:idc-a"
        rm.rm.clear_log()
        again = await sink.push(the_plan)
        assert again.ok and again.nodes_changed == 0
        assert rm.rm.requests() == []
        await sink.close()

    asyncio.run(scenario())
    assert rm.totals() == yarn_wanted(the_plan)


def test_a_shrink_pushes_only_the_given_nodes_and_reads_no_node_list(rm: RestartableRM) -> None:
    async def scenario() -> None:
        sink = yarn_sink(rm.url)
        assert (await sink.push(plan(8, 8, 8))).ok
        rm.rm.clear_log()
        report = await sink.shrink(plan(8, 2, 2), [NODES[1]], [])
        assert report.ok and report.nodes_changed == 1
        await sink.close()

    asyncio.run(scenario())
    paths = {(r.method, r.path) for r in rm.rm.requests()}
    assert paths == {("POST", f"{NODE_API}/nm-1.example:8041/resource"), ("GET", f"{NODE_API}/nm-1.example:8041")}
    assert rm.totals()["nm-1.example:8041"] == (4096, 2)
    assert rm.totals()["nm-2.example:8041"] == (16384, 8)  # not given: left as it was


def test_a_shrink_before_any_push_reads_the_node_list_once(rm: RestartableRM) -> None:
    async def scenario() -> None:
        sink = yarn_sink(rm.url)
        report = await sink.shrink(plan(8, 2, 2), [NODES[2]], [])
        assert report.ok and report.nodes_changed == 1
        await sink.close()

    asyncio.run(scenario())
    assert [r.path for r in rm.rm.requests("GET") if r.path == NODE_API] == [NODE_API]
    assert rm.totals()["nm-2.example:8041"] == (4096, 2)
    assert rm.totals()["nm-1.example:8041"] == (65536, 32)


def test_victims_are_signalled_and_one_already_gone_counts_as_done(rm: RestartableRM) -> None:
    victim = container_id(1, 2)
    evictions = [Eviction(NODES[0], Sink.YARN, victim), Eviction(NODES[0], Sink.KUBERNETES, "uid-x")]

    async def scenario() -> None:
        sink = yarn_sink(rm.url)
        first = await sink.shrink(plan(4, 8, 8), [NODES[0]], evictions)
        assert first.ok and first.evicted == 1 and first.evictions_failed == 0
        again = await sink.shrink(plan(4, 8, 8), [NODES[0]], evictions[:1])  # the RM no longer has it
        assert again.ok and again.evicted == 1
        await sink.close()

    asyncio.run(scenario())
    assert rm.rm.signals == [(victim, "GRACEFUL_SHUTDOWN")]
    assert victim not in rm.rm.containers


def test_a_victim_the_rm_refuses_is_reported(rm: RestartableRM) -> None:
    async def scenario() -> None:
        sink = yarn_sink(rm.url)
        report = await sink.shrink(plan(4, 8, 8), [], [Eviction(NODES[0], Sink.YARN, "not-a-container")])
        assert not report.ok and report.evicted == 0 and report.evictions_failed == 1
        assert report.error is not None and "Invalid ContainerId" in report.error
        await sink.close()

    asyncio.run(scenario())


# --- failures --------------------------------------------------------------------------------------------


def test_an_rm_answering_5xx_is_reported_then_the_plan_converges(rm: RestartableRM) -> None:
    the_plan = plan(8, 6, 4)

    async def scenario() -> None:
        sink = yarn_sink(rm.url)
        rm.rm.inject(Fault(path=NODE_API, kind="status", status=503, times=1000))
        failed = await sink.push(the_plan)
        assert not failed.ok and failed.error is not None and "503" in failed.error
        rm.rm.faults.clear()
        recovered = await sink.push(the_plan)
        assert recovered.ok and recovered.nodes_changed == 3
        await sink.close()

    asyncio.run(scenario())
    assert rm.totals() == yarn_wanted(the_plan)


def test_node_pushes_refused_with_500_are_counted_and_repaired(rm: RestartableRM) -> None:
    the_plan = plan(8, 6, 4)

    async def scenario() -> None:
        sink = yarn_sink(rm.url)
        rm.rm.inject(Fault(path=f"{NODE_API}/nm-1.example:8041/resource", kind="status", status=500, times=1000))
        partly = await sink.push(the_plan)
        assert not partly.ok and partly.nodes_changed == 2 and partly.nodes_failed == 1
        assert partly.error is not None and "nm-1.example" in partly.error
        rm.rm.faults.clear()
        assert (await sink.push(the_plan)).ok
        await sink.close()

    asyncio.run(scenario())
    assert rm.totals() == yarn_wanted(the_plan)


def test_a_push_cancelled_while_the_rm_hangs_is_forgotten_and_resent(rm: RestartableRM) -> None:
    """The write the sink gave up on lands late; the sink must not trust what it remembered from before."""
    before, after = plan(8, 8, 8), plan(2, 8, 8)

    async def scenario() -> None:
        sink = yarn_sink(rm.url)
        assert (await sink.push(before)).ok
        rm.rm.inject(Fault(path=f"{NODE_API}/nm-0.example:8041/resource", kind="hang", seconds=0.6))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(sink.push(after), 0.2)
        await asyncio.sleep(0.8)  # the hung write is applied now: the RM has the newer capacity
        assert rm.totals()["nm-0.example:8041"] == (4096, 2)
        back = await sink.push(before)  # the bridge remembered 8 cores; a sink that trusted it would send nothing
        assert back.ok and back.nodes_changed == 1
        await sink.close()

    asyncio.run(scenario())
    assert rm.totals() == yarn_wanted(before)


def test_an_rm_refusing_connections_is_reported_then_the_plan_converges(rm: RestartableRM) -> None:
    the_plan = plan(6, 6, 6)

    async def scenario() -> None:
        sink = yarn_sink(rm.url)
        assert (await sink.push(plan(8, 8, 8))).ok
        rm.stop()
        gone = await sink.push(the_plan)
        assert not gone.ok and gone.error is not None and "ConnectError" in gone.error
        shrink = await sink.shrink(the_plan, [NODES[0]], [Eviction(NODES[0], Sink.YARN, container_id(1, 2))])
        assert not shrink.ok and shrink.evictions_failed == 1
        rm.start()
        back = await sink.push(the_plan)
        assert back.ok and back.nodes_changed == 3
        await sink.close()

    asyncio.run(scenario())
    assert rm.totals() == yarn_wanted(the_plan)


# --- the stand-in answers what the RM answers --------------------------------------------------------------


@pytest.mark.parametrize(
    ("container", "command", "user", "status", "reason"),
    [
        (container_id(1, 2), "shutdown", "yarn", 400, "Invalid command: SHUTDOWN"),
        (container_id(9, 9), "GRACEFUL_SHUTDOWN", "yarn", 500, "Trying to signal an absent container"),
        ("container_x", "GRACEFUL_SHUTDOWN", "yarn", 500, "Invalid ContainerId"),
        (container_id(1, 2), "GRACEFUL_SHUTDOWN", "alice", 401, "not authorized"),
        (container_id(1, 2), "forceful_shutdown", "yarn", 200, ""),
    ],
)
def test_the_stand_in_signals_containers_as_the_rm_does(
    rm: RestartableRM, container: str, command: str, user: str, status: int, reason: str
) -> None:
    response = httpx.post(
        f"{rm.url}/ws/v1/cluster/containers/{container}/signal/{command}", params={"user.name": user}
    )
    assert response.status_code == status and reason in response.text
    assert rm.rm.signals == ([(container, command.upper())] if status == 200 else [])
