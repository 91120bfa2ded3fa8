"""Demand read from /apps and /scheduler, mapped to teams and classes."""

from __future__ import annotations

from broker.model import Resources
from broker.yarn_bridge import RMClient, YarnDemand, read_demand

from .conftest import cluster, run
from .standin_rm import CS, RMServer, StandinRM

QUEUES = {"search": ("root.offline.search",)}


def app(
    queue: str, state: str, asks: list[dict[str, object]], mb: int = 0, vcores: int = 0
) -> dict[str, object]:
    return {
        "id": f"application_1_{len(asks)}",
        "queue": queue,
        "state": state,
        "allocatedMB": mb,
        "allocatedVCores": vcores,
        "runningContainers": 1 if mb else 0,
        "resourceRequests": asks,
    }


def ask(
    priority: int, memory: int, vcores: int, count: int, where: str = "*", label: str = ""
) -> dict[str, object]:
    return {
        "priority": priority,
        "resourceName": where,
        "capability": {"memory": memory, "vCores": vcores},
        "numContainers": count,
        "nodeLabelExpression": label,
    }


def demand(server: RMServer) -> YarnDemand:
    async def go() -> YarnDemand:
        async with RMClient(cluster(server.url)) as client:
            return await read_demand(client, QUEUES)

    return run(go())


def offline_rm(apps: list[dict[str, object]]) -> StandinRM:
    conf = {
        f"{CS}root.queues": "offline",
        f"{CS}root.offline.capacity": "100",
        f"{CS}root.offline.queues": "search,other",
        f"{CS}root.offline.search.capacity": "50",
        f"{CS}root.offline.other.capacity": "50",
    }
    return StandinRM.with_nodes(1, conf=conf, apps=apps)


def test_pending_asks_become_am_and_worker_classes_per_team(rm: StandinRM) -> None:
    rm = offline_rm(
        [
            app("search", "ACCEPTED", [ask(0, 2048, 1, 1)]),
            app(
                "root.offline.search",
                "RUNNING",
                [ask(1, 4096, 2, 10, label="disk-elastic"), ask(1, 4096, 2, 10, where="rack1")],
            ),
        ]
    )
    from .standin_rm import RMServer as Server

    server = Server(rm).start()
    try:
        result = demand(server)
    finally:
        server.stop()
    by_name = {c.name: c for c in result.pending}
    am = by_name["yarn.yarn-a.search.am.2048Mi.1c"]
    worker = by_name["yarn.yarn-a.search.worker.4096Mi.2c.disk-elastic"]
    assert am.is_am and am.count == 1 and am.shape == Resources.of(cpu="1", memory="2Gi")
    assert not worker.is_am and worker.count == 10 and worker.needs_disk  # the rack ask is not counted twice


def test_running_usage_comes_from_the_scheduler_per_team() -> None:
    rm = offline_rm(
        [app("search", "RUNNING", [], mb=8192, vcores=4), app("other", "RUNNING", [], mb=1024, vcores=1)]
    )
    server = RMServer(rm).start()
    try:
        result = demand(server)
    finally:
        server.stop()
    assert result.running == {"search": Resources.of(cpu="4", memory="8Gi")}


def test_asks_in_queues_of_no_team_are_counted_as_unmapped() -> None:
    server = RMServer(offline_rm([app("other", "ACCEPTED", [ask(0, 1024, 1, 1)])])).start()
    try:
        result = demand(server)
    finally:
        server.stop()
    assert result.pending == () and result.unmapped_queues == {"other": 1}


def test_no_apps_at_all_is_an_empty_demand(server: RMServer) -> None:
    result = demand(server)
    assert result.pending == () and result.running == {}
