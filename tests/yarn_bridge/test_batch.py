"""The pipelined batch of node pushes: bounded connections, and the same error mapping, retries and HA as the
client's httpx path."""

from __future__ import annotations

from typing import Any

import pytest

from broker.errors import PeerError, PermanentPeerError, TemporaryPeerError
from broker.yarn_bridge import RMClient

from .conftest import cluster, run
from .standin_rm import Fault, RMServer, StandinRM


def writes(*indexes: int, memory: int = 1024) -> list[tuple[str, Any]]:
    return [
        (f"/nodes/nm-{i}.example:8041/resource", {"resource": {"memory": memory, "vCores": 1}})
        for i in indexes
    ]


def post_batch(urls: list[str], batch: list[tuple[str, Any]], **overrides: Any) -> list[PeerError | None]:
    async def go() -> list[PeerError | None]:
        async with RMClient(cluster(*urls, **overrides)) as client:
            return await client.post_batch(batch)

    return run(go())


def test_a_batch_is_applied_over_at_most_the_configured_connections() -> None:
    server = RMServer(StandinRM.with_nodes(40)).start()
    try:
        results = post_batch([server.url], writes(*range(40)), concurrency=8, connections=2)
        assert results == [None] * 40
        assert {n.total_mb for n in server.rm.nodes.values()} == {1024}
        assert server.connections_accepted == 3  # one for finding the active RM, two for the batch
    finally:
        server.stop()


def test_4xx_in_a_batch_is_permanent_with_the_rms_message_and_not_retried(
    server: RMServer, rm: StandinRM
) -> None:
    ghost, applied = post_batch([server.url], [("/nodes/ghost:1/resource", {"resource": {}}), *writes(0)])
    assert isinstance(ghost, PermanentPeerError) and ghost.status == 404
    assert "nodeId, ghost:1, is not found" in ghost.message
    assert applied is None
    assert len(rm.requests("POST", "/ws/v1/cluster/nodes/ghost:1")) == 1


def test_a_dropped_connection_resends_every_unanswered_write(server: RMServer, rm: StandinRM) -> None:
    rm.inject(Fault(path="/ws/v1/cluster/nodes/nm-1.example:8041/resource", kind="drop", times=1))
    results = post_batch([server.url], writes(0, 1, 2, 3), connections=1)
    assert results == [None] * 4
    assert {n.total_mb for n in rm.nodes.values()} == {1024}
    assert len(rm.requests("POST", "/ws/v1/cluster/nodes/nm-1.example:8041")) == 2


def test_writes_behind_an_announced_close_go_out_again_on_a_new_connection(
    server: RMServer, rm: StandinRM
) -> None:
    rm.inject(Fault(path="/ws/v1/cluster/nodes/nm-1.example:8041/resource", kind="close", times=1))
    assert post_batch([server.url], writes(0, 1, 2, 3), connections=1) == [None] * 4
    assert [len(rm.requests("POST", f"/ws/v1/cluster/nodes/nm-{i}.example:8041")) for i in range(4)] == [1] * 4
    assert server.connections_accepted == 3  # /info, then the batch on two connections in turn


def test_a_hanging_rm_times_out_and_the_write_is_retried(server: RMServer, rm: StandinRM) -> None:
    rm.inject(Fault(path="/ws/v1/cluster/nodes/nm-0.example:8041/resource", kind="hang", seconds=0.5))
    assert post_batch([server.url], writes(0, 1), timeout_s=0.2, connections=1) == [None, None]
    assert len(rm.requests("POST", "/ws/v1/cluster/nodes/nm-0.example:8041")) == 2


def test_the_pipelined_try_counts_as_the_first_attempt(server: RMServer, rm: StandinRM) -> None:
    rm.inject(Fault(path="/ws/v1/cluster/nodes/nm-0.example:8041/resource", kind="status", status=503, times=5))
    [error] = post_batch([server.url], writes(0), retries=1)
    assert isinstance(error, TemporaryPeerError)
    assert "503" in error.message and "(after 2 attempt(s))" in error.message
    assert len(rm.requests("POST")) == 2


def test_a_batch_sent_to_a_standby_follows_its_redirect(pair: tuple[RMServer, RMServer]) -> None:
    standby, active = pair

    async def go() -> tuple[list[PeerError | None], str | None]:
        async with RMClient(cluster(standby.url, active.url)) as client:
            client._active = standby.url  # believed active, then failed over
            return await client.post_batch(writes(0, 1)), client.active_url

    assert run(go()) == ([None, None], active.url)
    assert {n.total_mb for n in active.rm.nodes.values()} == {1024}
    assert [r.query for r in active.rm.requests("POST")] == [{"user.name": ["yarn"]}] * 2


def test_with_no_active_rm_every_write_is_a_temporary_error(server: RMServer, rm: StandinRM) -> None:
    rm.ha_state = "STANDBY"
    results = post_batch([server.url], writes(0, 1), retries=0)
    assert all(isinstance(r, TemporaryPeerError) and "no active ResourceManager" in r.message for r in results)
    assert rm.requests("POST") == []


def test_a_header_with_a_line_break_is_refused_before_sending(server: RMServer, rm: StandinRM) -> None:
    from broker.yarn_bridge import HeaderAuth

    async def go() -> None:
        auth = HeaderAuth(lambda: {"Authorization": "Bearer x\r\nX-Injected: 1"})
        async with RMClient(cluster(server.url), auth=auth) as client:
            client._active = server.url
            await client.post_batch(writes(0))

    with pytest.raises(ValueError, match="line break"):
        run(go())
    assert rm.requests("POST") == []
