"""What the bridge remembers of the RM: no request for an unchanged plan while the last read is fresh, a full
drift check after ``drift_check_s``, and shrinks pushed before anything is read."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from broker.model import Plan
from broker.yarn_bridge import ClusterBridge, NodeStatus, RMClient, SyncReport
from broker.yarn_bridge.view import Seen

from .conftest import OFFLINE, node, plan, run, teams
from .standin_rm import CS, RMServer, StandinRM

NM0 = "/ws/v1/cluster/nodes/nm-0.example:8041"
DRIFT_CHECK_S = 30.0


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def rm() -> StandinRM:
    return StandinRM.with_nodes(4, conf=dict(OFFLINE))


def full_plan(memory: str = "96Gi") -> Plan:
    """Nodes with partitions and teams with queues, so that all three parts of the RM are compared. The
    cluster stays larger than every team's quota, so node 0's ``memory`` does not change the queues' caps."""
    return plan(
        node(0, cpu="48", memory=memory, labels=("disk", "stable")),
        node(1, labels=("diskless", "elastic")),
        teams=teams(),
    )


def syncs(url: str, steps: list[Callable[[ClusterBridge, Clock], Any]], **overrides: Any) -> list[SyncReport]:
    """Run ``steps`` against one bridge (one memory); each step returns a plan to sync, or None."""
    from .conftest import cluster

    async def go() -> list[SyncReport]:
        clock = Clock()
        reports = []
        async with RMClient(cluster(url, **{"drift_check_s": DRIFT_CHECK_S, **overrides})) as client:
            bridge = ClusterBridge(client, clock=clock)
            for step in steps:
                the_plan = step(bridge, clock)
                if the_plan is not None:
                    reports.append(await bridge.sync(the_plan))
        return reports

    return run(go())


def test_a_repeated_sync_of_an_unchanged_plan_sends_no_request(server: RMServer, rm: StandinRM) -> None:
    first, again = syncs(
        server.url,
        [lambda b, c: full_plan(), lambda b, c: rm.clear_log(), lambda b, c: full_plan()],
    )
    assert first.ok and first.read == ("nodes", "labels", "queues")
    assert rm.received == []
    assert again.ok and again.read == () and again.requests == () and again.unchanged_nodes == 2


def test_drift_is_found_and_repaired_once_the_last_read_is_older_than_drift_check_s(
    server: RMServer, rm: StandinRM
) -> None:
    def drift(bridge: ClusterBridge, clock: Clock) -> None:
        rm.nodes["nm-0.example:8041"].total_mb = 999_999  # a NodeManager re-registered with its own total
        rm.conf[f"{CS}root.offline.search.capacity"] = "[memory=1,vcores=1]"  # an operator's hand edit
        clock.now += DRIFT_CHECK_S - 1

    def later(bridge: ClusterBridge, clock: Clock) -> Plan:
        clock.now += 1
        return full_plan()

    _, trusted, checked = syncs(server.url, [lambda b, c: full_plan(), drift, lambda b, c: full_plan(), later])
    assert trusted.read == () and trusted.nodes == ()  # still within drift_check_s: not seen yet
    assert checked.read == ("nodes", "labels", "queues")
    assert [(n.node_id, n.change, n.status) for n in checked.nodes] == [
        ("nm-0.example:8041", "shrink", NodeStatus.APPLIED)
    ]
    assert rm.nodes["nm-0.example:8041"].total_mb == 98304
    assert rm.conf[f"{CS}root.offline.search.capacity"] == "[memory=16384,vcores=8]"


def test_with_drift_check_0_every_sync_reads_and_writes_nothing_new(server: RMServer, rm: StandinRM) -> None:
    _, again = syncs(server.url, [lambda b, c: full_plan(), lambda b, c: full_plan()], drift_check_s=0)
    assert again.read == ("nodes", "labels", "queues") and again.requests == ()


def test_a_node_whose_push_failed_is_read_again_by_the_next_sync(server: RMServer, rm: StandinRM) -> None:
    rm.nodes["nm-0.example:8041"].state = "LOST"
    failed, again = syncs(server.url, [lambda b, c: full_plan(), lambda b, c: full_plan()])
    assert not failed.ok
    assert "nodes" in again.read and not again.ok
    assert len(rm.requests("POST", f"{NM0}/resource")) == 2


def test_a_plan_change_reads_only_the_part_it_touches(server: RMServer, rm: StandinRM) -> None:
    _, grown = syncs(server.url, [lambda b, c: full_plan(), lambda b, c: full_plan(memory="120Gi")])
    assert grown.read == ("nodes",)
    assert [n.status for n in grown.nodes] == [NodeStatus.APPLIED]


def test_a_dry_run_reads_everything_and_leaves_the_memory_alone(server: RMServer, rm: StandinRM) -> None:
    async def go() -> tuple[SyncReport, SyncReport]:
        from .conftest import cluster

        async with RMClient(cluster(server.url)) as client:
            bridge = ClusterBridge(client)
            await bridge.sync(full_plan())
            dry = await bridge.sync(full_plan(memory="8Gi"), dry_run=True)
            rm.clear_log()
            return dry, await bridge.sync(full_plan())

    dry, again = run(go())
    assert dry.read == ("nodes", "labels", "queues") and dry.nodes[0].status is NodeStatus.PLANNED
    assert rm.received == [] and again.read == ()


def test_known_shrinks_reach_the_rm_before_anything_is_read(server: RMServer, rm: StandinRM) -> None:
    def shrink_and_grow(bridge: ClusterBridge, clock: Clock) -> Plan:
        rm.clear_log()
        return plan(node(0, memory="8Gi"), node(1, cpu="32", memory="60Gi"), node(2, memory="4Gi"))

    _, report = syncs(server.url, [lambda b, c: plan(*(node(i) for i in range(3))), shrink_and_grow])
    calls = [(r.method, r.path.removeprefix("/ws/v1/cluster/nodes")) for r in rm.received]
    first_read = calls.index(("GET", ""))
    assert sorted(calls[:2]) == [
        ("POST", "/nm-0.example:8041/resource"),
        ("POST", "/nm-2.example:8041/resource"),
    ]
    assert set(calls[2:first_read]) == {("GET", "/nm-0.example:8041"), ("GET", "/nm-2.example:8041")}
    assert calls[first_read + 1] == ("POST", "/nm-1.example:8041/resource")  # growth after the read
    assert [n.status for n in report.nodes] == [NodeStatus.APPLIED] * 3


def test_without_memory_shrinks_are_verified_before_growth_is_sent(server: RMServer, rm: StandinRM) -> None:
    rm.nodes["nm-1.example:8041"].total_mb = 1024
    [report] = syncs(server.url, [lambda b, c: plan(node(1, cpu="32", memory="60Gi"), node(0, memory="8Gi"))])
    calls = [(r.method, r.path.removeprefix("/ws/v1/cluster/nodes")) for r in rm.received[1:]]  # after /info
    assert calls == [
        ("GET", ""),
        ("POST", "/nm-0.example:8041/resource"),
        ("GET", "/nm-0.example:8041"),
        ("POST", "/nm-1.example:8041/resource"),
        ("GET", "/nm-1.example:8041"),
    ]
    assert report.ok


@pytest.mark.parametrize(
    ("at", "rm_url", "now", "fresh"),
    [
        (100.0, "http://rm1", 129.9, True),
        (100.0, "http://rm1", 130.0, False),
        (100.0, "http://rm2", 101.0, False),
        (None, "http://rm1", 100.0, False),
    ],
    ids=["young", "as-old-as-the-limit", "other-rm-active", "unconfirmed"],
)
def test_a_read_is_trusted_only_while_young_and_from_the_active_rm(
    at: float | None, rm_url: str, now: float, fresh: bool
) -> None:
    assert Seen(value={}, at=at, rm="http://rm1").fresh(now, 30.0, rm_url) is fresh
