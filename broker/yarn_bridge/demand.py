"""Demand read from the RM: pending asks per team and demand class, running usage per team.

- Pending: ``GET /apps?states=NEW,NEW_SAVING,SUBMITTED,ACCEPTED,RUNNING``; each app's ``resourceRequests``
  with ``resourceName: "*"`` (the ANY request; rack and host requests repeat the same containers) and
  ``numContainers > 0`` are pending containers. An ask at priority 0 is the ApplicationMaster's (the RM gives
  the AM container priority 0; applications' own containers use priorities >= 1). Asks are grouped into one
  ``DemandClass`` per (team, AM or worker, memory, vCores, label expression); a label expression naming a
  ``disk-*`` partition marks the class ``needs_disk``. Every class is tied to the cluster (``DemandClass.cluster``
  = the cluster file's ``name``): the RM can start it only on its own NodeManagers, the nodes whose inventory
  ``cluster`` is that name, as for the YARN sink's pushes.
- Running: ``GET /scheduler``, each leaf queue's ``resourcesUsed``, summed per team.

An app's ``queue`` is matched against the team's full queue paths and, for RMs that report the leaf name only,
against the last path element when that is unique among the cluster's managed queues. Apps in other queues are
counted under ``unmapped_queues``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

from broker.model import DemandClass, Resources, Sink
from broker.yarn_bridge.client import RMClient
from broker.yarn_bridge.resource import MILLI_PER_VCORE
from broker.yarn_bridge.wire import as_int, as_list, member, resource_of

ACTIVE_STATES = "NEW,NEW_SAVING,SUBMITTED,ACCEPTED,RUNNING"
AM_PRIORITY = 0


class YarnDemand(BaseModel):
    """One cluster's demand: pending classes, running usage per team, and asks no team claims."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cluster: str
    pending: tuple[DemandClass, ...] = ()
    running: dict[str, Resources] = {}
    unmapped_queues: dict[str, int] = {}
    """Queue -> pending containers in it that belong to no team."""


class QueueIndex:
    """Queue (full path or unique leaf name) -> team."""

    def __init__(self, team_queues: Mapping[str, tuple[str, ...]]) -> None:
        self._full = {path: team for team, paths in team_queues.items() for path in paths}
        leaves = Counter(path.rsplit(".", 1)[-1] for path in self._full)
        self._leaf = {
            path.rsplit(".", 1)[-1]: team
            for path, team in self._full.items()
            if leaves[path.rsplit(".", 1)[-1]] == 1
        }

    def team(self, queue: str) -> str | None:
        return self._full.get(queue) or self._full.get(f"root.{queue}") or self._leaf.get(queue)


async def read_demand(client: RMClient, team_queues: Mapping[str, tuple[str, ...]]) -> YarnDemand:
    """The cluster's pending and running demand, mapped to teams (see module doc)."""
    index = QueueIndex(team_queues)
    apps = await client.get("/apps", {"states": ACTIVE_STATES})
    scheduler = await client.get("/scheduler")
    peer = client.peer
    counts: Counter[tuple[str, bool, int, int, str]] = Counter()
    unmapped: Counter[str] = Counter()
    listed = member(apps, "apps", peer, "/apps")  # null when there are no apps
    for app in as_list(listed.get("app") if isinstance(listed, dict) else None):
        queue = str(app.get("queue", ""))
        team = index.team(queue)
        for ask in as_list(app.get("resourceRequests")):
            if ask.get("resourceName", "*") != "*":
                continue
            number = as_int(ask.get("numContainers", 0), peer, "resourceRequests.numContainers")
            if number <= 0:
                continue
            if team is None:
                unmapped[queue] += number
                continue
            shape = resource_of(member(ask, "capability", peer, "resourceRequests"), peer, "capability")
            priority = ask.get("priority", 1)
            if isinstance(priority, dict):
                priority = priority.get("priority", 1)
            is_am = as_int(priority, peer, "resourceRequests.priority") == AM_PRIORITY
            counts[
                (team, is_am, shape.memory_mb, shape.vcores, str(ask.get("nodeLabelExpression") or ""))
            ] += number
    pending = tuple(_demand_class(client.cluster.name, key, number) for key, number in sorted(counts.items()))
    running: dict[str, Resources] = defaultdict(Resources)
    for path, used in _leaf_usage(
        member(member(scheduler, "scheduler", peer, "/scheduler"), "schedulerInfo", peer, "/scheduler"),
        "root",
        peer,
    ):
        team = index.team(path)
        if team is not None:
            running[team] = running[team] + used
    return YarnDemand(
        cluster=client.cluster.name, pending=pending, running=dict(running), unmapped_queues=dict(unmapped)
    )


def _demand_class(cluster: str, key: tuple[str, bool, int, int, str], number: int) -> DemandClass:
    team, is_am, memory, vcores, label = key
    role = "am" if is_am else "worker"
    name = f"yarn.{cluster}.{team}.{role}.{memory}Mi.{vcores}c" + (f".{label}" if label else "")
    return DemandClass(
        name=name,
        team=team,
        count=number,
        is_am=is_am,
        sink=Sink.YARN,
        cluster=cluster,
        needs_disk=label.startswith("disk-"),
        shape=Resources.exact(cpu_milli=vcores * MILLI_PER_VCORE, memory_mib=memory),
    )


def _leaf_usage(info: Any, path: str, peer: str) -> list[tuple[str, Resources]]:
    """(full path, resourcesUsed) of every leaf queue below ``info``."""
    children = as_list((info.get("queues") or {}).get("queue") if isinstance(info, dict) else None)
    if not children:
        used = resource_of(
            info.get("resourcesUsed", {"memory": 0, "vCores": 0}), peer, f"{path}.resourcesUsed"
        )
        return [(path, Resources.exact(cpu_milli=used.vcores * MILLI_PER_VCORE, memory_mib=used.memory_mb))]
    out: list[tuple[str, Resources]] = []
    for child in children:
        out += _leaf_usage(child, f"{path}.{member(child, 'queueName', peer, 'queue')}", peer)
    return out


__all__ = ["ACTIVE_STATES", "QueueIndex", "YarnDemand", "read_demand"]
