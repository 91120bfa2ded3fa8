"""One cluster's sync: compare the RM with the plan, repair what differs, and report both.

Order matters. Shrinks are the safety direction, so they go first and on their own: nodes whose plan is below
what the bridge last saw on the RM are pushed and verified before anything is read (the shrink fast path; no
``GET /nodes`` of 5,000 nodes and no growth in front of them). Then the node list is read when needed, and the
remaining node capacities are pushed (shrinks the read found, then growth), then node labels (queues may only
reference partitions that exist), then queue capacities.

Idempotency: the bridge remembers each part of the RM's state it read or confirmed (``view.Seen``). A part is
read again only when its last read is older than ``drift_check_s``, came from an RM that is no longer active,
or the plan asks for something new in it; so a repeated sync of an unchanged plan makes no request at all,
and every ``drift_check_s`` a sync reads everything (``GET /nodes``, ``GET /get-node-labels``, ``GET
/scheduler-conf``) and repairs what drifted. A dry run always reads, writes nothing and remembers nothing.

``reconcile_forever`` runs the sync every interval against the newest plan: the drift report of each pass says
what differed (a node an operator resized, a label removed, a queue edited by hand) and what was done about
it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

from pydantic import BaseModel, ConfigDict

from broker.errors import PeerError
from broker.model import Inventory, NodePlan, Plan
from broker.yarn_bridge import dynamic_resources
from broker.yarn_bridge.am_placement import AmLabel, am_labels
from broker.yarn_bridge.client import RMClient
from broker.yarn_bridge.config import AmPlacement, NodeResourceMethod
from broker.yarn_bridge.labels import LabelReport, apply_label_writes, label_writes, partition_of, read_labels
from broker.yarn_bridge.nodemap import NodeIdMap
from broker.yarn_bridge.nodes import (
    NodeOutcome,
    NodeStatus,
    NodeTarget,
    push_nodes,
    push_order,
    push_shrinks,
    write_request,
)
from broker.yarn_bridge.queues import (
    DEFAULT_LABEL,
    QueueReport,
    apply_queue_change,
    desired_params,
    queue_change,
    queue_writes,
    team_queues,
)
from broker.yarn_bridge.queues import read_conf as read_queue_conf
from broker.yarn_bridge.requests import WriteRequest
from broker.yarn_bridge.resource import Change, YarnResource, classify
from broker.yarn_bridge.view import Seen
from broker.yarn_bridge.wire import RMNode, nodes_of

T = TypeVar("T")


class SyncReport(BaseModel):
    """What one sync of one cluster found (drift), did (writes) and confirmed (read-back)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cluster: str
    active_rm: str | None
    dry_run: bool
    unchanged_nodes: int = 0
    nodes: tuple[NodeOutcome, ...] = ()
    """Every node whose capacity differs from the plan (pushed, held or failed)."""
    unmapped: dict[str, str] = {}
    """Plan node -> why it has no NodeManager in this RM."""
    labels: LabelReport = LabelReport()
    queues: QueueReport = QueueReport()
    requests: tuple[WriteRequest, ...] = ()
    """The writes made (or, in a dry run, that would be made), in order."""
    dynamic_resources_xml: str = ""
    commands: tuple[tuple[str, ...], ...] = ()
    """Commands to run on an RM host (the ``dynamic-resources`` method)."""
    read: tuple[str, ...] = ()
    """The parts of the RM's state read to compare with the plan (``nodes``, ``labels``, ``queues``); a part
    left out was trusted from a read younger than ``drift_check_s``."""

    @property
    def ok(self) -> bool:
        """True when nothing failed: every push verified, labels and queues applied or already right."""
        return (
            all(n.status is not NodeStatus.FAILED for n in self.nodes)
            and not self.labels.error
            and not self.labels.not_applied
            and not self.queues.error
        )

    def drift_lines(self) -> list[str]:
        """What differed from the plan, one line each, for people."""
        lines = [
            f"node {n.node} ({n.node_id}): {n.before} -> {n.want} [{n.change.value}, {n.status.value}"
            + (f": {n.error}" if n.error else "")
            + "]"
            for n in self.nodes
        ]
        lines += [f"node {name}: unmapped ({why})" for name, why in self.unmapped.items()]
        lines += [f"label {node_id}: -> {label}" for node_id, label in self.labels.assigned.items()]
        lines += [f"label {name}: created" for name in self.labels.created]
        lines += [
            f"label {name}: exists with the other exclusivity (fixed at creation)"
            for name in self.labels.exclusivity_conflicts
        ]
        lines += [
            f"queue {key}: {have or '(unset)'} -> {want}" for key, (have, want) in self.queues.drift.items()
        ]
        return lines


@dataclass(frozen=True)
class _Desired:
    """What the plan wants of this cluster's nodes, against one view of the RM's node list."""

    targets: list[NodeTarget]
    labels: dict[str, str]
    """NodeId -> partition."""
    unmapped: dict[str, str]


class ClusterBridge:
    """Keeps one YARN cluster's RM in line with the plan, remembering what it last read (see ``view``)."""

    def __init__(
        self,
        client: RMClient,
        inventory: Inventory | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.cluster = client.cluster
        self._node_class = {n.name: n.node_class for n in inventory.nodes} if inventory else {}
        self._clock = clock
        self._nodes_seen: Seen[dict[str, RMNode]] | None = None
        self._labels_seen: Seen[dict[str, str]] | None = None
        self._queues_seen: Seen[dict[str, dict[str, str]]] | None = None

    def partition(self, node: NodePlan) -> str | None:
        """The node's partition: from the plan's labels, else from the inventory's node class."""
        return partition_of(node.labels) or self._node_class.get(node.node)

    async def sync(self, plan: Plan, dry_run: bool = False) -> SyncReport:
        """Compare, repair (unless ``dry_run``), report. Failing to read ``/nodes`` raises ``PeerError``.

        Nodes that shrink against the remembered node list are pushed and verified before anything is read;
        each part of the RM's state is then read only when its last read is stale or the plan asks for
        something new in it (see the module docstring). A dry run always reads and remembers nothing.
        """
        mine = [n for n in plan.nodes if n.cluster == self.cluster.name]
        dynamic = self.cluster.node_resource_method is NodeResourceMethod.DYNAMIC_RESOURCES
        seen = None if dry_run else self._nodes_seen
        desired: _Desired | None = None
        shrinks: list[NodeTarget] = []
        early: list[NodeOutcome] = []
        if seen is not None and not dynamic:
            desired = self._desired(mine, seen.value)
            shrinks = [t for t in desired.targets if t.change is Change.SHRINK]
            if shrinks:
                early = await push_shrinks(self.client, shrinks)
                seen = self._nodes_seen = _after(seen, early)
                desired = self._desired(mine, seen.value)
        read: list[str] = []
        if seen is None or desired is None or not self._fresh(seen) or _pushes(desired.targets):
            at = self._clock()
            rm_nodes = nodes_of(await self.client.get("/nodes"), self.client.peer)
            seen = Seen({n.id: n for n in rm_nodes}, at, self.client.active_url)
            desired = self._desired(mine, seen.value)
            read.append("nodes")
        pushed_early = {o.node_id for o in early}
        report = await self._nodes([t for t in desired.targets if t.node_id not in pushed_early], dry_run)
        if not dry_run:
            self._nodes_seen = _after(seen, report.nodes)
        label_report, label_requests = await self._labels(desired.labels, seen.value, dry_run, read)
        queue_report, queue_requests = await self._queues(
            plan, mine, sorted(set(desired.labels.values())), dry_run, read
        )
        return report.model_copy(
            update={
                "nodes": tuple(early) + report.nodes,
                "unmapped": desired.unmapped,
                "labels": label_report,
                "queues": queue_report,
                "requests": tuple(write_request(t, self.cluster.overcommit_timeout_ms) for t in shrinks)
                + report.requests
                + tuple(label_requests + queue_requests),
                "active_rm": self.client.active_url,
                "read": tuple(read),
            }
        )

    def _fresh(self, seen: Seen[T]) -> bool:
        return seen.fresh(self._clock(), self.cluster.drift_check_s, self.client.active_url)

    def _desired(self, mine: list[NodePlan], by_id: dict[str, RMNode]) -> _Desired:
        """Each mapped plan node beside the RM's total for it in ``by_id``; the partitions; the unmapped."""
        ids = NodeIdMap.resolve([n.node for n in mine], self.cluster.node_ids, by_id.values())
        unmapped = dict(ids.unmapped)
        targets: list[NodeTarget] = []
        labels: dict[str, str] = {}
        for node in mine:
            node_id = ids.to_yarn.get(node.node)
            if node_id is None:
                continue
            if node_id not in by_id:
                unmapped[node.node] = f"NodeId {node_id} is not in the RM's node list"
                continue
            want = YarnResource.from_resources(node.yarn)
            have = by_id[node_id].total
            targets.append(
                NodeTarget(
                    node=node.node,
                    node_id=node_id,
                    want=want,
                    have=have,
                    change=classify(want, have, self.cluster.grow_permille),
                )
            )
            partition = self.partition(node)
            if partition is not None:
                labels[node_id] = partition
        return _Desired(targets, labels, unmapped)

    async def _nodes(self, targets: list[NodeTarget], dry_run: bool) -> SyncReport:
        timeout_ms = self.cluster.overcommit_timeout_ms
        pushed = push_order(targets)
        not_pushed = [t for t in targets if t.change is Change.HELD]
        dynamic = self.cluster.node_resource_method is NodeResourceMethod.DYNAMIC_RESOURCES
        if dry_run or dynamic:
            outcomes = [NodeOutcome.of(t, NodeStatus.PLANNED) for t in pushed]
        else:
            outcomes = await push_nodes(self.client, targets)
        return SyncReport(
            cluster=self.cluster.name,
            active_rm=self.client.active_url,
            dry_run=dry_run,
            unchanged_nodes=sum(1 for t in targets if t.change is Change.SAME),
            nodes=tuple(outcomes) + tuple(NodeOutcome.of(t, NodeStatus.HELD) for t in not_pushed),
            requests=() if dynamic else tuple(write_request(t, timeout_ms) for t in pushed),
            dynamic_resources_xml=dynamic_resources.render(pushed, timeout_ms) if dynamic and pushed else "",
            commands=(dynamic_resources.REFRESH_COMMAND,) if dynamic and pushed else (),
        )

    async def _labels(
        self, want: dict[str, str], by_id: dict[str, RMNode], dry_run: bool, read: list[str]
    ) -> tuple[LabelReport, list[WriteRequest]]:
        seen = self._labels_seen
        if not want or (not dry_run and seen is not None and seen.value == want and self._fresh(seen)):
            return LabelReport(), []
        at = self._clock()
        try:
            existing = await read_labels(self.client)
        except PeerError as exc:
            return LabelReport(error=f"cannot read node labels: {exc.message}"), []
        read.append("labels")
        writes, report = label_writes(want, by_id, existing)
        if writes and not dry_run:
            report = await apply_label_writes(self.client, writes, report)
            if report.assigned and self._nodes_seen is not None:
                self._nodes_seen = _relabelled(self._nodes_seen, report)
        if not dry_run:
            confirmed = not report.error and not report.not_applied
            self._labels_seen = Seen(dict(want), at, self.client.active_url) if confirmed else None
        return report, writes

    async def _queues(
        self, plan: Plan, mine: list[NodePlan], partitions: list[str], dry_run: bool, read: list[str]
    ) -> tuple[QueueReport, list[WriteRequest]]:
        teams_am: dict[str, AmLabel] = {}
        if self.cluster.am_placement is AmPlacement.QUEUE_DEFAULT:
            teams_am = am_labels(plan, mine, self.partition)
        desired = desired_params(plan, self.cluster, partitions, teams_am)
        placed = {
            path: teams_am[team]
            for team, paths in team_queues(plan, self.cluster).items()
            if team in teams_am
            for path in paths
            if DEFAULT_LABEL in desired.get(path, {})
        }
        seen = self._queues_seen
        if not desired or (not dry_run and seen is not None and seen.value == desired and self._fresh(seen)):
            return QueueReport(am_labels=placed), []
        at = self._clock()
        try:
            conf = await read_queue_conf(self.client)
        except PeerError as exc:
            return QueueReport(error=f"cannot read the scheduler configuration: {exc.message}"), []
        read.append("queues")
        body, report = queue_change(desired, conf)
        report = report.model_copy(update={"am_labels": placed})
        if body is not None and not dry_run:
            report = await apply_queue_change(self.client, body, report)
        if not dry_run:
            self._queues_seen = Seen(desired, at, self.client.active_url) if not report.error else None
        return report, queue_writes(body) if body is not None else []


def _pushes(targets: list[NodeTarget]) -> bool:
    """True when some target would be written (a shrink or a growth past the anti-churn threshold)."""
    return any(t.change in (Change.SHRINK, Change.GROW) for t in targets)


def _relabelled(seen: Seen[dict[str, RMNode]], report: LabelReport) -> Seen[dict[str, RMNode]]:
    """The node view after label moves: as read back when every move was confirmed, else untrusted."""
    if report.error or report.not_applied:
        return replace(seen, at=None)
    nodes = dict(seen.value)
    for node_id, label in report.assigned.items():
        if node_id in nodes:
            nodes[node_id] = replace(nodes[node_id], labels=(label,))
    return replace(seen, value=nodes)


def _after(seen: Seen[dict[str, RMNode]], outcomes: Sequence[NodeOutcome]) -> Seen[dict[str, RMNode]]:
    """The node view after pushes: each read-back replaces the node's total; a push that was not confirmed
    leaves the node unknown, so the view is no longer trusted to skip a read."""
    nodes = dict(seen.value)
    for outcome in outcomes:
        if outcome.read_back is not None and outcome.node_id in nodes:
            nodes[outcome.node_id] = replace(nodes[outcome.node_id], total=outcome.read_back)
    confirmed = all(o.status in (NodeStatus.APPLIED, NodeStatus.HELD) for o in outcomes)
    return Seen(nodes, seen.at if confirmed else None, seen.rm)




async def reconcile_forever(
    bridge: ClusterBridge,
    plans: Callable[[], Plan | None],
    interval_s: float,
    stop: asyncio.Event,
    on_report: Callable[[SyncReport], None],
    on_error: Callable[[PeerError], None],
) -> None:
    """Sync the newest plan every ``interval_s`` until ``stop`` is set; a failed pass waits for the next."""
    while not stop.is_set():
        plan = plans()
        if plan is not None:
            try:
                on_report(await bridge.sync(plan))
            except PeerError as exc:
                on_error(exc)
        try:
            await asyncio.wait_for(stop.wait(), interval_s)
        except TimeoutError:
            continue


__all__ = ["ClusterBridge", "SyncReport", "reconcile_forever"]
