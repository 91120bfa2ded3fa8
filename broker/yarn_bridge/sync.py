"""One cluster's sync: compare the RM with the plan, repair what differs, and report both.

Order matters: node capacities first (shrinks are the safety direction and must not wait behind label or queue
work), then node labels (queues may only reference partitions that exist), then queue capacities. Each step
reads the RM's state before deciding, so a sync is idempotent: when the RM already matches the plan it makes
reads only (``GET /nodes``, ``GET /get-node-labels``, ``GET /scheduler-conf``) and no write at all. A dry run
makes the same reads and returns the writes it would make.

``reconcile_forever`` runs the sync every interval against the newest plan: the drift report of each pass says
what differed (a node an operator resized, a label removed, a queue edited by hand) and what was done about
it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict

from broker.errors import PeerError
from broker.model import Inventory, NodePlan, Plan
from broker.yarn_bridge import dynamic_resources
from broker.yarn_bridge.client import RMClient
from broker.yarn_bridge.config import NodeResourceMethod
from broker.yarn_bridge.labels import LabelReport, apply_label_writes, label_writes, partition_of, read_labels
from broker.yarn_bridge.nodemap import NodeIdMap
from broker.yarn_bridge.nodes import (
    NodeOutcome,
    NodeStatus,
    NodeTarget,
    push_nodes,
    push_order,
    write_request,
)
from broker.yarn_bridge.queues import (
    QueueReport,
    apply_queue_change,
    desired_params,
    queue_change,
    queue_writes,
)
from broker.yarn_bridge.queues import read_conf as read_queue_conf
from broker.yarn_bridge.requests import WriteRequest
from broker.yarn_bridge.resource import Change, YarnResource, classify
from broker.yarn_bridge.wire import RMNode, nodes_of


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


class ClusterBridge:
    """Keeps one YARN cluster's RM in line with the plan."""

    def __init__(self, client: RMClient, inventory: Inventory | None = None) -> None:
        self.client = client
        self.cluster = client.cluster
        self._node_class = {n.name: n.node_class for n in inventory.nodes} if inventory else {}

    def partition(self, node: NodePlan) -> str | None:
        """The node's partition: from the plan's labels, else from the inventory's node class."""
        return partition_of(node.labels) or self._node_class.get(node.node)

    async def sync(self, plan: Plan, dry_run: bool = False) -> SyncReport:
        """Compare, repair (unless ``dry_run``), report. Failing to read ``/nodes`` raises ``PeerError``."""
        rm_nodes = nodes_of(await self.client.get("/nodes"), self.client.peer)
        by_id = {n.id: n for n in rm_nodes}
        mine = [n for n in plan.nodes if n.cluster == self.cluster.name]
        ids = NodeIdMap.resolve([n.node for n in mine], self.cluster.node_ids, rm_nodes)
        unmapped = dict(ids.unmapped)
        targets: list[NodeTarget] = []
        want_labels: dict[str, str] = {}
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
                want_labels[node_id] = partition
        report = await self._nodes(targets, dry_run)
        report = report.model_copy(update={"unmapped": unmapped})
        label_report, label_requests = await self._labels(want_labels, by_id, dry_run)
        queue_report, queue_requests = await self._queues(plan, sorted(set(want_labels.values())), dry_run)
        return report.model_copy(
            update={
                "labels": label_report,
                "queues": queue_report,
                "requests": report.requests + tuple(label_requests + queue_requests),
                "active_rm": self.client.active_url,
            }
        )

    async def _nodes(self, targets: list[NodeTarget], dry_run: bool) -> SyncReport:
        timeout_ms = self.cluster.overcommit_timeout_ms
        pushed = push_order(targets)
        not_pushed = [t for t in targets if t.change is Change.HELD]
        dynamic = self.cluster.node_resource_method is NodeResourceMethod.DYNAMIC_RESOURCES
        if dry_run or dynamic:
            outcomes = [_unsent(t, NodeStatus.PLANNED) for t in pushed]
        else:
            outcomes = await push_nodes(self.client, targets)
        return SyncReport(
            cluster=self.cluster.name,
            active_rm=self.client.active_url,
            dry_run=dry_run,
            unchanged_nodes=sum(1 for t in targets if t.change is Change.SAME),
            nodes=tuple(outcomes) + tuple(_unsent(t, NodeStatus.HELD) for t in not_pushed),
            requests=() if dynamic else tuple(write_request(t, timeout_ms) for t in pushed),
            dynamic_resources_xml=dynamic_resources.render(pushed, timeout_ms) if dynamic and pushed else "",
            commands=(dynamic_resources.REFRESH_COMMAND,) if dynamic and pushed else (),
        )

    async def _labels(
        self, want: dict[str, str], by_id: dict[str, RMNode], dry_run: bool
    ) -> tuple[LabelReport, list[WriteRequest]]:
        if not want:
            return LabelReport(), []
        try:
            existing = await read_labels(self.client)
        except PeerError as exc:
            return LabelReport(error=f"cannot read node labels: {exc.message}"), []
        writes, report = label_writes(want, by_id, existing)
        if writes and not dry_run:
            report = await apply_label_writes(self.client, writes, report)
        return report, writes

    async def _queues(
        self, plan: Plan, partitions: list[str], dry_run: bool
    ) -> tuple[QueueReport, list[WriteRequest]]:
        desired = desired_params(plan, self.cluster, partitions)
        if not desired:
            return QueueReport(), []
        try:
            conf = await read_queue_conf(self.client)
        except PeerError as exc:
            return QueueReport(error=f"cannot read the scheduler configuration: {exc.message}"), []
        body, report = queue_change(desired, conf)
        if body is None:
            return report, []
        if not dry_run:
            report = await apply_queue_change(self.client, body, report)
        return report, queue_writes(body)


def _unsent(target: NodeTarget, status: NodeStatus) -> NodeOutcome:
    return NodeOutcome(
        node=target.node,
        node_id=target.node_id,
        change=target.change,
        status=status,
        want=target.want,
        before=target.have,
    )


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
