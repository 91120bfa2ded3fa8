"""The RM client: finding the active RM, following standbys, retrying only what is transient, typed errors."""

from __future__ import annotations

import pytest

from broker.errors import PermanentPeerError, TemporaryPeerError
from broker.yarn_bridge import RMClient

from .conftest import cluster, run
from .standin_rm import Fault, RMServer, StandinRM


def test_discovery_skips_the_standby(pair: tuple[RMServer, RMServer]) -> None:
    standby, active = pair

    async def go() -> str | None:
        async with RMClient(cluster(standby.url, active.url)) as client:
            await client.get("/nodes")
            return client.active_url

    assert run(go()) == active.url
    assert standby.rm.requests(path="/ws/v1/cluster/nodes") == []


def test_a_redirecting_standby_is_followed_and_the_active_remembered(pair: tuple[RMServer, RMServer]) -> None:
    standby, active = pair

    async def go() -> str | None:
        async with RMClient(cluster(standby.url, active.url)) as client:
            client._active = standby.url  # believed active, then failed over
            await client.get("/nodes", {"states": "RUNNING"})
            return client.active_url

    assert run(go()) == active.url
    followed = active.rm.requests("GET", "/ws/v1/cluster/nodes")
    assert followed[0].query == {"user.name": ["yarn"], "states": ["RUNNING"]}


def test_failover_when_the_active_rm_goes_away(pair: tuple[RMServer, RMServer]) -> None:
    standby, active = pair

    async def go() -> str | None:
        async with RMClient(cluster(active.url, standby.url)) as client:
            await client.get("/nodes")
            active.stop()
            standby.rm.ha_state, standby.rm.active_url = "ACTIVE", None
            standby.rm.nodes.update(active.rm.nodes)
            await client.get("/nodes")
            return client.active_url

    assert run(go()) == standby.url


def test_no_active_rm_is_a_temporary_error(server: RMServer, rm: StandinRM) -> None:
    rm.ha_state = "STANDBY"

    async def go() -> None:
        async with RMClient(cluster(server.url)) as client:
            await client.get("/nodes")

    with pytest.raises(TemporaryPeerError, match="no active ResourceManager"):
        run(go())


def test_transient_503_is_retried_until_it_passes(server: RMServer, rm: StandinRM) -> None:
    rm.inject(Fault(path="/ws/v1/cluster/nodes", kind="status", status=503, times=2))

    async def go() -> object:
        async with RMClient(cluster(server.url)) as client:
            return await client.get("/nodes")

    assert run(go())
    assert len(rm.requests("GET", "/ws/v1/cluster/nodes")) == 3


def test_dropped_connection_is_retried(server: RMServer, rm: StandinRM) -> None:
    rm.inject(Fault(path="/ws/v1/cluster/metrics", kind="drop", times=1))

    async def go() -> object:
        async with RMClient(cluster(server.url)) as client:
            return await client.get("/metrics")

    assert run(go())["clusterMetrics"]["totalNodes"] == 4  # type: ignore[index]


def test_a_hanging_rm_times_out_as_temporary(server: RMServer, rm: StandinRM) -> None:
    rm.inject(Fault(path="/ws/v1/cluster/metrics", kind="hang", seconds=0.5, times=5))

    async def go() -> None:
        async with RMClient(cluster(server.url, timeout_s=0.1, retries=1)) as client:
            await client.get("/metrics")

    with pytest.raises(TemporaryPeerError, match="after 2 attempt"):
        run(go())


def test_4xx_is_permanent_with_the_rms_message_and_not_retried(server: RMServer, rm: StandinRM) -> None:
    async def go() -> None:
        async with RMClient(cluster(server.url)) as client:
            await client.post("/nodes/ghost:1/resource", {"resource": {"memory": 1, "vCores": 1}})

    with pytest.raises(PermanentPeerError, match="nodeId, ghost:1, is not found") as caught:
        run(go())
    assert caught.value.status == 404
    assert len(rm.requests("POST")) == 1


def test_500_is_permanent(server: RMServer, rm: StandinRM) -> None:
    rm.nodes["nm-0.example:8041"].state = "LOST"

    async def go() -> None:
        async with RMClient(cluster(server.url)) as client:
            await client.post("/nodes/nm-0.example:8041/resource", {"resource": {"memory": 1, "vCores": 1}})

    with pytest.raises(PermanentPeerError, match="LOST"):
        run(go())
    assert len(rm.requests("POST")) == 1
