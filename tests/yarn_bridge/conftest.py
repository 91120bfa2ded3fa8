"""Fixtures: a running stand-in RM (or two, for HA), cluster configurations and plan builders."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest

from broker.model import NodePlan, Plan, Resources, TeamBinding, TeamPlan
from broker.yarn_bridge import ClusterBridge, RMClient, SyncReport, YarnCluster

from .standin_rm import CS, RMServer, StandinRM

T = TypeVar("T")
CLUSTER = "yarn-a"
SITE = "idc-a"
OFFLINE = {  # a capacity scheduler with root.offline.search, in absolute resources
    f"{CS}root.queues": "default,offline",
    f"{CS}root.default.capacity": "[memory=65536,vcores=32]",
    f"{CS}root.offline.capacity": "[memory=196608,vcores=96]",
    f"{CS}root.offline.queues": "search",
    f"{CS}root.offline.search.capacity": "[memory=65536,vcores=32]",
}


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@pytest.fixture
def rm() -> StandinRM:
    """An active RM with 4 nodes of 64 GiB / 32 vCores."""
    return StandinRM.with_nodes(4)


@pytest.fixture
def server(rm: StandinRM) -> Iterator[RMServer]:
    srv = RMServer(rm).start()
    yield srv
    srv.stop()


@pytest.fixture
def pair() -> Iterator[tuple[RMServer, RMServer]]:
    """rm1 standby (redirecting to rm2), rm2 active."""
    active = RMServer(StandinRM.with_nodes(2)).start()
    standby = RMServer(StandinRM.with_nodes(0, ha_state="STANDBY", active_url=active.url)).start()
    yield standby, active
    standby.stop()
    active.stop()


def cluster(*urls: str, **overrides: Any) -> YarnCluster:
    settings: dict[str, Any] = {
        "name": CLUSTER,
        "site": SITE,
        "rm_urls": urls,
        "timeout_s": 2.0,
        "backoff_s": 0.01,
        "retries": 2,
    }
    settings.update(overrides)
    return YarnCluster.model_validate(settings)


def node(i: int, cpu: str = "16", memory: str = "32Gi", labels: tuple[str, ...] = ()) -> NodePlan:
    """Plan entry for stand-in node ``nm-<i>.example``."""
    return NodePlan(
        node=f"nm-{i}.example",
        site=SITE,
        cluster=CLUSTER,
        labels=labels,
        yarn=Resources.of(cpu=cpu, memory=memory),
    )


def team(name: str, queues: tuple[str, ...], quota: Resources, placed: Resources) -> TeamPlan:
    return TeamPlan(
        team=name,
        runtime_quota=quota,
        placed=placed,
        placed_by_site={SITE: placed},
        placed_by_cluster={CLUSTER: placed},
        binding=TeamBinding(yarn_queues={CLUSTER: queues}),
    )


def teams(search_placed: str = "8") -> tuple[TeamPlan, TeamPlan]:
    """search (in OFFLINE already) and ads (to be added below root.offline)."""
    return (
        team(
            "search",
            ("root.offline.search",),
            Resources.of(cpu="40", memory="80Gi"),
            Resources.of(cpu=search_placed, memory="16Gi"),
        ),
        team(
            "ads",
            ("root.offline.ads",),
            Resources.of(cpu="20", memory="40Gi"),
            Resources.of(cpu="4", memory="8Gi"),
        ),
    )


def plan(*nodes: NodePlan, teams: tuple[TeamPlan, ...] = ()) -> Plan:
    return Plan(version=1, nodes=nodes, teams=teams)


def sync(url: str | list[str], the_plan: Plan, dry_run: bool = False, **overrides: Any) -> SyncReport:
    urls = [url] if isinstance(url, str) else url

    async def go() -> SyncReport:
        async with RMClient(cluster(*urls, **overrides)) as client:
            return await ClusterBridge(client).sync(the_plan, dry_run=dry_run)

    return run(go())
