"""Fixtures: a running stand-in RM (or two, for HA), cluster configurations and plan builders."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest

from broker.model import NodePlan, Plan, Resources, TeamBinding, TeamPlan
from broker.yarn_bridge import ClusterBridge, RMClient, SyncReport, YarnCluster

from .standin_rm import RMServer, StandinRM

T = TypeVar("T")
CLUSTER = "yarn-a"
SITE = "idc-a"


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
        binding=TeamBinding(yarn_queues={CLUSTER: queues}),
    )


def plan(*nodes: NodePlan, teams: tuple[TeamPlan, ...] = ()) -> Plan:
    return Plan(version=1, nodes=nodes, teams=teams)


def sync(url: str | list[str], the_plan: Plan, dry_run: bool = False, **overrides: Any) -> SyncReport:
    urls = [url] if isinstance(url, str) else url

    async def go() -> SyncReport:
        async with RMClient(cluster(*urls, **overrides)) as client:
            return await ClusterBridge(client).sync(the_plan, dry_run=dry_run)

    return run(go())
