"""The control loop on the embedded simulated fleet: each cycle publishes one complete plan as the next version; a
failing step publishes nothing, keeps the last plan, and the next cycle recovers; the replica serves health,
readiness, metrics and the extender from the plans it makes."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import httpx
import orjson

from broker.errors import TemporaryPeerError
from broker.model import Plan
from broker.model.demand import Sink
from broker.service.control.service import SWITCH_INTERVAL_S, Replica, build, running, tune_thread_switching
from broker.service.control.sources import Usage
from tests.extender.builders import filter_body, pod
from tests.service.conftest import service_config


def _replica(tmp_path: Path) -> Replica:
    return build(service_config(tmp_path), {})


def _cycle(replica: Replica) -> Plan | None:
    async def go() -> Plan | None:
        await replica.loop.campaign()
        return (await replica.loop.cycle()).plan

    return asyncio.run(go())


def test_each_cycle_publishes_a_complete_plan_as_the_next_version(tmp_path: Path) -> None:
    replica = _replica(tmp_path)
    first = _cycle(replica)
    second = _cycle(replica)
    assert first is not None and second is not None
    assert (first.version, second.version) == (1, 2)
    stored = replica.store.get_plan()
    assert stored is not None and stored.version == 2
    assert Plan.model_validate_json(stored.plan_json) == second
    inventory = {node.name: node for node in replica.loop.world.inventory.nodes}
    assert {n.node for n in second.nodes} == set(inventory)
    for node in second.nodes:
        assert (node.yarn + node.kubernetes).fits_in(node.lendable)
        for placement in node.placements:
            if placement.is_am:
                assert inventory[node.node].stable, f"AM on elastic node {node.node}"
    placed_sinks = {p.sink for n in second.nodes for p in n.placements}
    assert placed_sinks == {Sink.YARN, Sink.KUBERNETES}
    assert second.solve.lp_bound >= second.solve.objective - 1e-6


def test_a_failing_step_keeps_the_last_plan_and_the_next_cycle_recovers(tmp_path: Path) -> None:
    replica = _replica(tmp_path)
    assert _cycle(replica) is not None
    world = replica.loop.world
    real_usage = world.usage
    failures = iter([TemporaryPeerError("metrics", "connection refused")])

    def flaky_usage(now_s: float) -> Usage:
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return real_usage(now_s)

    world.usage = flaky_usage  # type: ignore[method-assign]

    async def two_cycles() -> tuple[str | None, int, Plan | None]:
        failed = await replica.loop.cycle()
        version_after_failure = replica.board.version
        return failed.failed_step, version_after_failure, (await replica.loop.cycle()).plan

    failed_step, version_after_failure, recovered = asyncio.run(two_cycles())
    assert failed_step == "collect"
    assert version_after_failure == 1
    assert recovered is not None and recovered.version == 2
    exposition = replica.metrics.exposition()[0].decode()
    assert 'broker_loop_step_failures_total{step="collect"} 1.0' in exposition


def test_a_replica_serves_health_readiness_metrics_and_the_extender(tmp_path: Path) -> None:
    replica = _replica(tmp_path)

    async def scenario() -> None:
        # entered in order: the port is known once the replica runs
        async with running(replica), httpx.AsyncClient(base_url=f"http://127.0.0.1:{replica.http_port}") as client:
            assert (await client.get("/healthz")).status_code == 200
            for _ in range(100):
                ready = await client.get("/readyz")
                if ready.status_code == 200:
                    break
                await asyncio.sleep(0.1)
            assert ready.status_code == 200, ready.text
            body = ready.json()
            assert body["leading"] is True and body["plan_version"] >= 1
            plan = replica.board.plan
            assert plan is not None
            placed = next(p for n in plan.nodes for p in n.placements if p.sink is Sink.KUBERNETES)
            names = [n.node for n in plan.nodes]
            offline = pod("exec-1").ns(placed.team).of_class(placed.demand_class).batch(cpu=100, memory="128Mi")
            if placed.is_am:
                offline = offline.am()
            answer = await client.post("/extender/filter", content=filter_body(offline, names),
                                       headers={"Content-Type": "application/json"})
            assert answer.status_code == 200
            result = orjson.loads(answer.content)
            assert result["NodeNames"], result  # the plan placed the class: its pod is let through
            assert 1 <= int(answer.headers["x-broker-plan-version"]) <= replica.board.version
            metrics = (await client.get("/metrics")).text
            assert "broker_plan_version" in metrics and "broker_extender_requests_total" in metrics
            bad = await client.post("/extender/filter", content=b"{", headers={"Content-Type": "application/json"})
            assert bad.status_code == 400

    asyncio.run(scenario())


def test_a_replica_that_owns_its_process_hands_the_gil_over_every_millisecond() -> None:
    """The loop's threads must not starve the extender's event loop (a GIL convoy at CPython's 5 ms)."""
    before = sys.getswitchinterval()
    try:
        sys.setswitchinterval(0.005)
        tune_thread_switching()
        assert abs(sys.getswitchinterval() - SWITCH_INTERVAL_S) < 1e-9 and SWITCH_INTERVAL_S <= 0.001
    finally:
        sys.setswitchinterval(before)
